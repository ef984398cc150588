"""Shared loading and plotting for the study notebooks: reads Experiments/<study>/results/<job>/results.jsonl."""
import json
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

# Twenty distinct colours: a study plots up to 13 policies.
plt.rcParams["axes.prop_cycle"] = plt.cycler(color=plt.cm.tab20.colors)

ROOT = Path(__file__).resolve().parents[2] if "__file__" in globals() else Path.cwd().parent


def results(study, job):
    """One row per case × variant of a job, with the policy's short name and a label policy+codec."""
    path = ROOT / "Experiments" / study / "results" / job / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    df["name"] = df["policy"].str.split(":").str[0]
    df["label"] = df.apply(lambda r: r["name"] if r["quant"] == "fp32" else f'{r["name"]}+{r["quant"]}', axis=1)
    df["budget_f"] = df["budget"].astype(float)
    df["attn_cos"] = df["attentionCosineByLayer"].apply(lambda v: sum(v) / len(v))
    return df


def summary(study, job):
    return pd.read_csv(ROOT / "Experiments" / study / "results" / job / "summary.csv")


def wilson(successes, n, z=1.959963984540054):
    """95 % Wilson score interval of successes out of n (the interval kvkit's summary.csv gives)."""
    if n == 0:
        return float("nan"), float("nan")
    p = min(max(successes / n, 0.0), 1.0)
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / denom
    return max(0.0, center - half), min(1.0, center + half)


def accuracy_vs_budget(df, title, ax=None):
    """Mean score per policy and budget with 95 % Wilson intervals as error bars; the full cache as a
    dashed line with its interval shaded."""
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    full = df[(df["name"] == "full") & (df["quant"] == "fp32")]["score"]
    lo, hi = wilson(full.sum(), len(full))
    names = sorted(df[df["name"] != "full"]["name"].unique())
    for k, (name, g) in enumerate((n, df[df["name"] == n]) for n in names):
        m = g.groupby("budget_f")["score"].agg(["sum", "count", "mean"])
        ci = [wilson(s, c) for s, c in zip(m["sum"], m["count"])]
        err = [[max(0.0, v - a) * 100 for v, (a, _) in zip(m["mean"], ci)], [max(0.0, b - v) * 100 for v, (_, b) in zip(m["mean"], ci)]]
        x = m.index * (1 + 0.015 * (k - len(names) / 2))  # small offsets keep the bars apart
        ax.errorbar(x, m["mean"] * 100, yerr=err, marker="o", capsize=2, label=name)
    ax.axhline(full.mean() * 100, color="black", linestyle="--", label="full cache")
    ax.axhspan(lo * 100, hi * 100, color="black", alpha=0.06)
    budget_axis(ax, df["budget_f"])
    ax.set_xlabel("budget (fraction of the cache kept)"); ax.set_ylabel("accuracy (%), 95% Wilson intervals")
    ax.set_title(title); ax.legend(fontsize=7, ncol=2); ax.set_ylim(-5, 105)
    return ax


def budget_axis(ax, budgets):
    """Log-scaled budget axis with the budgets themselves as ticks."""
    ticks = sorted(set(float(b) for b in budgets if float(b) < 1))
    ax.set_xscale("log"); ax.set_xticks(ticks, [f"{t:g}" for t in ticks]); ax.minorticks_off()
