"""Kept sets of kvpress presses on the exact prompts KVKit compressed (`kvkit kept` output), for the
kept-set agreement of Experiments/kvpress-crosscheck. Reads kept.jsonl (KVKit: tokens and kept positions
per layer and KV head), runs SmolLM2's GGUF through transformers with each matching press at the same
budget, records the indices every ScorerPress keeps (its own top-k), and writes agreement.csv with the
mean Jaccard overlap per method, plus per-layer means.

usage: kept_kvpress.py KEPT_JSONL MODEL_GGUF OUT_DIR [FIXTURE_JSON]

With FIXTURE_JSON, also writes kvpress's kept sets at layers 0, 15 and 29 with the prompt's ids (the
fixture `make test` checks KVKit against, Tests/Fixtures/kvpress-kept.json).
"""
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

import kvpress
from kvpress.presses.scorer_press import ScorerPress

# KVKit spec (as kvkit kept writes it) -> kvpress press at kvpress's defaults, matched in KVKit's spec.
PRESSES = {
    "streaming:sinks=4": lambda r: kvpress.StreamingLLMPress(compression_ratio=r, n_sink=4),
    "knorm": lambda r: kvpress.KnormPress(compression_ratio=r),
    "snapkv:gqa=mean,kernel=5,pool=avg,window=64": lambda r: kvpress.SnapKVPress(compression_ratio=r, window_size=64, kernel_size=5),
    "tova:gqa=mean": lambda r: kvpress.TOVAPress(compression_ratio=r),
    "keydiff": lambda r: kvpress.KeyDiffPress(compression_ratio=r),
    "lagkv:lag=128,sinks=4": lambda r: kvpress.LagKVPress(compression_ratio=r, n_sink=4, lag_size=128),
}

captured = {}
_original = ScorerPress.compress


def capture(self, module, hidden_states, keys, values, attentions, kwargs):
    """ScorerPress.compress, recording the kept indices per (layer, KV head)."""
    if self.compression_ratio > 0:
        scores = self.score(module, hidden_states, keys, values, attentions, kwargs)
        n_kept = max(1, int(keys.shape[2] * (1 - self.compression_ratio)))
        idx = scores.topk(n_kept, dim=-1).indices[0]
        captured[module.layer_idx] = [sorted(h.tolist()) for h in idx]
    return _original(self, module, hidden_states, keys, values, attentions, kwargs)


ScorerPress.compress = capture


def main():
    kept_path, gguf, out = sys.argv[1:4]
    fixture = {"layers": [0, 15, 29], "cases": []} if len(sys.argv) > 4 else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gguf = Path(gguf)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    per_method = defaultdict(list)
    per_layer = defaultdict(lambda: defaultdict(list))
    for line in open(kept_path):
        r = json.loads(line)
        make = PRESSES.get(r["policy"])
        if make is None:
            continue
        ratio = 1 - float(r["budget"])
        captured.clear()
        ids = torch.tensor([r["tokens"]])
        with torch.no_grad(), make(ratio)(model):
            model(ids, use_cache=True)
        if fixture is not None:
            fixture["cases"].append({"id": r["id"], "policy": r["policy"], "budget": r["budget"], "tokens": r["tokens"],
                                     "kept": {str(l): captured[l] for l in fixture["layers"]}})
        for layer, heads in enumerate(r["kept"]):
            for head, mine in enumerate(heads):
                theirs = set(captured[layer][head])
                ours = set(mine)
                j = len(ours & theirs) / max(1, len(ours | theirs))
                key = f'{r["policy"]} @ {r["budget"]}'
                per_method[key].append(j)
                per_layer[key][layer].append(j)
    with open(out / "agreement.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "streams", "mean_jaccard", "min_jaccard", "mean_jaccard_by_layer"])
        for m, js in sorted(per_method.items()):
            layers = ";".join(f"{sum(v) / len(v):.3f}" for _, v in sorted(per_layer[m].items()))
            w.writerow([m, len(js), f"{sum(js) / len(js):.4f}", f"{min(js):.4f}", layers])
    print(open(out / "agreement.csv").read())
    if fixture is not None:
        Path(sys.argv[4]).write_text(json.dumps(fixture, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
