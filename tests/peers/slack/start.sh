#!/usr/bin/env bash
# Start the Slack stand-in (Web API + Socket Mode) on 127.0.0.1:PORT, its state in DIR
# (kept across restarts). Returns once it answers. Writes DIR/standin.pid.
#   start.sh DIR PORT [APP_TOKEN] [BOT_TOKEN]
# Stop: stop.sh DIR. Needs python3 (standard library only).
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2
APP=${3:-xapp-1-A0CLAWOS-1-standinapptoken}
BOT=${4:-xoxb-1-1-standinbottoken}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
if [ -s "$DIR/standin.pid" ] && kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (pid $(cat "$DIR/standin.pid"))" >&2; exit 1
fi
python3 "$HERE/standin.py" "$DIR" "$PORT" "$APP" "$BOT" > "$DIR/standin.out" 2>&1 < /dev/null &
echo $! > "$DIR/standin.pid"
for _ in $(seq 200); do
  if python3 - "$PORT" <<'PY' 2>/dev/null; then exit 0; fi
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/_standin/stats", method="POST"), timeout=1).read()
PY
  kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null || break
  sleep 0.05
done
echo "start.sh: the stand-in did not come up:" >&2; tail -n 20 "$DIR/standin.out" >&2; exit 1
