#!/usr/bin/env bash
# Stop the Synapse that start.sh started in DIR and wait until it has exited (port free).
#   stop.sh DIR
# SIGTERM: Synapse shuts down cleanly (SQLite is consistent either way). State stays in
# DIR, so start.sh DIR PORT again continues where it left off.
DIR=$1
[ -s "$DIR/synapse.pid" ] || exit 0
pid=$(cat "$DIR/synapse.pid")
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 200); do
  # a zombie (not yet reaped by its parent) counts as gone
  if [ ! -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    rm -f "$DIR/synapse.pid"; exit 0
  fi
  sleep 0.05
done
echo "stop.sh: still running after 10 s: $pid (kill -KILL $pid)" >&2
exit 1
