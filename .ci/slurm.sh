#!/usr/bin/env bash
# Runs deploy/slurm/reproduce.sbatch on a one-node Slurm cluster started
# here (Debian's slurm-wlm and munge, no systemd): the quick grid's op-amp
# task, 20 iterations, as a 3-task job array into one shared directory;
# then merges the shards and checks the report. Stops the daemons it
# started. Fails after about 5 minutes.
#
# When Slurm cannot be had on this machine (not root, no apt-get or no
# package, another Slurm already configured or running, the daemons do not
# come up) it prints "skipped: <why>" and exits 0. Anything that goes wrong
# after the cluster is up is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
T0=$(date +%s)
LIMIT=${SLURM_CI_LIMIT:-300}
ts() { echo "[slurm.sh $(($(date +%s) - T0))s] $*"; }
left() { echo $((LIMIT - ($(date +%s) - T0))); }
skip() {
  echo "skipped: $*"
  exit 0
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || skip "not root: cannot install or start Slurm"
MARK="# written by insitu .ci/slurm.sh"
if [ -e /etc/slurm/slurm.conf ] && ! grep -qF "$MARK" /etc/slurm/slurm.conf; then
  skip "/etc/slurm/slurm.conf exists and is not ours: not touching another Slurm setup"
fi
for d in slurmctld slurmd; do
  if [ -s "/run/$d.pid" ] && kill -0 "$(cat "/run/$d.pid")" 2>/dev/null; then
    skip "$d is already running (pid $(cat "/run/$d.pid"))"
  fi
done

WORK=$(mktemp -d /tmp/insitu-slurm.XXXXXX)
STARTED=()
cleanup() {
  local rc=$?
  local pids=()
  for p in "${STARTED[@]}"; do
    if [ -s "$p" ]; then pids+=("$(cat "$p")"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 20); do # wait until they are gone, at most 10 s
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.5
    done
  fi
  if [ $rc != 0 ] && [ -d /var/log/slurm ]; then
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log 2>/dev/null || true
  fi
  rm -rf "$WORK"
  ts "stopped the daemons started here (exit $rc)"
}
trap cleanup EXIT

# 1. install
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "no apt-get to install slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  timeout 150 apt-get update -q >/dev/null 2>&1 || skip "apt-get update failed"
  timeout 150 apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
    skip "apt-get install slurm-wlm munge failed"
fi
ts "installed: $(slurmctld -V 2>/dev/null), munge $(munged --version 2>/dev/null | head -n 1)"

# 2. build insitu while the daemons come up below
(cd "$REPO" && go build -o "$WORK/bin/insitu" ./cmd/insitu) >"$WORK/build.log" 2>&1 &
BUILD=$!

# 3. munge key (Debian's munge package creates one; make sure) and run dir
if [ ! -s /etc/munge/munge.key ]; then
  /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge

# 4. slurm.conf: one node, this machine, every core
H=$(hostname -s)
ADDR=""
getent hosts "$H" >/dev/null || ADDR="127.0.0.1"
MEM=$(free -m | awk '/^Mem:/{print $2 - 512}')
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<EOF
$MARK
ClusterName=insitu-ci
SlurmctldHost=$H${ADDR:+($ADDR)}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$H${ADDR:+ NodeAddr=$ADDR} CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# 5. daemons (each daemonizes and writes its pid file; stopped by pid)
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged || skip "munged did not start"
  STARTED+=(/run/munge/munged.pid)
fi
munge -n | unmunge >/dev/null || skip "munge does not round-trip a credential"
/usr/sbin/slurmctld || skip "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
STARTED+=(/run/slurmctld.pid)
/usr/sbin/slurmd || skip "slurmd did not start (see /var/log/slurm/slurmd.log)"
STARTED+=(/run/slurmd.pid)
for _ in $(seq 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 1
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || skip "the node did not become idle in 60 s: $(sinfo -h -o '%T %E' 2>&1)"
ts "cluster up: $(sinfo -h -o '%P %D %c %T')"

wait "$BUILD" || fail "go build: $(cat "$WORK/build.log")"
ts "built insitu"

# 6. the job array: the real job script, 3 shards of the quick grid's
# op-amp task at 20 iterations, one CPU each (two run at once), writing
# into one directory as on a cluster's shared file system
cd "$WORK"
export SCALE=quick OUT="$WORK/out" INSITU="$WORK/bin/insitu" CONFIGS="$REPO/configs"
export REPRODUCE_ARGS="--tasks opamp-analytic --iterations 20 --ngspice off"
JID=$(sbatch --parsable --array=0-2 --cpus-per-task=1 --time=00:05:00 \
  --output="$WORK/slurm-%A_%a.out" "$REPO/deploy/slurm/reproduce.sbatch") || fail "sbatch refused the job script"
ts "submitted job array $JID"
rc=0
L=$(left)
[ "$L" -gt 0 ] || L=1
timeout "$L" bash -c "while [ -n \"\$(squeue -h -j $JID 2>/dev/null)\" ]; do sleep 1; done" || rc=$?
if [ $rc != 0 ]; then
  scancel "$JID" || true
  fail "job array $JID still running after ${LIMIT}s"
fi
for f in "$WORK"/slurm-"${JID}"_*.out; do
  echo "--- $(basename "$f")"
  cat "$f"
done
[ "$(ls "$WORK"/slurm-"${JID}"_*.out | wc -l)" = 3 ] || fail "want 3 task logs"
BAD=$(scontrol show job "$JID" | grep -o 'JobState=[A-Z_]*' | grep -vc '=COMPLETED$' || true)
[ "$BAD" = 0 ] || fail "$BAD array tasks did not complete: $(scontrol show job "$JID" | grep -o 'JobState=[A-Z_]*' | tr '\n' ' ')"
ts "job array $JID: 3 tasks completed"

# 7. merge and check
"$INSITU" reproduce merge --out "$WORK/merged" "$OUT" || fail "merge failed"
R="$WORK/merged/report.md"
[ -s "$R" ] || fail "no report"
grep -q '^## Op-amp, analytic backend' "$R" || fail "the report has no op-amp section"
awk '/^## Op-amp, analytic backend/{on=1; next} /^## /{on=0} on' "$R" >"$WORK/opamp.md"
for m in gradpie mae random cmaes bayopt; do
  grep -q "^| $m | " "$WORK/opamp.md" || fail "the op-amp table has no $m row"
done
grep -q '@ 20 |' "$WORK/opamp.md" || fail "the op-amp table has no column at iteration 20"
N=$("$INSITU" reproduce --list --out "$WORK/merged" 2>/dev/null | grep -c '^finished .* opamp-analytic/')
[ "$N" = 15 ] || fail "$N of 15 op-amp cells finished (5 methods × 3 seeds)"
sed -n '/^## Op-amp, analytic backend/,/^Median/p' "$R"
ts "ok: 15 op-amp cells in 3 Slurm array tasks, merged, report checked"
