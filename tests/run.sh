#!/usr/bin/env bash
# Installs what the tests need, then builds once and runs every test of the workspace.
# Used by newcomers (see README) and by CI (.ci/run). It never skips a test silently:
# if something a test needs cannot be installed, it stops and names it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the whole-system tests use (none yet beyond the toolchain; the IRC,
# browser and keychain tests add theirs here).
debian_packages=()
missing=()
for p in "${debian_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" \
            || { echo "tests/run.sh: cannot install Debian packages: ${missing[*]}" >&2; exit 1; }
    else
        echo "tests/run.sh: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

command -v cargo >/dev/null || { echo "tests/run.sh: cargo is missing (install Rust with rustup)" >&2; exit 1; }

cargo build --workspace --all-targets --locked
cargo test --workspace --all-targets --locked -- --test-threads=2
