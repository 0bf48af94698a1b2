#!/usr/bin/env bash
# Install OpenClaw's published CLI (npm `openclaw`, pinned) and the Node.js it needs
# (>= 24.16; Debian's is older), both from the npm registry, into REPO/.peers/openclaw.
# Idempotent: a second run changes nothing. tests/openclaw_compat.rs drives this CLI
# against a running clawos Gateway.
#   install.sh [DIR]      (default: REPO/.peers/openclaw)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-$(cd "$HERE/../../.." && pwd)/.peers/openclaw}
OPENCLAW=2026.9.6
NODE=24.22.3

# shellcheck source=../node.sh
. "$HERE/../node.sh"
install_node "$DIR" "$NODE"
cd "$DIR"
if ! "$node_bin" -e "process.exit(require('$DIR/node_modules/openclaw/package.json').version === '$OPENCLAW' ? 0 : 1)" 2>/dev/null; then
  npm install -q --no-audit --no-fund --save-exact "openclaw@$OPENCLAW" >/dev/null
fi
echo "openclaw $("$node_bin" "$DIR/node_modules/openclaw/openclaw.mjs" --version 2>/dev/null | head -1) on node $("$node_bin" -v) in $DIR"
