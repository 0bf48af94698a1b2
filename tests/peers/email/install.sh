#!/usr/bin/env bash
# Install what the test mail system needs. Idempotent: a second run changes nothing.
#   install.sh [VENV]      (default: REPO/.peers/email-venv, what start.sh uses)
# - Debian: dovecot-imapd (brings dovecot-core: dovecot, dovecot-lda, users dovecot/dovenull)
#   and openssl, only if missing. --no-install-recommends: nothing else comes along.
# - PyPI: aiosmtpd into VENV (pinned).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-$(cd "$HERE/../../.." && pwd)/.peers/email-venv}
AIOSMTPD=1.4.6

if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ] || ! command -v openssl >/dev/null; then
  # another apt/dpkg may be running: wait for its lock instead of failing
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends dovecot-imapd openssl
fi

if ! "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD')" 2>/dev/null; then
  python3 -m venv "$VENV"
  # its dependencies pinned too, at the versions checked (README.md)
  "$VENV/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD" \
    atpublic==9.0.0 attrs==26.1.0
fi
echo "dovecot $(dovecot --version), aiosmtpd $("$VENV/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)') in $VENV"
