#!/usr/bin/env bash
# Stop what start.sh started in DIR (SIGTERM) and wait until it has exited (ports free).
#   stop.sh DIR
DIR=$1
[ -s "$DIR/prosody.pid" ] || exit 0
p=$(cat "$DIR/prosody.pid")
kill -TERM "$p" 2>/dev/null || { rm -f "$DIR/prosody.pid"; exit 0; }
for _ in $(seq 200); do
  # a zombie (not yet reaped by its parent) counts as gone
  if [ ! -e "/proc/$p" ] || grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
    rm -f "$DIR/prosody.pid"; exit 0
  fi
  sleep 0.05
done
echo "stop.sh: prosody $p still running" >&2
exit 1
