#!/usr/bin/env bash
# Start the Discord stand-in (standin.py, Python 3 stdlib only) on 127.0.0.1:PORT, its
# state in DIR. Returns once it answers; writes DIR/standin.pid.
#   start.sh DIR PORT [TOKEN]     (TOKEN default: standin-bot-token)
# Env: STANDIN_HEARTBEAT_MS (default 41250, Discord's usual interval).
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2; TOKEN=${3:-standin-bot-token}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
if [ -s "$DIR/standin.pid" ] && kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (pid $(cat "$DIR/standin.pid"))" >&2; exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "start.sh: port $PORT is already in use" >&2; exit 1
fi
python3 "$HERE/standin.py" "$DIR" "$PORT" "$TOKEN" >> "$DIR/standin.out" 2>&1 < /dev/null &
echo $! > "$DIR/standin.pid"
for _ in $(seq 200); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/_standin/ready', timeout=1)" 2>/dev/null; then
    exit 0
  fi
  kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null || break
  sleep 0.05
done
echo "start.sh: the stand-in did not come up; last lines of $DIR/standin.out:" >&2
tail -n 20 "$DIR/standin.out" >&2 || true
exit 1
