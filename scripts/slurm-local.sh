#!/usr/bin/env bash
# A real single-node Slurm on this machine for one command: installs Debian's slurmctld/slurmd/
# slurm-client when absent, starts both daemons on localhost with a config in a temp folder (no munge:
# auth/none, fine for a test cluster, not for production), runs COMMAND with SLURM_CONF exported, waits
# until the queue is empty, and stops the daemons it started on every exit (also when interrupted).
#   usage: scripts/slurm-local.sh COMMAND [ARGS...]
#   e.g.   scripts/slurm-local.sh .build/release/kvkit sweep Experiments/STUDY/config.json --slurm --shards 2 --cpus 1 --submit
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 64; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
  echo "slurm-local: installing slurmctld slurmd slurm-client" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client >/dev/null 2>&1
fi

tmp=$(mktemp -d /tmp/kvkit-slurm.XXXXXX)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 1' INT TERM   # an EXIT trap alone does not run on SIGTERM

# Two free ports (Slurm's 6817 / 6818 unless taken, e.g. by a study's cluster on the same machine: CI's own test
# cluster then starts beside it instead of failing with "the node never became idle").
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
for p in $(seq 6817 6917); do
  in_use "$p" || ports+=("$p")
  [ ${#ports[@]} -eq 2 ] && break
done
[ ${#ports[@]} -eq 2 ] || { echo "slurm-local: no two free ports in 6817-6917; stop the other Slurm daemons on this machine" >&2; exit 1; }

cpus=$(nproc)
mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
mkdir -p "$tmp/state" "$tmp/spool"
cat > "$tmp/slurm.conf" <<EOF
ClusterName=kvkit-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$tmp/slurm.conf"
start=$(date +%s%N)
since() { local ms=$(( ($(date +%s%N) - start) / 1000000 )); printf "%d.%03d" $((ms / 1000)) $((ms % 1000)); }
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/ctld.out" 2>&1 & pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$tmp/d.out" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
  [ "$(sinfo -h -n localhost -o '%t' 2>/dev/null)" = "idle" ] && break
  sleep 0.2
done
[ "$(sinfo -h -n localhost -o '%t' 2>/dev/null)" = "idle" ] || { echo "slurm-local: the node never became idle" >&2; tail -5 "$tmp"/*.log >&2; exit 1; }
echo "slurm-local: single-node Slurm up in $(since) s: $(sinfo -h -o '%P %D %t %C')"

"$@"
# Wait for every job to leave the queue (the merge job runs last).
for _ in $(seq 1 172800); do
  squeue -h 2>/dev/null | grep -q . || break
  sleep 0.5
done
echo "slurm-local: queue empty after $(since) s"
