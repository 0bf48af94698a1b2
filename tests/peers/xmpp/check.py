#!/usr/bin/env python3
"""Raw-socket check of the test XMPP server (Prosody 0.12), standard library only.

    python3 check.py C2S_PORT HTTP_PORT DIR [--plain]  # every check below (restarts the server!)
    python3 check.py --wait C2S_PORT [SECONDS] [--plain]  # wait until ready@clawos.test can log in
    python3 check.py --shapes ...                     # same as the full check, also prints stanzas

Checks: STARTTLS (verified against DIR/tls.crt as the only root) + SASL PLAIN + bind for
alice and bot; no auth before TLS; a 1:1 chat message alice -> bot (bare JID); the
"connected but no initial presence" case; a MUC room room@conference.clawos.test with both
(groupchat delivered, own echo); disco#info of upload.clawos.test (urn:xmpp:http:upload:0,
max-file-size); an upload slot, HTTP PUT then GET; an oversize slot request refused; then
bot goes offline, alice sends 1:1 + groupchat, the server is stopped and started again
(stop.sh/start.sh DIR), and bot gets the message from MAM (before presence), then as an
offline message (after presence), and the groupchat from the room's MAM.
Exit status 0 when all pass. With --plain (server started with XMPP_PLAINTEXT=1) logins
use no TLS at all.
"""
import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

HOST = "127.0.0.1"
DOMAIN = "clawos.test"
MUC = "conference.clawos.test"
UPLOAD = "upload.clawos.test"
NS_XML = "http://www.w3.org/XML/1998/namespace"
SHAPES = "--shapes" in sys.argv


def split(tag):
    if tag.startswith("{"):
        ns, local = tag[1:].split("}", 1)
        return ns, local
    return None, tag


def to_str(e, parent_ns=None):
    """Serialize an element with plain xmlns= declarations (no ns0: prefixes)."""
    ns, local = split(e.tag)
    out = "<" + local
    if ns != parent_ns:
        out += " xmlns=" + quoteattr(ns or "")
    for k, v in e.attrib.items():
        kns, kl = split(k)
        out += " %s=%s" % ("xml:" + kl if kns == NS_XML else kl, quoteattr(v))
    if len(e) == 0 and not e.text:
        return out + "/>"
    out += ">" + escape(e.text or "")
    for c in e:
        out += to_str(c, ns) + escape(c.tail or "")
    return out + "</%s>" % local


def q(ns, local):
    return "{%s}%s" % (ns, local)


