"""Writes dequant.json: random blocks of every GGML block type KVKit reads, and their values as
dequantized by the `gguf` Python package (llama.cpp's gguf-py, numpy), an implementation independent of
KVKit's. Run: python3 -m venv v && v/bin/pip install gguf numpy && v/bin/python make_dequant.py
(gguf 0.19.0, numpy 2.4.6 when this file was made). The fp16 scale fields get finite values of a sane size;
every other byte is random."""
import json
import numpy as np
from gguf import GGMLQuantizationType as T, quants, GGML_QUANT_SIZES

# fp16 fields (byte offsets in a block) and whether they are mins (non-negative)
HALVES = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
          T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
rng = np.random.default_rng(20261205)
out = {}
for t, offs in HALVES.items():
    block, size = GGML_QUANT_SIZES[t]
    n_blocks = 6
    raw = rng.integers(0, 256, size=n_blocks * size, dtype=np.uint8)
    for b in range(n_blocks):
        for o in offs:
            h = np.float16(rng.uniform(-0.05, 0.05))
            raw[b * size + o: b * size + o + 2] = np.frombuffer(h.tobytes(), dtype=np.uint8)
    values = quants.dequantize(raw, t).astype(np.float32).reshape(-1)
    assert values.size == n_blocks * block and np.all(np.isfinite(values))
    out[t.name.lower().replace("_k", "_K")] = {"hex": raw.tobytes().hex(), "floats": [float(v) for v in values]}
with open("dequant.json", "w") as f:
    json.dump(out, f)
print({k: len(v["floats"]) for k, v in out.items()})
