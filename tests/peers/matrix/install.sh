#!/usr/bin/env bash
# Install Synapse (PyPI matrix-synapse, pinned) into a venv. Idempotent: if the venv
# already runs Synapse, nothing is done.
#   install.sh [VENV]      (default: $CLAWOS_SYNAPSE_VENV, else REPO/.peers/synapse-venv,
#                           which is what start.sh and register.sh use)
# Every dependency is pinned through constraints.txt (the set that was checked, README.md).
# Synapse ships a prebuilt abi3 wheel (Rust inside): no compiler, no Rust toolchain needed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-${CLAWOS_SYNAPSE_VENV:-$(cd "$HERE/../../.." && pwd)/.peers/synapse-venv}}
SYNAPSE=1.163.2

# `python -m synapse.app.homeserver --version` does not exist (argparse error), so ask
# the package. __version__ looks like "1.163.2 (b=main,fef0bdc)".
have() {
  "$VENV/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__.split()[0] != '$SYNAPSE')" 2>/dev/null \
    && [ -x "$VENV/bin/python" ]
}
if ! have; then
  python3 -m venv --clear "$VENV"   # --clear: a venv of a python that has gone is rebuilt
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$HERE/constraints.txt" \
    "matrix-synapse==$SYNAPSE"
  have
fi
echo "synapse $("$VENV/bin/python" -c 'import synapse; print(synapse.__version__.split()[0])') in $VENV"
