# Is layer 18's chunked non-causal attention (unscaled q·k) numerically fragile? fp32 vs fp64 top-25% Jaccard per layer.
import json, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM
from kvpress.presses.non_causal_attention_press import NonCausalAttnPress
from kvpress.utils import get_prerope_query_states
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half
gguf = Path(sys.argv[1]); kept = [json.loads(l) for l in open(sys.argv[2])]
model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
ids = torch.tensor([kept[0]["tokens"] if "tokens" in kept[0] else kept[0]["token_ids"]])
caps = {}
def hook(i):
    def f(mod, args, kwargs):
        caps[i] = (kwargs["hidden_states"], kwargs["position_embeddings"])
    return f
for i, l in enumerate(model.model.layers): l.self_attn.register_forward_pre_hook(hook(i), with_kwargs=True)
with torch.no_grad():
    out = model(ids, use_cache=True)
    cache = out.past_key_values
    for i in range(len(model.model.layers)):
        hs, (cos, sin) = caps[i]
        hs = hs[:, 8:-4]; cos = cos[:, 8:-4]; sin = sin[:, 8:-4]
        m = model.model.layers[i].self_attn
        q = get_prerope_query_states(m, hs)
        q = q * cos.unsqueeze(1) + rotate_half(q) * sin.unsqueeze(1)
        k = cache.layers[i].keys[..., 8:-4, :] if hasattr(cache, "layers") else cache[i][0][..., 8:-4, :]
        G = q.shape[1] // k.shape[1]
        a32 = NonCausalAttnPress.non_causal_chunked_attn(q, repeat_kv(k, G), 256)
        a64 = NonCausalAttnPress.non_causal_chunked_attn(q.double(), repeat_kv(k, G).double(), 256)
        n = int(a32.shape[-1] * 0.25); j = []
        for h in range(a32.shape[1]):
            s1 = set(a32[0, h].topk(n).indices.tolist()); s2 = set(a64[0, h].topk(n).indices.tolist())
            j.append(len(s1 & s2) / len(s1 | s2))
        mx = (q @ repeat_kv(k, G).transpose(-1, -2)).abs().max().item()
        print(i, "jaccard fp32/fp64 %.3f" % (sum(j) / len(j)), "max |q.k| %.0f" % mx, flush=True)
