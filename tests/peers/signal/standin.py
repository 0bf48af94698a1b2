#!/usr/bin/env python3
"""A strict stand-in of `signal-cli -a ACCOUNT daemon --http HOST:PORT` (signal-cli-jsonrpc(5)),
standard library only. See README.md for what it implements and what it does not.

    standin.py DIR PORT ACCOUNT

DIR holds attachments/ (what people send, as signal-cli's attachments folder) and
standin.log. The test drives people through /_standin/* control endpoints.
"""
import base64
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, PORT, ACCOUNT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ATTACH = os.path.join(DIR, "attachments")
os.makedirs(ATTACH, exist_ok=True)
ACCOUNT_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "signal:" + ACCOUNT))

lock = threading.Condition()
# Events: (id, event name, data string). Ids grow across restarts (boot time based).
next_id = int(time.time() * 1000) * 1000
events = []          # the last 1000 events, as signal-cli keeps them
undelivered = []     # events no client has been sent yet
clients = []         # live SSE connections: dicts {"sent": last index, "drop": bool}
sent = []            # what the account sent: dicts
groups = {}          # groupId -> {"name", "members"}, kept in DIR/groups.json
GROUPS = os.path.join(DIR, "groups.json")
if os.path.exists(GROUPS):
    with open(GROUPS) as f:
        groups = json.load(f)
fail_next = {}       # method -> [error objects]
typing = []          # sendTyping calls: {"recipient", "groupId", "stop"}
last_ts = 0
DELIVERY_LATENCY = 0.3   # seconds before the person sees what the account sent


def log(*a):
    with open(os.path.join(DIR, "standin.log"), "a") as f:
        print(time.strftime("%H:%M:%S"), *a, file=f)


def now_ms():
    global last_ts
    t = int(time.time() * 1000)
    last_ts = max(t, last_ts + 1)
    return last_ts


def is_recipient(r):
    if not isinstance(r, str):
        return False
    if r.startswith("+"):
        return r[1:].isdigit() and 6 <= len(r) - 1 <= 15
    try:
        uuid.UUID(r)
        return True
    except ValueError:
        return False


def push(data, name="receive"):
    """Queue one event for the SSE clients (`data` a dict, or a raw string)."""
    global next_id
    with lock:
        next_id += 1
        text = data if isinstance(data, str) else json.dumps(data)
        ev = (str(next_id), name, text)
        events.append(ev)
        del events[:-1000]
        if not clients:
            undelivered.append(ev)
        lock.notify_all()
        return ev[0]


def person(number):
    return {
        "source": number, "sourceNumber": number,
        "sourceUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "signal:" + number)),
        "sourceName": "Person " + number[-4:], "sourceDevice": 1,
    }


def envelope(frm, **body):
    ts = now_ms()
    env = dict(person(frm), timestamp=ts, serverReceivedTimestamp=ts,
               serverDeliveredTimestamp=ts, **body)
    return {"envelope": env, "account": ACCOUNT}, ts


def data_message(frm, text=None, group=None, mentions=None, attachments=None, quote=None):
    ts = now_ms()
    dm = {"timestamp": ts, "message": text, "expiresInSeconds": 0, "viewOnce": False,
          "mentions": mentions or [], "attachments": attachments or [], "contacts": []}
    if group:
        dm["groupInfo"] = {"groupId": group, "groupName": groups.get(group, {}).get("name"),
                           "revision": 1, "type": "DELIVER"}
    if quote:
        dm["quote"] = quote
    env = dict(person(frm), timestamp=ts, serverReceivedTimestamp=ts,
               serverDeliveredTimestamp=ts, dataMessage=dm)
    return {"envelope": env, "account": ACCOUNT}, ts


class RpcError(Exception):
    def __init__(self, code, message):
        self.code, self.message = code, message


def bad(msg):
    raise RpcError(-32602, msg)


def check_account(params):
    acc = params.get("account")
    if acc is not None and acc != ACCOUNT:
        raise RpcError(-32602, "Specified account does not exist")


