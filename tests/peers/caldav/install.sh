#!/usr/bin/env bash
# Install Radicale (PyPI `radicale`, pinned) into a venv: the CalDAV server the calendar
# skill's tests (agents/tests/calendar.rs) run against. Idempotent: if the venv already
# has that version, nothing is done.
#   install.sh [VENV]      (default: $CLAWOS_RADICALE_VENV, else REPO/.peers/radicale-venv,
#                           which is where agents/tests/calendar.rs looks)
# Every dependency is pinned through constraints.txt (the set that was checked, README.md).
# Pure Python: no compiler needed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-${CLAWOS_RADICALE_VENV:-$(cd "$HERE/../../.." && pwd)/.peers/radicale-venv}}
RADICALE=3.9.0

have() {
  [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c "import radicale, sys; sys.exit(radicale.VERSION != '$RADICALE')" 2>/dev/null
}
if ! have; then
  python3 -m venv --clear "$VENV"   # --clear: a venv of a python that has gone is rebuilt
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$HERE/constraints.txt" \
    "radicale==$RADICALE"
  have
fi
echo "radicale $("$VENV/bin/python" -c 'import radicale; print(radicale.VERSION)') in $VENV"
