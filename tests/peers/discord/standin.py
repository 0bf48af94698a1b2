#!/usr/bin/env python3
"""A strict local stand-in of Discord's bot API (REST v10 and the Gateway), Python stdlib
only. See README.md for what it implements and from which documentation.

    standin.py DIR PORT TOKEN

One port serves the REST API under /api/v10, the Gateway WebSocket at /gateway, the
attachment "CDN" at /attachments and the test's control endpoints under /_standin.
Users, channels and messages are kept in DIR/state.json (a restart keeps them); gateway
sessions live in memory only (after a restart a RESUME is answered INVALID_SESSION)."""

import base64
import email.parser
import email.policy
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DIR, PORT, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
HEARTBEAT_MS = int(os.environ.get("STANDIN_HEARTBEAT_MS", "41250"))
BOT_ID = "1000000000000000001"
GUILD_ID = "1000000000000000002"
MAX_CONTENT = 2000
# Intents (docs: Gateway, "List of Intents").
GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 12, 1 << 15

LOCK = threading.RLock()
STATE_FILE = os.path.join(DIR, "state.json")
FILES_DIR = os.path.join(DIR, "files")
os.makedirs(FILES_DIR, exist_ok=True)


def load_state():
    if os.path.exists(STATE_FILE):
        with open(STATE_FILE) as f:
            return json.load(f)
    return {"next_id": 1100000000000000000, "users": {}, "channels": {}, "messages": [],
            "feed": []}


STATE = load_state()
SESSIONS = {}   # session_id -> {"seq", "events": [(seq, frame)], "conn", "intents"}
CONTROL = {"rate_limits": [], "rate_limited": 0, "early_retries": 0, "unauthorized": 0,
           "identifies": 0, "resumes": 0, "no_ack": False, "limited_at": None,
           "typing": []}
BOT = {"id": BOT_ID, "username": "clawbot", "discriminator": "0", "global_name": None,
       "avatar": None, "bot": True, "flags": 0}


def save():
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATE, f)
    os.replace(tmp, STATE_FILE)


def snowflake():
    with LOCK:
        STATE["next_id"] += 1
        return str(STATE["next_id"])


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def user(uid):
    if uid == BOT_ID:
        return dict(BOT)
    u = STATE["users"][uid]
    return {"id": uid, "username": u, "discriminator": "0", "global_name": u.title(),
            "avatar": None, "public_flags": 0, "some_future_field": {"x": 1}}


def dm_channel(uid):
    for cid, c in STATE["channels"].items():
        if c["type"] == 1 and c["recipient"] == uid:
            return cid
    cid = snowflake()
    STATE["channels"][cid] = {"type": 1, "recipient": uid}
    save()
    return cid


def channel_json(cid):
    c = STATE["channels"][cid]
    if c["type"] == 1:
        return {"id": cid, "type": 1, "last_message_id": None, "flags": 0,
                "recipients": [user(c["recipient"])]}
    return {"id": cid, "type": 0, "guild_id": GUILD_ID, "name": c["name"], "position": 0,
            "permission_overwrites": [], "nsfw": False, "parent_id": None}


def find_message(cid, mid):
    for m in STATE["messages"]:
        if m["id"] == mid and m["channel_id"] == cid:
            return m
    return None


# ---- the Gateway -------------------------------------------------------------------

