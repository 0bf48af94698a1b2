#!/usr/bin/env bash
# Start the test mail system on loopback, everything in DIR: Dovecot 2.3 (IMAP with
# STARTTLS, IMAPS, IDLE) + aiosmtpd (submission with STARTTLS and AUTH, delivering through
# dovecot-lda). Returns once all ports greet, i.e. ready.
#   start.sh DIR IMAP_PORT IMAPS_PORT SMTP_PORT [SMTPS_PORT]
# Stop: stop.sh DIR. Users: DIR/users (bot/bot-pass, alice/alice-pass unless it exists).
# Needs: apt-get install --no-install-recommends dovecot-imapd openssl; ./install.sh (venv)
# The venv is $CLAWOS_EMAIL_VENV, default REPO/.peers/email-venv.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: start.sh DIR IMAP_PORT IMAPS_PORT SMTP_PORT [SMTPS_PORT]" >&2; exit 2
fi
t0=$(date +%s%N)
DIR=$(realpath -m "$1"); IMAP=$2; IMAPS=$3; SMTP=$4; SMTPS=${5:-}
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CLAWOS_EMAIL_VENV:-$(cd "$HERE/../../.." && pwd)/.peers/email-venv}
MAIL_USER=nobody; MAIL_GROUP=nogroup   # Dovecot refuses mail access as uid 0

[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/dovecot-lda ] || {
  echo "start.sh: Dovecot missing: apt-get install -y --no-install-recommends dovecot-imapd" >&2; exit 1; }
# (a file test: importing it here would cost ~100 ms)
compgen -G "$VENV/lib/python3*/site-packages/aiosmtpd/smtp.py" > /dev/null || {
  echo "start.sh: no aiosmtpd in $VENV: run $HERE/install.sh first" >&2; exit 1; }
# Unix sockets live in DIR/run; their paths must stay under 108 bytes.
if [ ${#DIR} -gt 80 ]; then
  echo "start.sh: DIR path too long for Dovecot's unix sockets (${#DIR} > 80 bytes): $DIR" >&2; exit 1
fi
if [ -s "$DIR/dovecot.pid" ] && kill -0 "$(cat "$DIR/dovecot.pid")" 2>/dev/null; then
  echo "start.sh: already running in $DIR (stop.sh first)" >&2; exit 1
fi

# Dovecot's sockets from a previous run go: a stale DIR/run/anvil-auth-penalty (a socket
# this config disables) would make the auth process retry it for 5 s on every start.
rm -rf "$DIR/run"
mkdir -p "$DIR/mail" "$DIR/state"
# The mail user (nobody) and Dovecot's own users must reach files in DIR: search permission
# on DIR (not read: the folder cannot be listed by them). Every parent folder must allow
# search too (/tmp does; /root does not).
chmod o+x "$DIR"
chown "$MAIL_USER:$MAIL_GROUP" "$DIR/mail"
chmod 700 "$DIR/mail"
if ! setpriv --reuid="$MAIL_USER" --regid="$MAIL_GROUP" --clear-groups test -w "$DIR/mail"; then
  echo "start.sh: user $MAIL_USER cannot reach $DIR/mail: a parent folder of DIR lacks o+x" >&2
  exit 1
fi

# TLS certificate (self-signed, once per DIR), for Dovecot and smtpd.py alike. A client may
# trust tls.crt itself as its only root: SANs for the names, CA:FALSE for webpki (rustls).
if [ ! -s "$DIR/tls.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=mail.clawos.test -addext basicConstraints=critical,CA:FALSE \
    -addext subjectAltName=DNS:mail.clawos.test,DNS:imap.clawos.test,DNS:smtp.clawos.test,DNS:localhost,IP:127.0.0.1 \
    -keyout "$DIR/tls.key" -out "$DIR/tls.crt" 2>/dev/null
fi

# Users (Dovecot passwd-file), kept if the caller wrote its own before start.sh.
if [ ! -e "$DIR/users" ]; then
  printf '%s\n' 'bot:{PLAIN}bot-pass::::::' 'alice:{PLAIN}alice-pass::::::' > "$DIR/users"
fi
# Dovecot's auth process runs as user dovecot and reads this file.
chgrp dovecot "$DIR/users"; chmod 640 "$DIR/users"

sed -e "s|@DIR@|$DIR|g" -e "s|@IMAP_PORT@|$IMAP|g" -e "s|@IMAPS_PORT@|$IMAPS|g" \
    -e "s|@MAIL_USER@|$MAIL_USER|g" -e "s|@MAIL_GROUP@|$MAIL_GROUP|g" \
    "$HERE/dovecot.conf.template" > "$DIR/dovecot.conf"
echo "$IMAP $IMAPS $SMTP $SMTPS" > "$DIR/ports"   # for stop.sh

# -F: stay in the foreground (so $! is the master); it also writes DIR/run/master.pid.
/usr/sbin/dovecot -F -c "$DIR/dovecot.conf" > "$DIR/dovecot.out" 2>&1 < /dev/null &
echo $! > "$DIR/dovecot.pid"
"$VENV/bin/python" "$HERE/smtpd.py" "$DIR" "$SMTP" $SMTPS > "$DIR/smtpd.out" 2>&1 < /dev/null &
echo $! > "$DIR/smtpd.pid"

# the venv's python: no pyenv shim in between (that alone costs ~100-200 ms)
if ! "$VENV/bin/python" "$HERE/check.py" --wait "$DIR" 30; then
  echo "start.sh: not ready; logs:" >&2
  tail -n 20 "$DIR/dovecot.out" "$DIR/dovecot.log" "$DIR/smtpd.out" "$DIR/smtpd.log" >&2 2>/dev/null || true
  # not stop.sh: it waits for the ports to close, and one may belong to someone else
  kill -TERM "$(cat "$DIR/dovecot.pid")" "$(cat "$DIR/smtpd.pid")" 2>/dev/null || true
  rm -f "$DIR/dovecot.pid" "$DIR/smtpd.pid"
  exit 1
fi
echo "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
