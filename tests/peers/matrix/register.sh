#!/usr/bin/env bash
# Create the user @USER:clawos.test through the registration shared secret (the server
# must be running). With a 5th argument "admin" the user is a server admin.
#   register.sh DIR PORT USER PASSWORD [admin]
# Idempotent: an existing user is left as it is (password NOT changed), exit 0.
# The same thing without the venv: python3 check.py --register PORT USER PASSWORD [admin]
# (the /_synapse/admin/v1/register nonce + HMAC API).
set -euo pipefail
DIR=$(realpath -m "$1"); PORT=$2; USER_=$3; PASS=$4
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${CLAWOS_SYNAPSE_VENV:-$(cd "$HERE/../../.." && pwd)/.peers/synapse-venv}
ADMIN=--no-admin
[ "${5:-}" = admin ] && ADMIN=--admin
exec "$VENV/bin/register_new_matrix_user" -c "$DIR/homeserver.yaml" --exists-ok \
  -u "$USER_" -p "$PASS" "$ADMIN" "http://127.0.0.1:$PORT" < /dev/null
