#!/usr/bin/env python3
"""A strict local stand-in of the Telegram Bot API (https://core.telegram.org/bots/api),
standard library only. One bot, people and group chats made through /_standin/ control
endpoints. State is kept in DIR/state.json (and DIR/files/) so a restart keeps it.

    standin.py DIR PORT TOKEN BOT_USERNAME
"""
import base64
import html.parser
import json
import os
import sys
import threading
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, PORT, TOKEN, BOT_USERNAME = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
BOT_ID = int(TOKEN.split(":")[0])
MAX_TEXT = 4096
MAX_CAPTION = 1024
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code",
                "pre", "blockquote", "tg-spoiler", "span", "tg-emoji"}
LOCK = threading.Condition()
STATE_PATH = os.path.join(DIR, "state.json")
FILES = os.path.join(DIR, "files")
os.makedirs(FILES, exist_ok=True)

if os.path.exists(STATE_PATH):
    with open(STATE_PATH) as f:
        S = json.load(f)
else:
    S = {"next_update": 1000, "next_user": 100001, "next_message": 1, "next_file": 1,
         "next_group": 1001000000001, "updates": [], "people": {}, "groups": {},
         "messages": {}, "sent": [], "files": {}, "privacy": False}
# Test controls, not kept across restarts.
FAULTS = {"rate": {}, "status": {}, "raw": []}
# Chat actions the bot sent (typing...), in order; they are not messages, so not in S.
ACTIONS = []
POLL = {"gen": 0, "seen": 0.0, "calls": 0}


def save():
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(S, f)
    os.replace(tmp, STATE_PATH)


