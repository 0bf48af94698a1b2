#!/usr/bin/env python3
"""Raw-socket check of the test IRC server (InspIRCd 3 + Anope 2.0), standard library only.

    python3 check.py PLAIN_PORT TLS_PORT [TLS_CRT]  # every check below, prints facts
                                                    # (with TLS_CRT: also verify the cert)
    python3 check.py --wait PLAIN_PORT [SECONDS]    # wait until SASL is offered (services linked)
    python3 check.py --register PLAIN_PORT USER PASS  # register a NickServ account (idempotent)

Checks: account registration through NickServ, SASL PLAIN on the plaintext and the TLS
listener (903), a wrong password (904), NickServ IDENTIFY, two clients in #room (channel
and private PRIVMSG), a 400-byte message, the longest line delivered, and a flood of
10 clients x 50 lines in bursts (nobody throttled or killed). Exit status 0 when all pass.
"""
import base64
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


class Client:
    def __init__(self, port, tls=False, timeout=10.0, cafile=None, server_name="irc.clawos.test"):
        raw = socket.create_connection((HOST, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context(cafile=cafile)
            if not cafile:  # no verification
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            raw = ctx.wrap_socket(raw, server_hostname=server_name)
        self.sock = raw
        self.buf = b""
        self.lines = []  # every line received, for diagnosis

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def read_line(self, deadline):
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError):
                return None
            if not data:
                raise ConnectionError("closed by server; last lines: %r" % self.lines[-5:])
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        if text.startswith("PING "):
            self.send("PONG " + text[5:])
        return text

    def expect(self, pred, timeout=10.0, what="line"):
        """Read until pred(parsed line) is true; return that line. Raise on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.read_line(deadline)
            if text is None:
                raise TimeoutError("no %s within %.1fs; last lines: %r" % (what, timeout, self.lines[-8:]))
            msg = parse(text)
            if msg and pred(msg):
                return msg

    def register(self, nick, timeout=10.0):
        self.send("NICK " + nick)
        self.send("USER %s 0 * :clawos test" % nick[:10])
        return self.expect(lambda m: m["cmd"] in ("001", "433", "432"), timeout, "001 welcome")

    def close(self):
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self.sock.close()


def parse(text):
    """':prefix CMD a b :trailing' -> {'prefix', 'cmd', 'params'} (IRCv3 tags dropped)."""
    if text.startswith("@"):
        text = text.split(" ", 1)[1] if " " in text else ""
    prefix = ""
    if text.startswith(":"):
        prefix, _, text = text[1:].partition(" ")
    trailing = None
    if " :" in text:
        text, trailing = text.split(" :", 1)
    parts = text.split()
    if not parts:
        return None
    params = parts[1:] + ([trailing] if trailing is not None else [])
    return {"prefix": prefix, "cmd": parts[0].upper(), "params": params}


def nickserv_notice(m):
    return m["cmd"] == "NOTICE" and m["prefix"].lower().startswith("nickserv!")


def cap_ls(c):
    """CAP LS 302 -> dict of capability -> value."""
    c.send("CAP LS 302")
    caps = {}
    while True:
        m = c.expect(lambda m: m["cmd"] == "CAP" and len(m["params"]) >= 3 and m["params"][1] == "LS", what="CAP LS")
        more = len(m["params"]) >= 4 and m["params"][2] == "*"
        for cap in m["params"][-1].split():
            k, _, v = cap.partition("=")
            caps[k] = v
        if not more:
            return caps


def wait_ready(port, seconds=30.0):
    """Wait until the port accepts and SASL is offered (the services are linked). Return seconds waited."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds:
        try:
            c = Client(port, timeout=2)
            caps = cap_ls(c)
            c.close()
            if "sasl" in caps:
                return time.monotonic() - t0
            last = "connected, but no sasl capability yet (services not linked)"
        except (OSError, TimeoutError, ConnectionError) as e:
            last = repr(e)
        time.sleep(0.05)
    raise TimeoutError("not ready after %.0fs: %s" % (seconds, last))


def ensure_account(port, user, password):
    """Register USER with NickServ (REGISTER password). Return 'registered' or 'already registered'."""
    c = Client(port)
    m = c.register(user)
    if m["cmd"] != "001":
        raise RuntimeError("nick %s refused: %r" % (user, m))
    c.send("PRIVMSG NickServ :REGISTER %s" % password)
    m = c.expect(lambda m: nickserv_notice(m) and "registered" in m["params"][-1], what="NickServ REGISTER reply")
    c.close()
    return "already registered" if "already" in m["params"][-1] else "registered"


def sasl_plain(port, tls, user, password, nick):
    """SASL PLAIN before registration. Return (numeric, client) — 903 success, 904 failure."""
    c = Client(port, tls=tls)
    caps = cap_ls(c)
    if "sasl" not in caps:
        raise RuntimeError("no sasl capability: %r" % caps)
    c.send("CAP REQ :sasl")
    m = c.expect(lambda m: m["cmd"] == "CAP" and m["params"][1] in ("ACK", "NAK"), what="CAP ACK")
    if m["params"][1] != "ACK":
        raise RuntimeError("CAP REQ sasl refused: %r" % m)
    c.send("AUTHENTICATE PLAIN")
    c.expect(lambda m: m["cmd"] == "AUTHENTICATE" and m["params"] == ["+"], what="AUTHENTICATE +")
    blob = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    c.send("AUTHENTICATE " + blob)
    m = c.expect(lambda m: m["cmd"] in ("903", "904", "905", "906", "907"), what="903/904")
    c.send("CAP END")
    return m["cmd"], caps, c


def check_sasl(port, tls, user, password):
    code, caps, c = sasl_plain(port, tls, user, password, user)
    lines = list(c.lines)
    if code != "903":
        raise RuntimeError("SASL PLAIN failed: %s %r" % (code, lines[-4:]))
    logged = [l for l in lines if parse(l)["cmd"] == "900"]
    m = c.register(user + ("_t" if tls else "_p"))
    c.close()
    return caps.get("sasl", ""), logged[0] if logged else "(no 900)"


def check_wrong_password(port, user):
    code, _, c = sasl_plain(port, False, user, "wrong-password", user)
    c.close()
    if code != "904":
        raise RuntimeError("expected 904, got %s" % code)
    return code


def check_tls_verified(port, cafile):
    """TLS with tls.crt as the only trusted root, by name and by IP address."""
    out = []
    for name in ("irc.clawos.test", "127.0.0.1"):
        c = Client(port, tls=True, cafile=cafile, server_name=name)
        out.append("%s ok (%s)" % (name, c.sock.version()))
        c.close()
    return ", ".join(out)


def check_identify(port, user, password):
    c = Client(port)
    c.register(user + "_id")
    c.send("PRIVMSG NickServ :IDENTIFY %s %s" % (user, password))
    m = c.expect(lambda m: nickserv_notice(m) or m["cmd"] == "900", what="IDENTIFY reply")
    # Anope answers with 900 RPL_LOGGEDIN and a NickServ notice "Password accepted..."
    got = [l for l in c.lines if " 900 " in l or "accepted" in l.lower()]
    c.close()
    if not got:
        raise RuntimeError("IDENTIFY failed: %r" % c.lines[-4:])
    return got


def join(c, chan):
    c.send("JOIN " + chan)
    c.expect(lambda m: m["cmd"] == "366", what="end of NAMES for " + chan)


def check_room(port):
    a, b = Client(port), Client(port)
    a.register("alice_r")
    b.register("bob_r")
    join(a, "#room")
    join(b, "#room")
    a.expect(lambda m: m["cmd"] == "JOIN" and m["prefix"].startswith("bob_r!"), what="bob's JOIN")
    facts = {}
    a.send("PRIVMSG #room :hello room")
    b.expect(lambda m: m["cmd"] == "PRIVMSG" and m["params"] == ["#room", "hello room"], what="channel message")
    a.send("PRIVMSG bob_r :hello bob")
    b.expect(lambda m: m["cmd"] == "PRIVMSG" and m["params"] == ["bob_r", "hello bob"], what="private message")
    text = ("0123456789" * 40)[:400]
    a.send("PRIVMSG #room :" + text)
    b.expect(lambda m: m["cmd"] == "PRIVMSG" and m["params"] == ["#room", text], what="400-byte message")
    facts["400-byte channel message"] = "delivered intact"
    # Longest text delivered intact: the sender's line is "PRIVMSG #room :" + text (+ CRLF).
    best = 0
    for n in range(400, 520):
        t = "x" * (n - 1) + "E"
        a.send("PRIVMSG #room :" + t)
        m = b.expect(lambda m: m["cmd"] == "PRIVMSG" and m["params"][0] == "#room", what="probe %d" % n)
        if m["params"][1] == t:
            best = n
            best_raw = b.lines[-1]
        else:
            facts["first truncated text"] = "%d bytes sent, %d arrived" % (n, len(m["params"][1]))
            break
    facts["longest text delivered intact"] = "%d bytes (sent line 'PRIVMSG #room :'+text = %d bytes + CRLF)" % (
        best, len("PRIVMSG #room :") + best)
    facts["relayed line at that length"] = "%d bytes + CRLF = %d (%r...)" % (
        len(best_raw.encode()), len(best_raw.encode()) + 2, best_raw[:40])
    # A client line longer than 512 bytes: what reaches the other side?
    a.send("PRIVMSG bob_r :" + "y" * 600)
    m = b.expect(lambda m: m["cmd"] == "PRIVMSG" and m["params"][0] == "bob_r", what="600-byte probe")
    facts["600-byte private text sent"] = "%d bytes arrived" % len(m["params"][1])
    isupport = " ".join(l for l in a.lines if parse(l)["cmd"] == "005")
    for key in ("LINELEN", "NICKLEN", "CHANNELLEN", "TOPICLEN", "NETWORK", "CASEMAPPING"):
        for tok in isupport.split():
            if tok.startswith(key + "="):
                facts["ISUPPORT " + key] = tok.split("=", 1)[1]
    a.close()
    b.close()
    return facts


def check_flood(port, clients=10, lines=50, bursts=2):
    """`clients` clients in #flood; each sends `lines` lines per burst as fast as it can, one
    burst per second. A listener must get all of them; no sender may be disconnected."""
    # Registration completes on InspIRCd's once-a-second tick: register all at once.
    listener = Client(port)
    senders = [Client(port) for _ in range(clients)]
    for i, c in enumerate([listener] + senders):
        c.send("NICK flood%d" % i)
        c.send("USER flood%d 0 * :clawos test" % i)
    for i, c in enumerate([listener] + senders):
        m = c.expect(lambda m: m["cmd"] in ("001", "433", "432", "ERROR"), what="001 welcome")
        if m["cmd"] != "001":
            raise RuntimeError("client %d refused: %r" % (i, m))
        join(c, "#flood")
    t0 = time.monotonic()
    for burst in range(bursts):
        tb = time.monotonic()
        for i, c in enumerate(senders):
            c.sock.sendall(b"".join(
                ("PRIVMSG #flood :burst %d client %d line %d\r\n" % (burst, i, n)).encode() for n in range(lines)))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tb)))
    want = clients * lines * bursts
    got = 0
    deadline = time.monotonic() + 15
    while got < want:
        text = listener.read_line(deadline)
        if text is None:
            break
        m = parse(text)
        if m and m["cmd"] == "PRIVMSG" and m["params"][0] == "#flood":
            got += 1
    took = time.monotonic() - t0
    # Every sender must still be connected and answer a PING.
    alive = 0
    for c in senders:
        c.send("PING :alive")
        try:
            c.expect(lambda m: m["cmd"] == "PONG", timeout=5, what="PONG")
            alive += 1
        except (TimeoutError, ConnectionError):
            pass
        c.close()
    listener.close()
    if got != want or alive != clients:
        raise RuntimeError("flood: %d/%d lines delivered, %d/%d senders alive" % (got, want, alive, clients))
    return "%d clients x %d lines x %d bursts: %d/%d delivered in %.2fs, all senders alive" % (
        clients, lines, bursts, got, want, took)


