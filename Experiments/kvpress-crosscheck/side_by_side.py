"""Accuracy and time per case, KVKit beside kvpress, on the cases both answered (standard library only).

Reads results/kvkit-run/results.jsonl (KVKit's run of the grid), results/kvpress_answers.jsonl and
results/kvkit-time.json; writes results/accuracy.csv and prints a Markdown table: per method and budget,
n, correct and the 95 % Wilson interval for each tool, the cases where they disagree, and kvpress's mean
seconds per run.
"""
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def main():
    out = Path(sys.argv[1])
    kvkit = {}
    for line in open(out / "kvkit-run" / "results.jsonl"):
        r = json.loads(line)
        kvkit[(r["caseId"], r["policy"], r["budget"])] = r["score"]
    full = [v for (c, p, b), v in kvkit.items() if p == "full"]
    press = defaultdict(list)
    seconds = defaultdict(list)
    for line in open(out / "kvpress_answers.jsonl"):
        r = json.loads(line)
        if r["score"] is None:
            continue
        key = (r["policy"], r["budget"])
        press[key].append((r["id"], r["score"]))
        seconds[key].append(r["seconds"])
    rows = []
    for (policy, budget), answers in sorted(press.items()):
        pairs = [(kvkit[(c, policy, budget)], s) for c, s in answers if (c, policy, budget) in kvkit]
        n = len(pairs)
        a = sum(1 for x, _ in pairs if x >= 1)
        b = sum(1 for _, y in pairs if y >= 1)
        differ = sum(1 for x, y in pairs if (x >= 1) != (y >= 1))
        rows.append({"method": policy, "budget": budget, "n": n, "kvkit_correct": a, "kvpress_correct": b,
                     "kvkit_ci": wilson(a, n), "kvpress_ci": wilson(b, n), "cases_differ": differ,
                     "kvpress_seconds_per_run": sum(seconds[(policy, budget)]) / len(seconds[(policy, budget)])})
    with open(out / "accuracy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "budget", "n", "kvkit_correct", "kvkit_ci_low", "kvkit_ci_high", "kvpress_correct",
                    "kvpress_ci_low", "kvpress_ci_high", "cases_differ", "kvpress_seconds_per_run"])
        for r in rows:
            w.writerow([r["method"], r["budget"], r["n"], r["kvkit_correct"], f'{r["kvkit_ci"][0]:.3f}', f'{r["kvkit_ci"][1]:.3f}',
                        r["kvpress_correct"], f'{r["kvpress_ci"][0]:.3f}', f'{r["kvpress_ci"][1]:.3f}', r["cases_differ"],
                        f'{r["kvpress_seconds_per_run"]:.2f}'])
    pct = lambda k, n, ci: f"{100 * k / n:.0f}% [{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]"
    print(f"full cache (KVKit): {sum(1 for s in full if s >= 1)}/{len(full)} cases answered\n")
    print("| method | keep | n | KVKit | kvpress | cases differing | kvpress s/run |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f'| `{r["method"]}` | {r["budget"]} | {r["n"]} | {pct(r["kvkit_correct"], r["n"], r["kvkit_ci"])} | '
              f'{pct(r["kvpress_correct"], r["n"], r["kvpress_ci"])} | {r["cases_differ"]} | {r["kvpress_seconds_per_run"]:.2f} |')
    cases = len({c for c, _, _ in kvkit})
    total_press = sum(sum(v) for v in seconds.values())
    kv_time = json.load(open(out / "kvkit-time.json"))["kvkit_run_seconds"]
    print(f"\ntime per case, all {len(rows)} (method, keep) variants: KVKit {kv_time / cases:.1f} s "
          f"(one shared prefill, batched answers, full cache included), kvpress {total_press / cases:.1f} s "
          f"(one prefill per press, as its pipeline runs)")


if __name__ == "__main__":
    main()