class ApiError(Exception):
    def __init__(self, code, description, parameters=None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def bad(desc):
    return ApiError(400, "Bad Request: " + desc)


class Entities(html.parser.HTMLParser):
    """Telegram's HTML parse mode: the text and its entities, or an error."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.text, self.stack, self.entities, self.error = "", [], [], None

    def utf16(self):
        return len(self.text.encode("utf-16-le")) // 2

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
            return
        self.stack.append((tag, self.utf16(), dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1][0] != tag:
            self.error = self.error or f'Unmatched end tag "{tag}"'
            return
        name, start, attrs = self.stack.pop()
        kind = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
                "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
                "del": "strikethrough", "a": "text_link", "code": "code", "pre": "pre",
                "blockquote": "blockquote"}.get(name, name)
        e = {"type": kind, "offset": start, "length": self.utf16() - start}
        if name == "a":
            e["url"] = attrs.get("href", "")
        if e["length"] > 0:
            self.entities.append(e)

    def handle_data(self, data):
        self.text += data

    def handle_entityref(self, name):
        known = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in known:
            self.error = self.error or f'Unsupported HTML entity "&{name};"'
        self.text += known.get(name, "")

    def handle_charref(self, name):
        try:
            self.text += chr(int(name[1:], 16) if name[:1] in "xX" else int(name))
        except ValueError:
            self.error = self.error or "Invalid character reference"


def parse_text(text, mode):
    if mode in (None, ""):
        return text, []
    if mode != "HTML":
        if mode not in ("Markdown", "MarkdownV2"):
            raise bad("unsupported parse_mode")
        return text, []
    if "<" in text and text.count("<") != text.count(">"):
        raise bad("can't parse entities: Unclosed start tag")
    p = Entities()
    p.feed(text)
    p.close()
    if p.error is None and p.stack:
        p.error = f'Can\'t find end tag corresponding to start tag "{p.stack[-1][0]}"'
    if p.error:
        raise bad("can't parse entities: " + p.error)
    return p.text, p.entities


def user(uid):
    if uid == BOT_ID:
        return {"id": BOT_ID, "is_bot": True, "first_name": "clawos", "username": BOT_USERNAME}
    p = S["people"][str(uid)]
    return {"id": uid, "is_bot": False, "first_name": p["name"].capitalize(),
            "username": p["name"], "language_code": "en"}


def chat(chat_id):
    g = S["groups"].get(str(chat_id))
    if g:
        return {"id": chat_id, "title": g["title"], "type": "supergroup"}
    p = S["people"].get(str(chat_id))
    if not p:
        raise bad("chat not found")
    return {"id": chat_id, "first_name": p["name"].capitalize(), "username": p["name"],
            "type": "private"}


def int_param(params, name, required=True):
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise bad(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise bad(f"invalid {name} specified") from None


def new_message(chat_id, sender, **fields):
    mid = S["next_message"]
    S["next_message"] += 1
    m = {"message_id": mid, "from": user(sender), "chat": chat(chat_id),
         "date": int(time.time()), **fields}
    S["messages"][f"{chat_id}/{mid}"] = m
    return m


def push_update(payload):
    with LOCK:
        uid = S["next_update"]
        S["next_update"] += 1
        S["updates"].append({"update_id": uid, **payload})
        save()
        LOCK.notify_all()
        return uid


def deliver(chat_id, sender, message):
    """A person's message: an update, unless privacy mode hides it from the bot."""
    is_group = str(chat_id) in S["groups"]
    if is_group and S["privacy"]:
        text = message.get("text", "") + message.get("caption", "")
        reply = message.get("reply_to_message", {}).get("from", {}).get("id")
        if f"@{BOT_USERNAME}" not in text and reply != BOT_ID and not text.startswith("/"):
            return None
    return push_update({"message": message})


def store_file(data, kind):
    with LOCK:
        n = S["next_file"]
        S["next_file"] += 1
        fid = f"AgAD{kind}{n:06d}x"
        path = f"{kind}s/file_{n}"
        os.makedirs(os.path.join(FILES, kind + "s"), exist_ok=True)
        with open(os.path.join(FILES, path), "wb") as f:
            f.write(data)
        S["files"][fid] = {"file_path": path, "file_size": len(data), "unique": f"AQAD{n}"}
        return fid


def file_of(fid):
    f = S["files"][fid]
    return {"file_id": fid, "file_unique_id": f["unique"], "file_size": f["file_size"]}


def reply_to(params, chat_id):
    rp = params.get("reply_parameters")
    if isinstance(rp, str):
        try:
            rp = json.loads(rp)
        except ValueError:
            raise bad("can't parse reply parameters JSON object") from None
    mid = (rp or {}).get("message_id") if isinstance(rp, dict) else None
    if mid is None and params.get("reply_to_message_id") not in (None, ""):
        mid = int_param(params, "reply_to_message_id")
    if mid is None:
        return {}
    orig = S["messages"].get(f"{chat_id}/{mid}")
    if orig is None:
        if isinstance(rp, dict) and rp.get("allow_sending_without_reply") is True:
            return {}
        raise bad("message to be replied not found")
    return {"reply_to_message": {k: v for k, v in orig.items() if k != "reply_to_message"}}


def record_sent(m, kind, edit=False):
    S["sent"].append({"n": len(S["sent"]), "kind": kind, "edit": edit, "message": m})
    save()
    LOCK.notify_all()


def m_getMe(params, files):
    return user(BOT_ID) | {"can_join_groups": True, "can_read_all_group_messages": not S["privacy"],
                           "supports_inline_queries": False}


def m_getUpdates(params, files):
    offset = int_param(params, "offset", False)
    limit = int_param(params, "limit", False) or 100
    timeout = int_param(params, "timeout", False) or 0
    if not 1 <= limit <= 100:
        limit = 100
    with LOCK:
        POLL["gen"] += 1
        gen = POLL["gen"]
        POLL["seen"], POLL["calls"] = time.time(), POLL["calls"] + 1
        LOCK.notify_all()
        if offset is not None:
            if offset < 0:
                keep = S["updates"][offset:] if offset >= -len(S["updates"]) else S["updates"]
                S["updates"] = list(keep)
            else:
                S["updates"] = [u for u in S["updates"] if u["update_id"] >= offset]
            save()
        deadline = time.time() + min(timeout, 50)
        while not S["updates"] and time.time() < deadline:
            LOCK.wait(deadline - time.time())
            if POLL["gen"] != gen:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                               "make sure that only one bot instance is running")
        if FAULTS["raw"]:
            raise RawAnswer(FAULTS["raw"].pop(0))
        return S["updates"][:limit]


class RawAnswer(Exception):
    pass


def check_chat(params):
    chat_id = int_param(params, "chat_id")
    chat(chat_id)
    return chat_id


def m_sendMessage(params, files):
    chat_id = check_chat(params)
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad("message text is empty")
    plain, entities = parse_text(text, params.get("parse_mode"))
    if len(plain.encode("utf-16-le")) // 2 > MAX_TEXT:
        raise bad("message is too long")
    with LOCK:
        extra = reply_to(params, chat_id)
        m = new_message(chat_id, BOT_ID, text=plain, **extra)
        if entities:
            m["entities"] = entities
        record_sent(m, "text")
        return m


def m_editMessageText(params, files):
    chat_id = check_chat(params)
    mid = int_param(params, "message_id")
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad("message text is empty")
    plain, entities = parse_text(text, params.get("parse_mode"))
    if len(plain.encode("utf-16-le")) // 2 > MAX_TEXT:
        raise bad("MESSAGE_TOO_LONG")
    with LOCK:
        m = S["messages"].get(f"{chat_id}/{mid}")
        if m is None:
            raise bad("message to edit not found")
        if m["from"]["id"] != BOT_ID:
            raise bad("message can't be edited")
        if m.get("text") == plain and m.get("entities", []) == entities:
            raise bad("message is not modified: specified new message content and reply "
                      "markup are exactly the same as a current content and reply markup "
                      "of the message")
        m["text"], m["edit_date"] = plain, int(time.time())
        m["entities"] = entities
        record_sent(dict(m), "text", edit=True)
        return m


