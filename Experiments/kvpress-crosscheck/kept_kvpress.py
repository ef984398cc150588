"""kvpress's side of Experiments/kvpress-crosscheck, on the exact prompts KVKit compressed.

Reads `kvkit kept` output (per case × policy × budget: the prompt's token ids, the positions every
(layer, KV head) kept, the first question's token ids, the expected answers, the answer length), runs
SmolLM2's GGUF through transformers with the matching press at the same budget and
- records which positions each press kept, read back from the compressed cache itself (every kept key row
  is found among the uncompressed rows), so presses that override `compress` (PyramidKV, ChunkKV) are
  captured like the scorer presses;
- answers the question on the compressed cache as kvpress's pipeline does (question after the compressed
  context, greedy decoding, positions continuing from the context length) and scores it as KVKit does
  (the fraction of expected values found in the answer);
- times prefill + compression + answer per case.

Writes agreement.csv (mean Jaccard of kept sets per method and budget, with per-layer means) and
kvpress_answers.jsonl (per case: method, budget, score, seconds, kept counts per layer).

usage: kept_kvpress.py KEPT_JSONL MODEL_GGUF OUT_DIR [FIXTURE_JSON]

With FIXTURE_JSON, also writes kvpress's kept sets at layers 0, 15 and 29 with the prompt's ids (the
fixture `make test` checks KVKit against, Tests/Fixtures/kvpress-kept.json).
"""
import csv
import hashlib
import importlib.metadata
import json, os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

import kvpress
from kvpress.presses import base_press

# KVKit spec (as `kvkit kept` labels it) -> the kvpress press with the same method and settings.
PRESSES = {
    "streaming:sinks=4": lambda r: kvpress.StreamingLLMPress(compression_ratio=r, n_sink=4),
    "knorm": lambda r: kvpress.KnormPress(compression_ratio=r),
    "snapkv:gqa=mean,kernel=5,pool=avg,window=64": lambda r: kvpress.SnapKVPress(compression_ratio=r, window_size=64, kernel_size=5),
    "tova:gqa=mean,heads=layer": lambda r: kvpress.TOVAPress(compression_ratio=r),
    "keydiff": lambda r: kvpress.KeyDiffPress(compression_ratio=r),
    "lagkv:lag=128,sinks=4": lambda r: kvpress.LagKVPress(compression_ratio=r, n_sink=4, lag_size=128),
    "expected-attention:cov=on,future=512,sinks=4,vnorm=on": lambda r: kvpress.ExpectedAttentionPress(compression_ratio=r),
    "pyramidkv:beta=20,gqa=mean,kernel=5,pool=avg,window=64":
        lambda r: kvpress.PyramidKVPress(compression_ratio=r, window_size=64, kernel_size=5, beta=20),
    "chunkkv:chunk=20,gqa=mean,kernel=5,pool=avg,reuse=1,window=64":
        lambda r: kvpress.ChunkKVPress(press=kvpress.SnapKVPress(compression_ratio=r, window_size=64, kernel_size=5), chunk_length=20),
    "h2o:gqa=mean,recent=0": lambda r: kvpress.ObservedAttentionPress(compression_ratio=r),
    "kvzip:gqa=max,scope=global": lambda r: kvpress.KVzipPress(compression_ratio=r),
    # Query-aware (`kvkit kept --query-aware`): the question ends the prompt; FinchPress finds it after a
    # delimiter token (added to the tokenizer, removed again by its embedding hook). Keys are not re-rotated,
    # so every kept key row is a copy of a prompt row, as the capture below needs.
    "finch:window=32": lambda r: kvpress.FinchPress(compression_ratio=r, rerotate_keys=False),
    "cur:leverage=kv-product,sinks=4,window=16": lambda r: kvpress.CURPress(compression_ratio=r),
    # kvpress sketches the keys with a fresh Gaussian of `sketch_dimension` columns; as wide as the head (64)
    # the sketch spans the keys' own space, so its leverage is the exact one KVKit computes (up to the ridge).
    "leverage:sketch=0": lambda r: kvpress.LeverageScorePress(compression_ratio=r, sketch_dimension=64),
    "compactor:blend=-1,chunk=256,recent=4,sinks=8,sketch=0":
        lambda r: kvpress.CompactorPress(compression_ratio=r, sketch_dimension=64),
    "criticalkv:base=expected-attention,epsilon=0.0001,first=0.5":
        lambda r: kvpress.CriticalKVPress(kvpress.ExpectedAttentionPress(compression_ratio=r)),
    # KVCompose scores in its own hook and compresses once the press exits: its kept sets are read back by
    # matching the compressed rows against an uncompressed prefill (`rows_kept`).
    "kvcompose:headmean=on,layout=structured": lambda r: kvpress.KVComposePress(compression_ratio=r),
    # Fast KVzip's gates are trained per model; kvpress downloads the authors' (none for SmolLM2), so its
    # press is handed the gates KVKit trained (FASTKVZIP_GATES: KVKit's JSON) and the two check the same
    # gate arithmetic and selection on the same ids.
    "fastkvzip:samples=12,scope=global,steps=600,tokens=512": lambda r: fastkvzip_press(r),
}
# Presses that mask keys (module.masked_key_indices, read by kvpress's attention patch) instead of removing
# them: their kept sets are read from the masks; they need a non-eager attention and a cache passed in.
# The attention of presses that need no attention weights: eager by default (the cross-check's recorded runs);
# KVPRESS_ATTN=sdpa for long contexts (RULER at 4,096 tokens), where eager materialises every head's n × n
# weights on the CPU. The presses' scores do not read the weights, so only float rounding differs.
ATTN = os.environ.get("KVPRESS_ATTN", "eager")
if ATTN not in ("eager", "sdpa"):
    sys.exit(f"KVPRESS_ATTN={ATTN!r}: use eager or sdpa")
