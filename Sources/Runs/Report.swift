import Foundation

/// `index.html` of a run folder: one page a browser opens offline, with the run's config, the summary
/// table with 95 % intervals, accuracy against budget with interval bars, and every figure inline.
public enum Report {
    /// Accuracy (%) against budget for each policy of one probe, with Wilson interval bars; the full
    /// cache as a dashed line across. Budgets are placed evenly in their sorted order.
    public static func accuracyChart(_ rows: [Summary.Row], probe: String) -> String {
        let mine = rows.filter { $0.probe == probe }
        let budgets = Array(Set(mine.filter { $0.label != "full" }.map(\.budget))).sorted { (Double($0) ?? 0) < (Double($1) ?? 0) }
        let series = Array(Set(mine.filter { $0.label != "full" }.map(\.label))).sorted()
        let W = 520.0, H = 260.0, left = 48.0, top = 30.0, right = 170.0, bottom = 40.0
        let pw = W - left - right, ph = H - top - bottom
        func x(_ i: Int) -> Double { budgets.count <= 1 ? left + pw / 2 : left + pw * Double(i) / Double(budgets.count - 1) }
        func y(_ v: Double) -> Double { top + ph * (1 - v) }
        // Legend: the policy's name without its parameters where that stays unambiguous.
        func short(_ l: String) -> String {
            let parts = l.split(separator: "+", maxSplits: 1).map(String.init)
            return String(parts[0].split(separator: ":")[0]) + (parts.count == 2 ? "+" + parts[1] : "")
        }
        let shorts = series.map(short)
        let legend = Dictionary(uniqueKeysWithValues: series.map { l in (l, shorts.filter { $0 == short(l) }.count == 1 ? short(l) : l) })
        let palette = [
            "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#ff9896", "#8c6d31",
            "#98df8a", "#c5b0d5", "#000080",
        ]
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(W))" height="\(Int(H))" font-family="sans-serif" font-size="11">
            <text x="\(left)" y="16" font-size="13">\(Figures.escape(probe)): accuracy against budget (95% Wilson intervals)</text>

