#!/usr/bin/env bash
# Start the test Matrix homeserver (Synapse) on 127.0.0.1:PORT, everything in DIR.
# Returns once GET /_matrix/client/versions answers, i.e. ready.
#   start.sh DIR PORT
# Stop: stop.sh DIR. Users: register.sh DIR PORT USER PASSWORD [admin].
# Needs: install.sh (venv: $CLAWOS_SYNAPSE_VENV, else REPO/.peers/synapse-venv), python3.
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CLAWOS_SYNAPSE_VENV:-$(cd "$HERE/../../.." && pwd)/.peers/synapse-venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "start.sh: no Synapse venv at $VENV; run $HERE/install.sh first" >&2; exit 1
fi
if [ -s "$DIR/synapse.pid" ] && kill -0 "$(cat "$DIR/synapse.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (pid $(cat "$DIR/synapse.pid"))" >&2; exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "start.sh: port $PORT is already in use" >&2; exit 1   # else the wait sees the other server
fi
mkdir -p "$DIR/media_store"

# Config rewritten on every start (the port may change); state stays: homeserver.db,
# media_store/ and the signing key, which is made once per DIR.
for f in homeserver.yaml log.config; do
  sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$PORT|g" "$HERE/$f.template" > "$DIR/$f"
done
[ -s "$DIR/clawos.test.signing.key" ] || "$VENV/bin/generate_signing_key" -o "$DIR/clawos.test.signing.key"

# Foreground process in the background (no --daemonize: it would fork and the pid
# would be the daemon's own pid_file). stdin closed, stdout/stderr to DIR/synapse.out,
# so a caller reading start.sh's output is not held open by Synapse.
"$VENV/bin/python" -m synapse.app.homeserver -c "$DIR/homeserver.yaml" \
  > "$DIR/synapse.out" 2>&1 < /dev/null &
echo $! > "$DIR/synapse.pid"

python3 "$HERE/check.py" --wait "$PORT" 60 "$(cat "$DIR/synapse.pid")" || {
  echo "start.sh: Synapse did not come up; last lines of $DIR/synapse.out and homeserver.log:" >&2
  tail -n 20 "$DIR/synapse.out" "$DIR/homeserver.log" >&2 || true
  exit 1
}
