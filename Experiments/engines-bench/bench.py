"""KVKit, llama.cpp (llama-cpp-python) and OpenVINO GenAI side by side on the same GGUF file and the same
prompt tokens, 2 threads each, in alternating rounds (these machines are shared: alternate, take medians).

Per round and engine, for each length N: prefill N tokens (tok/s = N / prefill time), then greedy-decode
32 tokens (tok/s = 32 / decode time: decode at context N). KVKit is timed by `kvkit bench` itself (model
load excluded, as for the others). Prints the medians and the ratios KVKit / llama.cpp and KVKit / OpenVINO.

Usage: python bench.py KVKIT_BINARY MODEL.gguf [--rounds 5] [--lengths 16 512 2048]
(run by `make bench-engines VENV=/path/to/venv`; the venv needs llama-cpp-python==0.3.36, built as
../shared/PITFALLS.md says, and openvino-genai==2026.4.1)."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("kvkit"); p.add_argument("model")
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--lengths", type=int, nargs="+", default=[16, 512, 2048])
p.add_argument("--decode", type=int, default=32)
p.add_argument("--engines", nargs="+", default=["kvkit", "llama.cpp", "openvino"])
a = p.parse_args()
THREADS = 2
prompt_file = tempfile.mktemp(suffix=".json")

def kvkit_round():
    out = subprocess.run([a.kvkit, "bench", "--model", a.model, "--threads", str(THREADS), "--thread-counts", str(THREADS),
                          "--lengths", *map(str, a.lengths), "--decode-steps", str(a.decode), "--save-prompt", prompt_file],
                         check=True, capture_output=True, text=True).stdout
    r = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == str(THREADS) and f[1].isdigit():
            r[int(f[1])] = (float(f[2]), float(f[3]))
    return r

llm = None
def llamacpp_round(ids):
    global llm
    import llama_cpp
    if llm is None:
        llm = llama_cpp.Llama(model_path=a.model, n_ctx=max(a.lengths) + a.decode + 8, n_threads=THREADS, n_threads_batch=THREADS,
                              n_batch=max(a.lengths), n_ubatch=max(a.lengths), verbose=False)
        llm.eval(ids[:64]); llm.reset()  # warm-up (first-call allocations), untimed
    vocab = llm.n_vocab()
    r = {}
    for n in a.lengths:
        llm.reset()  # n_tokens = 0: the next eval overwrites the cache from position 0
        t = time.perf_counter(); llm.eval(ids[:n]); pre = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(a.decode):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(vocab,))
            llm.eval([int(np.argmax(logits))])
        dec = time.perf_counter() - t
        r[n] = (n / pre, a.decode / dec)
    return r

pipe = None
def openvino_round(ids):
    global pipe
    import openvino as ov, openvino_genai as og
    if pipe is None:
        sc = og.SchedulerConfig(); sc.max_num_batched_tokens = max(a.lengths) + a.decode + 8
        pipe = og.LLMPipeline(a.model, "CPU", INFERENCE_NUM_THREADS=THREADS, scheduler_config=sc)
        warm = og.GenerationConfig(); warm.max_new_tokens = 2; warm.apply_chat_template = False
        x = np.array([ids[:64]], dtype=np.int64); pipe.generate(og.TokenizedInputs(ov.Tensor(x), ov.Tensor(np.ones_like(x))), warm)  # compile, untimed
    r = {}
    for n in a.lengths:
        cfg = og.GenerationConfig(); cfg.max_new_tokens = a.decode + 1; cfg.min_new_tokens = a.decode + 1
        cfg.ignore_eos = True; cfg.apply_chat_template = False
        x = np.array([ids[:n]], dtype=np.int64)
        res = pipe.generate(og.TokenizedInputs(ov.Tensor(x), ov.Tensor(np.ones_like(x))), cfg)
        m = res.perf_metrics
        r[n] = (n / (m.get_ttft().mean / 1000), 1000 / m.get_tpot().mean)
    return r

results = {e: {n: [] for n in a.lengths} for e in a.engines}
kvkit_round()  # writes the prompt ids (and warms the page cache)
ids = json.load(open(prompt_file))
print(f"model {os.path.basename(a.model)}, prompt of {len(ids)} tokens from `kvkit bench`, {THREADS} threads, {a.rounds} alternating rounds", flush=True)
for rd in range(a.rounds):
    order = a.engines if rd % 2 == 0 else list(reversed(a.engines))
    for e in order:
        r = {"kvkit": kvkit_round, "llama.cpp": lambda: llamacpp_round(ids), "openvino": lambda: openvino_round(ids)}[e]()
        for n in a.lengths: results[e][n].append(r[n])
        print(f"round {rd + 1} {e}: " + ", ".join(f"{n}: prefill {r[n][0]:.0f} decode {r[n][1]:.1f}" for n in a.lengths), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)

def med(e, n, i): return statistics.median(x[i] for x in results[e][n])
print("\nmedians (tok/s) and ranges")
print(f"{'engine':10} " + " ".join(f"{'prefill ' + str(n):>18} {'decode@' + str(n):>16}" for n in a.lengths))
for e in a.engines:
    cells = []
    for n in a.lengths:
        pre = [x[0] for x in results[e][n]]; dec = [x[1] for x in results[e][n]]
        cells.append(f"{med(e, n, 0):6.0f} ({min(pre):.0f}–{max(pre):.0f}) {med(e, n, 1):6.1f} ({min(dec):.0f}–{max(dec):.0f})")
    print(f"{e:10} " + " ".join(f"{c:>35}" for c in cells))
for other in [e for e in a.engines if e != "kvkit"]:
    if "kvkit" in a.engines:
        print(f"KVKit / {other}: " + ", ".join(f"prefill {n} {med('kvkit', n, 0) / med(other, n, 0):.2f}x, decode@{n} {med('kvkit', n, 1) / med(other, n, 1):.2f}x" for n in a.lengths))
