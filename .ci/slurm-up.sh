#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on this (Debian 12, root, no systemd) machine.
#
#   bash .ci/slurm-up.sh          # install + configure + start; exits 0 when the node is idle
#   bash .ci/slurm-down.sh        # stop everything this script started (by PID files)
#
# What it does, in order, each step checked before the next and every wait bounded:
#   1. apt-get install --no-install-recommends slurmctld slurmd slurm-client munge
#      (+ slurmdbd mariadb-server when SLURM_CI_ACCOUNTING=1, the default, so `sacct` works)
#   2. fake GPUs: character devices /dev/fakegpuN (c 1 3, like /dev/null) + gres.conf
#   3. writes /etc/slurm/slurm.conf (+ gres.conf, slurmdbd.conf); the node advertises
#      SLURM_CI_CPUS CPUs, SLURM_CI_MEM_MB MB and SLURM_CI_GPUS GPUs through
#      SlurmdParameters=config_overrides, whatever the machine really has
#   4. starts munged, (mariadbd, slurmdbd), slurmctld, slurmd; waits until the node is idle
# Idempotent: a daemon whose PID file names a live process is left alone; re-running on a
# healthy cluster takes about a second.  Everything started is recorded in
# $SLURM_CI_STATE/started ("name pidfile" lines) and every created device in
# $SLURM_CI_STATE/devices, which is what .ci/slurm-down.sh reads.
#
# Knobs (environment):
#   SLURM_CI_ACCOUNTING=1|0  1: slurmdbd + MariaDB, `sacct` works (default)
#                            0: no accounting daemons; use `slurm-status-command: squeue`
#                               (and remove or shadow `sacct`; see docs/slurm.md)
#   SLURM_CI_CPUS=8 SLURM_CI_MEM_MB=16000 SLURM_CI_GPUS=2   what the node advertises
#   SLURM_CI_WAIT=60         seconds each bounded wait may take
#   SLURM_CI_SKIP_APT=1      do not run apt-get (packages already installed)
#   SLURM_CI_STATE=/run/pathdep-slurm-ci
set -u -o pipefail

ACCOUNTING=${SLURM_CI_ACCOUNTING:-1}
NCPUS=${SLURM_CI_CPUS:-8}
MEM_MB=${SLURM_CI_MEM_MB:-16000}
NGPUS=${SLURM_CI_GPUS:-2}
WAIT=${SLURM_CI_WAIT:-60}
STATE=${SLURM_CI_STATE:-/run/pathdep-slurm-ci}
CLUSTER=ci
HOST=$(hostname -s)
LOGDIR=/var/log/slurm
DB_PASS=ci-slurm-not-secret
T0=$(date +%s)

log() { echo "[slurm-up +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() {
  echo "[slurm-up +$(( $(date +%s) - T0 ))s] ERROR: $*" >&2
  exit 1
}
# die_log MESSAGE LOGFILE: fail and show the end of the daemon's log
die_log() {
  echo "[slurm-up +$(( $(date +%s) - T0 ))s] ERROR: $1" >&2
  if [[ -n ${2:-} && -r $2 ]]; then
    echo "---- last lines of $2 ----" >&2
    tail -n 25 "$2" >&2
    echo "----" >&2
  fi
  echo "Run 'bash .ci/slurm-down.sh' to stop whatever was started." >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND (each try bounded to 10 s) until it
# succeeds or SECONDS pass; returns 1 on timeout.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  while :; do  # at least one try, even with SECONDS=0
    if timeout -k 2 10 "$@" >/dev/null 2>&1; then return 0; fi
    (( $(date +%s) < deadline )) || break
    sleep 0.5
  done
  log "timed out after ${secs}s waiting for $what"
  return 1
}

# alive PIDFILE NAME: the PID file exists and names a live process whose command is NAME
alive() {
  local pidfile=$1 name=$2 pid
  [[ -r $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]]
}

# record NAME PIDFILE: remember that we started it (once)
record() {
  grep -qx "$1 $2" "$STATE/started" 2>/dev/null || echo "$1 $2" >>"$STATE/started"
}

