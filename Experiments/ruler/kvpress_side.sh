#!/usr/bin/env bash
# kvpress 0.5.5's presses beside KVKit's policies on the same RULER cases (the methods both have, with
# kvpress's settings): both tools answer exactly the token ids `kvkit kept` writes, after the same
# compression ratio; side_by_side.py pairs the answers case by case. Reuses Experiments/kvpress-crosscheck's
# virtualenv and scripts (PyTorch CPU from PyPI). Not part of `make test`.
# Usage: [KVKIT=path/to/kvkit] Experiments/ruler/kvpress_side.sh [SAMPLES (default 1 per task)] [BUDGETS (default 0.5)]
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
cross="$root/Experiments/kvpress-crosscheck"
KVKIT_HOME="${KVKIT_HOME:-$HOME/.cache/kvkit}"
model="${MODEL:-qwen2.5-coder-0.5b-instruct.gguf}"
samples="${1:-1}"; budgets="${2:-0.5}"
if [ ! -x "$cross/.venv/bin/python" ] || ! cmp -s "$cross/requirements.txt" "$cross/.venv/requirements.txt"; then
  python3 -m venv "$cross/.venv"
  "$cross/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$cross/requirements.txt"
  cp "$cross/requirements.txt" "$cross/.venv/requirements.txt"
fi
# KVKIT: a kvkit binary already built (e.g. the one a running study uses); default: make's build of this tree.
if [ -n "${KVKIT:-}" ]; then kvkit="$KVKIT"; else make -s -C "$root" build; kvkit="$root/.build/release/kvkit"; fi
out=results/kvpress-side
mkdir -p "$out"
grid=(--suite ruler --lengths 4096 --samples "$samples" --budget "$budgets" --threads 2 --model "$KVKIT_HOME/$model"
      --policy "streaming,knorm,snapkv:window=64,kernel=5,pool=avg,keydiff,expected-attention,kvzip,leverage,compactor,criticalkv:base=expected-attention")
start=$(date +%s%N)
"$kvkit" run "${grid[@]}" --out "$out/kvkit-run" > "$out/kvkit-run.log"
echo "{\"kvkit_run_seconds\": $(( ($(date +%s%N) - start) / 1000000 )).0e-3}" > "$out/kvkit-time.json"
"$kvkit" kept "${grid[@]}" --out "$out/kept.jsonl"
KVPRESS_ATTN=sdpa HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error "$cross/.venv/bin/python" "$cross/kept_kvpress.py" \
  "$out/kept.jsonl" "$KVKIT_HOME/$model" "$out"
python3 "$cross/side_by_side.py" "$out" | tee "$out/side_by_side.md"