def main(argv):
    if len(argv) >= 2 and argv[0] == "--wait":
        took = wait_ready(int(argv[1]), float(argv[2]) if len(argv) > 2 else 30.0)
        print("ready after %.0f ms" % (took * 1000))
        return 0
    if len(argv) == 4 and argv[0] == "--register":
        print(ensure_account(int(argv[1]), argv[2], argv[3]))
        return 0
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    plain, tls = int(argv[0]), int(argv[1])
    cafile = argv[2] if len(argv) == 3 else None
    user, password = "clawtest", "clawtest-pass"
    failures = passed = 0

    def step(name, fn, *args):
        nonlocal failures, passed
        t0 = time.monotonic()
        try:
            result = fn(*args)
            passed += 1
            print("PASS %-28s %s (%.0f ms)" % (name, result, (time.monotonic() - t0) * 1000))
        except Exception as e:  # report and go on
            failures += 1
            print("FAIL %-28s %r" % (name, e))

    step("ready (sasl offered)", lambda: "after %.0f ms" % (wait_ready(plain, 10) * 1000))
    step("register account", ensure_account, plain, user, password)
    step("register again", ensure_account, plain, user, password)
    step("SASL PLAIN plaintext", check_sasl, plain, False, user, password)
    step("SASL PLAIN TLS", check_sasl, tls, True, user, password)
    step("SASL wrong password -> 904", check_wrong_password, plain, user)
    if cafile:
        step("TLS cert verified", check_tls_verified, tls, cafile)
    step("NickServ IDENTIFY", check_identify, plain, user, password)
    step("#room, private, 400 bytes", check_room, plain)
    step("flood 10 clients", check_flood, plain)
    print("%d passed, %d failed" % (passed, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