[[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts daemons)"
[[ $ACCOUNTING == 0 || $ACCOUNTING == 1 ]] || die "SLURM_CI_ACCOUNTING: expected 0 or 1, got '$ACCOUNTING'"
for v in NCPUS MEM_MB NGPUS WAIT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "SLURM_CI_${v#N}: expected a non-negative integer, got '${!v}'"
done
(( NGPUS >= 1 )) || die "SLURM_CI_GPUS: expected >= 1, got $NGPUS"
mkdir -p "$STATE" "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
touch "$STATE/started" "$STATE/devices"

# ---------------------------------------------------------------------------------------------
# 1. packages
pkgs=(slurmctld slurmd slurm-client munge)
(( ACCOUNTING )) && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  [[ ${SLURM_CI_SKIP_APT:-0} == 1 ]] && die "packages missing and SLURM_CI_SKIP_APT=1: ${missing[*]}"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout -k 10 300 apt-get -o DPkg::Lock::Timeout=120 update -qq >"$STATE/apt.log" 2>&1 \
    || die_log "apt-get update failed or took > 300 s" "$STATE/apt.log"
  timeout -k 10 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends \
    "${missing[@]}" >>"$STATE/apt.log" 2>&1 \
    || die_log "apt-get install ${missing[*]} failed or took > 600 s" "$STATE/apt.log"
  log "packages installed"
else
  log "packages already installed"
fi
for b in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sinfo /usr/bin/sbatch; do
  [[ -x $b ]] || die "$b missing after installation"
done

# ---------------------------------------------------------------------------------------------
# 2. fake GPUs: GPUs declared by count alone are dropped ("Removing file-less GPU") and the
# node drains, so each one gets a character device (same numbers as /dev/null).
for (( i = 0; i < NGPUS; i++ )); do
  d=/dev/fakegpu$i
  if [[ ! -c $d ]]; then
    mknod -m 666 "$d" c 1 3 || die "mknod $d failed (fake GPU device)"
    echo "$d" >>"$STATE/devices"
  fi
done

# ---------------------------------------------------------------------------------------------
# 3. configuration (written to a temp file, installed only when it changed)
if (( ACCOUNTING )); then
  acct_conf="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  acct_conf="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
changed=0
# install_conf PATH MODE CONTENT
install_conf() {
  local path=$1 mode=$2 tmp
  tmp=$(mktemp)
  printf '%s\n' "$3" >"$tmp"
  if ! cmp -s "$tmp" "$path"; then
    install -D -m "$mode" -o root -g root "$tmp" "$path" || die "cannot write $path"
    changed=1
    log "wrote $path"
  fi
  rm -f "$tmp"
}
install_conf /etc/slurm/slurm.conf 644 "# Written by .ci/slurm-up.sh (pathdep CI): single node, fake GPUs.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MinJobAge=300
JobCompType=jobcomp/none
SchedulerParameters=sched_interval=5
$acct_conf
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NCPUS ThreadsPerCore=1 RealMemory=$MEM_MB Gres=gpu:fake:$NGPUS State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP"
install_conf /etc/slurm/gres.conf 644 "AutoDetect=off
NodeName=$HOST Name=gpu Type=fake File=/dev/fakegpu[0-$(( NGPUS - 1 ))]"
if (( ACCOUNTING )); then
  install_conf /etc/slurm/slurmdbd.conf 600 "AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db"
fi
# A changed slurm.conf needs restarted daemons; stop ours (only ours: by recorded PID file).
if (( changed )); then
  for name in slurmd slurmctld; do
    pidfile=/run/$name.pid
    if alive "$pidfile" "$name"; then
      log "configuration changed: restarting $name"
      kill "$(tr -dc '0-9' <"$pidfile")" 2>/dev/null
      for _ in $(seq 1 30); do alive "$pidfile" "$name" || break; sleep 0.5; done
      alive "$pidfile" "$name" && die "$name did not stop within 15 s after SIGTERM"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
# 4a. munge
if alive /run/munge/munged.pid munged; then
  log "munged already running"
else
  [[ -s /etc/munge/munge.key ]] || timeout 30 mungekey --create >/dev/null 2>&1 \
    || die "mungekey --create failed"
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
  rm -f /run/munge/munged.pid
  timeout -k 2 30 runuser -u munge -- /usr/sbin/munged --force \
    || die_log "munged failed to start" /var/log/munge/munged.log
  record munged /run/munge/munged.pid
fi
wait_for "$WAIT" "munge credential round trip" bash -c 'munge -n | unmunge' \
  || die_log "munge does not work (munge -n | unmunge)" /var/log/munge/munged.log
log "munge ok"

# ---------------------------------------------------------------------------------------------
# 4b. MariaDB + slurmdbd (accounting, so that sacct answers)
if (( ACCOUNTING )); then
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if alive /run/mysqld/mysqld.pid mariadbd; then
    log "mariadbd already running"
  else
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      log "initialising MariaDB data directory"
      timeout -k 5 120 mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
        >"$STATE/mariadb-install.log" 2>&1 \
        || die_log "mariadb-install-db failed" "$STATE/mariadb-install.log"
    fi
    rm -f /run/mysqld/mysqld.pid
    # setsid: own session, so it survives this script and ignores the caller's signals
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
      --innodb-lock-wait-timeout=900 --innodb-buffer-pool-size=128M \
      --log-error=$LOGDIR/mariadb.log </dev/null >/dev/null 2>&1 &
    record mariadbd /run/mysqld/mysqld.pid
  fi
  wait_for "$WAIT" "mariadb-admin ping" mariadb-admin --socket=/run/mysqld/mysqld.sock ping \
    || die_log "MariaDB did not answer within ${WAIT}s" $LOGDIR/mariadb.log
  timeout -k 2 30 mariadb --socket=/run/mysqld/mysqld.sock -uroot >"$STATE/mariadb-setup.log" 2>&1 <<SQL \
    || die_log "creating database slurm_acct_db / user slurm failed" "$STATE/mariadb-setup.log"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
  log "mariadb ok"

  if alive /run/slurmdbd.pid slurmdbd; then
    log "slurmdbd already running"
  else
    rm -f /run/slurmdbd.pid
    timeout -k 2 30 /usr/sbin/slurmdbd || die_log "slurmdbd failed to start" $LOGDIR/slurmdbd.log
    record slurmdbd /run/slurmdbd.pid
  fi
  wait_for "$WAIT" "slurmdbd (sacctmgr list cluster)" sacctmgr -n list cluster \
    || die_log "slurmdbd did not answer within ${WAIT}s" $LOGDIR/slurmdbd.log
  if ! timeout 10 sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
    timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 \
      || die_log "sacctmgr add cluster $CLUSTER failed" $LOGDIR/slurmdbd.log
  fi
  # An account 'ci' that root belongs to, so tests can check that slurm_account reaches sbatch.
  if ! timeout 10 sacctmgr -n -P list account format=account 2>/dev/null | grep -qx ci; then
    timeout 20 sacctmgr -i add account ci Cluster="$CLUSTER" Description=ci Organization=ci \
      >/dev/null 2>&1 || die "sacctmgr add account ci failed"
  fi
  if ! timeout 10 sacctmgr -n -P list assoc account=ci user=root format=user 2>/dev/null \
      | grep -qx root; then
    timeout 20 sacctmgr -i add user root Account=ci >/dev/null 2>&1 \
      || die "sacctmgr add user root Account=ci failed"
  fi
  log "slurmdbd ok (cluster $CLUSTER, account ci)"
fi

# ---------------------------------------------------------------------------------------------
# 4c. slurmctld, slurmd
if alive /run/slurmctld.pid slurmctld; then
  log "slurmctld already running"
else
  rm -f /run/slurmctld.pid
  timeout -k 2 30 /usr/sbin/slurmctld || die_log "slurmctld failed to start" $LOGDIR/slurmctld.log
  record slurmctld /run/slurmctld.pid
fi
wait_for "$WAIT" "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q UP' \
  || die_log "slurmctld did not answer within ${WAIT}s" $LOGDIR/slurmctld.log
if alive /run/slurmd.pid slurmd; then
  log "slurmd already running"
else
  rm -f /run/slurmd.pid
  timeout -k 2 30 /usr/sbin/slurmd || die_log "slurmd failed to start" $LOGDIR/slurmd.log
  record slurmd /run/slurmd.pid
fi

# Wait for the node to be idle (or mixed/allocated when jobs of an earlier run still exist);
# a node left drained/down by an earlier run is resumed once.
node_state() { timeout 10 sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1; }
deadline=$(( $(date +%s) + WAIT )); resumed=0; st=
while :; do
  st=$(node_state)
  case $st in
    idle | mixed | allocated | completing) break ;;
    *drain* | down*)
      if (( ! resumed )); then
        timeout 10 scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1
        resumed=1
      fi ;;
  esac
  (( $(date +%s) < deadline )) || break
  sleep 0.5
done
case $st in
  idle | mixed | allocated | completing) ;;
  *)
    reason=$(timeout 10 sinfo -h -N -n "$HOST" -o '%E' 2>/dev/null)
    die_log "node $HOST is '${st:-unknown}' after ${WAIT}s (reason: ${reason:-none})" $LOGDIR/slurmd.log ;;
esac
gres=$(timeout 10 sinfo -h -N -n "$HOST" -o %G 2>/dev/null | head -n1)
[[ $gres == *gpu* ]] || die_log "node $HOST advertises no GPUs (Gres='$gres')" $LOGDIR/slurmd.log
log "SLURM up in $(( $(date +%s) - T0 ))s: node $HOST $st, CPUs=$NCPUS, Mem=${MEM_MB}MB, Gres=$gres," \
    "partitions: $(timeout 10 sinfo -h -o %P | tr '\n' ' ')accounting=$ACCOUNTING"