MASKING = {"kvzip:gqa=max,scope=global", "fastkvzip:samples=12,scope=global,steps=600,tokens=512"}

captured = {}
_gates = None


def fastkvzip_press(ratio):
    """FastKVzipPress with the gates KVKit trained (`$FASTKVZIP_GATES`, the JSON kept in $KVKIT_HOME): same
    layout as kvpress's FastKVzipGate (q_proj rows by head, group, dim; k_base [head, 1, sink, dim])."""
    import os
    from kvpress.presses.fastkvzip_press import FastKVzipGate
    global _gates
    if _gates is None:
        value = json.load(open(os.environ["FASTKVZIP_GATES"]))["value"]
        _gates = []
        for i, g in enumerate(value["layers"]):
            H, G, D, E, S = g["kvHeads"], g["group"], g["hidden"], 16, 16
            m = FastKVzipGate(i, D, H, G, torch.float32, output_dim=E, sink=S)
            m.load_state_dict({
                "q_proj.weight": torch.tensor(g["wq"]).view(H * G * E, D), "q_proj.bias": torch.tensor(g["bq"]),
                "k_proj.weight": torch.tensor(g["wk"]).view(H * E, D),
                "q_norm.weight": torch.tensor(g["qNorm"]), "k_norm.weight": torch.tensor(g["kNorm"]),
                "k_base": torch.tensor(g["kBase"]).view(H, 1, S, E), "b": torch.tensor(g["b"]).view(H, 1, G),
            })
            _gates.append(m.eval())
    press = kvpress.FastKVzipPress(compression_ratio=ratio)
    press.gates = _gates
    return press
_original_hook = base_press.BasePress.forward_hook


def capturing_hook(self, module, input, kwargs, output):
    """BasePress.forward_hook, recording which of the layer's positions each KV head kept."""
    cache = kwargs["past_key_values"]
    before = base_press.extract_keys_and_values(cache, module.layer_idx)[0][0].clone()  # [heads][n][d]
    if isinstance(self, kvpress.ChunkKVPress):
        output = (output[0], None)  # ChunkKV scores with its own window attention, not the eager weights
    result = _original_hook(self, module, input, kwargs, output)
    after = cache.layers[module.layer_idx].keys[0]
    kept = []
    for h in range(before.shape[0]):
        # The nearest row (cdist's rounding is ~1e-6), then an exact check that it is a copy.
        idx = torch.cdist(after[h].double(), before[h].double()).argmin(dim=1)
        assert torch.equal(after[h], before[h][idx]), f"layer {module.layer_idx} head {h}: a kept key row is not a copy of a row"
        kept.append(sorted(idx.tolist()))
    captured[module.layer_idx] = kept
    return result


base_press.BasePress.forward_hook = capturing_hook


def answer(model, tokenizer, cache, question, context_length, max_new_tokens):
    """kvpress's pipeline.generate_answer: the question after the compressed context, greedy decoding.
    Layers holding different numbers of tokens (PyramidKV) do not fit transformers' one attention mask
    per batch: there the question goes one token at a time through SDPA, which needs no mask for one row."""
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    ragged = len({layer.keys.shape[2] for layer in cache.layers}) > 1
    before = model.config._attn_implementation
    if ragged:
        model.set_attn_implementation("sdpa")
    try:
        q = torch.tensor([question])
        pos = torch.arange(context_length, context_length + q.shape[1]).unsqueeze(0)
        if ragged:
            for i in range(q.shape[1]):
                out = model(input_ids=q[:, i:i + 1], past_key_values=cache, position_ids=pos[:, i:i + 1])
        else:
            out = model(input_ids=q, past_key_values=cache, position_ids=pos, logits_to_keep=1)
        ids = [int(out.logits[0, -1].argmax())]
        nxt = pos[:, -1:] + 1
        for i in range(max_new_tokens - 1):
            if ids[-1] in eos:
                break
            out = model(input_ids=torch.tensor([[ids[-1]]]), past_key_values=cache, position_ids=nxt + i)
            ids.append(int(out.logits[0, -1].argmax()))
    finally:
        if ragged:
            model.set_attn_implementation(before)
    return tokenizer.decode(ids, skip_special_tokens=True)