class Client:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.pending = []  # stanzas read but not yet matched by expect()
        self.log = []      # every stanza received, for diagnosis
        self.closed = False
        self.n = 0
        self.jid = None
        self.restart()

    # --- stream plumbing ---
    def restart(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.features = None
        self.raw(("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>") % DOMAIN)
        self.features = self.expect(lambda e: e.tag == q("http://etherx.jabber.org/streams", "features"),
                                    what="stream features")

    def raw(self, text):
        self.sock.sendall(text.encode())

    def _pump(self, deadline):
        """Read once from the socket; append complete top-level stanzas to self.pending."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        if not data:
            self.closed = True
            raise ConnectionError("stream closed by server; last: %r" % [to_str(e) for e in self.log[-3:]])
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.root.remove(el)
                    self.pending.append(el)
                    self.log.append(el)
                elif self.depth == 0:
                    self.closed = True
        return True

    def expect(self, pred, timeout=10.0, what="stanza"):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.pending):
                if pred(e):
                    return self.pending.pop(i)
            if not self._pump(deadline) and time.monotonic() >= deadline:
                raise TimeoutError("no %s within %.1fs; unmatched: %r" % (
                    what, timeout, [to_str(e) for e in self.pending[-5:]]))

    def quiet(self, pred, timeout):
        """True if no stanza matching pred arrives within timeout."""
        try:
            self.expect(pred, timeout)
            return False
        except TimeoutError:
            return True

    def send(self, text):
        self.raw(text)

    def nid(self):
        self.n += 1
        return "c%d" % self.n

    def iq(self, typ, to, payload, timeout=10.0):
        i = self.nid()
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (typ, i, " to='%s'" % to if to else "", payload))
        return self.expect(lambda e: e.tag == q("jabber:client", "iq") and e.get("id") == i
                           and e.get("type") in ("result", "error"), timeout, "iq reply " + i)

    # --- login ---
    def mechanisms(self):
        m = self.features.find(q("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"))
        return [x.text for x in m] if m is not None else []

    def starttls(self, cafile=None):
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        r = self.expect(lambda e: split(e.tag)[0] == "urn:ietf:params:xml:ns:xmpp-tls", what="proceed")
        if split(r.tag)[1] != "proceed":
            raise RuntimeError("STARTTLS refused: " + to_str(r))
        ctx = ssl.create_default_context(cafile=cafile)
        if not cafile:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.tls_version = self.sock.version()
        self.restart()

    def auth_plain(self, user, password):
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token)
        r = self.expect(lambda e: split(e.tag)[0] == "urn:ietf:params:xml:ns:xmpp-sasl", what="SASL result")
        return r

    def login(self, user, password, resource="r", tls=True, cafile=None, presence=True):
        if tls:
            self.starttls(cafile)
        r = self.auth_plain(user, password)
        if split(r.tag)[1] != "success":
            raise PermissionError("SASL failed: " + to_str(r))
        self.restart()
        r = self.iq("set", None, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind>"
                    % resource)
        self.jid = r.find(".//" + q("urn:ietf:params:xml:ns:xmpp-bind", "jid")).text
        if presence:
            self.send("<presence/>")
        return self

    def close(self):
        try:
            if not self.closed:
                self.raw("</stream:stream>")
                try:
                    deadline = time.monotonic() + 2
                    while not self.closed and self._pump(deadline):
                        pass
                except (ConnectionError, OSError):
                    pass
        except OSError:
            pass
        self.sock.close()


def is_msg(body=None, typ=None, frm=None):
    def pred(e):
        if e.tag != q("jabber:client", "message"):
            return False
        if typ and e.get("type") != typ:
            return False
        if frm and not (e.get("from") or "").startswith(frm):
            return False
        b = e.find(q("jabber:client", "body"))
        return body is None or (b is not None and b.text == body)
    return pred


def show(label, e):
    if SHAPES:
        print("    [%s] %s" % (label, to_str(e)))


# ---------------------------------------------------------------- --wait
def wait_ready(port, seconds, plain):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds:
        try:
            c = Client(port, timeout=5)
            c.login("ready", "ready-pass", "probe", tls=not plain, presence=False)
            c.close()
            print("ready after %d ms (login as ready@%s)" % ((time.monotonic() - t0) * 1000, DOMAIN))
            return 0
        except (OSError, ConnectionError, PermissionError, TimeoutError, ET.ParseError) as e:
            last = e
            time.sleep(0.02)
    print("not ready after %ss: %r" % (seconds, last), file=sys.stderr)
    return 1


# ---------------------------------------------------------------- full check
class Runner:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, fn):
        t = time.monotonic()
        try:
            info = fn()
            self.passed += 1
            print("PASS %-34s %s (%d ms)" % (name, info or "", (time.monotonic() - t) * 1000))
        except Exception as e:  # noqa: BLE001 - report and continue
            self.failed += 1
            print("FAIL %-34s %s: %s" % (name, type(e).__name__, e))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    plain = "--plain" in sys.argv
    if "--wait" in sys.argv:
        return wait_ready(int(args[0]), float(args[1]) if len(args) > 1 else 30, plain)
    c2s, http_port, d = int(args[0]), int(args[1]), os.path.realpath(args[2])
    here = os.path.dirname(os.path.abspath(__file__))
    cafile = os.path.join(d, "tls.crt")
    tls = not plain
    R = Runner()
    nonce = uuid.uuid4().hex[:8]
    st = {}

    for u in ("alice", "bot", "lurker"):
        subprocess.run([os.path.join(here, "register.sh"), d, u, u + "-pass"], check=True,
                       stdout=subprocess.DEVNULL)

    def before_tls():
        c = Client(c2s)
        feats = [split(x.tag)[1] for x in c.features]
        req = c.features.find(q("urn:ietf:params:xml:ns:xmpp-tls", "starttls"))
        required = req is not None and req.find(q("urn:ietf:params:xml:ns:xmpp-tls", "required")) is not None
        mechs = c.mechanisms()
        r = c.auth_plain("alice", "alice-pass")
        if split(r.tag)[1] == "success":
            c.restart()  # the server expects a stream restart after <success/>
        c.close()
        assert plain == (split(r.tag)[1] == "success"), to_str(r)
        return "features %s, starttls required=%s, mechanisms before TLS %s, PLAIN without TLS -> %s" % (
            feats, required, mechs, to_str(r))
    R.check("features before STARTTLS", before_tls)

    def login_both():
        c = Client(c2s)
        if tls:
            c.starttls(cafile)  # verifies the cert chain + name clawos.test against tls.crt
        st["mechs_tls"] = c.mechanisms()
        r = c.auth_plain("alice", "alice-pass")
        assert split(r.tag)[1] == "success", to_str(r)
        c.restart()
        r = c.iq("set", None, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a</resource></bind>")
        c.jid = r.find(".//" + q("urn:ietf:params:xml:ns:xmpp-bind", "jid")).text
        c.send("<presence/>")
        st["alice"] = c
        st["bot"] = Client(c2s).login("bot", "bot-pass", "b", tls=tls, cafile=cafile)
        return "%s + %s, %s, mechanisms after TLS %s" % (
            c.jid, st["bot"].jid, getattr(c, "tls_version", "no TLS"), st["mechs_tls"])
    R.check("STARTTLS + SASL PLAIN + bind", login_both)

    def wrong_password():
        c = Client(c2s)
        if tls:
            c.starttls()
        r = c.auth_plain("alice", "nope")
        c.close()
        assert split(r.tag)[1] == "failure", to_str(r)
        return to_str(r)
    R.check("wrong password refused", wrong_password)

    def chat():
        a, b = st["alice"], st["bot"]
        body = "hello bot " + nonce
        a.send("<message type='chat' to='bot@%s' id='m1'><body>%s</body></message>" % (DOMAIN, body))
        m = b.expect(is_msg(body, "chat"), what="chat message")
        show("chat as received", m)
        return "from=%s stanza-id=%s" % (m.get("from"), m.find(q("urn:xmpp:sid:0", "stanza-id")) is not None)
    R.check("1:1 message alice -> bot", chat)

    def no_presence():
        # A session that never sent initial presence is not "available": a message to the
        # BARE JID is not delivered to it (it goes to offline storage), a FULL JID one is.
        a = st["alice"]
        c = Client(c2s).login("lurker", "lurker-pass", "np", tls=tls, cafile=cafile, presence=False)
        a.send("<message type='chat' to='lurker@%s'><body>bare %s</body></message>" % (DOMAIN, nonce))
        a.send("<message type='chat' to='%s'><body>full %s</body></message>" % (c.jid, nonce))
        c.expect(is_msg("full " + nonce), what="message to full JID")
        bare_live = not c.quiet(is_msg("bare " + nonce), 0.5)
        c.send("<presence/>")
        m = c.expect(is_msg("bare " + nonce), 3, "bare-JID message after presence")
        delayed = m.find(q("urn:xmpp:delay", "delay")) is not None
        c.close()
        assert not bare_live
        return "full JID: delivered; bare JID: held until <presence/>, then delivered (delay=%s)" % delayed
    R.check("session without presence", no_presence)

    room = "room@" + MUC

    def muc():
        a, b = st["alice"], st["bot"]
        b.send("<presence to='%s/bot'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>"
               "</presence>" % room)
        p = b.expect(lambda e: e.tag == q("jabber:client", "presence") and e.get("from") == room + "/bot",
                     what="bot self-presence")
        show("bot self-presence in room", p)
        codes = sorted(s.get("code") for s in p.iter(q("http://jabber.org/protocol/muc#user", "status")))
        a.send("<presence to='%s/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>" % room)
        a.expect(lambda e: e.tag == q("jabber:client", "presence") and e.get("from") == room + "/alice",
                 what="alice self-presence")
        body = "hello room " + nonce
        a.send("<message type='groupchat' to='%s' id='g1'><body>%s</body></message>" % (room, body))
        m = b.expect(is_msg(body, "groupchat"), what="groupchat at bot")
        show("groupchat as received", m)
        echo = a.expect(is_msg(body, "groupchat"), what="own echo at alice")
        return "bot self-presence status codes %s; from=%s; sender gets echo id=%s" % (
            codes, m.get("from"), echo.get("id"))
    R.check("MUC room, groupchat", muc)

    def disco():
        r = st["alice"].iq("get", UPLOAD, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        show("disco#info upload", r)
        feats = [f.get("var") for f in r.iter(q("http://jabber.org/protocol/disco#info", "feature"))]
        assert "urn:xmpp:http:upload:0" in feats, feats
        mfs = [f.find(q("jabber:x:data", "value")).text for f in r.iter(q("jabber:x:data", "field"))
               if f.get("var") == "max-file-size"]
        st["max"] = int(mfs[0])
        return "features %s, max-file-size=%s" % (feats, mfs)
    R.check("disco#info upload component", disco)

    def upload():
        data = ("clawos upload test %s\n" % nonce).encode() * 100
        r = st["alice"].iq("get", UPLOAD, "<request xmlns='urn:xmpp:http:upload:0' filename='t %s.txt' "
                           "size='%d' content-type='text/plain'/>" % (nonce, len(data)))
        show("upload slot", r)
        assert r.get("type") == "result", to_str(r)
        slot = r.find(q("urn:xmpp:http:upload:0", "slot"))
        put = slot.find(q("urn:xmpp:http:upload:0", "put"))
        get = slot.find(q("urn:xmpp:http:upload:0", "get")).get("url")
        hdrs = {h.get("name"): h.text for h in put.findall(q("urn:xmpp:http:upload:0", "header"))}
        hdrs.update({"Content-Type": "text/plain", "Content-Length": str(len(data))})
        u = put.get("url")
        assert u.startswith("http://127.0.0.1:%d/" % http_port), u
        conn = http.client.HTTPConnection(HOST, http_port, timeout=10)
        conn.request("PUT", u.split(str(http_port), 1)[1], body=data, headers=hdrs)
        pr = conn.getresponse(); pr.read()
        assert pr.status in (200, 201), pr.status
        conn.request("GET", get.split(str(http_port), 1)[1])
        gr = conn.getresponse(); body = gr.read()
        assert gr.status == 200 and body == data, (gr.status, len(body))
        ctype = gr.getheader("Content-Type")
        # PUT again with the same slot must fail (slot is single-use)
        conn.request("PUT", u.split(str(http_port), 1)[1], body=data, headers=hdrs)
        again = conn.getresponse(); again.read()
        conn.close()
        return "PUT %d, GET %d (%d bytes, Content-Type %s), PUT header names %s, reused slot PUT -> %d" % (
            pr.status, gr.status, len(body), ctype, sorted(hdrs.keys() - {"Content-Type", "Content-Length"}),
            again.status)
    R.check("upload slot + HTTP PUT/GET", upload)

    def too_big():
        r = st["alice"].iq("get", UPLOAD, "<request xmlns='urn:xmpp:http:upload:0' filename='big.bin' "
                           "size='%d' content-type='application/octet-stream'/>" % (st["max"] + 1))
        show("oversize slot", r)
        assert r.get("type") == "error", to_str(r)
        return "error %s" % [split(x.tag)[1] for x in r.find(q("jabber:client", "error"))]
    R.check("oversize slot refused", too_big)

    def offline_and_restart():
        a, b = st["alice"], st["bot"]
        b.close()
        body = "while you were out " + nonce
        gbody = "room while bot away " + nonce
        a.send("<message type='chat' to='bot@%s' id='o1'><body>%s</body></message>" % (DOMAIN, body))
        a.send("<message type='groupchat' to='%s' id='o2'><body>%s</body></message>" % (room, gbody))
        a.expect(is_msg(gbody, "groupchat"), what="echo of groupchat")
        a.iq("get", DOMAIN, "<ping xmlns='urn:xmpp:ping'/>")  # server has processed the above
        a.close()
        t = time.monotonic()
        subprocess.run([os.path.join(here, "stop.sh"), d], check=True)
        t_stop = time.monotonic() - t
        t = time.monotonic()
        env = dict(os.environ, XMPP_PLAINTEXT="1" if plain else "0")
        subprocess.run([os.path.join(here, "start.sh"), d, str(c2s), str(http_port)], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        t_start = time.monotonic() - t
        # Session 1: MAM query first, then presence. mod_mam then suppresses the offline
        # flood for this session (and leaves the offline store untouched).
        b = Client(c2s).login("bot", "bot-pass", "b2", tls=tls, cafile=cafile, presence=False)
        r = b.iq("set", None, "<query xmlns='urn:xmpp:mam:2' queryid='q1'><x xmlns='jabber:x:data' type='submit'>"
                 "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
                 "<field var='with'><value>alice@%s</value></field></x>"
                 "<set xmlns='http://jabber.org/protocol/rsm'><before/><max>10</max></set></query>" % DOMAIN)
        show("MAM fin", r)
        results = []
        while True:
            try:
                m = b.expect(lambda e: e.find(q("urn:xmpp:mam:2", "result")) is not None, 0.05)
            except TimeoutError:
                break
            results.append(m)
        bodies = [x.text for m in results for x in m.iter(q("jabber:client", "body"))]
        if results:
            show("MAM result", results[-1])
        mam_ok = body in bodies
        b.send("<presence/>")
        flood_after_mam = not b.quiet(is_msg(body, "chat"), 1.0)
        b.close()
        # Session 2: presence without a MAM query -> the stored offline message arrives.
        b = Client(c2s).login("bot", "bot-pass", "b3", tls=tls, cafile=cafile)
        st["bot"] = b
        off = b.expect(is_msg(body, "chat"), 5, "offline message")
        show("offline message", off)
        r2 = b.iq("set", room, "<query xmlns='urn:xmpp:mam:2' queryid='q2'>"
                  "<set xmlns='http://jabber.org/protocol/rsm'><before/><max>10</max></set></query>")
        groom = []
        while True:
            try:
                groom.append(b.expect(lambda e: e.find(q("urn:xmpp:mam:2", "result")) is not None, 0.05))
            except TimeoutError:
                break
        gb = [x.text for m in groom for x in m.iter(q("jabber:client", "body"))]
        if groom:
            show("MUC MAM result", groom[-1])
        assert mam_ok, bodies
        assert gbody in gb, (to_str(r2), gb)
        delay = off.find(q("urn:xmpp:delay", "delay"))
        b.close()
        assert not flood_after_mam
        return ("stop %.0f ms, start %.0f ms; MAM: %d result(s), has it=%s; offline flood after MAM "
                "query: %s; next session without MAM: offline delivered, delay stamp=%s; room MAM has the "
                "groupchat=%s" % (t_stop * 1000, t_start * 1000, len(results), mam_ok, flood_after_mam,
                    delay.get("stamp") if delay is not None else None, gbody in gb))
    R.check("offline + restart: MAM + offline", offline_and_restart)

    print("%d passed, %d failed" % (R.passed, R.failed))
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