class Conn:
    """One WebSocket connection (RFC 6455, server side)."""

    def __init__(self, rfile, wfile, sock):
        self.rfile, self.wfile, self.sock = rfile, wfile, sock
        self.wlock = threading.Lock()
        self.closed = False
        self.session = None
        self.last_beat = time.time()

    def send_raw(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        with self.wlock:
            if self.closed:
                return
            try:
                self.wfile.write(head + payload)
                self.wfile.flush()
            except (OSError, ValueError):   # reset, or the handler's file already closed
                self.closed = True

    def send(self, obj):
        self.send_raw(1, (obj if isinstance(obj, str) else json.dumps(obj)).encode())

    def close(self, code, reason=""):
        self.send_raw(8, struct.pack(">H", code) + reason.encode())
        with self.wlock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def recv(self):
        """The next text message, or None when the connection ends."""
        while True:
            h = self.rfile.read(2)
            if len(h) < 2:
                return None
            opcode, masked, n = h[0] & 0x0F, h[1] & 0x80, h[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            if not masked:   # RFC 6455 5.1: a client masks every frame
                self.close(1002, "unmasked frame")
                return None
            mask = self.rfile.read(4)
            data = bytearray(self.rfile.read(n))
            for i in range(len(data)):
                data[i] ^= mask[i % 4]
            if opcode == 8:
                return None
            if opcode == 9:
                self.send_raw(10, bytes(data))
                continue
            if opcode == 1:
                return data.decode()
            if opcode == 2:
                self.close(4002, "Decode error.")   # we asked for encoding=json
                return None


def dispatch_to_bot(t, d):
    """Record a dispatch in every session and send it to the connected ones."""
    with LOCK:
        for sid, s in SESSIONS.items():
            if t == "MESSAGE_CREATE":
                guild = "guild_id" in d
                need = GUILD_MESSAGES if guild else DIRECT_MESSAGES
                if not s["intents"] & need:
                    continue
                if guild and not s["intents"] & MESSAGE_CONTENT and not any(
                        m["id"] == BOT_ID for m in d.get("mentions", [])):
                    frame_d = dict(d, content="", attachments=[], embeds=[])
                else:
                    frame_d = d
            else:
                frame_d = d
            s["seq"] += 1
            frame = {"op": 0, "t": t, "s": s["seq"], "d": frame_d}
            s["events"].append((s["seq"], frame))
            c = s.get("conn")
            if c is not None and not c.closed:
                c.send(frame)


def heartbeat_watch(conn):
    """Close a connection that stops heartbeating (Discord closes zombied ones)."""
    while not conn.closed:
        time.sleep(0.5)
        if time.time() - conn.last_beat > HEARTBEAT_MS / 1000 * 1.5 + 1:
            conn.close(4009, "Session timed out.")
            return


def gateway(conn):
    conn.send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}, "s": None, "t": None})
    threading.Thread(target=heartbeat_watch, args=(conn,), daemon=True).start()
    while True:
        text = conn.recv()
        if text is None:
            break
        try:
            msg = json.loads(text)
            op, d = msg["op"], msg.get("d")
        except (ValueError, KeyError, TypeError):
            conn.close(4002, "Error while decoding payload.")
            break
        if op == 1:
            conn.last_beat = time.time()
            if not CONTROL["no_ack"]:
                conn.send({"op": 11})
        elif op == 2:
            if conn.session or not isinstance(d, dict):
                conn.close(4005 if conn.session else 4002, "Already authenticated.")
                break
            if d.get("token") != TOKEN:
                conn.close(4004, "Authentication failed.")
                break
            if not isinstance(d.get("intents"), int) or not isinstance(d.get("properties"), dict):
                conn.close(4002, "Error while decoding payload.")
                break
            CONTROL["identifies"] += 1
            sid = uuid.uuid4().hex
            with LOCK:
                SESSIONS[sid] = {"seq": 0, "events": [], "conn": conn, "intents": d["intents"]}
                conn.session = sid
                s = SESSIONS[sid]
                s["seq"] += 1
                ready = {"op": 0, "t": "READY", "s": s["seq"], "d": {
                    "v": 10, "user": dict(BOT, verified=True, mfa_enabled=False),
                    "guilds": [{"id": GUILD_ID, "unavailable": True}],
                    "session_id": sid, "session_type": "normal",
                    "resume_gateway_url": f"ws://127.0.0.1:{PORT}/gateway",
                    "application": {"id": BOT_ID, "flags": 0}, "private_channels": []}}
                s["events"].append((s["seq"], ready))
                conn.send(ready)
                s["seq"] += 1
                gc = {"op": 0, "t": "GUILD_CREATE", "s": s["seq"], "d": {
                    "id": GUILD_ID, "name": "clawos test guild", "unavailable": False,
                    "channels": [channel_json(c) for c, v in STATE["channels"].items()
                                 if v["type"] == 0]}}
                s["events"].append((s["seq"], gc))
                conn.send(gc)
        elif op == 6:
            if not isinstance(d, dict) or d.get("token") != TOKEN:
                conn.close(4004, "Authentication failed.")
                break
            with LOCK:
                s = SESSIONS.get(d.get("session_id"))
                if s is None or not isinstance(d.get("seq"), int):
                    conn.send({"op": 9, "d": False, "s": None, "t": None})
                    continue
                CONTROL["resumes"] += 1
                old = s.get("conn")
                if old is not None and old is not conn:
                    old.close(4009, "Session resumed elsewhere.")
                s["conn"] = conn
                conn.session = d["session_id"]
                for seq, frame in s["events"]:
                    if seq > d["seq"]:
                        conn.send(frame)
                s["seq"] += 1
                frame = {"op": 0, "t": "RESUMED", "s": s["seq"], "d": {}}
                s["events"].append((s["seq"], frame))
                conn.send(frame)
        elif op in (3, 4, 8, 31):
            pass   # presence, voice, members, soundboard: accepted, not used
        else:
            conn.close(4001, "Unknown opcode.")
            break
    conn.closed = True