def rows_kept(model, ids, cache):
    """Positions each (layer, KV head) of a compressed `cache` holds, found by matching its key rows against
    those of an uncompressed prefill of the same ids (for presses that compress outside BasePress's hook)."""
    full = model(ids, past_key_values=DynamicCache(), use_cache=True).past_key_values
    kept = {}
    for l, layer in enumerate(cache.layers):
        before, after = full.layers[l].keys[0], layer.keys[0]
        heads = []
        for h in range(before.shape[0]):
            idx = torch.cdist(after[h].double(), before[h].double()).argmin(dim=1)
            assert torch.allclose(after[h], before[h][idx], atol=1e-5), f"layer {l} head {h}: a kept key row is not a prefill row"
            heads.append(sorted(idx.tolist()))
        kept[l] = heads
    return kept


def masked_kept(model, n):
    """Positions each (layer, KV head) keeps under a masking press: all but `masked_key_indices`."""
    kept = {}
    for layer in model.model.layers:
        module = layer.self_attn
        _, heads, seqs = module.masked_key_indices
        dropped = [set() for _ in range(model.config.num_key_value_heads)]
        for h, t in zip(heads.tolist(), seqs.tolist()):
            dropped[h].add(t)
        kept[module.layer_idx] = [sorted(set(range(n)) - d) for d in dropped]
    return kept


