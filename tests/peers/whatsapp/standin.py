#!/usr/bin/env python3
"""A strict local stand-in of the WhatsApp Business Cloud API (Graph API) and of Meta's
webhook sender, standard library only. See README.md for what it implements and from
which documentation. State is kept in DIR/state.json so a restart keeps it.

    standin.py DIR PORT ACCESS_TOKEN APP_SECRET PHONE_NUMBER_ID
"""
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, PORT, TOKEN, APP_SECRET, PNID = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
MAX_TEXT = 4096
LOCK = threading.Condition()
STATE_PATH = os.path.join(DIR, "state.json")
WABA_ID = "102290129340398"
DISPLAY = "15550783881"

if os.path.exists(STATE_PATH):
    with open(STATE_PATH) as f:
        S = json.load(f)
else:
    S = {"next": 1, "people": {}, "sent": [], "media": {}, "queue": [], "webhook": None,
         "verify_token": None, "last_inbound": {}, "closed": []}
FAULTS = {"messages": []}
STATS = {"deliveries": 0, "delivery_failures": 0, "served_faults": {}, "probes": 0}


def save():
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(S, f)
    os.replace(tmp, STATE_PATH)


def next_id():
    S["next"] += 1
    return S["next"]


def wamid():
    return "wamid.HBgL" + base64.b64encode(f"standin-{next_id()}-{time.time()}".encode()).decode().rstrip("=")


class GraphError(Exception):
    def __init__(self, status, code, message, etype="OAuthException", subcode=None):
        super().__init__(message)
        self.status, self.code, self.message, self.etype, self.subcode = status, code, message, etype, subcode

    def body(self):
        e = {"message": self.message, "type": self.etype, "code": self.code,
             "fbtrace_id": "A" + hashlib.sha1(self.message.encode()).hexdigest()[:22]}
        if self.subcode is not None:
            e["error_subcode"] = self.subcode
        return {"error": e}


def param_error(msg):
    return GraphError(400, 100, "(#100) " + msg, "OAuthException")


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def notification(messages, contacts=None, statuses=None, extra_value=None):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID}}
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    if extra_value:
        value.update(extra_value)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]}


def post_webhook(body, signature, timeout=10):
    url = S["webhook"]
    if not url:
        return None
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": signature,
        "User-Agent": "facebookexternalua"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


def sender():
    """Meta's side: deliver queued notifications in order, each until it gets a 200."""
    while True:
        with LOCK:
            while not S["queue"] or not S["webhook"]:
                LOCK.wait(0.5)
            item = S["queue"][0]
        body = item["body"].encode()
        status = post_webhook(body, item.get("signature") or sign(body))
        with LOCK:
            STATS["deliveries"] += 1
            if status == 200:
                S["queue"].pop(0)
                save()
                LOCK.notify_all()
            else:
                STATS["delivery_failures"] += 1
        if status != 200:
            time.sleep(0.3)


def person_name(wa_id):
    return S["people"].get(wa_id, {}).get("name", "Someone")


def queue_message(wa_id, message):
    message.setdefault("from", wa_id)
    message.setdefault("id", wamid())
    message.setdefault("timestamp", str(int(time.time())))
    body = notification([message], contacts=[{"profile": {"name": person_name(wa_id)}, "wa_id": wa_id}])
    S["last_inbound"][wa_id] = time.time()
    S["queue"].append({"body": json.dumps(body)})
    save()
    LOCK.notify_all()
    return message["id"]


def store_media(data, mime, name=None):
    mid = str(1000000000000000 + next_id())
    S["media"][mid] = {"b64": base64.b64encode(data).decode(), "mime_type": mime,
                       "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
                       "filename": name}
    return mid


def check_auth(headers):
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise GraphError(400, 2500, "An active access token must be used to query information about the current user.")
    if not hmac.compare_digest(auth[7:].encode(), TOKEN.encode()):
        raise GraphError(401, 190, "Error validating access token: Session has expired or the token is invalid.", subcode=463)


def take_fault():
    if FAULTS["messages"]:
        f = FAULTS["messages"][0]
        f["count"] -= 1
        if f["count"] <= 0:
            FAULTS["messages"].pop(0)
        STATS["served_faults"][str(f["code"])] = STATS["served_faults"].get(str(f["code"]), 0) + 1
        return f
    return None


