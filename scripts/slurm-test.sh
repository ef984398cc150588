#!/usr/bin/env bash
# Runs a tiny study through a real single-node Slurm (scripts/slurm-local.sh starts it): `kvkit sweep
# --slurm --shards 2 --submit` writes and submits a 2-task sbatch array and a merge job that depends on it;
# the merged summary must equal the same study run unsharded.
#   usage: scripts/slurm-test.sh [path/to/kvkit]   (default .build/release/kvkit)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/.build/release/kvkit}"
[ -x "$bin" ] || { echo "slurm-test: $bin is not built; run 'make build'" >&2; exit 1; }
kvkit="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
tmp=$(mktemp -d /tmp/kvkit-slurm-study.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# Two policies, one length, four cases; the same study twice: through Slurm and unsharded.
study() {
  cat > "$tmp/$1.json" <<EOF
{"study": "$1", "results": "results-$1",
 "common": {"probe": "niah", "lengths": [256], "depths": [0.1, 0.4, 0.7, 0.95], "budget": [0.5], "seed": 7, "samples": 1, "threads": 1},
 "jobs": [{"name": "two-policies", "options": {"policy": "streaming,snapkv"}}]}
EOF
}
study slurm; study whole

# slurm-local.sh starts the cluster, runs the submission and waits until the queue is empty.
out=$(bash "$root/scripts/slurm-local.sh" "$kvkit" sweep "$tmp/slurm.json" --slurm --shards 2 --cpus 1 --submit)
echo "$out"
array=$(echo "$out" | sed -n 's/^array=\([0-9]*\) merge=\([0-9]*\)$/\1/p')
merge=$(echo "$out" | sed -n 's/^array=\([0-9]*\) merge=\([0-9]*\)$/\2/p')
[ -n "$array" ] && [ -n "$merge" ] || { echo "slurm-test: no job ids in kvkit's output" >&2; exit 1; }
logs="$tmp/results-slurm/slurm/logs"
for f in "$logs"/shard-1-of-2.out "$logs"/shard-2-of-2.out "$logs"/merge.out; do
  [ -s "$f" ] || { echo "slurm-test: $f is missing: a task did not run" >&2; ls -la "$logs" >&2 || true; exit 1; }
  echo "--- $(basename "$f")"; cat "$f"
done
merged="$tmp/results-slurm/two-policies"
[ -f "$merged/summary.csv" ] || { echo "slurm-test: the merge job wrote no summary" >&2; exit 1; }
[ -d "$merged/shard-1-of-2" ] && [ -d "$merged/shard-2-of-2" ] || { echo "slurm-test: shard folders missing" >&2; exit 1; }

"$kvkit" sweep "$tmp/whole.json" --no-progress >/dev/null
if cmp -s "$merged/summary.csv" "$tmp/results-whole/two-policies/summary.csv"; then
  echo "slurm-test: OK, the merged summary.csv (2 array tasks + a dependent merge job) equals the unsharded run's"
else
  diff "$merged/summary.csv" "$tmp/results-whole/two-policies/summary.csv" >&2 || true
  echo "slurm-test: FAILED, the merged summary differs from the unsharded run's" >&2
  exit 1
fi
