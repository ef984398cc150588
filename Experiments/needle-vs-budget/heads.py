"""Do the heads DuoAttention's calibration calls retrieval heads coincide with the heads where other
policies keep the needle? Reads duo's head scores ($KVKIT_HOME/duo-heads-*.json, written by any run of
`duo`) and a job's results.jsonl (per-case needle survival per layer and KV head), and prints, per policy
and budget, the Spearman rank correlation between the two over the (layer, KV head) streams, and the mean
needle survival in duo's top-8 heads against the rest.
Usage: python3 heads.py results/kvzip/results.jsonl [~/.cache/kvkit/duo-heads-b179c9523d0e6a0f.json]"""
import collections, glob, json, os, sys

path = sys.argv[2] if len(sys.argv) > 2 else sorted(glob.glob(os.path.expanduser("~/.cache/kvkit/duo-heads-*.json")))[0]
scores = json.load(open(path))["scores"]
flat = [v for row in scores for v in row]
n = len(flat)
sums, counts = collections.defaultdict(lambda: [0.0] * n), collections.Counter()
for line in open(sys.argv[1]):
    d = json.loads(line)
    s = d.get("survivalByLayerHead")
    if not s or d["policy"] == "full":
        continue
    key = (d["policy"], d["budget"])
    sums[key] = [a + b for a, b in zip(sums[key], [v for row in s for v in row])]
    counts[key] += 1

def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i]); r = [0.0] * len(x)
    i = 0
    while i < len(order):  # average ranks of ties
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]: j += 1
        for k in range(i, j + 1): r[order[k]] = (i + j) / 2
        i = j + 1
    return r

def spearman(a, b):
    ra, rb = ranks(a), ranks(b); ma, mb = sum(ra) / n, sum(rb) / n
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else float("nan")

top = set(sorted(range(n), key=lambda i: -flat[i])[:8])
print("policy,budget,cases,spearman,survival_in_duo_top8,survival_elsewhere")
for key in sorted(sums):
    s = [v / counts[key] for v in sums[key]]
    inside = sum(s[i] for i in top) / len(top); outside = sum(s[i] for i in range(n) if i not in top) / (n - len(top))
    print(f'"{key[0]}",{key[1]},{counts[key]},{spearman(flat, s):.2f},{inside:.2f},{outside:.2f}')
