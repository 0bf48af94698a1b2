#!/usr/bin/env python3
"""Client-API check of the test Matrix homeserver (Synapse), standard library only (urllib).

    python3 check.py DIR PORT [--no-restart] [-v]  # every check below; "N passed, M failed"
    python3 check.py --wait PORT [SECONDS] [PID]   # wait until /_matrix/client/versions answers
    python3 check.py --register PORT USER PASS [admin]  # shared-secret registration (idempotent)

Checks: register bot and alice (POST /_synapse/admin/v1/register, nonce + HMAC), password
login, whoami, alice creates a room and invites bot, bot sees the invite in /sync
(rooms.invite) and joins, alice sends m.text, bot's /sync (incremental and long-poll)
sees it, media upload + authenticated/legacy download + thumbnail, an m.image event, an
edit (m.replace), typing, a read receipt, and a gap of 25 messages (limited /sync,
filled by /messages; or a bigger timeline filter). Then (unless --no-restart) stop.sh DIR,
start.sh DIR PORT, and bot's /sync token from before the restart still works: it gets
the message sent just before the stop and one sent after the restart.
-v prints the JSON of the events seen. Exit status 0 when all pass.
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HOST = "127.0.0.1"
SERVER = "clawos.test"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SECRET = "clawos-test-registration-secret"


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body[:300]))
        self.status = status
        self.body = body


def call(port, method, path, body=None, token=None, raw=None, ctype=None, timeout=30.0):
    """One request. Returns (status, headers, parsed JSON or bytes). Raises HttpError >= 400."""
    url = "http://%s:%d%s" % (HOST, port, path)
    headers = {}
    data = None
    if raw is not None:
        data = raw
        headers["Content-Type"] = ctype or "application/octet-stream"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload = r.read()
            status, hdrs = r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raise HttpError(e.code, e.read().decode("utf-8", "replace")) from None
    if hdrs.get("Content-Type", "").startswith("application/json"):
        return status, hdrs, json.loads(payload)
    return status, hdrs, payload


def q(s):
    return urllib.parse.quote(s, safe="")


# ---------------------------------------------------------------- --wait / --register

def alive(pid):
    """A zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except OSError:
        return False


def wait_ready(port, seconds=60.0, pid=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            _, _, v = call(port, "GET", "/_matrix/client/versions", timeout=2)
            print("ready after %d ms (spec versions up to %s)" % ((time.monotonic() - t0) * 1000, v["versions"][-1]))
            return True
        except (OSError, HttpError, ValueError):
            pass
        if pid and not alive(pid):
            print("process %d exited before it was ready" % pid, file=sys.stderr)
            return False
        time.sleep(0.05)
    print("not ready after %.0f s" % seconds, file=sys.stderr)
    return False


def register(port, user, password, admin=False, secret=DEFAULT_SECRET):
    """POST /_synapse/admin/v1/register with a fresh nonce. Returns the response, or None
    when the user already exists (400 M_USER_IN_USE)."""
    _, _, n = call(port, "GET", "/_synapse/admin/v1/register")
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([n["nonce"].encode(), user.encode(), password.encode(),
                             b"admin" if admin else b"notadmin"]))
    try:
        _, _, r = call(port, "POST", "/_synapse/admin/v1/register", {
            "nonce": n["nonce"], "username": user, "password": password,
            "admin": admin, "mac": mac.hexdigest()})
        return r
    except HttpError as e:
        if e.status == 400 and "M_USER_IN_USE" in e.body:
            return None
        raise


# ---------------------------------------------------------------- the full check

class Checker:
    def __init__(self, verbose):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def check(self, name, fn):
        t0 = time.monotonic()
        try:
            info = fn()
            self.passed += 1
            print("ok   %-44s %5d ms  %s" % (name, (time.monotonic() - t0) * 1000, info or ""))
        except Exception as e:  # noqa: BLE001 - report and go on
            self.failed += 1
            print("FAIL %-44s %s: %s" % (name, type(e).__name__, e))

    def show(self, label, obj):
        if self.verbose:
            print("---- %s\n%s" % (label, json.dumps(obj, indent=2, sort_keys=True)))


