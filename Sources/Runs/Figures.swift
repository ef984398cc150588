import Foundation

/// Hand-written SVG heatmaps, each with a CSV of exactly the numbers drawn beside it.
public enum Figures {
    /// A heatmap of values in [0, 1] (NaN = no data), rows × columns, with labels.
    public static func heatmap(
        title: String, rowLabel: String, colLabel: String, rows: [String], cols: [String],
        values: [[Double]], cell: Double = 28
    ) -> String {
        let left = 70.0, top = 40.0, w = Double(cols.count) * cell, h = Double(rows.count) * cell
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(max(left + w + 70, left + 10 + 8 * Double(title.count))))" height="\(Int(top + h + 50))" font-family="sans-serif" font-size="11">
            <text x="\(left)" y="18" font-size="13">\(escape(title))</text>

            """
        for (r, row) in values.enumerated() {
            for (c, v) in row.enumerated() {
                let x = left + Double(c) * cell, y = top + Double(r) * cell
                let fill = v.isNaN ? "#eeeeee" : color(v)
                s +=
                    "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"\(fill)\"><title>\(rows[r]), \(cols[c]): \(v.isNaN ? "n/a" : String(format: "%.3f", v))</title></rect>\n"
                if cell >= 24 && !v.isNaN {
                    s +=
                        "<text x=\"\(x + cell / 2 - 0.5)\" y=\"\(y + cell / 2 + 3.5)\" text-anchor=\"middle\" font-size=\"9\" fill=\"\(v > 0.55 ? "#000" : "#fff")\">\(Int((v * 100).rounded()))</text>\n"
                }
            }
            s += "<text x=\"\(left - 4)\" y=\"\(top + Double(r) * cell + cell / 2 + 3.5)\" text-anchor=\"end\">\(escape(rows[r]))</text>\n"
        }
        for (c, label) in cols.enumerated() {
            s += "<text x=\"\(left + Double(c) * cell + cell / 2)\" y=\"\(top + h + 14)\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        s += "<text x=\"\(left + w / 2)\" y=\"\(top + h + 32)\" text-anchor=\"middle\">\(escape(colLabel))</text>\n"
        s += "<text x=\"14\" y=\"\(top + h / 2)\" transform=\"rotate(-90 14 \(top + h / 2))\" text-anchor=\"middle\">\(escape(rowLabel))</text>\n"
        s += "</svg>\n"
        return s
    }

    public static func csv(rows: [String], cols: [String], values: [[Double]], corner: String) -> String {
        var s = corner + "," + cols.joined(separator: ",") + "\n"
        for (r, row) in values.enumerated() {
            s += rows[r] + "," + row.map { $0.isNaN ? "" : String(format: "%.4f", $0) }.joined(separator: ",") + "\n"
        }
        return s
    }

    /// Red (0) → yellow (0.5) → green (1).
    static func color(_ v: Double) -> String {
        let t = min(max(v, 0), 1)
        let r = t < 0.5 ? 215 : Int(215 - (t - 0.5) * 2 * (215 - 26))
        let g = t < 0.5 ? Int(48 + t * 2 * (190 - 48)) : Int(190 - (t - 0.5) * 2 * (190 - 150))
        let b = t < 0.5 ? 39 : Int(39 + (t - 0.5) * 2 * (80 - 39))
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Writes, per probe × policy × budget: the depth × length accuracy heatmap (the classic needle
    /// picture) and the layer × KV-head needle-survival heatmap, as SVG with the drawn numbers in CSV.
    public static func write(_ results: [VariantResult], to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var groups: [String: [VariantResult]] = [:]
        for r in results { groups["\(r.probe)|\(r.policy)|\(r.budget)|\(r.quant)", default: []].append(r) }
        for (_, g) in groups {
            let label = g[0].quant == "fp32" ? g[0].policy : "\(g[0].policy)+\(g[0].quant)"
            let name = "\(g[0].probe)_\(label)_\(g[0].budget)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
            let base = dir + "/" + String(name)
            let lengths = Array(Set(g.map(\.length))).sorted(), depths = Array(Set(g.map(\.depth))).sorted()
            let acc = depths.map { d in
                lengths.map { l in
                    let m = g.filter { $0.depth == d && $0.length == l }.map(\.score)
                    return m.isEmpty ? .nan : m.reduce(0, +) / Double(m.count)
                }
            }
            let rl = depths.map { String(format: "%.2f", $0) }, cl = lengths.map(String.init)
            try heatmap(
                title: "\(g[0].probe): \(label) @ \(g[0].budget) — accuracy", rowLabel: "needle depth", colLabel: "context tokens",
                rows: rl, cols: cl, values: acc, cell: 40
            ).write(toFile: base + "_accuracy.svg", atomically: true, encoding: .utf8)
            try csv(rows: rl, cols: cl, values: acc, corner: "depth\\length").write(toFile: base + "_accuracy.csv", atomically: true, encoding: .utf8)
            // Survival where it was measured (cases with needle spans); no figure where it never was.
            let measured = g.filter { !$0.survivalByLayerHead.isEmpty }
            guard let first = measured.first else { continue }
            let L = first.survivalByLayerHead.count, H = first.survivalByLayerHead.first?.count ?? 0
            let surv = (0..<H).map { h in (0..<L).map { l in measured.map { $0.survivalByLayerHead[l][h] }.reduce(0, +) / Double(measured.count) } }
            let hl = (0..<H).map { "head \($0)" }, ll = (0..<L).map(String.init)
            try heatmap(
                title: "\(g[0].probe): \(label) @ \(g[0].budget) — needle survival", rowLabel: "KV head", colLabel: "layer",
                rows: hl, cols: ll, values: surv, cell: 22
            ).write(toFile: base + "_survival.svg", atomically: true, encoding: .utf8)
            try csv(rows: hl, cols: ll, values: surv, corner: "head\\layer").write(toFile: base + "_survival.csv", atomically: true, encoding: .utf8)
        }
    }
}
