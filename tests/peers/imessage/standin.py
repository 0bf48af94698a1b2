#!/usr/bin/env python3
"""A strict stand-in of a BlueBubbles server's REST API (the parts an iMessage bot uses),
standard library only. See README.md for what it implements and what it does not.

    standin.py DIR PORT PASSWORD

DIR holds messages.json and chats.json (kept across restarts, as the Mac's chat.db is),
attachments/ and standin.log. The test drives people through /_standin/* endpoints.
"""
import base64
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, parse_qs, urlparse

DIR, PORT, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ATTACH = os.path.join(DIR, "attachments")
os.makedirs(ATTACH, exist_ok=True)
lock = threading.Lock()
STATE = os.path.join(DIR, "state.json")
state = {"messages": [], "chats": {}, "attachments": {}}
if os.path.exists(STATE):
    with open(STATE) as f:
        state = json.load(f)
fail_next = {}       # route -> [(status, message)]
typing = []          # chat GUIDs the bot showed typing in (Private API), in order
broken_next = []     # raw bodies to answer the next message/query with
last_poll = [0.0]
last_ts = [0]
DELIVERY_LATENCY = 0.3   # seconds before the person sees what the bot sent


def save():
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".tmp", STATE)


def log(*a):
    with open(os.path.join(DIR, "standin.log"), "a") as f:
        print(time.strftime("%H:%M:%S"), *a, file=f)


def now_ms():
    t = int(time.time() * 1000)
    last_ts[0] = max(t, last_ts[0] + 1)
    return last_ts[0]


def ok(data, message="Success", extra=None):
    body = {"status": 200, "message": message, "data": data}
    body.update(extra or {})
    return 200, body


def err(status, message, etype="Validation Error"):
    return status, {"status": status, "message": message,
                    "error": {"type": etype, "message": message}}


class Bad(Exception):
    def __init__(self, status, message, etype="Validation Error"):
        self.status, self.message, self.etype = status, message, etype


def handle_obj(address):
    return {"originalROWID": abs(hash(address)) % 100000, "address": address, "service": "iMessage",
            "country": "us", "uncanonicalizedId": None}


def chat_obj(guid):
    c = state["chats"][guid]
    return {"originalROWID": c["rowid"], "guid": guid, "style": 43 if ";+;" in guid else 45,
            "chatIdentifier": guid.split(";")[-1], "isArchived": False,
            "displayName": c.get("name", ""),
            "participants": [handle_obj(p) for p in c["members"]]}


def ensure_dm(handle):
    guid = "iMessage;-;" + handle
    if guid not in state["chats"]:
        state["chats"][guid] = {"rowid": len(state["chats"]) + 1, "members": [handle]}
    return guid


def message_obj(m, with_):
    out = {"originalROWID": m["rowid"], "guid": m["guid"], "text": m["text"],
           "attributedBody": None, "handle": None, "handleId": 0, "otherHandle": 0,
           "subject": None, "error": 0, "dateCreated": m["ts"], "dateRead": None,
           "dateDelivered": None, "isFromMe": m["fromMe"], "isArchived": False,
           "itemType": m.get("itemType", 0), "groupTitle": None, "groupActionType": 0,
           "associatedMessageGuid": m.get("assocGuid"),
           "associatedMessageType": m.get("assocType"), "expressiveSendStyleId": None,
           "threadOriginatorGuid": m.get("replyTo"), "hasPayloadData": False,
           "isAudioMessage": False, "partCount": 1, "futureFieldNobodyKnows": {"v": 2}}
    if not m["fromMe"]:
        out["handleId"] = abs(hash(m["from"])) % 100000
        if "handle" in with_:
            out["handle"] = handle_obj(m["from"])
    if "chat" in with_ or "chats" in with_:
        out["chats"] = [chat_obj(m["chat"])]
    if "attachment" in with_ or "attachments" in with_:
        out["attachments"] = [dict(state["attachments"][a], originalROWID=1) for a in m.get("attachments", [])]
    return out


def add_message(frm, chat, text, from_me=False, attachments=(), **extra):
    with lock:
        m = {"rowid": len(state["messages"]) + 1, "guid": str(uuid.uuid4()).upper(),
             "from": frm, "chat": chat, "text": text, "ts": now_ms(), "fromMe": from_me,
             "attachments": list(attachments), "at": time.time()}
        m.update(extra)
        state["messages"].append(m)
        save()
        return m


def check_chat(guid):
    if not isinstance(guid, str) or guid.count(";") != 2 or guid.split(";")[1] not in "+-" \
            or guid.split(";")[0] not in ("iMessage", "SMS"):
        raise Bad(400, "Invalid chatGuid: %r" % (guid,))
    if guid.split(";")[1] == "-":
        return ensure_dm(guid.split(";")[2])
    if guid not in state["chats"]:
        raise Bad(404, "Chat does not exist!", "Database Error")
    return guid