def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_agreement(path, out, per_method=None, per_layer=None):
    """agreement.csv over every answered row of `path` (this run's and a resumed run's; rows written before the
    per-row agreement was stored count as not compared), plus H2O's extra statistic of this run if any.
    `kept_kvpress.py --agreement OUT` writes it from a stopped run's answers."""
    per_method = per_method if per_method is not None else defaultdict(list)
    per_layer = per_layer if per_layer is not None else defaultdict(lambda: defaultdict(list))
    for line in open(path):
        if not line.strip():
            continue
        a = json.loads(line)
        key = f'{a["policy"]} @ {a["budget"]}'
        for layer, js in enumerate(a.get("jaccard") or []):
            per_method[key].extend(js)
            per_layer[key][layer].extend(js)
    with open(out / "agreement.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "streams", "mean_jaccard", "min_jaccard", "mean_jaccard_by_layer"])
        for m, js in sorted(per_method.items()):
            layers = ";".join(f"{sum(v) / len(v):.3f}" for _, v in sorted(per_layer[m].items()))
            w.writerow([m, len(js), f"{sum(js) / len(js):.4f}", f"{min(js):.4f}", layers])
    print(open(out / "agreement.csv").read())


def main():
    if sys.argv[1:2] == ["--agreement"]:
        out = Path(sys.argv[2])
        return write_agreement(out / "kvpress_answers.jsonl", out)
    kept_path, gguf, out = sys.argv[1:4]
    fixture = {"layers": [0, 15, 29], "cases": []} if len(sys.argv) > 4 else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gguf = Path(gguf)
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    if getattr(model.config, "head_dim", None) is None:
        # A GGUF-loaded Qwen2 config has no head_dim; kvpress's CriticalKVPress reads it (hidden / heads, as Qwen2 uses).
        model.config.head_dim = model.config.hidden_size // model.config.num_attention_heads
    # KVzipPress loads its tokenizer by the model's name, which a GGUF-loaded model does not have: hand it the
    # GGUF tokenizer (its chat template gives the prefix KVzip does not re-read).
    from kvpress.presses import kvzip_press
    kvzip_press.AutoTokenizer = type("GGUFTokenizer", (), {"from_pretrained": staticmethod(lambda *a, **k: tokenizer)})
    per_method = defaultdict(list)
    per_layer = defaultdict(lambda: defaultdict(list))
    finch_delimiter = None
    # A stopped run resumes: rows already answered (same case, method and budget) are kept and skipped, but only when
    # the inputs are the same (the kept file's and the model's SHA-256, the attention, kvpress's and torch's versions,
    # recorded beside the answers); anything else starts afresh. Each row's kept-set agreement is stored with its
    # answer, so agreement.csv covers every answered row.
    path, source = out / "kvpress_answers.jsonl", out / "kvpress_answers.source.json"
    inputs = {"kept_sha256": sha256(Path(kept_path)), "model_sha256": sha256(gguf), "attention": ATTN,
              "kvpress": importlib.metadata.version("kvpress"), "torch": torch.__version__}
    if path.exists() and (not source.exists() or json.loads(source.read_text()) != inputs):
        print(f"{path}: made from other inputs (or unrecorded): starting afresh", file=sys.stderr)
        path.unlink()
    source.write_text(json.dumps(inputs, indent=1) + "\n")
    done = set()
    if path.exists():
        for line in open(path):
            if line.strip():
                a = json.loads(line)
                done.add((a["id"], a["policy"], a["budget"]))
        if done:
            print(f"resuming: {len(done)} rows already answered in {path}", file=sys.stderr)
    answers = open(path, "a")
    for line in open(kept_path):
        r = json.loads(line)
        make = PRESSES.get(r["policy"])
        if make is None or (r["id"], r["policy"], r["budget"]) in done:
            continue
        ratio = 1 - float(r["budget"])
        captured.clear()
        ids = torch.tensor([r["tokens"]])
        press = make(ratio)
        if isinstance(press, kvpress.FinchPress):
            if finch_delimiter is None:
                press.update_model_and_tokenizer(model, tokenizer)
                finch_delimiter = press.delimiter_token_id
            press.delimiter_token, press.delimiter_token_id = "<|finch_sep|>", finch_delimiter
            q = r["question_in_prompt"]
            ids = torch.tensor([r["tokens"][:-q] + [finch_delimiter] + r["tokens"][-q:]])
        t0 = time.perf_counter()
        masking = r["policy"] in MASKING
        # Masking presses need SDPA, H2O's ObservedAttentionPress the eager weights; the rest take ATTN.
        model.set_attn_implementation("sdpa" if masking else "eager" if r["policy"].startswith("h2o") else ATTN)
        with torch.no_grad():
            with press(model):
                cache = model(ids, past_key_values=DynamicCache(), use_cache=True).past_key_values
            if masking:
                captured.update(masked_kept(model, len(r["tokens"])))
            elif not captured:
                captured.update(rows_kept(model, ids, cache))
            text = answer(model, tokenizer, cache, r["question_tokens"], len(r["tokens"]), r["max_new_tokens"]) if r.get("question_tokens") else None
        if masking:
            for layer in model.model.layers:
                layer.self_attn.masked_key_indices = None
        seconds = time.perf_counter() - t0
        # RULER's cases (ids "ruler-…") are scored as RULER does, case ignored; the others as KVKit's probes.
        fold = (lambda t: t.lower()) if r["id"].startswith("ruler-") else (lambda t: t)
        score = None if text is None else sum(fold(a) in fold(text) for a in r["answers"]) / max(1, len(r["answers"]))
        if fixture is not None:
            fixture["cases"].append({"id": r["id"], "policy": r["policy"], "budget": r["budget"], "tokens": r["tokens"],
                                     "kept": {str(l): captured[l] for l in fixture["layers"]}})
        key = f'{r["policy"]} @ {r["budget"]}'
        if r["policy"].startswith("h2o:"):
            # H2O's own statistic, attention summed over the queries (ObservedAttentionPress divides each
            # key's sum by the number of queries that see it): the same ids, eager attention weights.
            with torch.no_grad():
                attentions = model(ids, output_attentions=True).attentions
            n, group = ids.shape[1], model.config.num_attention_heads // model.config.num_key_value_heads
            summed = {l: attentions[l][0].sum(1).view(-1, group, n).mean(1) for l in range(len(attentions))}
            for layer, heads in enumerate(r["kept"]):
                for head, mine in enumerate(heads):
                    theirs, ours = set(summed[layer][head].topk(len(mine)).indices.tolist()), set(mine)
                    j = len(ours & theirs) / max(1, len(ours | theirs))
                    per_method[key + " (summed attention, no press)"].append(j)
                    per_layer[key + " (summed attention, no press)"][layer].append(j)
        by_layer = []
        for layer, heads in enumerate(r["kept"]):
            js = []
            for head, mine in enumerate(heads):
                theirs, ours = set(captured[layer][head]), set(mine)
                js.append(len(ours & theirs) / max(1, len(ours | theirs)))
            by_layer.append(js)
        answers.write(json.dumps({"id": r["id"], "policy": r["policy"], "budget": r["budget"], "score": score, "answer": text,
                                  "seconds": seconds, "kept_per_layer": [len(captured[l][0]) for l in sorted(captured)],
                                  "jaccard": by_layer}) + "\n")
        answers.flush()  # each answer on disk as it comes: progress shows, a stopped run keeps what it finished
    answers.close()
    write_agreement(path, out, per_method, per_layer)
    if fixture is not None:
        Path(sys.argv[4]).write_text(json.dumps(fixture, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