# ---- REST --------------------------------------------------------------------------

def error(h, status, code, message, extra=None, headers=None):
    body = {"message": message, "code": code}
    body.update(extra or {})
    h.reply(status, body, headers)


def form_error(h, field, code, message):
    error(h, 400, 50035, "Invalid Form Body",
          {"errors": {field: {"_errors": [{"code": code, "message": message}]}}})


def new_message(cid, author, content, attachments=(), reference=None, mentions=()):
    c = STATE["channels"][cid]
    m = {"id": snowflake(), "type": 19 if reference else 0, "channel_id": cid,
         "author": user(author), "content": content, "timestamp": now_iso(),
         "edited_timestamp": None, "tts": False, "mention_everyone": False,
         "mentions": [user(u) for u in mentions], "mention_roles": [],
         "attachments": list(attachments), "embeds": [], "pinned": False, "flags": 0,
         "components": [], "nonce": None}
    if c["type"] == 0:
        m["guild_id"] = GUILD_ID
        m["member"] = {"roles": [], "joined_at": now_iso(), "deaf": False, "mute": False}
    if reference:
        ref = find_message(cid, reference.get("message_id"))
        if ref is None and reference.get("fail_if_not_exists", True):
            return None
        m["message_reference"] = {"type": 0, "message_id": reference.get("message_id"),
                                  "channel_id": cid}
        if c["type"] == 0:
            m["message_reference"]["guild_id"] = GUILD_ID
        m["referenced_message"] = ref
        if m["type"] == 19 and ref is None:
            m["type"] = 0
    STATE["messages"].append(m)
    return m