def send_message(body):
    if not isinstance(body, dict):
        raise param_error("The parameter messaging_product is required.")
    if body.get("messaging_product") != "whatsapp":
        raise param_error("The parameter messaging_product is required.")
    to = body.get("to")
    if not isinstance(to, str) or not to:
        raise param_error("The parameter to is required.")
    if body.get("recipient_type", "individual") != "individual":
        raise param_error("Param recipient_type must be one of {INDIVIDUAL} - got \"%s\"." % body.get("recipient_type"))
    mtype = body.get("type", "text")
    if mtype not in ("text", "image", "document"):
        raise param_error("Param type must be one of {TEXT, IMAGE, DOCUMENT} - got \"%s\"." % mtype)
    if not isinstance(body.get(mtype), dict):
        raise param_error(f"The parameter {mtype} is required.")
    unknown = set(body) - {"messaging_product", "recipient_type", "to", "type", "context", mtype, "biz_opaque_callback_data"}
    if unknown:
        raise param_error("Unexpected key \"%s\" on param." % sorted(unknown)[0])
    obj = body[mtype]
    if mtype == "text":
        text = obj.get("body")
        if not isinstance(text, str) or not text:
            raise param_error("The parameter text['body'] is required.")
        if len(text) > MAX_TEXT:
            raise param_error("Param text['body'] must be at most 4096 characters long.")
        if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
            raise param_error("Param text['preview_url'] must be a boolean.")
    else:
        mid = obj.get("id")
        if not isinstance(mid, str) or mid not in S["media"]:
            raise GraphError(400, 131053, "Media upload error", "OAuthException")
    if "context" in body:
        c = body["context"]
        if not isinstance(c, dict) or not isinstance(c.get("message_id"), str):
            raise param_error("Param context['message_id'] must be a string.")
    f = take_fault()
    if f:
        code = f["code"]
        if code == 190:
            raise GraphError(401, 190, "Error validating access token: Session has expired.", subcode=463)
        if code == 131047:
            raise GraphError(400, 131047, "Re-engagement message", "OAuthException")
        raise GraphError(400 if code != 4 else 403, code, "(#%d) Rate limit hit" % code, "OAuthException")
    if to not in S["people"]:
        raise GraphError(400, 131026, "Message undeliverable", "OAuthException")
    if to in S["closed"] or time.time() - S["last_inbound"].get(to, 0) > 24 * 3600:
        raise GraphError(400, 131047, "Re-engagement message", "OAuthException")
    mid = wamid()
    S["sent"].append({"id": mid, "at": time.time(), "message": body})
    save()
    LOCK.notify_all()
    return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": mid}]}


