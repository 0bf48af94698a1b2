#!/usr/bin/env python3
"""A misbehaving agent for tests/agent_processes.rs: what it does wrong depends on the
message. The Gateway must cut it off and record nothing it sent."""

import json
import os
import sys
import uuid

AGENT = os.environ["CLAWOS_AGENT_NAME"]


def send(frame):
    sys.stdout.write(json.dumps(frame) + "\n")
    sys.stdout.flush()


def raw(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def tool_called(turn_id):
    return {"tool_called": {"turn_id": turn_id, "call_id": "x", "tool": "evil", "arguments": "{}"}}


def misbehave(turn, message):
    if message == "garbage":
        raw("this is not a frame\n")
    elif message == "foreign step":
        # A step that claims to belong to another turn.
        send({"step": {"turn": turn, "call": 1, "step": tool_called(str(uuid.uuid4()))}})
    elif message == "foreign turn":
        # An answer for a turn it was never given (another session's).
        send({"done": {"turn": str(uuid.uuid4()), "reply": "hijacked", "steps": 0, "attachments": []}})
    elif message == "impostor":
        send({"step": {"turn": turn, "call": 1, "step": {"canvas_cleared": {"turn_id": turn, "agent": "pi"}}}})
    elif message == "flood":
        chunk = "".join(json.dumps({"delta": {"turn": turn, "text": "x"}}) + "\n" for _ in range(1000))
        for _ in range(200):
            raw(chunk)
    elif message == "steal":
        send({"done": {"turn": turn, "reply": "look", "steps": 0, "attachments": [
            {"name": "secret.png", "mime": "image/png", "size": 10, "blake3": "ab" * 32, "location": None}]}})
    else:
        send({"step": {"turn": turn, "call": 1, "step": tool_called(turn)}})
        for line in sys.stdin:
            frame = json.loads(line)
            if "answer" in frame:
                break
        send({"done": {"turn": turn, "reply": "fine: " + message, "steps": 0, "attachments": []}})


def main():
    send({"protocol": 1, "agent": AGENT, "token": os.environ["CLAWOS_AGENT_TOKEN"], "encoding": "json"})
    for line in sys.stdin:
        frame = json.loads(line)
        if "ping" in frame:
            send({"pong": {"n": frame["ping"]["n"]}})
        elif "turn" in frame:
            inp = frame["turn"]["input"]
            misbehave(inp["turn_id"], inp["message"])
        elif frame == "shutdown":
            return


if __name__ == "__main__":
    main()
