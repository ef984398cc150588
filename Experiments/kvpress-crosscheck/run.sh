#!/usr/bin/env bash
# KVKit against kvpress 0.5.5 on the same prompts (see README.md): kept-set agreement, accuracy and time
# per case. Not part of `make test`: it installs PyTorch (CPU wheel, from PyPI) into .venv here.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
KVKIT_HOME="${KVKIT_HOME:-$HOME/.cache/kvkit}"
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/requirements.txt; then
  echo "crosscheck: setting up .venv (pinned: requirements.txt; torch's CPU wheel is large)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/requirements.txt
fi
make -s -C "$root" build
kvkit="$root/.build/release/kvkit"
mkdir -p results
# One grid for both tools: 10 niah cases of 1,024 tokens on the essays, two budgets, twelve methods with
# kvpress's settings.
grid=(--probe niah --lengths 1024 --depths 0.1,0.3,0.5,0.7,0.9 --samples 2 --budget 0.25,0.5 --threads 2
      --policy "streaming,knorm,snapkv:window=64,kernel=5,pool=avg,tova,keydiff,lagkv,expected-attention,pyramidkv:window=64,kernel=5,pool=avg,chunkkv:chunk=20,window=64,kernel=5,pool=avg,h2o:recent=0,kvzip,cur,criticalkv:base=expected-attention,leverage,compactor")
# KVKit answers the cases (shared prefill, batched decoding) and writes what it kept.
start=$(date +%s%N)
"$kvkit" run "${grid[@]}" --out results/kvkit-run > results/kvkit-run.log
echo "{\"kvkit_run_seconds\": $(( ($(date +%s%N) - start) / 1000000 )).0e-3}" > results/kvkit-time.json
"$kvkit" kept "${grid[@]}" --out results/kept.jsonl
# kvpress keeps, answers and is timed on exactly those token ids.
HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py results/kept.jsonl \
  "$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf" results
# FINCH is query-aware: the question ends the prompt (its own kept sets; no answers to compare).
"$kvkit" kept --probe niah --lengths 1024 --depths 0.1,0.3,0.5,0.7,0.9 --samples 2 --budget 0.25,0.5 --threads 2 \
  --policy finch --query-aware --out results/kept-finch.jsonl
mkdir -p results/finch
HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py results/kept-finch.jsonl \
  "$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf" results/finch
cp results/finch/agreement.csv finch-agreement.csv
# KVCompose compresses outside BasePress's hook: its own kept sets, read back from the compressed rows.
"$kvkit" kept --probe niah --lengths 1024 --depths 0.1,0.3,0.5,0.7,0.9 --samples 2 --budget 0.25,0.5 --threads 2 \
  --policy kvcompose --out results/kept-kvcompose.jsonl
mkdir -p results/kvcompose
HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py results/kept-kvcompose.jsonl \
  "$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf" results/kvcompose 2>/dev/null
cp results/kvcompose/agreement.csv kvcompose-agreement.csv
# Fast KVzip with the gates KVKit trains for SmolLM2 (kvpress's press would download the authors', none for this model).
"$kvkit" calibrate --policy fastkvzip > results/fastkvzip-calibrate.log
"$kvkit" kept --probe niah --lengths 1024 --depths 0.1,0.3,0.5,0.7,0.9 --samples 2 --budget 0.25,0.5 --threads 2 \
  --policy fastkvzip --out results/kept-fastkvzip.jsonl
mkdir -p results/fastkvzip
FASTKVZIP_GATES=$(ls "$KVKIT_HOME"/fastkvzip-b179c9523d0e6a0f-*-s12-t512-n600.json | head -1) \
  HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py results/kept-fastkvzip.jsonl \
  "$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf" results/fastkvzip
cp results/fastkvzip/agreement.csv fastkvzip-agreement.csv
python3 side_by_side.py results > results/side_by_side.md
cp results/agreement.csv agreement.csv
cp results/accuracy.csv accuracy.csv
python3 figure.py
cat results/side_by_side.md
