"""A plain float64 NumPy forward pass of Gemma 3 270M from the GGUF file (weights dequantized by gguf-py,
llama.cpp's own Python package; no KVKit code), to judge near-ties between KVKit and llama.cpp: llama.cpp
quantizes activations to 8 bits for its dot products, KVKit multiplies Float32 activations by the exact
dequantized weights. Writes float64_anchors.json: per prompt the top-20 logits at the last position and
the float64 greedy continuation of `short`. Run (about 2 min): python3 -m venv v && v/bin/pip install
gguf==0.19.0 numpy && v/bin/python make_float64.py ~/.cache/kvkit/gemma-3-270m-q4_k_m.gguf"""
import json, sys, numpy as np
from gguf import GGUFReader, quants
r = GGUFReader(sys.argv[1])
T = {t.name: t for t in r.tensors}
def W(name):
    t = T[name]
    a = quants.dequantize(t.data, t.tensor_type).astype(np.float64)
    return a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim == 1 and len(t.shape) > 1 else a
dim, L, H, hd, eps, win = 640, 18, 4, 256, 1e-6, 512
emb = W("token_embd.weight")  # [vocab][dim]
layers = []
for l in range(L):
    p = f"blk.{l}."
    layers.append({k: W(p + k + ".weight") for k in ["attn_norm","attn_q","attn_k","attn_v","attn_q_norm","attn_k_norm","attn_output","post_attention_norm","ffn_norm","ffn_gate","ffn_up","ffn_down","post_ffw_norm"]})
onorm = W("output_norm.weight")
def rms(x, w): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
def rope(x, pos, base):  # x [T][heads][hd], neox
    half = hd // 2
    inv = base ** (-2.0 * np.arange(half) / hd)
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * c - b * s, a * s + b * c], -1)
def forward(ids):
    n = len(ids); pos = np.arange(n, dtype=np.float64)
    x = emb[ids] * np.sqrt(np.float32(dim))
    for l, P in enumerate(layers):
        glob = l % 6 == 5
        h = rms(x, P["attn_norm"])
        q = (h @ P["attn_q"].T).reshape(n, H, hd); k = (h @ P["attn_k"].T).reshape(n, 1, hd); v = (h @ P["attn_v"].T).reshape(n, 1, hd)
        q = rms(q, P["attn_q_norm"]); k = rms(k, P["attn_k_norm"])
        base = 1e6 if glob else 1e4
        q = rope(q, pos, base); k = rope(k, pos, base)
        S = np.einsum("thd,sd->hts", q, k[:, 0]) / 16.0
        i, j = np.arange(n)[:, None], np.arange(n)[None, :]
        mask = (j > i) | ((not glob) & (i - j >= win))
        S = np.where(mask[None], -np.inf, S)
        S = np.exp(S - S.max(-1, keepdims=True)); S /= S.sum(-1, keepdims=True)
        o = np.einsum("hts,sd->thd", S, v[:, 0]).reshape(n, H * hd)
        x = x + rms(o @ P["attn_output"].T, P["post_attention_norm"])
        h = rms(x, P["ffn_norm"])
        g = h @ P["ffn_gate"].T; u = h @ P["ffn_up"].T
        g = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        x = x + rms((g * u) @ P["ffn_down"].T, P["post_ffw_norm"])
    return rms(x[-1], onorm) @ emb.T
anchors = json.load(open("llamacpp_anchors.json"))["prompts"]
out = {"model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", "engine": "numpy float64 (make_float64.py)", "prompts": {}}
for name, a in anchors.items():
    lg = forward(a["token_ids"])
    top = [int(t) for t in np.argsort(-lg)[:20]]
    entry = {"top20_ids": top, "top20_logits": [float(lg[t]) for t in top]}
    if name == "short":  # greedy 16 tokens, recomputing the whole sequence each step
        ids, greedy, margins = list(a["token_ids"]), [], []
        for _ in range(16):
            l = forward(ids); o = np.argsort(-l)[:2]
            greedy.append(int(o[0])); margins.append(float(l[o[0]] - l[o[1]])); ids.append(int(o[0]))
        entry["greedy16_ids"] = greedy; entry["greedy16_margins"] = margins
    out["prompts"][name] = entry
    print(name, top[:3], entry.get("greedy16_ids"))
json.dump(out, open("float64_anchors.json", "w"), indent=1)
