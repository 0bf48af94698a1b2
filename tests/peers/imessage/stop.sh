#!/usr/bin/env bash
# Stop the stand-in that start.sh started in DIR and wait until it has exited.
#   stop.sh DIR
DIR=$1
[ -s "$DIR/standin.pid" ] || exit 0
pid=$(cat "$DIR/standin.pid")
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 200); do
  if [ ! -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    rm -f "$DIR/standin.pid"; exit 0
  fi
  sleep 0.05
done
echo "stop.sh: still running after 10 s: $pid" >&2
exit 1