def parse_multipart(headers, data):
    ctype = headers.get("Content-Type", "")
    if not ctype.startswith("multipart/form-data"):
        raise param_error("The parameter file is required.")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + data)
    fields, file = {}, None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            file = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b"")
        else:
            fields[name] = (part.get_payload(decode=True) or b"").decode()
    return fields, file


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    def reply(self, status, obj=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self, method):
        url = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        data = self.body() if method == "POST" else b""
        try:
            if url.path.startswith("/_standin/"):
                return self.control(url.path[len("/_standin/"):], q, data)
            if url.path.startswith("/_media/"):
                check_auth(self.headers)
                with LOCK:
                    m = S["media"].get(url.path[len("/_media/"):])
                if not m:
                    return self.reply(404, raw=b"Not Found", ctype="text/plain")
                return self.reply(200, raw=base64.b64decode(m["b64"]), ctype=m["mime_type"])
            mt = re.fullmatch(r"/v\d+\.\d+/([^/]+)(/[a-z_]+)?", url.path)
            if not mt:
                raise GraphError(400, 2500, "Unknown path components: %s" % url.path)
            check_auth(self.headers)
            node, edge = mt.group(1), mt.group(2)
            with LOCK:
                if method == "GET" and node == PNID and edge is None:
                    STATS["probes"] += 1
                    return self.reply(200, {"verified_name": "Clawos Test", "code_verification_status": "VERIFIED",
                                            "display_phone_number": "+1 555-078-3881", "quality_rating": "GREEN",
                                            "id": PNID})
                if method == "GET" and edge is None and node in S["media"]:
                    m = S["media"][node]
                    return self.reply(200, {"url": f"http://127.0.0.1:{PORT}/_media/{node}?ext=1&hash=x",
                                            "mime_type": m["mime_type"], "sha256": m["sha256"],
                                            "file_size": m["file_size"], "id": node,
                                            "messaging_product": "whatsapp"})
                if method == "POST" and node == PNID and edge == "/messages":
                    try:
                        body = json.loads(data)
                    except ValueError:
                        raise param_error("The request body is not JSON.")
                    return self.reply(200, send_message(body))
                if method == "POST" and node == PNID and edge == "/media":
                    fields, file = parse_multipart(self.headers, data)
                    if fields.get("messaging_product") != "whatsapp":
                        raise param_error("The parameter messaging_product is required.")
                    if not file:
                        raise param_error("The parameter file is required.")
                    if not fields.get("type"):
                        raise param_error("The parameter type is required.")
                    mid = store_media(file[2], fields["type"], file[0])
                    save()
                    return self.reply(200, {"id": mid})
            raise GraphError(400, 100, "Unsupported %s request. Object with ID '%s' does not exist, cannot be "
                             "loaded due to missing permissions, or does not support this operation." % (method.lower(), node),
                             "GraphMethodException", 33)
        except GraphError as e:
            return self.reply(e.status, e.body())

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def control(self, what, q, data):
        args = json.loads(data) if data else {}
        with LOCK:
            if what == "stats":
                return self.reply(200, dict(STATS, sent=len(S["sent"]), queued=len(S["queue"])))
            if what == "webhook":
                S["webhook"], S["verify_token"] = args["url"], args.get("verify_token")
                save()
                return self.reply(200, {})
            if what == "person":
                wa = str(15550100000 + next_id())
                S["people"][wa] = {"name": args.get("name", "Someone")}
                save()
                return self.reply(200, {"wa_id": wa})
            if what == "fault":
                FAULTS["messages"].append({"code": int(args["code"]), "count": int(args.get("count", 1))})
                return self.reply(200, {})
            if what == "close_window":
                S["closed"].append(args["wa_id"])
                save()
                return self.reply(200, {})
            if what == "say":
                wa = args["from"]
                if "raw_message" in args:
                    m = dict(args["raw_message"])
                elif "file" in args:
                    f = args["file"]
                    data = base64.b64decode(f["b64"])
                    mid = store_media(data, f["mime"], f["name"])
                    kind = "image" if f["mime"] in ("image/jpeg", "image/png") else "document"
                    obj = {"id": mid, "mime_type": f["mime"], "sha256": S["media"][mid]["sha256"]}
                    if kind == "document":
                        obj["filename"] = f["name"]
                    if f.get("caption"):
                        obj["caption"] = f["caption"]
                    m = {"type": kind, kind: obj}
                else:
                    m = {"type": "text", "text": {"body": args["text"]}}
                if args.get("context"):
                    m["context"] = {"from": DISPLAY, "id": args["context"]}
                return self.reply(200, {"id": queue_message(wa, m)})
            if what == "notify":
                # A whole notification, queued as is (retried until 200), or posted once
                # with `once` (the status is answered; a wrong signature with `bad_signature`).
                body = args["raw"].encode() if "raw" in args else json.dumps(args["body"]).encode()
                sig = "sha256=" + "0" * 64 if args.get("bad_signature") else sign(body)
                if args.get("once"):
                    LOCK.release()
                    try:
                        status = post_webhook(body, sig)
                    finally:
                        LOCK.acquire()
                    return self.reply(200, {"status": status})
                S["queue"].append({"body": body.decode(), "signature": sig})
                save()
                LOCK.notify_all()
                return self.reply(200, {})
            if what == "verify":
                url = S["webhook"] + "?" + urllib.parse.urlencode({
                    "hub.mode": "subscribe", "hub.verify_token": args.get("verify_token", S["verify_token"]),
                    "hub.challenge": "1158201444"})
                LOCK.release()
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        status, text = r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    status, text = e.code, ""
                except Exception as e:
                    status, text = None, str(e)
                finally:
                    LOCK.acquire()
                return self.reply(200, {"status": status, "ok": status == 200 and text == "1158201444"})
            if what == "drained":
                end = time.time() + float(q.get("wait", args.get("wait", 10)))
                while S["queue"] and time.time() < end:
                    LOCK.wait(0.2)
                return self.reply(200, {"queued": len(S["queue"])})
            if what == "sent":
                after, end = int(q.get("after", 0)), time.time() + float(q.get("wait", 0))
                while len(S["sent"]) <= after and time.time() < end:
                    LOCK.wait(0.2)
                return self.reply(200, {"sent": S["sent"][after:]})
            if what == "blob":
                m = S["media"].get(q.get("id", ""))
                if not m:
                    return self.reply(404, {"error": "no such media"})
                return self.reply(200, raw=base64.b64decode(m["b64"]), ctype=m["mime_type"])
        return self.reply(404, {"error": "unknown control " + what})


if __name__ == "__main__":
    threading.Thread(target=sender, daemon=True).start()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
