#!/usr/bin/env bash
# Start the Telegram Bot API stand-in on 127.0.0.1:PORT, its state in DIR (kept across
# restarts). Returns once it answers. Writes DIR/standin.pid.
#   start.sh DIR PORT [TOKEN] [BOT_USERNAME]
# Stop: stop.sh DIR. Needs python3 (standard library only).
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2
TOKEN=${3:-7000000001:AAHstandin-token-for-clawos-tests-0001}
BOTNAME=${4:-clawos_bot}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
if [ -s "$DIR/standin.pid" ] && kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (pid $(cat "$DIR/standin.pid"))" >&2; exit 1
fi
python3 "$HERE/standin.py" "$DIR" "$PORT" "$TOKEN" "$BOTNAME" > "$DIR/standin.out" 2>&1 < /dev/null &
echo $! > "$DIR/standin.pid"
for _ in $(seq 200); do
  if python3 - "$PORT" <<'PY' 2>/dev/null; then exit 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_standin/stats", timeout=1).read()
PY
  kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null || break
  sleep 0.05
done
echo "start.sh: the stand-in did not come up:" >&2; tail -n 20 "$DIR/standin.out" >&2; exit 1
