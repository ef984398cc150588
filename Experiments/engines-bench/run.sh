#!/usr/bin/env bash
# KVKit, llama.cpp and OpenVINO GenAI side by side (see bench.py). Usage: run.sh VENV [MODEL] [extra bench.py args]
# VENV: a Python venv with llama-cpp-python==0.3.36 (CMAKE_ARGS="-DGGML_BLAS=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF"
# pip install llama-cpp-python==0.3.36; ~15 min to build) and openvino-genai==2026.4.1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$here/../.."
venv="${1:?usage: run.sh VENV [MODEL] [bench.py args]}"; shift
model="${1:-${KVKIT_HOME:-$HOME/.cache/kvkit}/SmolLM2-135M-Instruct.Q4_1.gguf}"; [ $# -gt 0 ] && shift
"$venv/bin/python" -c "import llama_cpp, openvino_genai" 2>/dev/null || {
  echo "bench-engines: $venv lacks llama-cpp-python or openvino-genai; see Experiments/engines-bench/README.md" >&2; exit 1; }
(cd "$root" && swift build -c release $(bash scripts/host-flags.sh) --product kvkit >/dev/null)
exec "$venv/bin/python" "$here/bench.py" "$root/.build/release/kvkit" "$model" "$@"
