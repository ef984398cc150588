import Foundation

/// Aggregates results into probe × policy × budget rows.
public enum Summary {
    public struct Row: Sendable {
        public var probe: String, policy: String, budget: String
        /// The codec of the variant's pages (`fp32`: not quantized).
        public var quant: String
        /// Cases, their summed score (`correct`: a whole count for exact-match probes; a multi-value case
        /// adds the share of values it found), the mean score and its 95 % Wilson interval.
        public var cases: Int, correct: Double, accuracy: Double, ciLow: Double, ciHigh: Double
        /// Mean needle survival over the cases with needle spans (nil: none had any, nothing measured).
        public var survival: Double?
        public var kl: Double, liveBytes: Double, ratio: Double
        /// K/V data bytes as stored and the full cache's fp16 bytes over them; hot and cold parts and the
        /// LZ4 ratio of the cold part (nil without offload).
        public var kvDataBytes: Double, ratioVsFP16: Double, hotBytes: Double, coldBytes: Double, lz4Ratio: Double?
        /// The policy with its codec when quantized (`snapkv+kivi2`).
        public var label: String { quant == "fp32" ? policy : "\(policy)+\(quant)" }
        /// `label` within `width` characters, cutting the policy's parameters before the codec.
        public func shortLabel(_ width: Int) -> String {
            let suffix = quant == "fp32" ? "" : "+\(quant)"
            return String(policy.prefix(max(1, width - suffix.count))) + suffix
        }
        /// Share of pages read per attention block after compression (1 = dense).
        public var readFraction: Double
        /// Attention-output cosine against the full cache, averaged over layers and cases, and the
        /// relative error of the same outputs.
        public var attentionCosine: Double
        public var attentionRelativeError: Double
        /// Per turn (per hop for multi-hop): needle survival of the needles it needs, and accuracy.
        public var turnSurvival: [Double], turnAccuracy: [Double]
        /// Mean share of the model's own earlier answers still cached at the end, over the multi-turn cases
        /// (nil: none), and mean compressions while answering (nil: the run compressed only after the prompt).
        public var ownAnswerSurvival: Double? = nil
        public var recompressions: Double? = nil
    }

    public static func rows(_ results: [VariantResult]) -> [Row] {
        var groups: [String: [VariantResult]] = [:]
        var order: [String] = []
        for r in results {
            let key = "\(r.probe)|\(r.policy)|\(r.budget)|\(r.quant)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        return order.map { key in
            let g = groups[key]!
            let n = Double(g.count)
            let turns = g.map(\.turnScores.count).max() ?? 0
            let hops = (1...max(turns, 1)).map { h in g.map { $0.survivalByNeedle["hop\(h)"] ?? .nan }.reduce(0, +) / n }
            let acc = (0..<turns).map { t in g.map { t < $0.turnScores.count ? $0.turnScores[t] : 0 }.reduce(0, +) / n }
            let cold = g.map { Double($0.coldBytes) }.reduce(0, +), coldRaw = g.map { Double($0.coldUncompressedBytes) }.reduce(0, +)
            let correct = g.map(\.score).reduce(0, +), ci = Statistics.wilson(correct, g.count)!
            let measured = g.compactMap(\.needleSurvival)
            let own = g.compactMap(\.ownAnswerSurvival), again = g.compactMap(\.recompressions)
            var row = Row(
                probe: g[0].probe, policy: g[0].policy, budget: g[0].budget, quant: g[0].quant, cases: g.count,
                correct: correct, accuracy: correct / n, ciLow: ci.low, ciHigh: ci.high,
                survival: measured.isEmpty ? nil : measured.reduce(0, +) / Double(measured.count),
                kl: g.map(\.firstTokenKL).reduce(0, +) / n, liveBytes: g.map { Double($0.liveBytes) }.reduce(0, +) / n,
                ratio: g.map(\.compressionRatio).reduce(0, +) / n,
                kvDataBytes: g.map { Double($0.kvDataBytes) }.reduce(0, +) / n, ratioVsFP16: g.map(\.ratioVsFP16).reduce(0, +) / n,
                hotBytes: g.map { Double($0.hotBytes) }.reduce(0, +) / n, coldBytes: cold / n, lz4Ratio: cold > 0 ? coldRaw / cold : nil,
                readFraction: g.map(\.readFraction).reduce(0, +) / n,
                attentionCosine: g.map { $0.attentionCosineByLayer.reduce(0, +) / Double(max($0.attentionCosineByLayer.count, 1)) }.reduce(0, +) / n,
                attentionRelativeError: g.map { $0.attentionRelativeErrorByLayer.reduce(0, +) / Double(max($0.attentionRelativeErrorByLayer.count, 1)) }.reduce(
                    0, +) / n,
                turnSurvival: hops.allSatisfy { $0.isNaN } ? [] : hops, turnAccuracy: turns > 1 ? acc : [])
            row.ownAnswerSurvival = own.isEmpty ? nil : own.reduce(0, +) / Double(own.count)
            row.recompressions = again.isEmpty ? nil : Double(again.reduce(0, +)) / Double(again.count)
            return row
        }.sorted { ($0.probe, $0.label == "full" ? "" : $0.label, $0.budget) < ($1.probe, $1.label == "full" ? "" : $1.label, $1.budget) }
    }

