#!/usr/bin/env bash
# Stop the single-node SLURM cluster that .ci/slurm-up.sh started, and leave the machine clean.
#
#   bash .ci/slurm-down.sh
#
# Reads $SLURM_CI_STATE/started ("name pidfile" lines written by slurm-up.sh) and stops those
# daemons in the order slurmd, slurmctld, slurmdbd, mariadbd, munged: SIGTERM,
# up to SLURM_CI_STOP_WAIT seconds (default 20), then SIGKILL.  Only processes whose PID file
# names a live process with the expected command name are signalled; nothing is killed by
# name.  Jobs still running on the node are cancelled first (bounded).  Then it removes the
# fake GPU devices it created, the stale PID files and the state directory.  Installed
# packages, /etc/slurm/*.conf and the accounting database stay (slurm-up.sh reuses them).
# Always exits 0 unless a daemon survived SIGKILL; safe to run when nothing is up.
set -u -o pipefail

STATE=${SLURM_CI_STATE:-/run/pathdep-slurm-ci}
STOP_WAIT=${SLURM_CI_STOP_WAIT:-20}
T0=$(date +%s)
log() { echo "[slurm-down +$(( $(date +%s) - T0 ))s] $*" >&2; }

if [[ ! -r $STATE/started ]]; then
  log "nothing recorded in $STATE/started: nothing to stop"
  exit 0
fi

# Cancel leftover jobs so slurmd does not leave job steps behind (bounded, best effort).
if command -v scancel >/dev/null 2>&1 && grep -q '^slurmctld ' "$STATE/started"; then
  timeout -k 2 10 scancel --full --quiet --state=RUNNING,PENDING --user=root >/dev/null 2>&1 || true
fi

# pid_of PIDFILE NAME: print the PID if the PID file names a live NAME process
pid_of() {
  local pidfile=$1 name=$2 pid
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]] || return 1
  echo "$pid"
}

failed=0
# Stop order: slurmd, slurmctld, slurmdbd, mariadbd, munged (the reverse of a full start),
# whatever order repeated slurm-up.sh runs recorded them in; unknown names last.
mapfile -t entries < <(
  for n in slurmd slurmctld slurmdbd mariadbd munged; do grep "^$n " "$STATE/started"; done
  grep -v -E '^(slurmd|slurmctld|slurmdbd|mariadbd|munged) ' "$STATE/started"
)
for entry in "${entries[@]}"; do
  name=${entry%% *}; pidfile=${entry#* }
  [[ -n $name && -n $pidfile ]] || continue
  if ! pid=$(pid_of "$pidfile" "$name"); then
    log "$name: not running"
    rm -f "$pidfile"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null
  deadline=$(( $(date +%s) + STOP_WAIT ))
  while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM for ${STOP_WAIT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  if kill -0 "$pid" 2>/dev/null; then
    log "ERROR: $name (pid $pid) still alive after SIGKILL"
    failed=1
  else
    log "$name (pid $pid) stopped"
    rm -f "$pidfile"
  fi
done

# slurmstepd processes of cancelled jobs exit on their own once slurmd is gone; report any left.
left=$(ps -eo pid=,comm= | awk '$2 ~ /^(slurmstepd|slurmd|slurmctld|slurmdbd|munged|mariadbd)$/')
[[ -n $left ]] && log "WARNING: still running (not started by slurm-up.sh, or survivors): ${left//$'\n'/;}"

if [[ -r $STATE/devices ]]; then
  while read -r dev; do
    [[ $dev == /dev/fakegpu* && -c $dev ]] && rm -f "$dev" && log "removed $dev"
  done <"$STATE/devices"
fi
(( failed )) || rm -rf "$STATE"
log "done"
exit $failed
