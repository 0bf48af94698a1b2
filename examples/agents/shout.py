#!/usr/bin/env python3
"""A clawos agent in Python, standard library only: it answers every message in
capitals, records a tool step for it, and keeps a memory of what it was told.

Plug it in (clawos.toml):

    [agents.shout]
    kind = "process"
    command = ["python3", "examples/agents/shout.py"]

The Gateway starts it, reads its hello, and sends it turns; see docs/agent-protocol.md.
Everything it prints to stdout is the protocol; logs go to stderr.
"""

import collections
import json
import os
import sys
import time

AGENT = os.environ["CLAWOS_AGENT_NAME"]
TOKEN = os.environ["CLAWOS_AGENT_TOKEN"]


def send(frame):
    sys.stdout.write(json.dumps(frame) + "\n")
    sys.stdout.flush()


def log(*args):
    print(f"[{AGENT}]", *args, file=sys.stderr, flush=True)


class Frames:
    """The Gateway's frames, one JSON value per line. Turns of other sessions may arrive
    while a turn waits for an answer: they wait in `later` until this one is done."""

    def __init__(self):
        self.later = collections.deque()

    def next(self):
        if self.later:
            return self.later.popleft()
        for line in sys.stdin:
            line = line.strip()
            if line:
                return json.loads(line)
        raise SystemExit(0)  # the Gateway closed the pipe


class Turn:
    """One turn: its steps and calls wait for the Gateway's answer."""

    def __init__(self, frames, turn_id):
        self.frames = frames
        self.turn = turn_id
        self.call = 0

    def ask(self, kind, body):
        self.call += 1
        send({kind: {"turn": self.turn, "call": self.call, **body}})
        while True:
            frame = self.frames.next()
            if "ping" in frame:
                send({"pong": {"n": frame["ping"]["n"]}})
            elif "answer" in frame and frame["answer"]["turn"] == self.turn:
                if frame["answer"]["call"] != self.call:
                    continue  # an answer to a step sent again
                result = frame["answer"]["result"]
                if "Err" in result:
                    raise RuntimeError(result["Err"])
                return result["Ok"]
            elif "cancel" in frame and frame["cancel"]["turn"] == self.turn:
                raise RuntimeError("cancelled: " + frame["cancel"]["reason"])
            else:
                self.frames.later.append(frame)

    def step(self, kind, payload):
        return self.ask("step", {"step": {kind: {"turn_id": self.turn, **payload}}})

    def host(self, request):
        return self.ask("call", {"request": request})


def run_turn(frames, request):
    inp = request["input"]
    turn = Turn(frames, inp["turn_id"])
    started = time.monotonic()
    turn.step("tool_called", {"call_id": "1", "tool": "upper", "arguments": json.dumps(inp["message"])})
    answer = inp["message"].upper()
    turn.step(
        "tool_returned",
        {
            "call_id": "1",
            "output": answer,
            "exit_status": 0,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    memory = turn.host({"remember": {"text": "was told: " + inp["message"], "tags": ["shout"]}})
    log("remembered", memory["id"])
    send({"delta": {"turn": turn.turn, "text": answer}})
    send({"done": {"turn": turn.turn, "reply": answer, "steps": 0, "attachments": []}})


def main():
    send({"protocol": 1, "agent": AGENT, "token": TOKEN, "encoding": "json"})
    frames = Frames()
    answer = frames.next()
    if "welcome" not in answer:
        log("refused:", answer)
        return 1
    log("welcome; protocol", answer["welcome"]["protocol"])
    while True:
        frame = frames.next()
        if "ping" in frame:
            send({"pong": {"n": frame["ping"]["n"]}})
        elif "turn" in frame:
            try:
                run_turn(frames, frame["turn"])
            except RuntimeError as e:
                turn_id = frame["turn"]["input"]["turn_id"]
                send({"failed": {"turn": turn_id, "error": str(e)}})
        elif "summarize" in frame:
            request = frame["summarize"]["request"]
            text = " / ".join(m["text"] for m in frame["summarize"]["history"])[:500]
            send({"summary": {"request": request, "result": {"Ok": {"text": text, "model": "shout"}}}})
        elif frame == "shutdown":
            return 0


if __name__ == "__main__":
    sys.exit(main())
