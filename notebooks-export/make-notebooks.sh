#!/usr/bin/env bash
# `make notebooks`: a Python venv with the pinned packages, then for every study whose results exist, the
# notebook written from src/make_ipynb.py, executed against Experiments/<study>/results, and exported to
# Markdown with its PNG figures (notebooks-export/<study>.md and <study>_files/).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/jupyter ] || ! cmp -s requirements.txt .venv/requirements.txt; then
  echo "notebooks: setting up .venv (pinned: requirements.txt)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/requirements.txt
fi
# Each notebook runs where the files it reads are here: per-case results.jsonl (in git for the jobs
# whose runs were kept; run.sh remakes the others) or summary.csv files (always in git).
for study in needle-vs-budget multihop-vs-budget query-aware-vs-agnostic quant-x-eviction needle-vs-budget-later multihop-turns ruler; do
  case $study in
    needle-vs-budget) need="../Experiments/needle-vs-budget/results/qwen0.5b/results.jsonl" ;;
    multihop-vs-budget) need="../Experiments/multihop-vs-budget/results/qwen0.5b/summary.csv" ;;
    query-aware-vs-agnostic) need="../Experiments/query-aware-vs-agnostic/results/aware/summary.csv" ;;
    quant-x-eviction) need="../Experiments/quant-x-eviction/results/aware/summary.csv" ;;
    needle-vs-budget-later) need="../Experiments/needle-vs-budget/results/rkv/summary.csv" ;;
    multihop-turns) need="../Experiments/multihop-vs-budget/results/turns-every-8/summary.csv" ;;
    ruler) need="../Experiments/ruler/results/qwen0.5b/ruler.csv" ;;
  esac
  # shellcheck disable=SC2086
  if ! ls $need >/dev/null 2>&1; then
    echo "notebooks: $study has no results here; run Experiments/${study%%-later}/run.sh first (skipped)" >&2
    continue
  fi
  .venv/bin/python src/make_ipynb.py "$study"
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$study.ipynb" 2>/dev/null
  .venv/bin/python src/make_ipynb.py --strip "$study"
  rm -rf "${study}_files"
  .venv/bin/jupyter nbconvert --to markdown "$study.ipynb" 2>/dev/null
  echo "notebooks: $study.ipynb executed, exported to $study.md (figures in ${study}_files/)"
done
