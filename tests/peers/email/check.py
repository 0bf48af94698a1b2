#!/usr/bin/env python3
"""Check of the test mail system (Dovecot IMAP + aiosmtpd submission), standard library only.

    python3 check.py DIR [--no-restart]  # every check below; "N passed, M failed", exit 0 if all pass
    python3 check.py --wait DIR [SECONDS]  # wait until every port in DIR/ports greets (start.sh)

DIR is the folder given to start.sh (ports from DIR/ports, CA from DIR/tls.crt).
Checks: TLS certificate (IP and DNS names), IMAP STARTTLS and IMAPS logins, IDLE, SMTP
STARTTLS-before-AUTH, AUTH required, wrong password, AUTH PLAIN and LOGIN, unknown
recipients (550); alice -> bot with a PNG attachment: the bot's IDLE gets EXISTS, UID FETCH
gives the same bytes; bot -> alice reply with In-Reply-To/References lands in alice's INBOX;
then (unless --no-restart) stop.sh + start.sh on the same DIR: UIDVALIDITY unchanged, old
UIDs unchanged, mail sent after the restart is found by UID FETCH <last+1>:*.
"""
import email
import email.policy
import imaplib
import os
import re
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib
from email.message import EmailMessage
from email.utils import make_msgid

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
USERS = {"bot": "bot-pass", "alice": "alice-pass"}
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    return ok


def ports(d):
    p = open(os.path.join(d, "ports")).read().split()
    return dict(zip(["imap", "imaps", "smtp", "smtps"], map(int, p)))


def ctx_for(d):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "tls.crt"))
    return ctx


# --- waiting for start.sh ---------------------------------------------------------------

def greets(port, tls_ctx, prefix):
    try:
        s = socket.create_connection((HOST, port), timeout=2)
        if tls_ctx:
            s = tls_ctx.wrap_socket(s, server_hostname="mail.clawos.test")
        s.settimeout(2)
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return data.startswith(prefix)
    except (OSError, ssl.SSLError):
        return False


def wait(d, seconds):
    p = ports(d)
    ctx = ctx_for(d)
    todo = [(p["imap"], None, b"* OK"), (p["imaps"], ctx, b"* OK"), (p["smtp"], None, b"220")]
    if "smtps" in p:
        todo.append((p["smtps"], ctx, b"220"))
    deadline = time.monotonic() + seconds
    while todo and time.monotonic() < deadline:
        for f in ("dovecot.pid", "smtpd.pid"):
            pid = open(os.path.join(d, f)).read().strip()
            if not os.path.exists("/proc/" + pid):
                print("check.py --wait: %s (pid %s) has exited" % (f, pid), file=sys.stderr)
                return False
        todo = [t for t in todo if not greets(*t)]
        if todo:
            time.sleep(0.01)
    return not todo


# --- helpers ----------------------------------------------------------------------------