    /// A number with up to `digits` decimals, trailing zeros dropped (`12`, `12.5`).
    static func trimmed(_ x: Double, _ digits: Int = 4) -> String {
        var t = String(format: "%.\(digits)f", x)
        while t.contains(".") && (t.hasSuffix("0") || t.hasSuffix(".")) { t.removeLast() }
        return t
    }

    public static func csv(_ rows: [Row]) -> String {
        var s =
            "probe,policy,budget,quant,n,correct,accuracy,ci_low,ci_high,needle_survival,first_token_kl,live_bytes,compression_ratio,kv_data_bytes,ratio_vs_fp16,hot_bytes,cold_bytes,lz4_ratio,read_fraction,attention_cosine,attention_rel_error,hop_survival,turn_accuracy,own_answer_survival,recompressions\n"
        for r in rows {
            let hops = r.turnSurvival.map { String(format: "%.4f", $0) }.joined(separator: ";")
            let turns = r.turnAccuracy.map { String(format: "%.4f", $0) }.joined(separator: ";")
            s +=
                "\(r.probe),\"\(r.policy)\",\(r.budget),\"\(r.quant)\",\(r.cases),\(trimmed(r.correct)),\(String(format: "%.4f", r.accuracy)),\(String(format: "%.4f", r.ciLow)),\(String(format: "%.4f", r.ciHigh)),"
                + "\(r.survival.map { String(format: "%.4f", $0) } ?? ""),\(String(format: "%.5f", r.kl)),\(Int(r.liveBytes)),\(String(format: "%.3f", r.ratio)),"
                + "\(Int(r.kvDataBytes)),\(String(format: "%.3f", r.ratioVsFP16)),\(Int(r.hotBytes)),\(Int(r.coldBytes)),\(r.lz4Ratio.map { String(format: "%.3f", $0) } ?? ""),"
                + "\(String(format: "%.4f", r.readFraction)),\(String(format: "%.5f", r.attentionCosine)),\(String(format: "%.5f", r.attentionRelativeError)),\(hops),\(turns),"
                + "\(r.ownAnswerSurvival.map { String(format: "%.4f", $0) } ?? ""),\(r.recompressions.map { String(format: "%.2f", $0) } ?? "")\n"
        }
        return s
    }

    /// Probes whose full-cache accuracy is below half: there the model itself fails, so policies are
    /// better compared by what they keep (survival) than by what it answers.
    public static func lowCeiling(_ rows: [Row]) -> Set<String> {
        Set(rows.filter { $0.label == "full" && $0.accuracy < 0.5 }.map(\.probe))
    }

    public static func text(_ rows: [Row]) -> String {
        let w = max(18, (rows.map(\.probe.count).max() ?? 0) + 3)
        let low = lowCeiling(rows)
        var s =
            "probe".padding(toLength: w, withPad: " ", startingAt: 0)
            + "policy                          budget      n  accuracy  95% CI      needle_surv  KL(1st)  attn_cos   live_KiB  ×fp16  read  per hop/turn: survival/accuracy\n"
        for r in rows {
            let probe = low.contains(r.probe) ? r.probe + " *" : r.probe
            s +=
                probe.padding(toLength: w, withPad: " ", startingAt: 0) + r.shortLabel(31).padding(toLength: 32, withPad: " ", startingAt: 0)
                + r.budget.padding(toLength: 8, withPad: " ", startingAt: 0)
                + String(format: "%5d  %7.0f%%  %3.0f–%3.0f%%  ", r.cases, r.accuracy * 100, r.ciLow * 100, r.ciHigh * 100)
                + (r.survival.map { String(format: "%10.0f%%", $0 * 100) } ?? "       n/a")
                + String(format: "  %7.4f  %8.4f  %9.0f  %5.2f  %3.0f%%", r.kl, r.attentionCosine, r.liveBytes / 1024, r.ratioVsFP16, r.readFraction * 100)
                + "  "
                + (0..<max(r.turnSurvival.count, r.turnAccuracy.count)).map { i in
                    (i < r.turnSurvival.count ? String(format: "%.0f%%", r.turnSurvival[i] * 100) : "-") + "/"
                        + (i < r.turnAccuracy.count ? String(format: "%.0f%%", r.turnAccuracy[i] * 100) : "-")
                }.joined(separator: " ") + "\n"
        }
        for p in low.sorted() {
            s += "* \(p): the full cache answers under 50% — the model's ceiling: compare survival, not accuracy\n"
        }
        return s
    }
}
