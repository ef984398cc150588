"""Writes the (unexecuted) study notebooks; `make notebooks` executes and exports them."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent

SETUP = """import sys
from pathlib import Path
sys.path.insert(0, str(Path.cwd() / "src"))
from common import *
%matplotlib inline"""


def notebook(title, intro, cells):
    def md(s):
        return {"cell_type": "markdown", "metadata": {}, "source": s}

    def code(s):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": s}

    body = [md(f"# {title}\n\n{intro}"), code(SETUP)]
    for kind, text in cells:
        body.append(md(text) if kind == "md" else code(text))
    for i, cell in enumerate(body):
        cell["id"] = f"cell-{i}"  # fixed ids, so a rerun changes only what the results change
    return {"cells": body, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


STUDIES = {
    "needle-vs-budget": notebook(
        "Needle accuracy and survival against budget (Qwen2.5-Coder-0.5B-Instruct)",
        "Mirrors ChunkKV's needle-in-a-haystack comparison (Liu et al. 2025, Table/Figure on NIAH) on a model that can do "
        "the task: nine policies at keep 0.1–0.5, query-agnostic, on Qwen2.5-Coder-0.5B-Instruct at 1,024 tokens on the "
        "Paul Graham essays, 50 cases per cell (10 per depth); error bars are 95% Wilson intervals. Job `qwen0.5b` of "
        "`Experiments/needle-vs-budget/config.json` (its per-case results.jsonl is in git). The SmolLM2-135M table "
        "of the first round follows, read from its summary.csv.",
        [("code", 'df = results("needle-vs-budget", "qwen0.5b")\nsummary("needle-vs-budget", "qwen0.5b").query("probe == \'niah\'")[["policy", "budget", "n", "correct", "accuracy", "ci_low", "ci_high", "needle_survival", "attention_cosine", "ratio_vs_fp16"]].round(3)'),
         ("md", "## Accuracy against budget"),
         ("code", 'accuracy_vs_budget(df, "niah, 1,024 tokens, essays, query-agnostic, Qwen2.5-Coder-0.5B, n = 50 per point"); plt.tight_layout(); plt.show()'),
         ("md", "## Needle survival against budget (fraction of the needle's tokens still cached, all layers and heads)"),
         ("code", 'fig, ax = plt.subplots(figsize=(8, 5))\nfor name, g in df[df["name"] != "full"].groupby("name"):\n    m = g.groupby("budget_f")["needleSurvival"].mean()\n    ax.plot(m.index, m.values * 100, marker="o", label=name)\nbudget_axis(ax, df["budget_f"]); ax.set_xlabel("budget"); ax.set_ylabel("needle survival (%)"); ax.legend(fontsize=7, ncol=2)\nplt.tight_layout(); plt.show()'),
         ("md", "## Accuracy by needle depth at budget 0.1 (the classic needle picture, one length)"),
         ("code", 'sel = df[(df["budget_f"] == 0.1) & (df["name"] != "full")]\n(sel.pivot_table(index="name", columns="depth", values="score", aggfunc="mean") * 100).round(0)'),
         ("md", "## Needle survival per layer at budget 0.1"),
         ("code", 'fig, ax = plt.subplots(figsize=(8, 5))\nfor name, g in sel.groupby("name"):\n    layers = pd.DataFrame(g["survivalByLayer"].tolist()).mean()\n    ax.plot(layers.index, layers.values * 100, label=name)\nax.set_xlabel("layer"); ax.set_ylabel("needle survival (%)"); ax.legend(fontsize=7, ncol=2); plt.tight_layout(); plt.show()'),
         ("md", "## SmolLM2-135M-Instruct, the first round's twelve policies (job `all-policies`, from its summary.csv)"),
         ("code", 'smol = summary("needle-vs-budget", "all-policies").query("probe == \'niah\'")\nsmol["accuracy (95% CI)"] = smol.apply(lambda r: f"{r.accuracy * 100:.0f}% [{r.ci_low * 100:.0f}–{r.ci_high * 100:.0f}]", axis=1)\nsmol.pivot_table(index="policy", columns="budget", values="accuracy (95% CI)", aggfunc="first")'),
         ]),
    "multihop-vs-budget": notebook(
        "Multi-hop chains against budget: which hop breaks first",
        "The Lottery LLM Hypothesis (2025) argues compression must keep multi-step retrieval. Chains of k = 1, 2, 4 links "
        "(chained form: the model's own answer is the next question's key) at 512 tokens on the essays, 50 cases per k, "
        "seven policies at budgets 0.1–0.5, on SmolLM2-135M (job `all-policies`), and 2-link chains on Qwen2.5-Coder-0.5B "
        "(job `qwen0.5b`). On the 135M model the full cache completes few chains, so link survival per hop, which does not "
        "depend on the model's skill, is the figure to read there. Read from each job's summary.csv (in git). "
        "Made by `Experiments/multihop-vs-budget/run.sh`.",
        [("code", 'df = summary("multihop-vs-budget", "all-policies")\ndf["k"] = df["probe"].str.extract(r"k=(\\d)", expand=False).fillna("2").astype(int)\ndf["name"] = df["policy"].str.split(":").str[0]\n(df.pivot_table(index="name", columns=["k", "budget"], values="accuracy") * 100).round(0)'),
         ("md", "## Accuracy per chain length against budget (SmolLM2-135M), 95% Wilson intervals"),
         ("code", 'fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)\nfor ax, (k, g) in zip(axes, df.groupby("k")):\n    full = g[g["name"] == "full"]\n    for name, h in g[g["name"] != "full"].groupby("name"):\n        h = h.sort_values("budget")\n        ax.errorbar(h["budget"], h["accuracy"] * 100, yerr=[(h["accuracy"] - h["ci_low"]) * 100, (h["ci_high"] - h["accuracy"]) * 100], marker="o", capsize=2, label=name)\n    if len(full): ax.axhline(full["accuracy"].iloc[0] * 100, color="black", linestyle="--")\n    budget_axis(ax, g[g["name"] != "full"]["budget"]); ax.set_title(f"k = {k} (dashed: full cache)"); ax.set_xlabel("budget")\naxes[0].set_ylabel("chains completed (%)"); axes[-1].legend(fontsize=6); plt.tight_layout(); plt.show()'),
         ("md", "## Which hop's link is lost first: survival per hop at budget 0.25 (SmolLM2-135M)"),
         ("code", 'rows = []\nfor _, r in df[(df["name"] != "full") & (df["budget"] == 0.25)].iterrows():\n    for hop, v in enumerate(str(r["hop_survival"]).split(";"), start=1):\n        rows.append({"name": r["name"], "k": r["k"], "hop": hop, "survival": float(v)})\npd.DataFrame(rows).pivot_table(index=["k", "name"], columns="hop", values="survival").round(2)'),
         ("md", "## Qwen2.5-Coder-0.5B-Instruct: 2-link chains (job `qwen0.5b`)"),
         ("code", 'q = summary("multihop-vs-budget", "qwen0.5b")\nq["name"] = q["policy"].str.split(":").str[0]\nq["first hop"] = q["turn_accuracy"].str.split(";").str[0].astype(float)\nq["accuracy (95% CI)"] = q.apply(lambda r: f"{r.accuracy * 100:.0f}% [{r.ci_low * 100:.0f}–{r.ci_high * 100:.0f}]", axis=1)\nq.pivot_table(index="name", columns="budget", values="accuracy (95% CI)", aggfunc="first")'),
         ("code", 'fig, ax = plt.subplots(figsize=(8, 5))\nfull = q[q["name"] == "full"]\nfor name, h in q[q["name"] != "full"].groupby("name"):\n    h = h.sort_values("budget")\n    ax.errorbar(h["budget"], h["accuracy"] * 100, yerr=[(h["accuracy"] - h["ci_low"]) * 100, (h["ci_high"] - h["accuracy"]) * 100], marker="o", capsize=2, label=name)\nax.axhline(full["accuracy"].iloc[0] * 100, color="black", linestyle="--", label="full cache")\nbudget_axis(ax, q[q["name"] != "full"]["budget"]); ax.set_xlabel("budget"); ax.set_ylabel("chains completed (%), 95% Wilson intervals"); ax.legend(fontsize=7, ncol=2)\nplt.tight_layout(); plt.show()'),
         ]),
    "query-aware-vs-agnostic": notebook(
        "Query-aware against query-agnostic compression",
        "The same policies and needles compressed before the question is known (as a real cache must: the default, as "
        "kvpress does) and with the question in the prompt (as most papers measure). niah at 1,024 tokens on the essays, "
        "SmolLM2-135M, 50 cases per cell, budgets 0.1 and 0.25; error bars are 95% Wilson intervals. Read from the jobs' "
        "summary.csv (in git). Made by `Experiments/query-aware-vs-agnostic/run.sh`.",
        [("code", 'a = summary("query-aware-vs-agnostic", "agnostic"); a["mode"] = "query-agnostic"\nq = summary("query-aware-vs-agnostic", "aware"); q["mode"] = "query-aware"\ndf = pd.concat([a, q]); df["name"] = df["policy"].str.split(":").str[0]\ntab = df[df["name"] != "full"].pivot_table(index="name", columns=["budget", "mode"], values="accuracy")\n(tab * 100).round(0)'),
         ("md", "## The gap per policy"),
         ("code", 'fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)\nfor ax, b in zip(axes, [0.1, 0.25]):\n    g = df[(df["budget"] == b) & (df["name"] != "full")]\n    acc = g.pivot_table(index="name", columns="mode", values="accuracy") * 100\n    lo = acc - g.pivot_table(index="name", columns="mode", values="ci_low") * 100\n    hi = g.pivot_table(index="name", columns="mode", values="ci_high") * 100 - acc\n    acc.plot.bar(ax=ax, yerr=[[lo[c].values, hi[c].values] for c in acc.columns], capsize=2); ax.set_title(f"budget {b}"); ax.set_ylabel("accuracy (%), 95% Wilson intervals")\nplt.tight_layout(); plt.show()'),
         ]),
    "quant-x-eviction": notebook(
        "Quantized pages crossed with eviction, at measured bytes",
        "KIVI-style codecs (per-channel keys, per-token values, a full-precision residual window) and plain int4/int8 "
        "crossed with eviction policies, on needles at 1,024 tokens, SmolLM2-135M, 51 cases per cell. The x axis is the "
        "measured compression against an fp16 cache of the same prompt (bytes KVKit really stores). Read from the jobs' "
        "summary.csv (in git; per-layer attention fidelity needs the per-case results, which `run.sh` remakes). "
        "Made by `Experiments/quant-x-eviction/run.sh`.",
        [("code", 'a = summary("quant-x-eviction", "agnostic"); a["mode"] = "query-agnostic"\nq = summary("quant-x-eviction", "aware"); q["mode"] = "query-aware"\ndf = pd.concat([a, q]); df["name"] = df["policy"].str.split(":").str[0]\ndf.groupby(["mode", "name", "quant", "budget"])[["accuracy", "ratio_vs_fp16", "attention_cosine"]].mean().round(3)'),
         ("md", "## Accuracy against compression ratio (measured bytes)"),
         ("code", 'fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)\nfor ax, (mode, g) in zip(axes, df.groupby("mode")):\n    for (name, quant), h in g.groupby(["name", "quant"]):\n        h = h.sort_values("ratio_vs_fp16")\n        ax.errorbar(h["ratio_vs_fp16"], h["accuracy"] * 100, yerr=[(h["accuracy"] - h["ci_low"]) * 100, (h["ci_high"] - h["accuracy"]) * 100], marker="o", capsize=2, label=f"{name}+{quant}")\n    ax.set_xscale("log"); ax.set_xlabel("compression vs fp16 (measured)"); ax.set_title(mode); ax.legend(fontsize=6, ncol=2)\naxes[0].set_ylabel("accuracy (%), 95% Wilson intervals"); plt.tight_layout(); plt.show()'),
         ]),
    "needle-vs-budget-later": notebook(
        "Needle accuracy: the methods papers now compare against",
        "KVzip (query-agnostic reconstruction scores), DuoAttention (retrieval heads), R-KV (redundancy), "
                "Expected Attention, key-only scores (KeyDiff, LagKV), the keep-10 % attempts (the compose job withdrawn: measured on the kvzip bug, re-run pending), and Gemma 3 270M; "
                "each job's summary.csv (niah, 1,024 tokens, 50 cases per cell). Made by the jobs of `Experiments/needle-vs-budget/config.json`; "
        "read from summary.csv.",
        [("code", 'jobs = ["kvzip", "duo", "rkv", "expected-attention", "key-only", "keep-10", "gemma3", "gemma3-duo", "gemma3-kvzip"]\nlater = pd.concat([summary("needle-vs-budget", j).assign(job=j) for j in jobs])\nlater = later[later["probe"] == "niah"].copy()\nlater["accuracy (95% CI)"] = later.apply(lambda r: f"{r.accuracy * 100:.0f}% [{r.ci_low * 100:.0f}–{r.ci_high * 100:.0f}]", axis=1)\nlater[["job", "policy", "budget", "n", "accuracy (95% CI)", "needle_survival"]].round(3)'),
         ("code", 'fig, axes = plt.subplots(2, 5, figsize=(16, 7), sharey=True)\nfor ax, (job, g) in zip(axes.flat, later.groupby("job", sort=False)):\n    full = g[g["policy"] == "full"]\n    for pol, h in g[g["policy"] != "full"].groupby("policy"):\n        h = h.sort_values("budget")\n        ax.errorbar(h["budget"], h["accuracy"] * 100, yerr=[(h["accuracy"] - h["ci_low"]) * 100, (h["ci_high"] - h["accuracy"]) * 100], marker="o", capsize=2, label=pol)\n    if len(full): ax.axhline(full["accuracy"].iloc[0] * 100, color="black", linestyle="--")\n    budget_axis(ax, g[g["policy"] != "full"]["budget"]); ax.set_title(job, fontsize=9); ax.legend(fontsize=5)\nfig.supxlabel("budget"); fig.supylabel("accuracy (%), 95% Wilson intervals; dashed: full cache"); plt.tight_layout(); plt.show()'),
         ]),
    "multihop-turns": notebook(
        "Compressing while answering: multi-hop chains across turns",
        "The same seven policies at budget 0.5 on `multihop` and `multihop-recall` (whose second question needs the "
                "model's own first answer), 2-link chains at 512 tokens, 50 cases each, compressed after the prompt only, again between "
                "turns (`--compress-between-turns`), or every 8 generated tokens (`--compress-every 8`, R-KV's schedule), back to the "
                "prompt's budget. Jobs turns-prompt-only, turns-between, "
        "turns-every-8 of `Experiments/multihop-vs-budget/config.json`, read from their summary.csv.",
        [("code", 'sched = {"turns-prompt-only": "after the prompt", "turns-between": "between turns", "turns-every-8": "every 8 tokens"}\nt = pd.concat([summary("multihop-vs-budget", j).assign(schedule=s) for j, s in sched.items()])\nt["name"] = t["policy"].str.split(":").str[0]\n(t.pivot_table(index=["probe", "name"], columns="schedule", values="accuracy")[list(sched.values())] * 100).round(0)'),
         ("code", 'fig, axes = plt.subplots(1, 2, figsize=(14, 4), sharey=True)\nfor ax, (probe, g) in zip(axes, t.groupby("probe")):\n    acc = g.pivot_table(index="name", columns="schedule", values="accuracy")[list(sched.values())] * 100\n    lo = acc - g.pivot_table(index="name", columns="schedule", values="ci_low")[list(sched.values())] * 100\n    hi = g.pivot_table(index="name", columns="schedule", values="ci_high")[list(sched.values())] * 100 - acc\n    acc.plot.bar(ax=ax, yerr=[[lo[c].values, hi[c].values] for c in acc.columns], capsize=2); ax.set_title(probe); ax.set_ylabel("chains completed (%), 95% Wilson intervals")\nplt.tight_layout(); plt.show()'),
         ("md", "How much of the model's own first answer (its 7-digit number's tokens) stays cached for the second question:"),
         ("code", 't[t["probe"] == "multihop-recall"].pivot_table(index="name", columns="schedule", values="own_answer_survival")[list(sched.values())].round(2)'),
         ]),
    "ruler": notebook(
        "RULER at 4,096 tokens: average score against compression ratio (Qwen2.5-Coder-0.5B-Instruct)",
        "Mirrors kvpress's leaderboard: RULER's synthetic tasks (Hsieh et al. 2024) at 4,096 tokens, the question kept "
        "out of compression, scored by RULER's string_match_all, the average over tasks against the compression ratio, one "
        "line per method. Eleven methods at keep 0.75 / 0.5 / 0.25 / 0.125 / 0.1 and the full cache, 25 cases per task "
        "(275 in all), on Qwen2.5-Coder-0.5B-Instruct (the leaderboard's models are 8B). Job `qwen0.5b` of "
        "`Experiments/ruler/config.json`, run through Slurm; read from its ruler.csv and summary.csv (in git). Intervals "
        "are 95 % Wilson intervals (a task's over its 25 cases; the average's over all 275).",
        [("code", 'lb = pd.read_csv(ROOT / "Experiments/ruler/results/qwen0.5b/ruler.csv")\nlb["name"] = lb["policy"].str.split(":").str[0].where(~lb["policy"].str.startswith("criticalkv"), "criticalkv")\nlb["average (95% CI)"] = lb.apply(lambda r: f"{r.average:.1f} [{r.ci_low:.1f}–{r.ci_high:.1f}]", axis=1)\nlb.pivot_table(index="name", columns="budget", values="average (95% CI)", aggfunc="first").iloc[:, ::-1]'),
         ("md", "## The leaderboard's figure: average score against compression ratio"),
         ("code", 'fig, ax = plt.subplots(figsize=(9, 5.5))\nfull = lb[lb["name"] == "full"]\nfor name, g in lb[lb["name"] != "full"].groupby("name"):\n    g = g.sort_values("compression_ratio")\n    ax.errorbar(g["compression_ratio"], g["average"], yerr=[g["average"] - g["ci_low"], g["ci_high"] - g["average"]], marker="o", capsize=2, label=name)\nax.axhline(full["average"].iloc[0], color="black", linestyle="--", label="full cache")\nax.axhspan(full["ci_low"].iloc[0], full["ci_high"].iloc[0], color="black", alpha=0.06)\nax.set_xlabel("compression ratio (fraction of the cache removed)"); ax.set_ylabel("RULER average score (%), 95% Wilson intervals")\nax.legend(fontsize=7, ncol=2); plt.tight_layout(); plt.show()'),
         ("md", "## Per task: score (%) at each fraction of the cache kept"),
         ("code", 'tasks = [c for c in lb.columns if c.startswith("ruler-")]\nlong = lb.melt(id_vars=["name", "budget"], value_vars=tasks, var_name="task", value_name="score")\nlong["task"] = long["task"].str.removeprefix("ruler-")\nlong.pivot_table(index=["task", "name"], columns="budget", values="score").iloc[:, ::-1].round(0)'),
         ("code", 'fig, axes = plt.subplots(3, 4, figsize=(16, 10), sharey=True)\nfor ax, task in zip(axes.flat, tasks):\n    g = long[long["task"] == task.removeprefix("ruler-")]\n    full = g[g["name"] == "full"]["score"].iloc[0]\n    for name, h in g[g["name"] != "full"].groupby("name"):\n        h = h.sort_values("budget")\n        ax.plot(h["budget"], h["score"], marker="o", label=name)\n    ax.axhline(full, color="black", linestyle="--"); budget_axis(ax, g[g["name"] != "full"]["budget"]); ax.set_title(task.removeprefix("ruler-"), fontsize=9)\naxes.flat[-1].axis("off"); axes.flat[0].legend(fontsize=6, ncol=2)\nfig.supxlabel("fraction of the cache kept"); fig.supylabel("score (%); dashed: full cache"); plt.tight_layout(); plt.show()'),
         ("md", "## Each task's 95% interval at keep 0.25 (from summary.csv)"),
         ("code", 's = summary("ruler", "qwen0.5b")\ns["name"] = s["policy"].str.split(":").str[0].where(~s["policy"].str.startswith("criticalkv"), "criticalkv")\ns["score (95% CI)"] = s.apply(lambda r: f"{r.accuracy * 100:.0f} [{r.ci_low * 100:.0f}–{r.ci_high * 100:.0f}]", axis=1)\ns[(s["budget"] == 0.25) | (s["name"] == "full")].pivot_table(index="name", columns="probe", values="score (95% CI)", aggfunc="first")'),
         ]),
}

def strip(name):
    """Drops the execution timestamps nbconvert writes, so an executed notebook depends only on its results."""
    path = OUT / f"{name}.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--strip"]:
        for name in args[1:]:
            strip(name)
    else:
        for name in args or STUDIES:
            (OUT / f"{name}.ipynb").write_text(json.dumps(STUDIES[name], indent=1) + "\n")
