#!/usr/bin/env bash
# Start the BlueBubbles stand-in on 127.0.0.1:PORT with PASSWORD, everything in DIR.
# Returns once GET /api/v1/ping?password=$PASSWORD answers.
#   start.sh DIR PORT PASSWORD
# Stop: stop.sh DIR. Needs python3 (standard library only).
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2; PASSWORD=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
if [ -s "$DIR/standin.pid" ] && kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (pid $(cat "$DIR/standin.pid"))" >&2; exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "start.sh: port $PORT is already in use" >&2; exit 1
fi
python3 "$HERE/standin.py" "$DIR" "$PORT" "$PASSWORD" > "$DIR/standin.out" 2>&1 < /dev/null &
echo $! > "$DIR/standin.pid"
for _ in $(seq 200); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/api/v1/ping?password=$PASSWORD', timeout=1)" 2>/dev/null; then
    exit 0
  fi
  kill -0 "$(cat "$DIR/standin.pid")" 2>/dev/null || break
  sleep 0.05
done
echo "start.sh: the stand-in did not come up:" >&2; tail -n 20 "$DIR/standin.out" >&2 || true
exit 1
