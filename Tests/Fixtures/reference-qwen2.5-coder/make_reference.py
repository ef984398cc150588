"""Makes the llama.cpp references for the Qwen2.5-Coder 0.5B and 1.5B Instruct files (QwenTests.swift):
tokenization of tricky strings, the top-20 logits at four positions of each prompt, full-vocabulary logits
at the last prompt position and after 16 greedy tokens, and the greedy 16 tokens, on three prompts: `short`
(a ChatML question), `passkey713` (../../../../shared/reference/qwen2.5-coder/passkey713.txt, copied here)
and `essay3k` (a ChatML passkey prompt of > 3,000 tokens on the Paul Graham essays).
  VENV/bin/python make_reference.py KVKIT_HOME      (llama-cpp-python 0.3.36 built GGML_NATIVE, 2 threads,
                                                     F32 K/V cache, no flash attention; see shared/PITFALLS.md)
"""
import glob, hashlib, json, os, sys
import numpy as np
import llama_cpp

home = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
TRICKY = ["12345 and 678", "It's THEY'RE we'll I'D", "  two  spaces   three", "line\n\nbreak \r\n crlf",
          "\ttab\t\tand", "中文字符 and 123", "emoji 🙂👍 done", "x+y=z; (a,b)... !!!word", "--flag=1234567",
          "def f(x):\n    return x**2  # square", "<|im_start|>user\nhi<|im_end|>"]

def chatml(user):
    return f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"

def essays():
    files = sorted(glob.glob(f"{home}/PaulGrahamEssays/*.txt"))
    return " ".join(" ".join(open(f, encoding="utf-8").read().split()) for f in files)

text = essays()
words = text.split(" ")
filler = " ".join(words[:2450])
cut = len(filler) // 3
essay3k = chatml(filler[:cut] + " The secret passkey is 58213. Remember it. " + filler[cut:]
                 + "\n\nWhat is the secret passkey? Answer with the number only.")
PROMPTS = {
    "short": chatml("Write one sentence about the sea."),
    "passkey713": open(f"{here}/passkey713.txt", encoding="utf-8").read(),
    "essay3k": essay3k,
}
MODELS = {"0.5b": "qwen2.5-coder-0.5b-instruct.gguf", "1.5b": "qwen2.5-coder-1.5b-instruct.gguf"}

def top(row, k=20):
    ids = np.argsort(-row, kind="stable")[:k]
    return [int(i) for i in ids], [float(row[i]) for i in ids]

out = {}
for key, name in MODELS.items():
    path = f"{home}/{name}"
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    llm = llama_cpp.Llama(model_path=path, n_ctx=4096, n_batch=512, n_ubatch=512, n_threads=2, type_k=0, type_v=0,
                          flash_attn=False, verbose=False)
    V = llm.n_vocab()
    def last():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(V,)).astype(np.float32).copy()
    entry = {"file": name, "sha256": sha, "tokens": {s: llm.tokenize(s.encode(), add_bos=False, special=True) for s in TRICKY},
             "prompts": {}}
    for pname, ptext in PROMPTS.items():
        ids = llm.tokenize(ptext.encode(), add_bos=False, special=True)
        llm.reset()
        marks = sorted({len(ids) // 4, len(ids) // 2, 3 * len(ids) // 4, len(ids)})
        positions, done = [], 0
        for m in marks:
            llm.eval(ids[done:m]); done = m
            t_ids, t_logits = top(last())
            positions.append({"position": m - 1, "top20_ids": t_ids, "top20_logits": t_logits})
        final = last()
        np.save(f"{here}/llamacpp_{key}_{pname}_last_logits.f32.npy", final)
        greedy, row = [], final
        for _ in range(16):
            t = int(np.argmax(row)); greedy.append(t)
            llm.eval([t]); row = last()
        np.save(f"{here}/llamacpp_{key}_{pname}_step16_logits.f32.npy", row)
        entry["prompts"][pname] = {"text": ptext, "token_ids": ids, "positions": positions, "greedy16_ids": greedy,
                                   "greedy16_text": llm.detokenize(greedy).decode("utf-8", "replace")}
        print(key, pname, len(ids), "tokens; greedy:", repr(entry["prompts"][pname]["greedy16_text"]), flush=True)
    out[key] = entry
json.dump(out, open(f"{here}/llamacpp_anchors.json", "w"), ensure_ascii=False)
