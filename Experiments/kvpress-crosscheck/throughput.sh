#!/usr/bin/env bash
# Study throughput, KVKit against kvpress 0.5.5 on the same cases (issue: "cases × variants per hour"):
# niah cases at 1,024 tokens, a policy grid both tools implement, ROUNDS alternating rounds of
#   KVKit:   `kvkit run` (one shared prefill per case, copy-on-write forks, batched answers), its own
#            per-variant seconds from results.jsonl (prefill + compression + answer; model load excluded);
#   kvpress: `kept_kvpress.py` on the ids `kvkit kept` wrote (a prefill per press, then the answer), its
#            per-case seconds (model load excluded).
# Usage: throughput.sh MODEL_FILE [ROUNDS] (the crosscheck's .venv must exist: make crosscheck builds it).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
KVKIT_HOME="${KVKIT_HOME:-$HOME/.cache/kvkit}"
model="$1"; rounds="${2:-2}"
kvkit="$root/.build/release/kvkit"
out=results/throughput-$(basename "$model" .gguf); mkdir -p "$out"
grid=(--model "$model" --probe niah --lengths 1024 --depths 0.1,0.5,0.9 --samples 1 --budget 0.25,0.5 --threads 2
      --policy "streaming,snapkv:window=64,kernel=5,pool=avg,expected-attention,kvzip")
"$kvkit" kept "${grid[@]}" --out "$out/kept.jsonl" > /dev/null
for r in $(seq 1 "$rounds"); do
  rm -rf "$out/run-$r"
  "$kvkit" run "${grid[@]}" --out "$out/run-$r" --no-progress > /dev/null
  HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py "$out/kept.jsonl" \
    "$KVKIT_HOME/$(basename "$model")" "$out/kvpress-$r" > /dev/null 2>&1
done
python3 - "$out" "$rounds" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
kk, kp = [], []
for r in range(1, rounds + 1):
    rows = [json.loads(l) for l in open(f"{out}/run-{r}/results.jsonl")]
    variants = [x for x in rows if x["policy"] != "full"]
    secs = sum(x["prefillSeconds"] + x["compressSeconds"] + x["decodeSeconds"] for x in rows)
    kk.append(3600 * len(variants) / secs)
    runs = [json.loads(l) for l in open(f"{out}/kvpress-{r}/kvpress_answers.jsonl")]
    kp.append(3600 * len(runs) / sum(x["seconds"] for x in runs))
print(f"cases x variants per hour, {rounds} alternating rounds: KVKit {', '.join(f'{x:.0f}' for x in kk)}; "
      f"kvpress {', '.join(f'{x:.0f}' for x in kp)}; median ratio {statistics.median(kk) / statistics.median(kp):.1f}x")
PY
