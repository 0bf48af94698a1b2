#!/usr/bin/env bash
# Stop what start.sh started in DIR and wait until both have exited (ports free again).
#   stop.sh DIR
# Anope saves its database on SIGTERM. InspIRCd 3.15 (Debian) exits with a segfault
# (status 139) once ssl_gnutls is loaded: harmless, it has nothing to save.
DIR=$1
pids=()
for f in anope.pid inspircd.pid; do
  [ -s "$DIR/$f" ] && pids+=("$(cat "$DIR/$f")")
done
[ ${#pids[@]} -gt 0 ] || exit 0
kill -TERM "${pids[@]}" 2>/dev/null
for _ in $(seq 100); do
  alive=0
  for p in "${pids[@]}"; do
    # a zombie (not yet reaped by its parent) counts as gone
    if [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then alive=1; fi
  done
  if [ $alive = 0 ]; then rm -f "$DIR/inspircd.pid" "$DIR/anope.pid"; exit 0; fi
  sleep 0.05
done
echo "stop.sh: still running: ${pids[*]}" >&2
exit 1
