#!/usr/bin/env python3
"""A strict local stand-in of Slack for one app: the Web API methods the channel uses
(https://docs.slack.dev/reference/methods) and Socket Mode
(https://docs.slack.dev/apis/events-api/using-socket-mode), standard library only (the
WebSocket server is a small RFC 6455 implementation below). People and channels are made
through /_standin/ control endpoints. State is kept in DIR/state.json (and DIR/files/) so
a restart keeps it.

    standin.py DIR PORT APP_TOKEN BOT_TOKEN
"""
import base64
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, PORT, APP_TOKEN, BOT_TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
TEAM, TEAM_ID, BOT_USER, BOT_ID, APP_ID = "clawos-tests", "T0CLAWOS", "U0CLAWOSBOT", "B0CLAWOS", "A0CLAWOS"
MAX_TEXT = 40000
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOCK = threading.Condition()
STATE_PATH = os.path.join(DIR, "state.json")
FILES = os.path.join(DIR, "files")
os.makedirs(FILES, exist_ok=True)

if os.path.exists(STATE_PATH):
    with open(STATE_PATH) as f:
        S = json.load(f)
else:
    S = {"next": 1, "clock": 0, "people": {}, "channels": {}, "messages": {}, "sent": [],
         "files": {}, "envelopes": []}
# Not kept across restarts.
FAULTS = {"rate": {}}
LIVE = {"conns": [], "tickets": set(), "stats": {"connections": 0, "acks": 0, "bad_acks": 0,
        "bad_frames": 0, "late_acks": 0, "redelivered": 0, "hello_at": 0.0, "rate": {}}}


def save():
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(S, f)
    os.replace(tmp, STATE_PATH)


def next_id(prefix):
    n = S["next"]
    S["next"] += 1
    return f"{prefix}{n:08d}"


def new_ts():
    # Unique, increasing message timestamps ("1700000000.000100").
    now = max(time.time(), S["clock"] + 0.0001)
    S["clock"] = now
    return f"{now:.6f}"


class ApiError(Exception):
    def __init__(self, error, **extra):
        super().__init__(error)
        self.error, self.extra = error, extra


# ---- WebSocket (RFC 6455), server side ----

class Conn:
    def __init__(self, sock, rfile):
        self.sock, self.rfile, self.wlock, self.alive = sock, rfile, threading.Lock(), True

    def send_frame(self, op, data):
        n = len(data)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        with self.wlock:
            try:
                self.sock.sendall(head + data)
            except OSError:
                self.alive = False

    def send_json(self, obj):
        self.send_frame(0x1, json.dumps(obj).encode())

    def close(self, code=1000, reason=""):
        self.send_frame(0x8, struct.pack(">H", code) + reason.encode())
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) < n:
            raise EOFError
        return data

    def read_message(self):
        """The next text message (str), or None when the connection ends."""
        parts, first_op = [], None
        while True:
            b0, b1 = self.read_exact(2)
            fin, op, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if b0 & 0x70:
                self.close(1002, "reserved bits set")
                return None
            if not masked:
                # RFC 6455 5.1: a client's frames are masked, or the server closes.
                self.close(1002, "unmasked client frame")
                return None
            if n == 126:
                n = struct.unpack(">H", self.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.read_exact(8))[0]
            if n > 1 << 20:
                self.close(1009, "too big")
                return None
            mask = self.read_exact(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.read_exact(n)))
            if op == 0x8:
                self.close()
                return None
            if op == 0x9:
                self.send_frame(0xA, data)
                continue
            if op == 0xA:
                continue
            if op in (0x1, 0x2):
                first_op, parts = op, [data]
            elif op == 0x0 and first_op is not None:
                parts.append(data)
            else:
                self.close(1002, "unexpected opcode")
                return None
            if fin:
                if first_op != 0x1:
                    LIVE["stats"]["bad_frames"] += 1
                    first_op = None
                    continue
                return b"".join(parts).decode("utf-8", "replace")


def envelope(env, retry=0, reason=""):
    return {"envelope_id": env["envelope_id"], "type": "events_api",
            "accepts_response_payload": False, "retry_attempt": retry, "retry_reason": reason,
            "payload": {"token": "verification-token-unused", "team_id": TEAM_ID,
                        "api_app_id": APP_ID, "event": env["event"], "type": "event_callback",
                        "event_id": env["event_id"], "event_time": int(env["at"]),
                        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER,
                                            "is_bot": True, "is_enterprise_install": False}],
                        "is_ext_shared_channel": False,
                        "event_context": "4-" + env["event_id"]}}


