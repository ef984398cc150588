#!/usr/bin/env bash
# Kept-set agreement between KVKit's policies and kvpress 0.5.5's presses on the same prompts (see
# README.md). Not part of `make test`: it installs PyTorch (CPU wheel, from PyPI) into .venv here.
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
mkdir -p results
# The same prompts through both: KVKit writes the token ids and its kept positions; kvpress runs those ids.
"$root/.build/release/kvkit" kept --probe niah --lengths 1024 --depths 0.3,0.7 --samples 2 --budget 0.25,0.5 \
  --policy streaming,knorm,snapkv:window=64,kernel=5,pool=avg,tova,keydiff,lagkv --out results/kept.jsonl
HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python kept_kvpress.py results/kept.jsonl \
  "$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf" results
cp results/agreement.csv agreement.csv