def login(port, user, password):
    _, _, r = call(port, "POST", "/_matrix/client/v3/login", {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "initial_device_display_name": "check.py"})
    return r


def sync(port, token, since=None, timeout_ms=0, http_timeout=30.0):
    path = "/_matrix/client/v3/sync?timeout=%d" % timeout_ms
    if since:
        path += "&since=" + q(since)
    return call(port, "GET", path, token=token, timeout=http_timeout)[2]


def timeline(s, room):
    return s.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {}).get("events", [])


def find_event(events, event_id):
    for ev in events:
        if ev.get("event_id") == event_id:
            return ev
    raise AssertionError("event %s not in %r" % (event_id, [e.get("event_id") for e in events]))


def send(port, token, room, content, etype="m.room.message"):
    txn = "t%d" % time.monotonic_ns()
    _, _, r = call(port, "PUT", "/_matrix/client/v3/rooms/%s/send/%s/%s" % (q(room), etype, txn),
                   content, token=token)
    return r["event_id"]


def png_1x1():
    import struct
    import zlib

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)  # 2x2 RGB
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def full_check(d, port, restart=True, verbose=False):
    c = Checker(verbose)
    st = {}
    pw = {"bot": "bot-pass", "alice": "alice-pass"}

    def versions():
        _, _, v = call(port, "GET", "/_matrix/client/versions")
        return "versions %s..%s, %d unstable features" % (v["versions"][0], v["versions"][-1],
                                                          len(v.get("unstable_features", {})))
    c.check("GET /_matrix/client/versions", versions)

    def reg():
        out = []
        for u in ("bot", "alice"):
            r = register(port, u, pw[u])
            out.append("%s %s" % (u, "registered" if r else "already there"))
        return ", ".join(out)
    c.check("register bot, alice (shared secret)", reg)

    def reg_open_closed():
        try:
            call(port, "POST", "/_matrix/client/v3/register", {"username": "x", "password": "y"})
        except HttpError as e:
            assert e.status in (401, 403), e
            return "POST /register -> %d %s" % (e.status, json.loads(e.body).get("errcode"))
        raise AssertionError("open registration answered 200")
    c.check("open registration is disabled", reg_open_closed)

    def do_login():
        _, _, flows = call(port, "GET", "/_matrix/client/v3/login")
        for u in ("bot", "alice"):
            r = login(port, u, pw[u])
            st[u] = r["access_token"]
            st[u + "_id"] = r["user_id"]
            assert r["user_id"] == "@%s:%s" % (u, SERVER), r
            c.show("login response (%s)" % u, {k: ("<token>" if k == "access_token" else v) for k, v in r.items()})
        try:
            login(port, "bot", "wrong")
            raise AssertionError("wrong password accepted")
        except HttpError as e:
            assert e.status == 403 and "M_FORBIDDEN" in e.body, e
        return "flows %s; wrong password -> 403 M_FORBIDDEN" % [f["type"] for f in flows["flows"]]
    c.check("POST /login m.login.password", do_login)

    def whoami():
        _, _, r = call(port, "GET", "/_matrix/client/v3/account/whoami", token=st["bot"])
        assert r["user_id"] == st["bot_id"], r
        return json.dumps(r)
    c.check("GET /account/whoami", whoami)

    def initial_sync():
        s = sync(port, st["bot"])
        st["since"] = s["next_batch"]
        return "next_batch %s" % s["next_batch"]
    c.check("bot initial /sync", initial_sync)

    def create_and_invite():
        _, _, r = call(port, "POST", "/_matrix/client/v3/createRoom",
                       {"preset": "private_chat", "name": "check room"}, token=st["alice"])
        st["room"] = r["room_id"]
        call(port, "POST", "/_matrix/client/v3/rooms/%s/invite" % q(st["room"]),
             {"user_id": st["bot_id"]}, token=st["alice"])
        return st["room"]
    c.check("alice createRoom + invite bot", create_and_invite)

    def invite_in_sync():
        s = sync(port, st["bot"], st["since"])
        inv = s.get("rooms", {}).get("invite", {})
        assert st["room"] in inv, s.get("rooms")
        c.show("bot /sync rooms.invite", inv)
        evs = inv[st["room"]]["invite_state"]["events"]
        me = [e for e in evs if e["type"] == "m.room.member" and e["state_key"] == st["bot_id"]]
        assert me and me[0]["content"]["membership"] == "invite" and me[0]["sender"] == st["alice_id"], evs
        st["since"] = s["next_batch"]
        return "invite_state: %s" % sorted({e["type"] for e in evs})
    c.check("bot /sync shows rooms.invite", invite_in_sync)

    def join():
        _, _, r = call(port, "POST", "/_matrix/client/v3/join/%s" % q(st["room"]), {}, token=st["bot"])
        assert r["room_id"] == st["room"], r
        s = sync(port, st["bot"], st["since"])
        assert st["room"] in s["rooms"]["join"], s.get("rooms")
        st["since"] = s["next_batch"]
        return "now in rooms.join"
    c.check("bot joins", join)

    def text():
        content = {"msgtype": "m.text", "body": "hello bot **1**",
                   "format": "org.matrix.custom.html", "formatted_body": "hello bot <b>1</b>"}
        st["text_ev"] = send(port, st["alice"], st["room"], content)
        s = sync(port, st["bot"], st["since"])
        ev = find_event(timeline(s, st["room"]), st["text_ev"])
        c.show("bot /sync timeline m.text", ev)
        assert ev["content"] == content and ev["sender"] == st["alice_id"], ev
        st["since"] = s["next_batch"]
        return st["text_ev"]
    c.check("alice m.text -> bot /sync", text)

    def longpoll():
        out = {}

        def poll():
            t0 = time.monotonic()
            out["s"] = sync(port, st["bot"], st["since"], timeout_ms=10000, http_timeout=20)
            out["t"] = time.monotonic() - t0
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.5)
        t_send = time.monotonic()
        eid = send(port, st["alice"], st["room"], {"msgtype": "m.text", "body": "long-poll"})
        th.join(25)
        find_event(timeline(out["s"], st["room"]), eid)
        st["since"] = out["s"]["next_batch"]
        return "returned %d ms after the send" % ((time.monotonic() - t_send) * 1000)
    c.check("long-poll /sync?timeout=10000 wakes up", longpoll)

    def media():
        data = png_1x1()
        st["png"] = data
        _, _, r = call(port, "POST", "/_matrix/media/v3/upload?filename=dot.png", raw=data,
                       ctype="image/png", token=st["alice"])
        uri = r["content_uri"]
        assert uri.startswith("mxc://%s/" % SERVER), r
        st["mxc"] = uri
        return uri
    c.check("POST /_matrix/media/v3/upload", media)

    def media_download():
        mid = st["mxc"][len("mxc://"):]  # server/media_id
        res = []
        _, h, body = call(port, "GET", "/_matrix/client/v1/media/download/%s" % mid, token=st["bot"])
        assert body == st["png"], "bytes differ"
        res.append("v1 auth 200 %s" % h.get("Content-Type"))
        _, h, body = call(port, "GET", "/_matrix/client/v1/media/download/%s/other.png" % mid, token=st["bot"])
        assert body == st["png"]
        res.append("v1 /{fileName} 200 (%s)" % h.get("Content-Disposition"))
        for label, path, tok in (
                ("v1 no token", "/_matrix/client/v1/media/download/%s" % mid, None),
                ("legacy v3 no token", "/_matrix/media/v3/download/%s" % mid, None),
                ("legacy v3 token", "/_matrix/media/v3/download/%s" % mid, st["bot"]),
                ("legacy r0", "/_matrix/media/r0/download/%s" % mid, None)):
            try:
                call(port, "GET", path, token=tok)
                res.append("%s 200" % label)
            except HttpError as e:
                res.append("%s %d %s" % (label, e.status, (json.loads(e.body).get("errcode") if e.body.startswith("{") else "")))
        return "; ".join(res)
    c.check("media download endpoints", media_download)

    def media_thumb_config():
        mid = st["mxc"][len("mxc://"):]
        _, h, body = call(port, "GET", "/_matrix/client/v1/media/thumbnail/%s?width=32&height=32&method=scale" % mid,
                          token=st["bot"])
        _, _, cfg = call(port, "GET", "/_matrix/client/v1/media/config", token=st["bot"])
        assert cfg["m.upload.size"] >= 50 * 1024 * 1024, cfg
        try:
            call(port, "GET", "/_matrix/media/v3/config", token=st["bot"])
            legacy = "legacy v3 config 200"
        except HttpError as e:
            legacy = "legacy v3 config %d" % e.status
        return "thumbnail %s %d bytes; v1 config %s; %s" % (h.get("Content-Type"), len(body), cfg, legacy)
    c.check("media thumbnail + config", media_thumb_config)

    def image():
        content = {"msgtype": "m.image", "body": "dot.png", "url": st["mxc"],
                   "info": {"mimetype": "image/png", "size": len(st["png"]), "w": 2, "h": 2}}
        st["img_ev"] = send(port, st["alice"], st["room"], content)
        s = sync(port, st["bot"], st["since"])
        ev = find_event(timeline(s, st["room"]), st["img_ev"])
        c.show("bot /sync timeline m.image", ev)
        assert ev["content"] == content, ev
        st["since"] = s["next_batch"]
        return st["img_ev"]
    c.check("alice m.image -> bot /sync", image)

    def edit():
        content = {"msgtype": "m.text", "body": "* hello bot (edited)",
                   "m.new_content": {"msgtype": "m.text", "body": "hello bot (edited)"},
                   "m.relates_to": {"rel_type": "m.replace", "event_id": st["text_ev"]}}
        eid = send(port, st["alice"], st["room"], content)
        s = sync(port, st["bot"], st["since"])
        ev = find_event(timeline(s, st["room"]), eid)
        c.show("bot /sync timeline edit (m.replace)", ev)
        assert ev["content"]["m.relates_to"]["rel_type"] == "m.replace", ev
        st["since"] = s["next_batch"]
        _, _, orig = call(port, "GET", "/_matrix/client/v3/rooms/%s/event/%s" % (q(st["room"]), q(st["text_ev"])),
                          token=st["bot"])
        c.show("GET /rooms/{id}/event/{original} after the edit", orig)
        rel = orig.get("unsigned", {}).get("m.relations", {}).get("m.replace", {})
        return "edit %s; original's unsigned.m.relations.m.replace.event_id=%s" % (eid, rel.get("event_id"))
    c.check("edit (m.replace) accepted + seen", edit)

    def typing():
        _, _, r = call(port, "PUT", "/_matrix/client/v3/rooms/%s/typing/%s" % (q(st["room"]), q(st["alice_id"])),
                       {"typing": True, "timeout": 30000}, token=st["alice"])
        assert r == {}, r
        s = sync(port, st["bot"], st["since"])
        eph = s["rooms"]["join"][st["room"]]["ephemeral"]["events"]
        c.show("bot /sync ephemeral (typing)", eph)
        ty = [e for e in eph if e["type"] == "m.typing"]
        assert ty and st["alice_id"] in ty[0]["content"]["user_ids"], eph
        call(port, "PUT", "/_matrix/client/v3/rooms/%s/typing/%s" % (q(st["room"]), q(st["bot_id"])),
             {"typing": False}, token=st["bot"])
        st["since"] = s["next_batch"]
        return "m.typing user_ids %s" % ty[0]["content"]["user_ids"]
    c.check("typing notification", typing)

    def receipt():
        _, _, r = call(port, "POST", "/_matrix/client/v3/rooms/%s/receipt/m.read/%s" % (q(st["room"]), q(st["img_ev"])),
                       {}, token=st["bot"])
        assert r == {}, r
        return "{}"
    c.check("read receipt", receipt)

    def gap():
        sent = [send(port, st["alice"], st["room"], {"msgtype": "m.text", "body": "gap %d" % i})
                for i in range(25)]
        s = sync(port, st["bot"], st["since"])
        tl = s["rooms"]["join"][st["room"]]["timeline"]
        assert tl["limited"] and len(tl["events"]) < 25, (tl["limited"], len(tl["events"]))
        assert [e["event_id"] for e in tl["events"]] == sent[-len(tl["events"]):]
        # fill the gap: /messages backwards from prev_batch, until the last event seen before
        got = [e["event_id"] for e in tl["events"]]
        frm = tl["prev_batch"]
        while sent[0] not in got:
            _, _, m = call(port, "GET", "/_matrix/client/v3/rooms/%s/messages?dir=b&limit=10&from=%s"
                           % (q(st["room"]), q(frm)), token=st["bot"])
            assert m["chunk"], "no more history"
            got = [e["event_id"] for e in reversed(m["chunk"])] + got
            frm = m["end"]
        assert got[-25:] == sent, "gap not filled in order"
        # or ask for a bigger timeline with a filter: not limited then
        for i in range(25):
            send(port, st["alice"], st["room"], {"msgtype": "m.text", "body": "gap2 %d" % i})
        flt = q(json.dumps({"room": {"timeline": {"limit": 100}}}))
        _, _, s2 = call(port, "GET", "/_matrix/client/v3/sync?timeout=0&since=%s&filter=%s"
                        % (q(s["next_batch"]), flt), token=st["bot"])
        tl2 = s2["rooms"]["join"][st["room"]]["timeline"]
        assert not tl2["limited"] and len(tl2["events"]) == 25, (tl2["limited"], len(tl2["events"]))
        st["since"] = s2["next_batch"]
        return ("default /sync: limited=true, last %d of 25 + prev_batch, /messages?dir=b filled the rest; "
                "filter timeline.limit=100: all 25, limited=false" % len(tl["events"]))
    c.check("gap of 25 messages: limited + /messages", gap)

    if restart:
        def restart_catch_up():
            before = send(port, st["alice"], st["room"], {"msgtype": "m.text", "body": "before restart"})
            t0 = time.monotonic()
            subprocess.run([os.path.join(HERE, "stop.sh"), d], check=True)
            t_stop = time.monotonic() - t0
            t0 = time.monotonic()
            subprocess.run([os.path.join(HERE, "start.sh"), d, str(port)], check=True, stdout=subprocess.DEVNULL)
            t_start = time.monotonic() - t0
            # the old access tokens still work, the old since token too
            after = send(port, st["alice"], st["room"], {"msgtype": "m.text", "body": "after restart"})
            s = sync(port, st["bot"], st["since"])
            tl = timeline(s, st["room"])
            find_event(tl, before)
            find_event(tl, after)
            bodies = [e["content"].get("body") for e in tl if e["type"] == "m.room.message"]
            assert bodies == ["before restart", "after restart"], bodies
            return "stop %.1f s, start %.1f s; since-token sync got %s, limited=%s" % (
                t_stop, t_start, bodies, s["rooms"]["join"][st["room"]]["timeline"].get("limited"))
        c.check("restart: old tokens + since token catch up", restart_catch_up)

    print("%d passed, %d failed" % (c.passed, c.failed))
    return c.failed == 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--wait":
        pid = int(argv[3]) if len(argv) > 3 else None
        return 0 if wait_ready(int(argv[1]), float(argv[2]) if len(argv) > 2 else 60.0, pid) else 1
    if len(argv) >= 4 and argv[0] == "--register":
        r = register(int(argv[1]), argv[2], argv[3], admin=len(argv) > 4 and argv[4] == "admin")
        print("registered %s" % r["user_id"] if r else "already registered")
        return 0
    args = [a for a in argv if not a.startswith("-")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ok = full_check(os.path.realpath(args[0]), int(args[1]), restart="--no-restart" not in argv,
                    verbose="-v" in argv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
