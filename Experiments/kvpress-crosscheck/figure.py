"""agreement.svg: mean kept-set Jaccard per method and budget (agreement.csv), a line at the 0.95 bar.
Standard library only."""
import csv
import sys
from pathlib import Path


def main():
    here = Path(__file__).parent
    rows = list(csv.DictReader(open(here / "agreement.csv")))
    methods = []
    values = {}
    for r in rows:
        name, budget = r["method"].rsplit(" @ ", 1)
        label = name.split(":")[0] + (" (vs summed attention)" if "summed" in budget else "")
        budget = budget.split(" ")[0]
        if label not in methods:
            methods.append(label)
        values[(label, budget)] = float(r["mean_jaccard"])
    left, bar, gap, width = 230, 9, 8, 360
    height = 40 + len(methods) * (2 * bar + gap) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="18" font-weight="bold">kept-set agreement with kvpress 0.5.5 (mean Jaccard, 10 cases × 90 streams)</text>']
    colors = {"0.25": "#4c72b0", "0.5": "#dd8452"}
    for i, m in enumerate(methods):
        y = 34 + i * (2 * bar + gap)
        out.append(f'<text x="{left - 6}" y="{y + bar + 4}" text-anchor="end">{m}</text>')
        for k, b in enumerate(["0.25", "0.5"]):
            v = values.get((m, b))
            if v is None:
                continue
            out.append(f'<rect x="{left}" y="{y + k * bar}" width="{v * width:.1f}" height="{bar - 1}" fill="{colors[b]}"/>')
            out.append(f'<text x="{left + v * width + 4:.1f}" y="{y + k * bar + bar - 1}" font-size="10">{v:.3f}</text>')
    x95 = left + 0.95 * width
    bottom = 34 + len(methods) * (2 * bar + gap)
    out.append(f'<line x1="{x95:.1f}" y1="28" x2="{x95:.1f}" y2="{bottom}" stroke="#c44" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x95:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#c44" font-size="10">0.95</text>')
    for k, b in enumerate(["0.25", "0.5"]):
        out.append(f'<rect x="{left + k * 110}" y="{bottom + 20}" width="10" height="10" fill="{colors[b]}"/>'
                   f'<text x="{left + k * 110 + 14}" y="{bottom + 29}">keep {float(b) * 100:.0f} %</text>')
    out.append("</svg>")
    (here / "agreement.svg").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