def send_file(params, files, field, kind):
    chat_id = check_chat(params)
    f = files.get(field)
    if f is None:
        if isinstance(params.get(field), str) and params[field] in S["files"]:
            raise bad("file reuse is not implemented by the stand-in")
        raise bad(f"there is no {field} in the request")
    name, mime, data = f
    if not data:
        raise bad("file must be non-empty")
    caption = params.get("caption") or ""
    plain, _ = parse_text(caption, params.get("parse_mode"))
    if len(plain) > MAX_CAPTION:
        raise bad("message caption is too long")
    fid = store_file(data, kind)
    with LOCK:
        extra = reply_to(params, chat_id)
        if caption:
            extra["caption"] = plain
        if kind == "photo":
            extra["photo"] = [file_of(fid) | {"width": 320, "height": 320}]
        else:
            extra["document"] = file_of(fid) | {"file_name": name or "file",
                                                "mime_type": mime or "application/octet-stream"}
        m = new_message(chat_id, BOT_ID, **extra)
        record_sent(m, kind)
        return m


def m_sendDocument(params, files):
    return send_file(params, files, "document", "document")


def m_sendPhoto(params, files):
    return send_file(params, files, "photo", "photo")


def m_getFile(params, files):
    fid = params.get("file_id")
    if not fid:
        raise bad("file_id is empty")
    if fid not in S["files"]:
        raise bad("invalid file_id")
    f = S["files"][fid]
    if f["file_size"] > 20 * 1024 * 1024:
        raise bad("file is too big")
    return file_of(fid) | {"file_path": f["file_path"]}


def m_sendChatAction(params, files):
    check_chat(params)
    if params.get("action") not in ("typing", "upload_photo", "upload_document"):
        raise bad("wrong parameter action in request")
    with LOCK:
        ACTIONS.append({"chat_id": int_param(params, "chat_id"), "action": params["action"]})
    return True