def check_method(method, private_needed):
    if method is None:
        method = "apple-script"
    if method not in ("apple-script", "private-api"):
        raise Bad(400, "Invalid method: %r" % (method,))
    if private_needed and method != "private-api":
        raise Bad(400, "Replies require the Private API (method private-api)")
    return method


def send_text(body):
    if not isinstance(body, dict):
        raise Bad(400, "Body must be a JSON object")
    for k in ("chatGuid", "tempGuid", "message"):
        if not isinstance(body.get(k), str):
            raise Bad(400, "Message body is missing %s" % k)
    if body["message"] == "":
        raise Bad(400, "Message cannot be empty")
    reply = body.get("selectedMessageGuid")
    check_method(body.get("method"), reply is not None)
    if reply is not None and not any(m["guid"] == reply for m in state["messages"]):
        raise Bad(400, "selectedMessageGuid does not exist")
    if "partIndex" in body and not isinstance(body["partIndex"], int):
        raise Bad(400, "partIndex must be a number")
    chat = check_chat(body["chatGuid"])
    m = add_message(None, chat, body["message"], from_me=True, replyTo=reply, tempGuid=body["tempGuid"])
    return ok(message_obj(m, ["chats"]), "Message sent!")


def parse_multipart(ctype, raw):
    if "boundary=" not in ctype:
        raise Bad(400, "Expected multipart/form-data")
    boundary = ctype.split("boundary=", 1)[1].strip().strip('"').encode()
    fields, files = {}, {}
    for part in raw.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        disp = {}
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    k, _, v = item.strip().partition("=")
                    disp[k] = v.strip('"')
            if line.lower().startswith("content-type:"):
                disp["ctype"] = line.split(":", 1)[1].strip()
        if "filename" in disp:
            files[disp["name"]] = (disp["filename"], disp.get("ctype", "application/octet-stream"), data)
        else:
            fields[disp.get("name")] = data.decode()
    return fields, files


def send_attachment(ctype, raw):
    fields, files = parse_multipart(ctype, raw)
    for k in ("chatGuid", "tempGuid", "name"):
        if not fields.get(k):
            raise Bad(400, "Attachment body is missing %s" % k)
    if "attachment" not in files:
        raise Bad(400, "No attachment file given")
    check_method(fields.get("method"), False)
    chat = check_chat(fields["chatGuid"])
    fname, mime, data = files["attachment"]
    aguid = "at_" + uuid.uuid4().hex
    with open(os.path.join(ATTACH, aguid), "wb") as f:
        f.write(data)
    with lock:
        state["attachments"][aguid] = {"guid": aguid, "uti": "public.data", "mimeType": mime,
                                       "transferName": fields["name"], "totalBytes": len(data)}
    m = add_message(None, chat, "\ufffc", from_me=True, attachments=[aguid])
    return ok(message_obj(m, ["chats", "attachment"]), "Attachment sent!")