def current():
    live = [c for c in LIVE["conns"] if c.alive]
    return live[-1] if live else None


def push_event(event):
    """Queue an event for the app; sent at once on the live connection, if any, else on
    the next one. Kept until acknowledged."""
    with LOCK:
        env = {"envelope_id": str(uuid.uuid4()), "event_id": "Ev" + next_id(""), "event": event,
               "at": time.time(), "acked": False, "attempts": 0, "sent_at": 0.0}
        S["envelopes"].append(env)
        c = current()
        if c:
            env["attempts"] = 1
            env["sent_at"] = time.time()
        save()
    if c:
        c.send_json(envelope(env))
    return env


def serve_socket(handler):
    key = handler.headers.get("Sec-WebSocket-Key")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(handler.path).query)
    ticket = (q.get("ticket") or [""])[0]
    if handler.headers.get("Upgrade", "").lower() != "websocket" or not key:
        return handler.answer(400, {"ok": False, "error": "not a websocket request"})
    with LOCK:
        if ticket not in LIVE["tickets"]:
            return handler.answer(401, {"ok": False, "error": "invalid_ticket"})
        LIVE["tickets"].discard(ticket)  # single use
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    handler.end_headers()
    handler.wfile.flush()
    conn = Conn(handler.connection, handler.rfile)
    conn.send_json({"type": "hello", "num_connections": 1,
                    "debug_info": {"host": "applink-standin", "build_number": 1,
                                   "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID}})
    with LOCK:
        LIVE["conns"].append(conn)
        LIVE["stats"]["connections"] += 1
        LIVE["stats"]["hello_at"] = time.time()
        redo = [e for e in S["envelopes"] if not e["acked"]]
        for e in redo:
            if e["attempts"] > 0:
                LIVE["stats"]["redelivered"] += 1
            e["attempts"] += 1
            e["sent_at"] = time.time()
        save()
    for e in redo:
        retry = e["attempts"] - 1
        conn.send_json(envelope(e, retry, "timeout" if retry else ""))
    handler.close_connection = True
    try:
        while conn.alive:
            text = conn.read_message()
            if text is None:
                break
            try:
                msg = json.loads(text)
                eid = msg["envelope_id"]
            except (ValueError, KeyError, TypeError):
                LIVE["stats"]["bad_frames"] += 1
                continue
            with LOCK:
                env = next((e for e in S["envelopes"] if e["envelope_id"] == eid), None)
                if env is None or env["acked"]:
                    LIVE["stats"]["bad_acks"] += 1
                    continue
                env["acked"] = True
                LIVE["stats"]["acks"] += 1
                if time.time() - env["sent_at"] > 3.0:
                    LIVE["stats"]["late_acks"] += 1
                S["envelopes"] = [e for e in S["envelopes"] if not e["acked"]][-500:] + []
                save()
                LOCK.notify_all()
    except (EOFError, OSError):
        pass
    finally:
        conn.alive = False


# ---- the Web API ----

def person(uid):
    p = S["people"].get(uid)
    if not p:
        raise ApiError("user_not_found")
    return p


def dm_of(uid):
    return "D" + uid[1:]


def channel_of(cid):
    if cid in S["channels"]:
        return S["channels"][cid]
    if cid.startswith("D") and ("U" + cid[1:]) in S["people"]:
        return {"id": cid, "name": None, "members": ["U" + cid[1:], BOT_USER], "im": True}
    raise ApiError("channel_not_found")


def text_arg(params, name):
    v = params.get(name)
    if v is not None and not isinstance(v, str):
        raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {name} must be a string"]})
    return v


def record(kind, **fields):
    with LOCK:
        S["sent"].append({"kind": kind, **fields})
        save()
        LOCK.notify_all()


def check_thread(ch, thread_ts):
    if thread_ts is None:
        return None
    if not isinstance(thread_ts, str) or not re.fullmatch(r"\d+\.\d+", thread_ts):
        raise ApiError("invalid_thread_ts")
    m = S["messages"].get(f"{ch['id']}/{thread_ts}")
    if m is None:
        raise ApiError("thread_not_found")
    return m.get("thread_ts") or thread_ts


def m_auth_test(p, tok):
    return {"url": f"https://{TEAM}.slack.com/", "team": TEAM, "user": "clawos", "team_id": TEAM_ID,
            "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}


def m_apps_connections_open(p, tok):
    ticket = str(uuid.uuid4())
    LIVE["tickets"].add(ticket)
    return {"url": f"ws://127.0.0.1:{PORT}/link/?ticket={ticket}&app_id={APP_ID}"}


def m_chat_postMessage(p, tok):
    cid = text_arg(p, "channel")
    if not cid:
        raise ApiError("channel_not_found")
    ch = channel_of(cid)
    if BOT_USER not in ch["members"]:
        raise ApiError("not_in_channel")
    text = text_arg(p, "text")
    if not text and not p.get("blocks") and not p.get("attachments"):
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    with LOCK:
        thread = check_thread(ch, p.get("thread_ts"))
        ts = new_ts()
        m = {"type": "message", "text": text, "user": BOT_USER, "bot_id": BOT_ID, "ts": ts,
             "app_id": APP_ID, "team": TEAM_ID}
        if thread:
            m["thread_ts"] = thread
        S["messages"][f"{cid}/{ts}"] = m
    record("post", channel=cid, ts=ts, text=text, thread_ts=thread)
    # The bot hears its own message (message.im / message.channels carry bot_id).
    push_event({**m, "channel": cid, "event_ts": ts,
                "channel_type": "im" if ch.get("im") else "channel"})
    return {"channel": cid, "ts": ts, "message": m}


def m_chat_update(p, tok):
    cid, ts = text_arg(p, "channel"), text_arg(p, "ts")
    if not cid:
        raise ApiError("channel_not_found")
    ch = channel_of(cid)
    if not ts:
        raise ApiError("message_not_found")
    m = S["messages"].get(f"{cid}/{ts}")
    if m is None:
        raise ApiError("message_not_found")
    if m.get("user") != BOT_USER:
        raise ApiError("cant_update_message")
    text = text_arg(p, "text")
    if not text:
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    with LOCK:
        old = dict(m)
        m["text"] = text
        m["edited"] = {"user": BOT_USER, "ts": new_ts()}
        save()
    record("update", channel=cid, ts=ts, text=text, thread_ts=m.get("thread_ts"))
    # An awkward shape: message_changed, its user inside `message`.
    push_event({"type": "message", "subtype": "message_changed", "hidden": True, "channel": cid,
                "ts": new_ts(), "message": m, "previous_message": old,
                "channel_type": "im" if ch.get("im") else "channel"})
    return {"channel": cid, "ts": ts, "text": text}


def m_conversations_open(p, tok):
    users = text_arg(p, "users") or ""
    ids = [u for u in users.split(",") if u]
    if not ids:
        raise ApiError("users_list_not_supplied")
    if len(ids) > 1:
        raise ApiError("not_implemented_in_standin")
    person(ids[0])
    return {"channel": {"id": dm_of(ids[0])}}


def m_files_getUploadURLExternal(p, tok):
    name = text_arg(p, "filename")
    try:
        length = int(p.get("length"))
    except (TypeError, ValueError):
        raise ApiError("invalid_arguments") from None
    if not name or length <= 0:
        raise ApiError("missing_argument")
    with LOCK:
        fid = "F" + next_id("")
        S["files"][fid] = {"name": name, "length": length, "uploaded": False, "done": False}
        save()
    return {"upload_url": f"http://127.0.0.1:{PORT}/upload/v1/{fid}", "file_id": fid}


def m_files_completeUploadExternal(p, tok):
    files = p.get("files")
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except ValueError:
            raise ApiError("invalid_arguments") from None
    if not isinstance(files, list) or not files:
        raise ApiError("invalid_arguments")
    cid = p.get("channel_id")
    ch = channel_of(cid) if cid else None
    out = []
    with LOCK:
        thread = check_thread(ch, p.get("thread_ts")) if ch else None
        for f in files:
            rec = S["files"].get(f.get("id") if isinstance(f, dict) else None)
            if not rec or not rec["uploaded"]:
                raise ApiError("file_not_found")
            rec["done"] = True
            out.append({"id": f["id"], "name": rec["name"], "title": f.get("title") or rec["name"],
                        "size": rec["length"]})
        save()
    if ch:
        for f in out:
            record("file", channel=cid, file_id=f["id"], name=f["name"], thread_ts=thread, text="")
    return {"files": out}


METHODS = {"auth.test": m_auth_test, "apps.connections.open": m_apps_connections_open,
           "chat.postMessage": m_chat_postMessage, "chat.update": m_chat_update,
           "conversations.open": m_conversations_open,
           "files.getUploadURLExternal": m_files_getUploadURLExternal,
           "files.completeUploadExternal": m_files_completeUploadExternal}


def store_upload(fid, data, content_type):
    rec = S["files"].get(fid)
    if not rec:
        return 404
    if content_type.startswith("multipart/form-data"):
        boundary = content_type.split("boundary=", 1)[-1].strip('"').encode()
        for part in data.split(b"--" + boundary):
            if b"\r\n\r\n" in part and b"filename=" in part.split(b"\r\n\r\n", 1)[0]:
                data = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
                break
    with open(os.path.join(FILES, fid), "wb") as f:
        f.write(data)
    with LOCK:
        rec["uploaded"] = True
        rec["length"] = len(data)
        save()
    return 200


def say(b):
    uid = b.get("user")
    person(uid)
    cid = b.get("channel") or dm_of(uid)
    ch = channel_of(cid)
    if uid not in ch["members"]:
        raise ApiError("not_in_channel")
    text = b.get("text", "")
    with LOCK:
        ts = new_ts()
        m = {"type": "message", "user": uid, "text": text, "ts": ts, "team": TEAM_ID,
             "blocks": [{"type": "rich_text", "block_id": "b" + ts[-4:], "elements": []}]}
        if b.get("thread_ts"):
            m["thread_ts"] = b["thread_ts"]
        f = b.get("file")
        if f:
            data = base64.b64decode(f["b64"])
            fid = "F" + next_id("")
            with open(os.path.join(FILES, fid), "wb") as out:
                out.write(data)
            url = f"http://127.0.0.1:{PORT}/files-pri/{TEAM_ID}-{fid}/{urllib.parse.quote(f['name'])}"
            S["files"][fid] = {"name": f["name"], "length": len(data), "uploaded": True, "done": True}
            m["subtype"] = "file_share"
            m["upload"] = False
            m["files"] = [{"id": fid, "created": int(time.time()), "name": f["name"],
                           "title": f["name"], "mimetype": f.get("mime", "application/octet-stream"),
                           "filetype": f["name"].rsplit(".", 1)[-1], "user": uid, "size": len(data),
                           "mode": "hosted", "is_external": False, "url_private": url,
                           "url_private_download": url + "?download=1"}]
        S["messages"][f"{cid}/{ts}"] = m
        save()
    if BOT_USER in ch["members"]:
        event = {**m, "channel": cid, "event_ts": ts,
                 "channel_type": "im" if ch.get("im") else "channel"}
        push_event(event)
        if not ch.get("im") and f"<@{BOT_USER}>" in text:
            mention = {k: v for k, v in m.items() if k not in ("subtype",)}
            push_event({**mention, "type": "app_mention", "channel": cid, "event_ts": ts})
    return {"ts": ts, "channel": cid}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, obj, headers=None, raw=None, ctype="application/json; charset=utf-8"):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, verb):
        url = urllib.parse.urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            if parts[:1] == ["link"]:
                return serve_socket(self)
            if parts[:1] == ["_standin"]:
                return self.control(parts[1] if len(parts) > 1 else "", url)
            if parts[:1] == ["api"] and len(parts) == 2:
                return self.api(parts[1], verb, url)
            if parts[:2] == ["upload", "v1"] and len(parts) == 3 and verb == "POST":
                code = store_upload(parts[2], self.body(), self.headers.get("Content-Type", ""))
                return self.answer(code, None, raw=b"OK" if code == 200 else b"Not Found",
                                   ctype="text/plain")
            if parts[:1] == ["files-pri"] and len(parts) == 3:
                return self.download(parts[1])
            self.answer(404, None, raw=b"Not Found", ctype="text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def download(self, team_fid):
        if self.headers.get("Authorization", "") != f"Bearer {BOT_TOKEN}":
            # Slack answers a request without the bot token with its sign-in page.
            return self.answer(200, None, raw=b"<!DOCTYPE html><html>Sign in</html>",
                               ctype="text/html; charset=utf-8")
        fid = team_fid.split("-", 1)[-1]
        path = os.path.join(FILES, fid)
        if fid not in S["files"] or not os.path.exists(path):
            return self.answer(404, None, raw=b"Not Found", ctype="text/plain")
        with open(path, "rb") as f:
            self.answer(200, None, raw=f.read(), ctype="application/octet-stream")

    def api(self, method, verb, url):
        body = self.body()
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        params = dict(urllib.parse.parse_qsl(url.query))
        if body:
            if ctype == "application/json":
                try:
                    j = json.loads(body)
                except ValueError:
                    return self.answer(200, {"ok": False, "error": "invalid_json"})
                if not isinstance(j, dict):
                    return self.answer(200, {"ok": False, "error": "invalid_json"})
                params.update(j)
            elif ctype == "application/x-www-form-urlencoded":
                params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
            else:
                return self.answer(200, {"ok": False, "error": "invalid_form_data"})
        rate = FAULTS["rate"].get(method)
        stats = LIVE["stats"]["rate"].setdefault(method, [0, 0])
        stats[0] += 1
        if rate and rate[0] > 0:
            rate[0] -= 1
            stats[1] += 1
            return self.answer(429, {"ok": False, "error": "ratelimited"},
                               headers={"Retry-After": str(rate[1])})
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else params.get("token")
        if method not in METHODS:
            return self.answer(200, {"ok": False, "error": "unknown_method", "req_method": method})
        if not token:
            return self.answer(200, {"ok": False, "error": "not_authed"})
        want = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token not in (APP_TOKEN, BOT_TOKEN):
            return self.answer(200, {"ok": False, "error": "invalid_auth"})
        if token != want:
            return self.answer(200, {"ok": False, "error": "not_allowed_token_type"})
        try:
            result = METHODS[method](params, token)
        except ApiError as e:
            return self.answer(200, {"ok": False, "error": e.error, **e.extra})
        self.answer(200, {"ok": True, **result})

    def control(self, what, url):
        q = dict(urllib.parse.parse_qsl(url.query))
        raw = self.body()
        b = json.loads(raw) if raw else {}
        if what == "stats":
            with LOCK:
                out = dict(LIVE["stats"])
                out["connected"] = len([c for c in LIVE["conns"] if c.alive])
                out["pending"] = len([e for e in S["envelopes"] if not e["acked"]])
                out["sent"] = len(S["sent"])
            return self.answer(200, out)
        if what == "person":
            with LOCK:
                uid = "U" + next_id("")
                S["people"][uid] = {"name": b.get("name", uid)}
                save()
            return self.answer(200, {"id": uid, "dm": dm_of(uid)})
        if what == "channel":
            with LOCK:
                cid = "C" + next_id("")
                S["channels"][cid] = {"id": cid, "name": b.get("name", cid),
                                      "members": [BOT_USER] + list(b.get("members", []))}
                save()
            return self.answer(200, {"id": cid})
        if what == "join":
            with LOCK:
                ch = S["channels"].get(b.get("channel"))
                if not ch or b.get("user") not in S["people"]:
                    return self.answer(404, {"error": "no such channel or person"})
                if b["user"] not in ch["members"]:
                    ch["members"].append(b["user"])
                save()
            return self.answer(200, {"ok": True})
        if what == "say":
            try:
                return self.answer(200, say(b))
            except ApiError as e:
                return self.answer(400, {"error": e.error})
        if what == "sent":
            after, wait = int(q.get("after", 0)), float(q.get("wait", 0))
            deadline = time.time() + wait
            with LOCK:
                while len(S["sent"]) <= after and time.time() < deadline:
                    LOCK.wait(deadline - time.time())
                return self.answer(200, {"sent": S["sent"][after:]})
        if what == "blob":
            path = os.path.join(FILES, q.get("file_id", "x"))
            if not os.path.exists(path):
                return self.answer(404, {"error": "no such file"})
            with open(path, "rb") as f:
                return self.answer(200, None, raw=f.read(), ctype="application/octet-stream")
        if what == "ratelimit":
            FAULTS["rate"][b["method"]] = [int(b.get("count", 1)), int(b.get("retry_after", 1))]
            return self.answer(200, {"ok": True})
        if what == "drop":
            reason = b.get("reason")
            for c in list(LIVE["conns"]):
                if c.alive:
                    if reason:
                        c.send_json({"type": "disconnect", "reason": reason,
                                     "debug_info": {"host": "applink-standin"}})
                    if b.get("close", True):
                        c.close(1001, "going away")
            return self.answer(200, {"ok": True})
        if what == "inject":
            c = current()
            if not c:
                return self.answer(409, {"error": "no socket connected"})
            if "raw" in b:
                c.send_frame(0x1, b["raw"].encode())
            elif "binary" in b:
                c.send_frame(0x2, base64.b64decode(b["binary"]))
            elif "oversize" in b:
                c.send_json({"type": "events_api", "envelope_id": str(uuid.uuid4()),
                             "payload": {"event": {"type": "message", "text": "x" * int(b["oversize"])}}})
            elif "message" in b:
                c.send_json(b["message"])
            elif "event" in b:
                push_event(b["event"])
            return self.answer(200, {"ok": True})
        self.answer(404, {"error": f"unknown control {what}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def pinger():
    while True:
        time.sleep(10)
        for c in list(LIVE["conns"]):
            if c.alive:
                c.send_frame(0x9, b"standin")
        LIVE["conns"] = [c for c in LIVE["conns"] if c.alive]


threading.Thread(target=pinger, daemon=True).start()
Server(("127.0.0.1", PORT), Handler).serve_forever()
