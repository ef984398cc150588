import Foundation

/// Aggregates results into probe × policy × budget rows.
public enum Summary {
    public struct Row: Sendable {
        public var probe: String, policy: String, budget: String
        public var cases: Int, accuracy: Double, survival: Double, kl: Double, liveBytes: Double, ratio: Double
    }

    public static func rows(_ results: [VariantResult]) -> [Row] {
        var groups: [String: [VariantResult]] = [:]
        var order: [String] = []
        for r in results {
            let key = "\(r.probe)|\(r.policy)|\(r.budget)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        return order.map { key in
            let g = groups[key]!
            let n = Double(g.count)
            return Row(probe: g[0].probe, policy: g[0].policy, budget: g[0].budget, cases: g.count,
                       accuracy: g.map(\.score).reduce(0, +) / n, survival: g.map(\.needleSurvival).reduce(0, +) / n,
                       kl: g.map(\.firstTokenKL).reduce(0, +) / n, liveBytes: g.map { Double($0.liveBytes) }.reduce(0, +) / n,
                       ratio: g.map(\.compressionRatio).reduce(0, +) / n)
        }.sorted { ($0.probe, $0.policy == "full" ? "" : $0.policy, $0.budget) < ($1.probe, $1.policy == "full" ? "" : $1.policy, $1.budget) }
    }

    public static func csv(_ rows: [Row]) -> String {
        var s = "probe,policy,budget,cases,accuracy,needle_survival,first_token_kl,live_bytes,compression_ratio\n"
        for r in rows {
            s += "\(r.probe),\"\(r.policy)\",\(r.budget),\(r.cases),\(String(format: "%.4f", r.accuracy)),\(String(format: "%.4f", r.survival)),\(String(format: "%.5f", r.kl)),\(Int(r.liveBytes)),\(String(format: "%.3f", r.ratio))\n"
        }
        return s
    }

    public static func text(_ rows: [Row]) -> String {
        var s = "probe             policy                          budget  cases  accuracy  needle_surv  KL(1st)   live_KiB  ratio\n"
        for r in rows {
            s += r.probe.padding(toLength: 18, withPad: " ", startingAt: 0) + String(r.policy.prefix(31)).padding(toLength: 32, withPad: " ", startingAt: 0)
                + r.budget.padding(toLength: 8, withPad: " ", startingAt: 0)
                + String(format: "%5d  %7.0f%%  %10.0f%%  %7.4f  %9.0f  %5.2f\n", r.cases, r.accuracy * 100, r.survival * 100, r.kl, r.liveBytes / 1024, r.ratio)
        }
        return s
    }
}
