#!/usr/bin/env bash
# Create an account USER@clawos.test (works with the server running or stopped).
#   register.sh DIR USER PASSWORD
# Re-registering an existing user just sets the new password (exit 0).
set -euo pipefail
exec prosodyctl --config "$1/prosody.cfg.lua" register "$2" clawos.test "$3"
