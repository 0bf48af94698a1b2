#!/usr/bin/env bash
# Stop what start.sh started in DIR; return once every process is gone and the ports are free.
#   stop.sh DIR
# Mail, indexes and UIDs stay in DIR/mail: start.sh with the same DIR goes on from there.
#
# Dovecot's master, on SIGTERM, sleeps a fixed 1 s for its log process, so this takes
# ~1.1 s. It also leaves the processes of open IMAP sessions running (their clients get
# "* BYE Server shutting down." only ~10 s later), so those are sent SIGTERM here: the
# master's children, by pid, taken before the master goes (they are re-parented after).
DIR=$1
alive() {  # a zombie (not yet reaped by its parent) counts as gone
  [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}
pids=(); kids=()
[ -s "$DIR/smtpd.pid" ] && pids+=("$(cat "$DIR/smtpd.pid")")
if [ -s "$DIR/dovecot.pid" ]; then
  master=$(cat "$DIR/dovecot.pid")
  if alive "$master"; then
    pids+=("$master")
    kids=($(ps -o pid= --ppid "$master"))
  fi
fi
[ ${#pids[@]} -gt 0 ] || exit 0
kill -TERM "${pids[@]}" 2>/dev/null
# First the IMAP sessions (each says "* BYE Server shutting down." to its client, through
# its imap-login TLS proxy), then the other children, except the log process: the master
# flushes that one itself (SIGQUIT) during its 1 s.
cmd() { { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null; }
for k in "${kids[@]}"; do
  case "$(cmd "$k")" in */imap\ *|*/imap) kill -TERM "$k" 2>/dev/null ;; esac
done
sleep 0.05
for k in "${kids[@]}"; do
  case "$(cmd "$k")" in */imap\ *|*/imap|*/log\ *|*/log) ;; *) kill -TERM "$k" 2>/dev/null ;; esac
done
pids+=("${kids[@]}")
ports=$(cat "$DIR/ports" 2>/dev/null)
for _ in $(seq 200); do
  busy=0
  for p in "${pids[@]}"; do alive "$p" && busy=1; done
  for port in $ports; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy=1
  done
  if [ $busy = 0 ]; then rm -f "$DIR/smtpd.pid" "$DIR/dovecot.pid"; exit 0; fi
  sleep 0.05
done
echo "stop.sh: still running or listening: pids ${pids[*]}, ports $ports" >&2
exit 1