def png_bytes(w=64, h=48):
    """A valid RGB PNG, stdlib only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes(((x * 4) & 255, (y * 5) & 255, (x ^ y) & 255))
                                         for x in range(w)) for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def imap_login(d, user, tls="starttls"):
    p = ports(d)
    if tls == "imaps":
        m = imaplib.IMAP4_SSL(HOST, p["imaps"], ssl_context=ctx_for(d), timeout=10)
    else:
        m = imaplib.IMAP4(HOST, p["imap"], timeout=10)
        m.starttls(ssl_context=ctx_for(d))
    m.login(user, USERS[user])
    return m


def select_inbox(m):
    typ, data = m.select("INBOX")
    assert typ == "OK", (typ, data)
    uv = int(m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
    un = int(m.untagged_responses.get("UIDNEXT", [b"0"])[-1])
    return uv, un


def idle_start(m):
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    assert line.startswith(b"+"), line
    return tag


def idle_wait_exists(m, timeout):
    """Read IDLE lines until '* N EXISTS'; return (N, seconds) or (None, seconds)."""
    t0 = time.monotonic()
    m.sock.settimeout(timeout)
    try:
        while True:
            line = m.readline()
            if not line:
                return None, time.monotonic() - t0
            mo = re.match(rb"\* (\d+) EXISTS", line)
            if mo:
                return int(mo.group(1)), time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return None, time.monotonic() - t0
    finally:
        m.sock.settimeout(10)


def idle_done(m, tag):
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag + b" "):
            return line


def uid_fetch(m, spec):
    """UID FETCH spec -> {uid: raw message bytes}."""
    typ, data = m.uid("FETCH", spec, "(UID BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    out = {}
    for item in data:
        if isinstance(item, tuple):
            mo = re.search(rb"UID (\d+)", item[0])
            out[int(mo.group(1))] = item[1]
    return out


def smtp_session(d, user=None, mech=None):
    s = smtplib.SMTP(HOST, ports(d)["smtp"], local_hostname="client.clawos.test", timeout=10)
    s.ehlo()
    s.starttls(context=ctx_for(d))
    s.ehlo()
    if user:
        s.user, s.password = user, USERS[user]
        if mech == "LOGIN":
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        else:
            s.auth("PLAIN", s.auth_plain)
    return s


def message(frm, to, subject, body, **headers):
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="clawos.test")
    msg["Date"] = email.utils.formatdate()
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


# --- the checks -------------------------------------------------------------------------

def check_tls_and_logins(d):
    p = ports(d)
    for name in ("mail.clawos.test", "localhost", "127.0.0.1"):
        try:
            s = ctx_for(d).wrap_socket(socket.create_connection((HOST, p["imaps"]), timeout=5),
                                       server_hostname=name)
            check("IMAPS cert verifies as %s (%s)" % (name, s.version()), True)
            s.close()
        except ssl.SSLError as e:
            check("IMAPS cert verifies as %s" % name, False, str(e))
    m = imaplib.IMAP4(HOST, p["imap"], timeout=10)
    caps = m.capabilities
    check("IMAP port offers STARTTLS before login", "STARTTLS" in caps, " ".join(caps))
    m.starttls(ssl_context=ctx_for(d))
    m.login("bot", USERS["bot"])
    typ, data = m.capability()
    check("IMAP after STARTTLS + LOGIN: IDLE, UIDPLUS, CONDSTORE", all(
        c in data[0].decode().split() for c in ("IDLE", "UIDPLUS", "CONDSTORE")), data[0].decode())
    m.logout()
    m = imaplib.IMAP4_SSL(HOST, p["imaps"], ssl_context=ctx_for(d), timeout=10)
    m.login("alice@clawos.test", USERS["alice"])
    check("IMAPS login as alice@clawos.test (domain stripped)", True)
    m.logout()
    try:
        m = imaplib.IMAP4_SSL(HOST, p["imaps"], ssl_context=ctx_for(d), timeout=10)
        m.login("bot", "wrong")
        check("IMAP wrong password refused", False)
    except imaplib.IMAP4.error as e:
        check("IMAP wrong password refused", "AUTHENTICATIONFAILED" in str(e), str(e))


def check_smtp_rules(d):
    p = ports(d)
    s = smtplib.SMTP(HOST, p["smtp"], timeout=10)
    s.ehlo()
    check("SMTP EHLO before STARTTLS: STARTTLS, no AUTH",
          s.has_extn("starttls") and not s.has_extn("auth"), str(sorted(s.esmtp_features)))
    code, _ = s.mail("alice@clawos.test")
    check("SMTP MAIL before STARTTLS refused (530)", code == 530, str(code))
    s.close()
    s = smtp_session(d)
    check("SMTP EHLO after STARTTLS: AUTH LOGIN PLAIN", s.esmtp_features.get("auth", "").split()
          == ["LOGIN", "PLAIN"], s.esmtp_features.get("auth", ""))
    code, _ = s.mail("alice@clawos.test")
    check("SMTP MAIL without AUTH refused (530)", code == 530, str(code))
    try:
        s.login("alice", "wrong")
        check("SMTP wrong password refused", False)
    except smtplib.SMTPAuthenticationError as e:
        check("SMTP wrong password refused (535)", e.smtp_code == 535, str(e.smtp_code))
    s.close()
    s = smtp_session(d, "alice", "PLAIN")
    check("SMTP AUTH PLAIN as alice", True)
    s.mail("alice@clawos.test")
    for rcpt in ("nobody@clawos.test", "bot@example.com"):
        code, text = s.rcpt(rcpt)
        check("SMTP RCPT %s refused (550)" % rcpt, code == 550, "%d %s" % (code, text.decode()))
    s.quit()
    if "smtps" in p:
        s = smtplib.SMTP_SSL(HOST, p["smtps"], context=ctx_for(d), timeout=10)
        s.login("bot@clawos.test", USERS["bot"])
        check("SMTPS (implicit TLS) AUTH as bot@clawos.test", True)
        s.quit()


def check_flow(d):
    """alice -> bot (attachment, IDLE, UID FETCH), bot -> alice reply. Returns state."""
    bot = imap_login(d, "bot", "starttls")
    uidvalidity, uidnext = select_inbox(bot)
    tag = idle_start(bot)

    img = png_bytes()
    msg = message("Alice <alice@clawos.test>", "Bot <bot@clawos.test>", "Hello bot",
                  "Hi! Here is a picture.\n")
    msg.add_attachment(img, maintype="image", subtype="png", filename="pic.png")
    s = smtp_session(d, "alice", "PLAIN")
    refused = s.send_message(msg)
    s.quit()
    t_sent = time.monotonic()
    check("alice -> bot accepted by SMTP", refused == {}, str(refused))

    n, secs = idle_wait_exists(bot, 10)
    lag = time.monotonic() - t_sent
    check("bot's IDLE gets EXISTS (%d ms after 250)" % (lag * 1000), n is not None and lag < 2,
          "%s after %.2fs" % (n, secs))
    line = idle_done(bot, tag)
    check("IDLE ends with DONE", b" OK" in line, line.decode().strip())

    got = uid_fetch(bot, "%d:*" % uidnext)
    check("UID FETCH %d:* gives one new message" % uidnext, list(got) == [uidnext], str(list(got)))
    raw = got.get(uidnext, b"")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    check("Message-ID kept", parsed["Message-ID"] == msg["Message-ID"], str(parsed["Message-ID"]))
    atts = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in parsed.iter_attachments()]
    check("attachment bytes identical (%d bytes PNG)" % len(img),
          atts == [("pic.png", "image/png", img)], str([(a[0], a[1], len(a[2])) for a in atts]))
    check("Received and Return-Path headers added", parsed["Received"] is not None
          and parsed["Return-Path"] == "<alice@clawos.test>",
          "Received=%r Return-Path=%r" % (parsed["Received"] is not None, parsed["Return-Path"]))
    typ, data = bot.uid("FETCH", str(uidnext), "(FLAGS)")
    check("BODY.PEEK left the message unseen", b"\\Seen" not in data[0], data[0].decode())

    # reply
    alice = imap_login(d, "alice", "imaps")
    _, alice_next = select_inbox(alice)
    reply = message("Bot <bot@clawos.test>", "Alice <alice@clawos.test>", "Re: Hello bot",
                    "Nice picture.\n", In_Reply_To=msg["Message-ID"], References=msg["Message-ID"])
    s = smtp_session(d, "bot", "LOGIN")
    check("SMTP AUTH LOGIN as bot", True)
    s.send_message(reply)
    s.quit()
    got = {}
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        alice.noop()
        got = {u: v for u, v in uid_fetch(alice, "%d:*" % alice_next).items() if u >= alice_next}
        if not got:
            time.sleep(0.05)
    r = email.message_from_bytes(next(iter(got.values()), b""), policy=email.policy.default)
    check("alice has the reply in INBOX", r["Message-ID"] == reply["Message-ID"], str(list(got)))
    check("reply threads: In-Reply-To and References",
          r["In-Reply-To"] == msg["Message-ID"] and r["References"] == msg["Message-ID"],
          "%r %r" % (r["In-Reply-To"], r["References"]))
    alice.logout()
    bot.logout()
    return uidvalidity, uidnext


def check_restart(d, uidvalidity, last_uid):
    p = ports(d)
    subprocess.run([os.path.join(HERE, "stop.sh"), d], check=True)
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(HERE, "start.sh"), d] + [str(p[k]) for k in
                         ("imap", "imaps", "smtp", "smtps") if k in p],
                         check=True, capture_output=True, text=True).stdout.strip()
    check("restart on the same DIR and ports (%d ms: %s)" % ((time.monotonic() - t0) * 1000, out),
          True)
    # mail that arrives while the bot is not connected
    msg = message("alice@clawos.test", "bot@clawos.test", "After restart", "Still there?\n")
    s = smtp_session(d, "alice", "PLAIN")
    s.send_message(msg)
    s.quit()
    bot = imap_login(d, "bot", "imaps")
    uv, un = select_inbox(bot)
    check("UIDVALIDITY unchanged after restart", uv == uidvalidity, "%d vs %d" % (uv, uidvalidity))
    old = uid_fetch(bot, str(last_uid))
    check("old message keeps UID %d" % last_uid, list(old) == [last_uid], str(list(old)))
    got = uid_fetch(bot, "%d:*" % (last_uid + 1))
    new = {u: v for u, v in got.items() if u > last_uid}
    ok = list(new) == [last_uid + 1] and email.message_from_bytes(new[last_uid + 1])[
        "Message-ID"] == msg["Message-ID"]
    check("catch-up: UID FETCH %d:* finds the new message as UID %d" % (last_uid + 1, last_uid + 1),
          ok, str(list(got)))
    # RFC 3501: "N:*" with N above the highest UID still returns the highest message.
    got = uid_fetch(bot, "%d:*" % (last_uid + 2))
    check("quirk: UID FETCH %d:* (past the end) returns UID %d, so filter UID > last"
          % (last_uid + 2, last_uid + 1), list(got) == [last_uid + 1], str(list(got)))
    bot.logout()


def main():
    if sys.argv[1] == "--wait":
        sys.exit(0 if wait(os.path.abspath(sys.argv[2]),
                           float(sys.argv[3]) if len(sys.argv) > 3 else 30) else 1)
    d = os.path.abspath(sys.argv[1])
    check_tls_and_logins(d)
    check_smtp_rules(d)
    uidvalidity, uid = check_flow(d)
    if "--no-restart" not in sys.argv:
        check_restart(d, uidvalidity, uid)
    failed = results.count(False)
    print("%d passed, %d failed" % (results.count(True), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
