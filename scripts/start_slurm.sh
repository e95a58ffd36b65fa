#!/usr/bin/env bash
# Start a throwaway single-node SLURM (slurmctld + slurmd on 127.0.0.1, munge for auth) for the
# orchestrator's `slurm` tests and print the partition it offers.
#
#   scripts/start_slurm.sh && export LIT_SNN_TEST_SLURM=1
#
# Needs root: installs Debian's slurm-wlm and munge when slurmctld is missing, writes a munge key
# when there is none, and a minimal slurm.conf (no accounting: no slurmdbd, so no sacct) with state,
# spool and logs under LIT_SNN_SLURM_DIR (default /tmp/lit_snn_slurm). The node offers this machine's
# CPUs. Idempotent: a second call reuses the running daemons. Stop them with: scripts/start_slurm.sh stop
set -euo pipefail
DIR="${LIT_SNN_SLURM_DIR:-/tmp/lit_snn_slurm}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"

pid_of() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"; }

if [ "${1:-}" = stop ]; then
  for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    if pid="$(pid_of "$pidfile")"; then kill "$pid"; fi
  done
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "start_slurm.sh: slurmctld and slurmd run as root here (SlurmUser=root): run it as root" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "start_slurm.sh: installing slurm-wlm and munge (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >&2
fi

# munge: a key, then the daemon (slurm authenticates every request with it)
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then mungekey --create --force --keyfile=/etc/munge/munge.key >&2
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force >&2 || /usr/sbin/munged --force >&2
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

CPUS="$(nproc)"
mkdir -p "$DIR/state" "$DIR/spool" "$CONF_DIR"
# SchedulerParameters/intervals: a job starts within a second or two (the tests submit tiny arrays)
cat > "$CONF.new" <<EOF
# written by lit_snn's scripts/start_slurm.sh: a single node on 127.0.0.1, no accounting
ClusterName=lit_snn
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
SlurmdTimeout=30
MinJobAge=300
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$CONF.new" "$CONF"; then
  mv "$CONF.new" "$CONF"
  restart=1
else
  rm "$CONF.new"
  restart=0
fi

if [ "$restart" = 1 ]; then
  for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    if pid="$(pid_of "$pidfile")"; then kill "$pid"; sleep 1; fi
  done
fi
pid_of "$DIR/slurmctld.pid" >/dev/null || /usr/sbin/slurmctld -c >&2  # -c: no state from an older conf
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
pid_of "$DIR/slurmd.pid" >/dev/null || /usr/sbin/slurmd >&2
for _ in $(seq 100); do
  state="$(sinfo -h -N -o %T 2>/dev/null | head -n 1)"
  case "$state" in idle*|mixed*|alloc*) break ;; esac
  sleep 0.2
done
case "$state" in
  idle*|mixed*|alloc*) ;;
  *) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
esac
if ! sinfo -h -o "%P %a %D %T %C" | grep -q .; then
  echo "start_slurm.sh: slurmctld does not answer; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
  exit 1
fi
echo "slurm: partition $(sinfo -h -o '%P %a, %D node(s) %T, CPUs A/I/O/T %C' | head -n 1) (conf $CONF, logs in $DIR)"
