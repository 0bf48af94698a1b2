#!/usr/bin/env python3
"""Submission server for the test mail system: aiosmtpd on loopback, delivering into Dovecot.

    VENV/bin/python smtpd.py DIR SMTP_PORT [SMTPS_PORT]

- SMTP_PORT: EHLO offers STARTTLS (DIR/tls.crt, DIR/tls.key). Every command except
  EHLO/HELO/NOOP/QUIT/STARTTLS needs STARTTLS first; AUTH (PLAIN, LOGIN) is offered only
  after it, and MAIL needs AUTH ("530 5.7.0 Authentication required").
- SMTPS_PORT (optional): implicit TLS from the first byte, AUTH offered right away.
- AUTH checks DIR/users (Dovecot passwd-file, "{PLAIN}" passwords), read on every AUTH.
  "bot" and "bot@clawos.test" are the same user, as in Dovecot.
- RCPT TO must be USER@clawos.test with USER in DIR/users, else "550 5.1.1".
- DATA: each recipient gets the message through dovecot-lda (Dovecot indexes it, UIDs
  stay consistent, IDLE sessions see it). 250 only after every delivery succeeded.
- The envelope sender is not checked against the logged-in user.
Logs to DIR/smtpd.log; SIGTERM stops it (start.sh writes DIR/smtpd.pid).
"""
import asyncio
import logging
import os
import signal
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

DOMAIN = "clawos.test"
LDA = "/usr/lib/dovecot/dovecot-lda"
log = logging.getLogger("smtpd")


def read_users(path):
    """user -> plaintext password, from a Dovecot passwd-file."""
    users = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            pw = rest.split(":", 1)[0]
            if pw.upper().startswith("{PLAIN}"):
                pw = pw[7:]
            elif pw.startswith("{"):
                pw = None  # another scheme: not supported here
            users[name.lower()] = pw
    return users


def local_user(name):
    """'Bot@clawos.test' -> 'bot'; 'bot' -> 'bot'; another domain -> None."""
    name = name.strip().lower()
    if "@" in name:
        name, _, domain = name.rpartition("@")
        if domain != DOMAIN:
            return None
    return name


class Handler:
    def __init__(self, d):
        self.dir = d
        self.users_file = os.path.join(d, "users")
        self.conf = os.path.join(d, "dovecot.conf")

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        user = local_user(login)
        ok = user is not None and read_users(self.users_file).get(user, None) == password \
            and password != ""
        log.info("AUTH %s %r from %s: %s", mechanism, login, session.peer, "ok" if ok else "failed")
        # handled=False: aiosmtpd then answers 535 itself (its default, handled=True, sends
        # nothing at all on failure and the client hangs).
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        user = local_user(address) if "@" in address else None
        if user is None or user not in read_users(self.users_file):
            log.info("RCPT %r rejected (unknown)", address)
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content  # bytes, CRLF line ends, dots unstuffed
        sender = envelope.mail_from or ""
        # Return-Path as a final-delivery MTA writes it (dovecot-lda adds none), and Received.
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        trace = ("Return-Path: <%s>\r\nReceived: from %s (%s) by mail.clawos.test"
                 " (clawos-test-smtpd) with ESMTPSA; %s\r\n"
                 % (sender, session.host_name, session.peer[0], now)).encode()
        for rcpt in envelope.rcpt_tos:
            user = local_user(rcpt)
            t0 = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                LDA, "-c", self.conf, "-d", user, "-f", sender, "-a", rcpt,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate(trace + data)
            ms = (time.monotonic() - t0) * 1000
            if proc.returncode != 0:
                log.error("LDA for %s exited %s after %.0f ms: %s", rcpt, proc.returncode, ms,
                          out.decode("utf-8", "replace").strip())
                # 75 = EX_TEMPFAIL
                if proc.returncode == 75:
                    return "451 4.3.0 Delivery to %s failed temporarily" % rcpt
                return "554 5.3.0 Delivery to %s failed" % rcpt
            log.info("delivered from=%r to=%r size=%d auth=%r in %.0f ms", sender, rcpt,
                     len(data), session.auth_data, ms)
        return "250 2.0.0 OK delivered"


def main():
    d = os.path.abspath(sys.argv[1])
    port = int(sys.argv[2])
    smtps_port = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    logging.basicConfig(filename=os.path.join(d, "smtpd.log"), level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd warns that auth_require_tls=False is unsafe: on SMTPS the link is TLS already.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    mail_log = logging.getLogger("mail.log")  # aiosmtpd's own logger: warnings only
    mail_log.setLevel(logging.WARNING)
    mail_log.addFilter(lambda r: "auth_require_tls == False" not in r.getMessage()
                       and "login_data is deprecated" not in r.getMessage())

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))
    handler = Handler(d)
    common = dict(hostname="mail.clawos.test", ident="clawos test smtpd", auth_required=True,
                  authenticator=handler.authenticator, enable_SMTPUTF8=True,
                  data_size_limit=64 * 1024 * 1024)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    servers = [loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, tls_context=ctx, require_starttls=True, auth_require_tls=True,
                     loop=loop, **common),
        "127.0.0.1", port, reuse_address=True))]
    if smtps_port:
        servers.append(loop.run_until_complete(loop.create_server(
            lambda: SMTP(handler, auth_require_tls=False, loop=loop, **common),
            "127.0.0.1", smtps_port, ssl=ctx, reuse_address=True)))
    log.info("listening on 127.0.0.1:%d (STARTTLS)%s", port,
             " and 127.0.0.1:%d (implicit TLS)" % smtps_port if smtps_port else "")
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        for s in servers:
            s.close()
        log.info("stopped")


if __name__ == "__main__":
    main()