            """
        for t in stride(from: 0.0, through: 1.0, by: 0.25) {
            s +=
                "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(y(t))\" y2=\"\(y(t))\" stroke=\"#ddd\"/><text x=\"\(left - 6)\" y=\"\(y(t) + 4)\" text-anchor=\"end\">\(Int(t * 100))%</text>\n"
        }
        for (i, b) in budgets.enumerated() { s += "<text x=\"\(x(i))\" y=\"\(top + ph + 16)\" text-anchor=\"middle\">\(b)</text>\n" }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(H - 6)\" text-anchor=\"middle\">budget (share of the cache kept, or tokens)</text>\n"
        if let full = mine.first(where: { $0.label == "full" }) {
            s += "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(y(full.accuracy))\" y2=\"\(y(full.accuracy))\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n"
            s +=
                "<text x=\"\(left + pw + 6)\" y=\"\(y(full.accuracy) + 4)\">full \(Int((full.accuracy * 100).rounded()))% [\(Int((full.ciLow * 100).rounded()))–\(Int((full.ciHigh * 100).rounded()))]</text>\n"
        }
        for (k, label) in series.enumerated() {
            let color = palette[k % palette.count], dx = (Double(k) - Double(series.count - 1) / 2) * 3
            var points: [String] = []
            for (i, b) in budgets.enumerated() {
                guard let r = mine.first(where: { $0.label == label && $0.budget == b }) else { continue }
                let cx = x(i) + dx
                points.append("\(cx),\(y(r.accuracy))")
                s += "<line x1=\"\(cx)\" x2=\"\(cx)\" y1=\"\(y(r.ciLow))\" y2=\"\(y(r.ciHigh))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>"
                s +=
                    "<circle cx=\"\(cx)\" cy=\"\(y(r.accuracy))\" r=\"3\" fill=\"\(color)\"><title>\(Figures.escape(label)) @ \(b): \(String(format: "%.1f%% [%.1f–%.1f], n=%d", r.accuracy * 100, r.ciLow * 100, r.ciHigh * 100, r.cases))</title></circle>\n"
            }
            if points.count > 1 { s += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1\"/>\n" }
            let ly = top + 14 * Double(k + 2)
            s +=
                "<rect x=\"\(left + pw + 6)\" y=\"\(ly - 8)\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text x=\"\(left + pw + 20)\" y=\"\(ly + 1)\">\(Figures.escape(String(legend[label, default: label].prefix(24))))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// The page. `figures` are the SVG files of the run's `figures/` folder (name, text).
    public static func html(title: String, config: RunConfig?, rows: [Summary.Row], figures: [(name: String, svg: String)]) -> String {
        func e(_ s: String) -> String { Figures.escape(s) }
        func pct(_ v: Double) -> String { String(format: "%.1f", v * 100) }
        var s = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(e(title))</title>
            <style>body{font-family:sans-serif;margin:24px;max-width:1400px}table{border-collapse:collapse;font-size:12px}
            td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td.l,th.l{text-align:left}tr.full{background:#f4f4f4}
            .figs{display:flex;flex-wrap:wrap;gap:12px}.note{color:#a33}code{font-size:12px}</style></head><body>
            <h1>\(e(title))</h1>

            """
        if let c = config {
            s +=
                "<p><code>model \(e(c.model.file)) (sha256 \(e(String(c.model.sha256.prefix(16))))…) · code \(e(c.codeVersion)) · seed \(c.seed) · haystack \(e(c.haystack)) · "
            s +=
                "\(c.queryAware ? "query-aware" : "query-agnostic") · max answer tokens \(c.maxAnswerTokens.map(String.init) ?? "by turn") · page size \(c.pageSize)\(c.compressEvery.map { " · compressed every \($0) tokens" } ?? "")\(c.compressBetweenTurns == true ? " · compressed between turns" : "")\(c.shard.map { " · shard \($0)" } ?? "")</code></p>\n"
        }
        s +=
            "<h2>Summary</h2>\n<p>Accuracy is the mean case score with its 95% Wilson interval; needle survival is n/a where cases had no needle spans. Compare two variants on the same cases with <code>kvkit compare</code>.</p>\n"
        s +=
            "<table><tr><th class=l>probe</th><th class=l>policy</th><th>budget</th><th>n</th><th>correct</th><th>accuracy %</th><th>95% CI</th><th>needle survival %</th><th>KL(1st)</th><th>attn cos</th><th>×fp16</th><th>read %</th></tr>\n"
        let low = Summary.lowCeiling(rows)
        for r in rows {
            s +=
                "<tr\(r.label == "full" ? " class=full" : "")><td class=l>\(e(r.probe))\(low.contains(r.probe) ? " *" : "")</td><td class=l>\(e(r.label))</td><td>\(e(r.budget))</td><td>\(r.cases)</td>"
            s +=
                "<td>\(Summary.trimmed(r.correct, 2))</td><td>\(pct(r.accuracy))</td><td>\(pct(r.ciLow))–\(pct(r.ciHigh))</td><td>\(r.survival.map(pct) ?? "n/a")</td>"
            s +=
                "<td>\(String(format: "%.4f", r.kl))</td><td>\(String(format: "%.4f", r.attentionCosine))</td><td>\(String(format: "%.2f", r.ratioVsFP16))</td><td>\(pct(r.readFraction))</td></tr>\n"
        }
        s += "</table>\n"
        for p in low.sorted() { s += "<p class=note>* \(e(p)): the full cache answers under 50% — the model's ceiling: compare survival, not accuracy.</p>\n" }
        s += "<h2>Accuracy against budget</h2>\n<div class=figs>\n"
        for p in Array(Set(rows.map(\.probe))).sorted() { s += accuracyChart(rows, probe: p) }
        s +=
            "</div>\n<h2>Figures</h2>\n<p>Depth × length accuracy and layer × KV-head needle survival per probe, policy and budget; the numbers drawn are in the CSV beside each SVG in <code>figures/</code>.</p>\n<div class=figs>\n"
        for f in figures { s += "<div><div><code>\(e(f.name))</code></div>\(f.svg)</div>\n" }
        return s + "</div>\n</body></html>\n"
    }
}
