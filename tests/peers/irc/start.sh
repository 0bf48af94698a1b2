#!/usr/bin/env bash
# Start the test IRC network on loopback: InspIRCd 3 (client listeners) + Anope 2.0
# (NickServ, SASL), everything in DIR. Returns once SASL is offered, i.e. ready.
#   start.sh DIR PLAIN_PORT TLS_PORT LINK_PORT
# Stop: kill "$(cat DIR/anope.pid)" "$(cat DIR/inspircd.pid)"   (see README.md)
# Needs: apt-get install --no-install-recommends inspircd anope openssl python3
set -euo pipefail
DIR=$(realpath -m "$1"); PLAIN=$2; TLS=$3; LINK=$4
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR/backups"   # Anope copies anope.db there once a day

# TLS certificate (self-signed, once per DIR). A client may trust tls.crt itself as its
# only root: SANs for the names, and CA:FALSE since webpki (rustls) refuses a CA
# certificate as the server's own.
if [ ! -s "$DIR/tls.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=irc.clawos.test -addext basicConstraints=critical,CA:FALSE \
    -addext subjectAltName=DNS:irc.clawos.test,DNS:localhost,IP:127.0.0.1 \
    -keyout "$DIR/tls.key" -out "$DIR/tls.crt" 2>/dev/null
fi

for f in inspircd.conf services.conf; do
  sed -e "s|@DIR@|$DIR|g" -e "s|@PLAIN_PORT@|$PLAIN|g" -e "s|@TLS_PORT@|$TLS|g" \
      -e "s|@LINK_PORT@|$LINK|g" "$HERE/$f.template" > "$DIR/$f"
done

# InspIRCd 3.15 (Debian) segfaults on exit once ssl_gnutls is loaded (harmless): no core files.
ulimit -c 0

# InspIRCd refuses to run as root without --runasroot. It writes DIR/inspircd.pid.
/usr/sbin/inspircd --config "$DIR/inspircd.conf" --nofork --runasroot \
  > "$DIR/inspircd.out" 2>&1 < /dev/null &

# Anope must find the link port open, or it waits options:retrywait (1s here) to retry.
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$LINK") 2>/dev/null && break
  sleep 0.02
done

# Anope sleeps 3s after its warning when both uid and gid are 0: a non-zero gid
# (setpriv --regid) skips that; the uid stays root. It writes DIR/anope.pid.
setpriv --regid=irc --clear-groups /usr/sbin/anope --nofork --confdir="$DIR" --dbdir="$DIR" \
  --logdir="$DIR" --modulesdir=/usr/lib/anope --localedir=/usr/share/anope/locale \
  > "$DIR/anope.out" 2>&1 < /dev/null &

python3 "$HERE/check.py" --wait "$PLAIN" 30
