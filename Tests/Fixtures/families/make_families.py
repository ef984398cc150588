"""Makes llamacpp.json: llama.cpp's tokenization of tricky strings and its logits at every position of a
fixed prompt, for the random-weight Qwen 2, Qwen 3, Llama 3 and Phi-3 GGUFs that FamilyFixtureTests writes.
1. KVKIT_WRITE_FAMILY_GGUFS=/tmp/fam swift test -c release -Xswiftc -enable-testing --filter FamilyFixtureTests
   (writes /tmp/fam/family-{qwen2,qwen3,llama,phi3}.gguf; the test itself fails until this fixture exists)
2. VENV/bin/python make_families.py /tmp/fam [FAMILY ...]   (llama-cpp-python 0.3.36, see ../../../../shared/PITFALLS.md)
The strings and the prompt are those of FamilyFixtureTests.swift (kept in step by hand)."""
import hashlib, json, sys
import numpy as np
import llama_cpp

TRICKY = ["12345 and 678", "It's THEY'RE we'll I'D", "  two  spaces   three", "line\n\nbreak \r\n crlf",
          "\ttab\t\tand", "中文字符 and 123", "emoji 🙂👍 done", "x+y=z; (a,b)... !!!word", "--flag=1234567", "you you you"]
PROMPT = [259, 261, 40, 77, 281, 12, 280, 88, 263, 271, 33, 290]
# Families to (re)make, default all; the others' entries are kept from the existing llamacpp.json.
families = sys.argv[2:] or ["qwen2", "qwen3", "llama", "phi3"]
try:
    out = json.load(open("llamacpp.json"))
except FileNotFoundError:
    out = {}
for fam in families:
    path = f"{sys.argv[1]}/family-{fam}.gguf"
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    tokens = {s: llm.tokenize(s.encode(), add_bos=False, special=False) for s in TRICKY}
    llm.eval(PROMPT)
    n_vocab = llm.n_vocab()
    logits = [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, i), shape=(n_vocab,)).astype(float).tolist() for i in range(len(PROMPT))]
    out[fam] = {"sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(), "tokens": tokens, "prompt": PROMPT, "logits": logits}
    print(fam, n_vocab, {s[:12]: t for s, t in list(tokens.items())[:3]})
json.dump(out, open("llamacpp.json", "w"))
