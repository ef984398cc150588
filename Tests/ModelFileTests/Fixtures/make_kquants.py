# Makes kquants.json: random Q4_K and Q6_K blocks and their dequantization by gguf-py (PyPI `gguf`,
# llama.cpp's own Python package), an implementation independent of KVKit's.
# Run: pip download --no-deps gguf==0.19.0; unzip it; PYTHONPATH=<unzipped> python3 make_kquants.py
import json, numpy as np
from gguf import GGMLQuantizationType as Q, quants

rng = np.random.default_rng(20261123)
out = {}
for name, qt, size in [("q4_K", Q.Q4_K, 144), ("q6_K", Q.Q6_K, 210)]:
    blocks = []
    for _ in range(3):
        b = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        # Keep the fp16 scales finite and moderate: d (and dmin) in [0.001, 0.1].
        for off in ([0, 2] if qt == Q.Q4_K else [208]):
            b[off:off + 2] = np.float16(rng.uniform(0.001, 0.1)).tobytes()
        blocks.append(bytes(b))
    raw = np.frombuffer(b"".join(blocks), dtype=np.uint8)
    vals = quants.dequantize(raw, qt).astype(np.float32).reshape(-1)
    out[name] = {"hex": raw.tobytes().hex(), "floats": [float(v) for v in vals]}
json.dump(out, open("kquants.json", "w"))
print({k: len(v["floats"]) for k, v in out.items()})