def rpc_send(p):
    rec, gid = p.get("recipient"), p.get("groupId")
    if rec is not None and gid is not None:
        bad("Invalid params: recipient and groupId are mutually exclusive")
    if rec is None and gid is None:
        bad("Invalid params: No recipients given")
    if isinstance(rec, str):
        rec = [rec]
    if rec is not None:
        if not isinstance(rec, list) or not rec or not all(is_recipient(r) for r in rec):
            raise RpcError(-1, "Failed to send message: invalid recipient " + json.dumps(rec))
    if gid is not None:
        if not isinstance(gid, str):
            bad("Invalid params: groupId must be a string")
        g = groups.get(gid)
        if g is None or ACCOUNT not in g["members"]:
            raise RpcError(-1, "Failed to send message: Invalid group id")
    msg = p.get("message")
    if msg is not None and not isinstance(msg, str):
        bad("Invalid params: message must be a string")
    atts = p.get("attachments", p.get("attachment"))
    if isinstance(atts, str):
        atts = [atts]
    if atts is not None and (not isinstance(atts, list) or not all(isinstance(a, str) for a in atts)):
        bad("Invalid params: attachments must be file paths")
    if not msg and not atts:
        raise RpcError(-1, "Failed to send message: No message given")
    qt, qa = p.get("quoteTimestamp"), p.get("quoteAuthor")
    if qt is not None and (not isinstance(qt, int) or isinstance(qt, bool)):
        bad("Invalid params: quoteTimestamp must be a number")
    if qa is not None and not is_recipient(qa):
        bad("Invalid params: quoteAuthor must be a number or uuid")
    files = []
    for a in atts or []:
        try:
            with open(a, "rb") as f:
                files.append({"name": os.path.basename(a),
                              "data": base64.b64encode(f.read()).decode()})
        except OSError as e:
            raise RpcError(-1, "Failed to send message: Invalid attachments: %s" % e)
    ts = now_ms()
    with lock:
        sent.append({"n": len(sent), "recipient": rec, "groupId": gid, "message": msg or "",
                     "attachments": files, "quoteTimestamp": qt, "quoteAuthor": qa,
                     "timestamp": ts, "at": time.time()})
    targets = rec or groups[gid]["members"]
    return {"timestamp": ts, "results": [
        {"recipientAddress": {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "signal:" + t)),
                              "number": t}, "type": "SUCCESS"} for t in targets]}


def rpc(method, p):
    if method == "version":
        return {"version": "0.13.stand-in"}
    check_account(p)
    if method == "send":
        return rpc_send(p)
    if method == "listGroups":
        return [{"id": gid, "name": g["name"], "description": "", "isMember": ACCOUNT in g["members"],
                 "isBlocked": False, "members": [{"number": m} for m in g["members"]],
                 "pendingMembers": [], "requestingMembers": [], "admins": [], "groupInviteLink": None}
                for gid, g in groups.items()]
    if method == "sendTyping":
        if p.get("recipient") is None and p.get("groupId") is None:
            bad("Invalid params: No recipients given")
        with lock:
            typing.append({"recipient": p.get("recipient"), "groupId": p.get("groupId"),
                           "stop": bool(p.get("stop"))})
        return {}
    if method == "sendReaction":
        for k in ("emoji", "targetAuthor", "targetTimestamp"):
            if k not in p:
                bad("Invalid params: %s missing" % k)
        return {"timestamp": now_ms()}
    raise RpcError(-32601, "Method not implemented")