METHODS = {name[2:].lower(): f for name, f in globals().items() if name.startswith("m_")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, obj, raw=None):
        body = raw.encode() if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def params(self, url):
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        files = {}
        ctype = self.headers.get("Content-Type", "")
        data = self.body()
        if ctype.startswith("application/json"):
            try:
                v = json.loads(data or b"{}")
            except ValueError:
                raise bad("can't parse JSON object") from None
            if not isinstance(v, dict):
                raise bad("can't parse JSON object")
            params.update(v)
        elif ctype.startswith("application/x-www-form-urlencoded"):
            params.update({k: v[-1] for k, v in urllib.parse.parse_qs(data.decode()).items()})
        elif ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + data)
            if not msg.is_multipart():
                raise bad("can't parse multipart/form-data")
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[name] = (part.get_filename(), part.get_content_type(), payload)
                else:
                    params[name] = payload.decode()
        return params, files

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        try:
            if parts[0] == "_standin":
                return self.control(parts[1:], url)
            if parts[0] == "file" and len(parts) >= 3:
                return self.download(parts[1], "/".join(parts[2:]))
            if len(parts) != 2 or not parts[0].startswith("bot"):
                raise ApiError(404, "Not Found")
            if parts[0][3:] != TOKEN:
                self.body()
                raise ApiError(401, "Unauthorized")
            method = METHODS.get(parts[1].lower())
            if method is None:
                self.body()
                raise ApiError(404, "Not Found")
            forced = FAULTS["status"].get(parts[1])
            if forced:
                FAULTS["status"][parts[1]] = forced[1:]
                if len(forced) > 0:
                    self.body()
                    raise ApiError(forced[0], {401: "Unauthorized", 500: "Internal Server Error",
                                               502: "Bad Gateway"}.get(forced[0], "Error"))
            rate = FAULTS["rate"].get(parts[1])
            if rate and rate[0] > 0:
                rate[0] -= 1
                rate[2] += 1
                self.body()
                raise ApiError(429, f"Too Many Requests: retry after {rate[1]}",
                               {"retry_after": rate[1]})
            params, files = self.params(url)
            self.answer(200, {"ok": True, "result": method(params, files)})
        except RawAnswer as r:
            self.answer(200, None, raw=str(r.args[0]))
        except ApiError as e:
            out = {"ok": False, "error_code": e.code, "description": e.description}
            if e.parameters:
                out["parameters"] = e.parameters
            try:
                self.answer(e.code, out)
            except OSError:
                pass

    def download(self, tokpart, path):
        if tokpart != "bot" + TOKEN:
            raise ApiError(401, "Unauthorized")
        full = os.path.realpath(os.path.join(FILES, path))
        if not full.startswith(os.path.realpath(FILES) + os.sep) or not os.path.isfile(full):
            raise ApiError(404, "Not Found")
        with open(full, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def control(self, parts, url):
        body = self.body()
        v = json.loads(body) if body else {}
        q = {k: x[-1] for k, x in urllib.parse.parse_qs(url.query).items()}
        what = parts[0] if parts else ""
        if what == "person":
            with LOCK:
                for uid, p in S["people"].items():
                    if p["name"] == v["name"]:
                        return self.answer(200, {"id": int(uid)})
                uid = S["next_user"]
                S["next_user"] += 1
                S["people"][str(uid)] = {"name": v["name"]}
                save()
                return self.answer(200, {"id": uid})
        if what == "group":
            with LOCK:
                for gid, g in S["groups"].items():
                    if g["title"] == v["title"]:
                        break
                else:
                    gid = str(-S["next_group"])
                    S["next_group"] += 1
                    S["groups"][gid] = {"title": v["title"], "members": []}
                for m in v.get("members", []):
                    if m not in S["groups"][gid]["members"]:
                        S["groups"][gid]["members"].append(m)
                save()
                return self.answer(200, {"id": int(gid)})
        if what == "say":
            # {"from": uid, "chat": chat_id, "text": ..., "entities": [...], "reply_to": mid,
            #  "document": {name, mime, b64} | "photo": {b64}, "extra": {...}}
            chat_id = int(v["chat"])
            fields = {}
            if "document" in v or "photo" in v:
                d = v.get("document") or v.get("photo")
                data = base64.b64decode(d["b64"])
                kind = "document" if "document" in v else "photo"
                fid = store_file(data, kind)
                if kind == "document":
                    fields["document"] = file_of(fid) | {"file_name": d["name"],
                                                         "mime_type": d["mime"]}
                else:
                    fields["photo"] = [file_of(fid) | {"width": 90, "height": 90},
                                       file_of(fid) | {"width": 800, "height": 800}]
                if v.get("text"):
                    fields["caption"] = v["text"]
            else:
                fields["text"] = v["text"]
                ents = list(v.get("entities") or [])
                if fields["text"].startswith("@"):
                    name = fields["text"][1:].split()[0].rstrip(":,")
                    ents.append({"type": "mention", "offset": 0, "length": len(name) + 1})
                if ents:
                    fields["entities"] = ents
            with LOCK:
                if v.get("reply_to"):
                    orig = S["messages"].get(f"{chat_id}/{v['reply_to']}")
                    if orig:
                        fields["reply_to_message"] = orig
                m = new_message(chat_id, int(v["from"]), **fields)
                m.update(v.get("extra", {}))
                save()
            uid = deliver(chat_id, int(v["from"]), m)
            return self.answer(200, {"message_id": m["message_id"], "update_id": uid})
        if what == "inject":
            # {"update": {...}} an update as is; {"raw": "..."} the next getUpdates' body
            if "raw" in v:
                FAULTS["raw"].append(v["raw"])
                with LOCK:
                    LOCK.notify_all()
                return self.answer(200, {})
            return self.answer(200, {"update_id": push_update(v["update"])})
        if what == "ratelimit":
            FAULTS["rate"][v["method"]] = [v.get("count", 1), v.get("retry_after", 1), 0]
            return self.answer(200, {})
        if what == "fail":
            FAULTS["status"][v["method"]] = [v["status"]] * v.get("count", 1)
            return self.answer(200, {})
        if what == "privacy":
            with LOCK:
                S["privacy"] = bool(v["on"])
                save()
            return self.answer(200, {})
        if what == "stats":
            return self.answer(200, {"poll_seen": POLL["seen"], "poll_calls": POLL["calls"],
                                     "rate": FAULTS["rate"], "sent": len(S["sent"]),
                                     "pending": len(S["updates"]), "actions": ACTIONS})
        if what == "sent":
            # long poll: what the bot sent after index `after`, up to `wait` seconds
            after, wait = int(q.get("after", 0)), float(q.get("wait", 0))
            deadline = time.time() + wait
            with LOCK:
                while len(S["sent"]) <= after and time.time() < deadline:
                    LOCK.wait(deadline - time.time())
                return self.answer(200, {"sent": S["sent"][after:]})
        if what == "blob":
            f = S["files"].get(q.get("file_id", ""))
            if not f:
                raise ApiError(404, "Not Found")
            return self.download("bot" + TOKEN, f["file_path"])
        raise ApiError(404, "Not Found")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()