def keep_file(cid, name, mime, data):
    aid = snowflake()
    os.makedirs(os.path.join(FILES_DIR, cid, aid), exist_ok=True)
    with open(os.path.join(FILES_DIR, cid, aid, name), "wb") as f:
        f.write(data)
    url = f"http://127.0.0.1:{PORT}/attachments/{cid}/{aid}/{name}"
    return {"id": aid, "filename": name, "size": len(data), "url": url, "proxy_url": url,
            "content_type": mime}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def reply(self, status, body, headers=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        """The request body, read once (also when the answer ignores it, so a kept-alive
        connection stays in step)."""
        if getattr(self, "_body", None) is None:
            n = int(self.headers.get("content-length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PATCH(self):
        self.route("PATCH")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        self._body = None
        if parts[:1] != ["gateway"]:
            self.body()
        try:
            if parts[:1] == ["gateway"] and method == "GET":
                return self.upgrade(parse_qs(url.query))
            if parts[:1] == ["_standin"]:
                return control(self, method, parts[1:], parse_qs(url.query))
            if parts[:1] == ["attachments"] and method == "GET" and len(parts) == 4:
                path = os.path.join(FILES_DIR, *parts[1:])
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        return self.reply(200, None, raw=f.read(),
                                          ctype="application/octet-stream")
                return self.reply(404, None, raw=b"Not Found", ctype="text/plain")
            if parts[:2] != ["api", "v10"]:
                return error(self, 404, 0, "404: Not Found")
            return rest(self, method, parts[2:])
        except Exception as e:  # a bug in the stand-in must show, not hang the client
            sys.stderr.write(f"stand-in error: {e!r}\n")
            traceback.print_exc()
            return error(self, 500, 0, "500: Internal Server Error")

    def upgrade(self, query):
        if query.get("v") != ["10"] or query.get("encoding") != ["json"]:
            return self.reply(400, None, raw=b"v=10&encoding=json required", ctype="text/plain")
        key = self.headers.get("sec-websocket-key")
        if not key or "websocket" not in (self.headers.get("upgrade") or "").lower():
            return self.reply(400, None, raw=b"not a websocket request", ctype="text/plain")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        gateway(Conn(self.rfile, self.wfile, self.connection))
        self.close_connection = True


def rest(h, method, parts):
    if parts == ["gateway"] and method == "GET":   # the one route without a token
        return h.reply(200, {"url": f"ws://127.0.0.1:{PORT}/gateway"})
    if h.headers.get("authorization") != f"Bot {TOKEN}":
        CONTROL["unauthorized"] += 1
        return error(h, 401, 0, "401: Unauthorized")
    route = "/".join("{id}" if p.isdigit() else p for p in parts)
    if route == "channels/{id}/messages" and method == "POST" or \
            route == "channels/{id}/messages/{id}" and method == "PATCH":
        limit = rate_limited(h)
        if limit:
            return limit
    if route == "users/@me" and method == "GET":
        return h.reply(200, dict(BOT, verified=True, mfa_enabled=False, locale="en-US"))
    if route == "gateway/bot" and method == "GET":
        return h.reply(200, {"url": f"ws://127.0.0.1:{PORT}/gateway", "shards": 1,
                             "session_start_limit": {"total": 1000, "remaining": 999,
                                                     "reset_after": 14400000,
                                                     "max_concurrency": 1}})
    if route == "gateway" and method == "GET":
        return h.reply(200, {"url": f"ws://127.0.0.1:{PORT}/gateway"})
    if route == "users/@me/channels" and method == "POST":
        try:
            body = json.loads(h.body() or b"null")
        except ValueError:
            return error(h, 400, 50109, "The request body contains invalid JSON.")
        rid = body.get("recipient_id") if isinstance(body, dict) else None
        if not isinstance(rid, str):
            return form_error(h, "recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        with LOCK:
            if rid not in STATE["users"]:
                return error(h, 400, 50007, "Cannot send messages to this user")
            return h.reply(200, channel_json(dm_channel(rid)))
    known = {"users/@me": ["GET"], "gateway/bot": ["GET"], "gateway": ["GET"],
             "users/@me/channels": ["POST"], "channels/{id}/messages": ["POST", "GET"],
             "channels/{id}/messages/{id}": ["PATCH", "GET", "DELETE"],
             "channels/{id}/typing": ["POST"]}
    if route not in known:
        return error(h, 404, 0, "404: Not Found")
    if method not in known[route]:
        return error(h, 405, 0, "405: Method Not Allowed")
    cid = parts[1]
    with LOCK:
        if cid not in STATE["channels"]:
            return error(h, 404, 10003, "Unknown Channel")
    if route == "channels/{id}/messages" and method == "POST":
        return post_message(h, cid)
    if route == "channels/{id}/messages/{id}" and method == "PATCH":
        return patch_message(h, cid, parts[3])
    if route == "channels/{id}/typing" and method == "POST":
        # Trigger Typing Indicator: 204 No Content, no body (docs: Resources, Channel).
        with LOCK:
            CONTROL["typing"].append(cid)
        h.send_response(204)
        h.send_header("content-length", "0")
        h.end_headers()
        return None
    return error(h, 405, 0, "405: Method Not Allowed")


def rate_limited(h):
    """A 429 asked for by the test (docs: Topics, Rate Limits), and a retry too early."""
    with LOCK:
        at = CONTROL["limited_at"]
        if at and time.time() < at[0] + at[1]:
            CONTROL["early_retries"] += 1
        if not CONTROL["rate_limits"]:
            return None
        after = CONTROL["rate_limits"].pop(0)
        CONTROL["rate_limited"] += 1
        CONTROL["limited_at"] = (time.time(), after - 0.05)
    headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": f"{time.time() + after:.3f}",
               "X-RateLimit-Reset-After": f"{after:.3f}",
               "X-RateLimit-Bucket": "abcd1234", "X-RateLimit-Scope": "user",
               "Retry-After": str(int(after + 0.999))}
    error(h, 429, 0, "You are being rate limited.", {"retry_after": after, "global": False},
          headers)
    return True


def read_payload(h):
    """The JSON body, or the `payload_json` and `files[n]` parts of a multipart body."""
    ctype = h.headers.get("content-type") or ""
    raw = h.body()
    if ctype.startswith("application/json"):
        return json.loads(raw or b"null"), []
    if ctype.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + ctype.encode() + b"\r\n\r\n" + raw)
        payload, files = None, []
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "payload_json":
                payload = json.loads(part.get_payload(decode=True))
            elif name and name.startswith("files["):
                files.append((part.get_filename() or "file",
                              part.get_content_type(), part.get_payload(decode=True)))
        return payload, files
    raise ValueError("unsupported content type")


def post_message(h, cid):
    try:
        body, files = read_payload(h)
    except (ValueError, TypeError):
        return error(h, 400, 50109, "The request body contains invalid JSON.")
    if not isinstance(body, dict):
        body = {} if files else None
    if body is None:
        return error(h, 400, 50109, "The request body contains invalid JSON.")
    content = body.get("content", "")
    if not isinstance(content, str):
        return form_error(h, "content", "STRING_TYPE_CONVERT", "Could not interpret as string.")
    if len(content) > MAX_CONTENT:
        return form_error(h, "content", "BASE_TYPE_MAX_LENGTH",
                          f"Must be {MAX_CONTENT} or fewer in length.")
    if not content.strip() and not files and not body.get("embeds"):
        return error(h, 400, 50006, "Cannot send an empty message")
    ref = body.get("message_reference")
    if ref is not None and not isinstance(ref, dict):
        return form_error(h, "message_reference", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
    for k in body:
        if k not in ("content", "nonce", "tts", "embeds", "allowed_mentions",
                     "message_reference", "components", "sticker_ids", "attachments",
                     "flags", "enforce_nonce", "poll"):
            return form_error(h, k, "UNKNOWN_FIELD", "Unknown field.")
    with LOCK:
        atts = [keep_file(cid, n, t, d) for n, t, d in files]
        m = new_message(cid, BOT_ID, content, atts, ref)
        if m is None:
            return form_error(h, "message_reference", "REPLIES_UNKNOWN_MESSAGE",
                              "Unknown message")
        STATE["feed"].append({"kind": "create", "message": m})
        save()
    dispatch_to_bot("MESSAGE_CREATE", m)
    h.reply(200, m)


def patch_message(h, cid, mid):
    try:
        body, _ = read_payload(h)
    except (ValueError, TypeError):
        return error(h, 400, 50109, "The request body contains invalid JSON.")
    with LOCK:
        m = find_message(cid, mid)
        if m is None:
            return error(h, 404, 10008, "Unknown Message")
        if m["author"]["id"] != BOT_ID:
            return error(h, 403, 50005, "Cannot edit a message authored by another user")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            return form_error(h, "content", "STRING_TYPE_CONVERT", "Could not interpret as string.")
        if len(content) > MAX_CONTENT:
            return form_error(h, "content", "BASE_TYPE_MAX_LENGTH",
                              f"Must be {MAX_CONTENT} or fewer in length.")
        m["content"] = content
        m["edited_timestamp"] = now_iso()
        STATE["feed"].append({"kind": "update", "message": dict(m)})
        save()
    h.reply(200, m)


# ---- control endpoints for the test --------------------------------------------------

def control(h, method, parts, query):
    try:
        body = json.loads(h.body() or b"{}")
    except ValueError:
        body = {}
    with LOCK:
        if parts == ["ready"]:
            return h.reply(200, {"ok": True})
        if parts == ["users"] and method == "POST":
            for uid, name in STATE["users"].items():
                if name == body["name"]:
                    return h.reply(200, {"id": uid})
            uid = snowflake()
            STATE["users"][uid] = body["name"]
            save()
            return h.reply(200, {"id": uid})
        if parts == ["channels"] and method == "POST":
            for cid, c in STATE["channels"].items():
                if c["type"] == 0 and c["name"] == body["name"]:
                    return h.reply(200, {"id": cid})
            cid = snowflake()
            STATE["channels"][cid] = {"type": 0, "name": body["name"]}
            save()
            return h.reply(200, {"id": cid})
        if parts == ["dm"] and method == "POST":
            return h.reply(200, {"id": dm_channel(body["user"])})
        if parts == ["say"] and method == "POST":
            uid = body["user"]
            cid = body.get("channel") or dm_channel(uid)
            atts = []
            if body.get("file"):
                f = body["file"]
                atts = [keep_file(cid, f["name"], f["mime"], base64.b64decode(f["data"]))]
            mentions = [BOT_ID] if body.get("mention") else []
            ref = {"message_id": body["reply_to"]} if body.get("reply_to") else None
            m = new_message(cid, uid, body.get("content", ""), atts, ref, mentions)
            save()
        elif parts == ["feed"] and method == "GET":
            after = int(query.get("after", ["0"])[0])
            return h.reply(200, {"feed": STATE["feed"][after:], "next": len(STATE["feed"])})
        elif parts == ["ratelimit"] and method == "POST":
            CONTROL["rate_limits"].extend([float(body.get("retry_after", 1.0))]
                                          * int(body.get("count", 1)))
            return h.reply(200, {"ok": True})
        elif parts == ["stats"] and method == "GET":
            stats = {k: v for k, v in CONTROL.items() if k != "limited_at"}
            stats["connected"] = sum(1 for s in SESSIONS.values()
                                     if s.get("conn") is not None and not s["conn"].closed)
            return h.reply(200, stats)
        elif parts == ["acks"] and method == "POST":
            CONTROL["no_ack"] = not body.get("on", True)
            return h.reply(200, {"ok": True})
        elif parts == ["inject"] and method == "POST":
            n = 0
            for s in SESSIONS.values():
                c = s.get("conn")
                if c is not None and not c.closed:
                    c.send(body["raw"])
                    n += 1
            return h.reply(200, {"sent": n})
        elif parts == ["dispatch"] and method == "POST":
            dispatch_to_bot(body["t"], body["d"])
            return h.reply(200, {"ok": True})
        elif parts == ["drop"] and method == "POST":
            for s in SESSIONS.values():
                c = s.get("conn")
                if c is not None:
                    c.close(body.get("code", 1001), "dropped by the test")
            return h.reply(200, {"ok": True})
        else:
            return error(h, 404, 0, "404: Not Found")
    dispatch_to_bot("MESSAGE_CREATE", m)
    h.reply(200, m)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.serve_forever()
