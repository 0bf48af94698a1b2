#!/usr/bin/env bash
# Idle memory of the channel processes tested against stand-ins (Telegram, Discord, Slack,
# Signal, iMessage, WhatsApp Cloud API), beside the webhook channel's as the baseline, in
# one Gateway and one run. Each stand-in is started from tests/peers/KIND/start.sh.
#   bash bench/channel-memory.sh [CLAWOS_BINARY]     (default: target/release/clawos)
# Prints, per channel process once every link is up and idle: RSS, private memory and
# PSS from /proc/PID/smaps_rollup, and each as a ratio to the webhook's.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/clawos}")
[ -x "$BIN" ] || { echo "channel-memory.sh: no binary at $BIN (cargo build --release)" >&2; exit 1; }
T=$(mktemp -d)
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
    [ -n "${GW:-}" ] && kill "$GW" 2>/dev/null && wait "$GW" 2>/dev/null || true
    for k in telegram discord slack signal imessage whatsapp; do
        [ -d "$T/$k" ] && bash "tests/peers/$k/stop.sh" "$T/$k" >/dev/null 2>&1 || true
    done
    rm -rf "$T"
}
trap cleanup EXIT

TG=$(port); DC=$(port); SL=$(port); SG=$(port); IM=$(port); WA=$(port); WH=$(port); WAHOOK=$(port)
TG_TOKEN=7000000001:AAHstandin-token-for-clawos-tests-0001
DC_TOKEN=standin-bot-token.clawos
SL_APP=xapp-1-A0CLAWOS-1-standinapptoken; SL_BOT=xoxb-1-1-standinbottoken
WA_TOKEN=EAAstandinTOKENforCLAWOStests0001; WA_SECRET=standin-app-secret-0001
bash tests/peers/telegram/start.sh "$T/telegram" "$TG" "$TG_TOKEN" >/dev/null
bash tests/peers/discord/start.sh "$T/discord" "$DC" "$DC_TOKEN" >/dev/null
bash tests/peers/slack/start.sh "$T/slack" "$SL" "$SL_APP" "$SL_BOT" >/dev/null
bash tests/peers/signal/start.sh "$T/signal" "$SG" +15550000001 >/dev/null
bash tests/peers/imessage/start.sh "$T/imessage" "$IM" bb-password-123 >/dev/null
bash tests/peers/whatsapp/start.sh "$T/whatsapp" "$WA" "$WA_TOKEN" "$WA_SECRET" >/dev/null

mkdir -p "$T/home"
cat > "$T/home/clawos.toml" <<TOML
[gateway]
default_agent = "echo"

[agents.echo]
kind = "echo"

[channels.webhook]
kind = "webhook"
listen = "127.0.0.1:$WH"
secret = "bench-webhook-secret-0123456789"
dm_policy = "open"

[channels.telegram]
kind = "telegram"
api_url = "http://127.0.0.1:$TG"
secret = "$TG_TOKEN"
dm_policy = "open"

[channels.discord]
kind = "discord"
api_url = "http://127.0.0.1:$DC/api/v10"
secret = "$DC_TOKEN"
dm_policy = "open"

[channels.slack]
kind = "slack"
api_url = "http://127.0.0.1:$SL/api"
secret = "$SL_APP:$SL_BOT"
dm_policy = "open"

[channels.signal]
kind = "signal"
url = "http://127.0.0.1:$SG"
account = "+15550000001"
attachments_dir = "$T/signal/attachments"
dm_policy = "open"

[channels.imessage]
kind = "imessage"
url = "http://127.0.0.1:$IM"
secret = "bb-password-123"
private_api = true
dm_policy = "open"

[channels.whatsapp]
kind = "whatsapp"
api_url = "http://127.0.0.1:$WA/v21.0"
phone_number_id = "106540352242922"
webhook_listen = "127.0.0.1:$WAHOOK"
verify_token = "clawos-verify-0001"
secret = "$WA_TOKEN:$WA_SECRET"
dm_policy = "open"
TOML

CLAWOS_HOME="$T/home" "$BIN" gateway --listen "127.0.0.1:$(port)" >"$T/gateway.log" 2>&1 &
GW=$!
# Wait until the six services report their link up (the webhook has none), then idle.
for _ in $(seq 1 100); do
    up=$(CLAWOS_HOME="$T/home" "$BIN" status 2>/dev/null | grep -c "link up" || true)
    [ "$up" -ge 6 ] && break
    sleep 0.3
done
[ "${up:-0}" -ge 6 ] || { echo "channel-memory.sh: only ${up:-0} of 6 links came up" >&2; CLAWOS_HOME="$T/home" "$BIN" status >&2; exit 1; }
sleep 5

python3 - "$GW" <<'PY'
import os, sys
gw = sys.argv[1]
def kids(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = open(f"/proc/{p}/stat").read()
                if stat.rsplit(")", 1)[1].split()[1] == pid:
                    out.append(p)
            except OSError:
                pass
    return out
def mem(pid):
    f = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            f[parts[0].rstrip(":")] = int(parts[1])
    return f["Rss"], f.get("Private_Clean", 0) + f.get("Private_Dirty", 0), f["Pss"]
rows = {}
for p in kids(gw):
    args = open(f"/proc/{p}/cmdline").read().split("\0")
    if len(args) > 2 and args[1] == "channel":
        rows[args[2]] = mem(p)
base = rows["webhook"]
print("| channel process | RSS | private | PSS |")
print("|---|---:|---:|---:|")
for kind in ["webhook", "telegram", "discord", "slack", "signal", "imessage", "whatsapp"]:
    r = rows[kind]
    cell = lambda i: f"{r[i] / 1024:.1f} MB" + ("" if kind == "webhook" else f" ({r[i] / base[i]:.2f})")
    print(f"| {kind}{' (baseline)' if kind == 'webhook' else ''} | {cell(0)} | {cell(1)} | {cell(2)} |")
PY
