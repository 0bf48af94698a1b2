#!/usr/bin/env bash
# Start the test XMPP server (Prosody 0.12, Debian 12) on loopback, everything in DIR.
# Returns once c2s accepts and a SASL PLAIN login (after STARTTLS) + resource bind works.
#   start.sh DIR C2S_PORT HTTP_PORT
# Env: XMPP_PLAINTEXT=1  -> c2s_require_encryption=false + PLAIN allowed without TLS
#      XMPP_LOG=debug    -> debug log (every stanza) in DIR/prosody.log (default: info)
# Stop: stop.sh DIR. Accounts: register.sh DIR USER PASS. (see README.md)
# Needs: apt-get install --no-install-recommends prosody openssl python3
set -euo pipefail
DIR=$(realpath -m "$1"); C2S=$2; HTTP=$3
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s%N)
mkdir -p "$DIR/data"

# TLS certificate (self-signed, once per DIR): SANs for every name, CA:FALSE so that
# rustls/webpki accepts it as the server's own cert when trusted directly.
if [ ! -s "$DIR/tls.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=clawos.test -addext basicConstraints=critical,CA:FALSE \
    -addext subjectAltName=DNS:clawos.test,DNS:conference.clawos.test,DNS:upload.clawos.test,DNS:localhost,IP:127.0.0.1 \
    -keyout "$DIR/tls.key" -out "$DIR/tls.crt" 2>/dev/null
fi

if [ "${XMPP_PLAINTEXT:-0}" = 1 ]; then REQ=false; PLAIN=true; P=--plain; else REQ=true; PLAIN=false; P=; fi
sed -e "s|@DIR@|$DIR|g" -e "s|@C2S_PORT@|$C2S|g" -e "s|@HTTP_PORT@|$HTTP|g" \
    -e "s|@REQUIRE_TLS@|$REQ|g" -e "s|@PLAIN_NO_TLS@|$PLAIN|g" -e "s|@LOG_LEVEL@|${XMPP_LOG:-info}|g" \
    "$HERE/prosody.cfg.lua.template" > "$DIR/prosody.cfg.lua"

# Foreground (-F) in the background; prosody writes DIR/prosody.pid itself (mod_posix).
prosody --config "$DIR/prosody.cfg.lua" -F > "$DIR/prosody.out" 2>&1 < /dev/null &

# Readiness probe account (prosodyctl writes the store directly; ~0.2 s of Lua start-up,
# overlapped with the server's own start-up). Only on the first start in DIR.
if [ ! -e "$DIR/data/clawos%2etest/accounts/ready.dat" ]; then
  prosodyctl --config "$DIR/prosody.cfg.lua" register ready clawos.test ready-pass > /dev/null
fi

python3 "$HERE/check.py" --wait "$C2S" 30 $P
echo "start.sh: total $(( ($(date +%s%N) - T0) / 1000000 )) ms"