def query(body):
    if not isinstance(body, dict):
        raise Bad(400, "Body must be a JSON object")
    limit = body.get("limit", 1000)
    offset = body.get("offset", 0)
    after, before = body.get("after"), body.get("before")
    for k, v in (("limit", limit), ("offset", offset)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise Bad(400, "%s must be a positive number" % k)
    for k, v in (("after", after), ("before", before)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise Bad(400, "%s must be a timestamp in ms" % k)
    sort = body.get("sort", "DESC")
    if sort not in ("ASC", "DESC"):
        raise Bad(400, "sort must be ASC or DESC")
    with_ = body.get("with", [])
    if not isinstance(with_, list):
        raise Bad(400, "with must be a list")
    chat = body.get("chatGuid")
    with lock:
        ms = [m for m in state["messages"]
              if (after is None or m["ts"] > after) and (before is None or m["ts"] < before)
              and (chat is None or m["chat"] == chat)]
    ms.sort(key=lambda m: m["ts"], reverse=(sort == "DESC"))
    page = ms[offset:offset + limit]
    last_poll[0] = time.time()
    return ok([message_obj(m, with_) for m in page], extra={
        "metadata": {"offset": offset, "limit": limit, "total": len(ms), "count": len(page)}})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj, ctype="application/json"):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self, verb):
        url = urlparse(self.path)
        path, qs = url.path, parse_qs(url.query)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if path.startswith("/_standin/"):
            try:
                return self.reply(200, control(path[len("/_standin/"):], json.loads(raw or b"{}"), qs))
            except (KeyError, ValueError, TypeError) as e:
                return self.reply(400, {"error": repr(e)})
        if not path.startswith("/api/v1/"):
            return self.reply(*err(404, "Not found", "Not Found"))
        if qs.get("password", qs.get("guid", [None]))[0] != PASSWORD:
            log(verb, path, "401")
            return self.reply(*err(401, "Unauthorized", "Authentication Error"))
        key = verb + " " + path
        with lock:
            queued = fail_next.get(key)
            failure = queued.pop(0) if queued else None
        if failure:
            return self.reply(*err(failure[0], failure[1], "Server Error"))
        try:
            status, body = self.api(verb, path, raw)
        except Bad as e:
            status, body = err(e.status, e.message, e.etype)
        except ValueError:
            status, body = err(400, "Invalid JSON body")
        log(verb, path, status)
        if isinstance(body, bytes):
            return self.reply(status, body, "application/octet-stream")
        self.reply(status, body)

    def api(self, verb, path, raw):
        parts = path.strip("/").split("/")[2:]
        if verb == "GET" and parts == ["ping"]:
            return ok("pong", "Ping received!")
        if verb == "GET" and parts == ["server", "info"]:
            return ok({"computer_id": "standin", "os_version": "14.5", "server_version": "1.9.9",
                       "private_api": True, "helper_connected": True, "proxy_service": "lan-url",
                       "detected_icloud": "bot@icloud.test"})
        if verb == "POST" and parts == ["message", "text"]:
            return send_text(json.loads(raw))
        if verb == "POST" and parts == ["message", "attachment"]:
            return send_attachment(self.headers.get("Content-Type", ""), raw)
        if parts == ["message", "query"] and verb == "POST":
            with lock:
                broken = broken_next.pop(0) if broken_next else None
            if broken is not None:
                return 200, broken.encode()
            return query(json.loads(raw))
        if verb in ("POST", "DELETE") and len(parts) == 3 and parts[0] == "chat" \
                and parts[2] == "typing":
            # Start or stop the typing indicator (Private API); the chat must exist.
            guid = check_chat(unquote(parts[1]))
            with lock:
                if verb == "POST":
                    typing.append(guid)
            return ok(None, "Successfully started typing!" if verb == "POST"
                      else "Successfully stopped typing!")
        if verb == "GET" and len(parts) == 3 and parts[0] == "attachment" and parts[2] == "download":
            if parts[1] not in state["attachments"]:
                raise Bad(404, "Attachment does not exist!", "Database Error")
            with open(os.path.join(ATTACH, parts[1]), "rb") as f:
                return 200, f.read()
        raise Bad(404, "Route not found", "Not Found")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def control(what, c, qs):
    if what == "typing":
        with lock:
            return list(typing)
    if what == "group":
        with lock:
            guid = "iMessage;+;chat%d" % (100000 + len(state["chats"]))
            state["chats"][guid] = {"rowid": len(state["chats"]) + 1, "name": c["name"], "members": []}
            save()
        return {"chatGuid": guid}
    if what == "join":
        with lock:
            members = state["chats"][c["chatGuid"]]["members"]
            if c["handle"] not in members:
                members.append(c["handle"])
            save()
        return {}
    if what == "say":
        chat = c.get("chatGuid")
        with lock:
            if chat is None:
                chat = ensure_dm(c["from"])
            elif c["from"] not in state["chats"][chat]["members"]:
                raise ValueError("not a member of the chat")
        extra = {k: c[k] for k in ("replyTo", "assocType", "assocGuid", "itemType") if k in c}
        m = add_message(c["from"], chat, c.get("text"), **extra)
        return {"guid": m["guid"], "dateCreated": m["ts"]}
    if what == "file":
        aguid = "at_" + uuid.uuid4().hex
        data = base64.b64decode(c["data"])
        with open(os.path.join(ATTACH, aguid), "wb") as f:
            f.write(data)
        with lock:
            state["attachments"][aguid] = {"guid": aguid, "uti": "public.png", "mimeType": c["mime"],
                                           "transferName": c["name"], "totalBytes": len(data)}
            chat = ensure_dm(c["from"])
        m = add_message(c["from"], chat, "\ufffc", attachments=[aguid])
        return {"guid": m["guid"]}
    if what == "sent":
        with lock:
            out = []
            # A message reaches the person's phone a moment after the server answered.
            seen = time.time() - DELIVERY_LATENCY
            for m in state["messages"]:
                if not m["fromMe"]:
                    continue
                if m.get("at", 0) > seen:
                    break
                files = []
                for a in m.get("attachments", []):
                    with open(os.path.join(ATTACH, a), "rb") as f:
                        files.append({"name": state["attachments"][a]["transferName"],
                                      "data": base64.b64encode(f.read()).decode()})
                out.append({"guid": m["guid"], "chatGuid": m["chat"], "text": m["text"],
                            "replyTo": m.get("replyTo"), "attachments": files})
        return out
    if what == "state":
        return {"polled_ago": time.time() - last_poll[0] if last_poll[0] else None}
    if what == "broken":
        with lock:
            broken_next.append(c["body"])
        return {}
    if what == "fail":
        with lock:
            fail_next.setdefault(c["route"], []).append((c["status"], c["message"]))
        return {}
    raise KeyError(what)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    log("listening on", PORT)
    server.serve_forever()