def answer_one(req):
    if not isinstance(req, dict):
        return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "request must be an object", "data": None}, "id": None}
    rid = req.get("id")
    if req.get("jsonrpc") != "2.0":
        return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "jsonrpc field must be 2.0", "data": None}, "id": rid}
    method = req.get("method")
    if not isinstance(method, str):
        return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "method field must be set", "data": None}, "id": rid}
    params = req.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return {"jsonrpc": "2.0", "error": {"code": -32602, "message": "params must be an object", "data": None}, "id": rid}
    try:
        with lock:
            queued = fail_next.get(method)
            err = queued.pop(0) if queued else None
        if err:
            raise RpcError(err.get("code", -1), err.get("message", "Failed"))
        result = rpc(method, params)
        log("rpc", method, "ok")
        return {"jsonrpc": "2.0", "result": result, "id": rid}
    except RpcError as e:
        log("rpc", method, "error", e.code, e.message)
        return {"jsonrpc": "2.0", "error": {"code": e.code, "message": e.message, "data": None}, "id": rid}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj=None, ctype="application/json"):
        body = b"" if obj is None else (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/api/v1/check":
            return self.reply(200)
        if path == "/api/v1/events":
            return self.sse()
        if path == "/_standin/sent":
            # A message reaches the person's phone a moment after the daemon answered.
            with lock:
                seen = time.time() - DELIVERY_LATENCY
                return self.reply(200, [m for m in sent if m["at"] <= seen])
        if path == "/_standin/state":
            with lock:
                return self.reply(200, {"clients": len(clients), "undelivered": len(undelivered),
                                        "groups": groups})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        path = self.path.split("?")[0]
        raw = self.body()
        if path == "/api/v1/rpc":
            try:
                req = json.loads(raw)
            except ValueError:
                return self.reply(200, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error", "data": None}, "id": None})
            if isinstance(req, list):
                return self.reply(200, [answer_one(r) for r in req])
            return self.reply(200, answer_one(req))
        if path.startswith("/_standin/"):
            try:
                return self.reply(200, control(path[len("/_standin/"):], json.loads(raw or b"{}")))
            except (KeyError, ValueError, TypeError) as e:
                return self.reply(400, {"error": repr(e)})
        self.reply(404, {"error": "not found"})

    def sse(self):
        last = self.headers.get("Last-Event-ID")
        me = {"drop": False}
        with lock:
            ids = [e[0] for e in events]
            if last is not None:
                backlog = events[ids.index(last) + 1:] if last in ids else list(events)
            else:
                backlog = list(undelivered)
            undelivered.clear()
            clients.append(me)
            upto = int(events[-1][0]) if events else 0
        log("sse connect, last id", last, "backlog", len(backlog))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        try:
            for ev in backlog:
                self.write_event(ev)
            while True:
                with lock:
                    lock.wait_for(lambda: me["drop"] or (events and int(events[-1][0]) > upto),
                                  timeout=15)
                    if me["drop"]:
                        break
                    new = [e for e in events if int(e[0]) > upto]
                    if new:
                        upto = int(new[-1][0])
                if not new:
                    self.wfile.write(b":\n\n")
                    self.wfile.flush()
                for ev in new:
                    self.write_event(ev)
        except OSError:
            pass
        finally:
            with lock:
                if me in clients:
                    clients.remove(me)
            log("sse gone")

    def write_event(self, ev):
        lines = "".join("data:%s\n" % l for l in ev[2].split("\n"))
        self.wfile.write(("id:%s\nevent:%s\n%s\n" % (ev[0], ev[1], lines)).encode())
        self.wfile.flush()


def save_groups():
    with open(GROUPS + ".tmp", "w") as f:
        json.dump(groups, f)
    os.replace(GROUPS + ".tmp", GROUPS)


def control(what, c):
    """The test's side: people, groups, failures, raw payloads."""
    if what == "group":
        gid = base64.b64encode(uuid.uuid4().bytes * 2).decode()
        with lock:
            groups[gid] = {"name": c["name"], "members": list(c.get("members", [])) + [ACCOUNT]}
            save_groups()
        return {"groupId": gid}
    if what == "join":
        with lock:
            g = groups[c["groupId"]]
            if c["number"] not in g["members"]:
                g["members"].append(c["number"])
                save_groups()
        return {}
    if what == "say":
        group = c.get("groupId")
        if group is not None and c["from"] not in groups[group]["members"]:
            raise ValueError("not a member of the group")
        payload, ts = data_message(c["from"], c.get("text"), group, c.get("mentions"),
                                   None, c.get("quote"))
        return {"timestamp": ts, "id": push(payload)}
    if what == "file":
        aid = uuid.uuid4().hex[:20] + os.path.splitext(c["name"])[1]
        data = base64.b64decode(c["data"])
        with open(os.path.join(ATTACH, aid), "wb") as f:
            f.write(data)
        size = c.get("size", len(data))
        att = {"contentType": c["mime"], "filename": c["name"], "id": aid, "size": size,
               "width": None, "height": None, "caption": None, "uploadTimestamp": now_ms()}
        payload, ts = data_message(c["from"], c.get("text"), c.get("groupId"), None, [att])
        return {"timestamp": ts, "id": push(payload)}
    if what == "noise":
        frm = c["from"]
        for body in (
            {"receiptMessage": {"when": now_ms(), "isDelivery": True, "isRead": False,
                                "isViewed": False, "timestamps": [1]}},
            {"typingMessage": {"action": "STARTED", "timestamp": now_ms()}},
            {"syncMessage": {"sentMessage": {"destination": frm, "destinationNumber": frm,
                                             "timestamp": now_ms(), "message": "from my phone"}}},
            {"dataMessage": {"timestamp": now_ms(), "reaction": {"emoji": "👍", "targetAuthor": ACCOUNT,
                             "targetAuthorNumber": ACCOUNT, "targetSentTimestamp": 1, "isRemove": False}}},
            {"storyMessage": {"allowsReplies": True}, "futureField": {"v": 2}},
        ):
            push(envelope(frm, **body)[0])
        push("{}", name="somethingNew")
        return {}
    if what == "typing":
        with lock:
            return {"typing": list(typing)}
    if what == "raw":
        return {"id": push(c["data"], name=c.get("event", "receive"))}
    if what == "big":
        return {"id": push("{\"envelope\":{\"x\":\"" + "a" * int(c["bytes"]) + "\"}}")}
    if what == "drop":
        with lock:
            for cl in clients:
                cl["drop"] = True
            lock.notify_all()
        return {}
    if what == "fail":
        with lock:
            fail_next.setdefault(c["method"], []).append({"code": c["code"], "message": c["message"]})
        return {}
    raise KeyError(what)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    log("listening on", PORT, "account", ACCOUNT)
    server.serve_forever()
