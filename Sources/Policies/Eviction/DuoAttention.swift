import Foundation
import KVCache

/// `duo` — DuoAttention (Xiao et al., "DuoAttention: Efficient Long-Context LLM Inference with Retrieval
/// and Streaming Heads", 2024). Only some heads retrieve from far back; the others need attention sinks and
/// recent tokens. Retrieval heads keep their whole stream, streaming heads `sinks` + `recent` tokens; the
/// budget decides how many heads retrieve: heads are taken in order of their retrieval score until the
/// kept total would pass the budget's (below the all-streaming total, streaming windows shrink). The
/// paper learns the score as a gate on synthetic passkey data; KVKit measures it on the model itself
/// (the pass `calibration` below: the share of a passkey question's attention a head puts on the needle,
/// measured once per model file and kept in `$KVKIT_HOME`). Sinks 64 and recent 256 in the paper's
/// 32k-token runs; 4 and 32 here, for contexts of 1–2k. Parameters: `sinks`, `recent`.
public struct DuoAttentionPolicy: EvictionPolicy, Configurable {
    @Parameter("sinks", 0...4096, "first tokens a streaming head keeps") public var sinks = 4
    @Parameter("recent", 0...65536, "last tokens a streaming head keeps") public var recent = 32
    public var name: String { "duo" }
    public init() {}

    /// The key of the calibration pass's result (`[layer][kvHead]` retrieval scores; per model, whatever the settings).
    public static let passKey = "duo.heads"
    public var passes: [PolicyPass] {
        [PolicyPass(key: Self.passKey, label: "calibration", stage: .beforePrompt) { model, _, _ in try Self.headScores(model: model) }]
    }

    /// Needle depths and prompt length of the calibration cases.
    public static let calibrationDepths = [0.2, 0.5, 0.8]
    public static let calibrationLength = 1024
    /// Version 2: stored through `ModelCalibration` (bump when the measurement, its depths or length change).
    static let calibration = ModelCalibration<[[Float]]>(name: "duo-heads", version: 2)

    /// `[layer][kvHead]` retrieval scores in [0, 1] for `model`: from memory, from
    /// `$KVKIT_HOME/duo-heads-<sha256 prefix><arithmetic>.json` (the arithmetic differs in the last bits
    /// between weight storages and kernel builds, so each has its own file), or measured and kept there.
    public static func headScores(model: any ModelPass) throws -> [[Float]] {
        try calibration.value(
            model: model, valid: { $0.count == model.layers && $0.allSatisfy { $0.count == model.kvHeads } }
        ) { try measureHeads(model: model) }
    }

    /// The measurement itself (no cache): over synthetic one-needle cases (`ModelPass.needleCase`, the
    /// needle at depths 0.2, 0.5 and 0.8, the question last), the share of the question's attention each
    /// (layer, KV head) puts on the needle's tokens, averaged over the cases.
    public static func measureHeads(model: any ModelPass) throws -> [[Float]] {
        let L = model.layers, H = model.kvHeads, G = model.heads / H
        let n = min(calibrationLength, model.contextLength / 2)
        var total = [[Float]](repeating: [Float](repeating: 0, count: H), count: L)
        for (i, depth) in calibrationDepths.enumerated() {
            guard let c = model.needleCase(length: n, depth: depth, sample: i) else { continue }
            let cache = model.makeCache()
            Compressor.prepare(cache, needs: ObservationNeeds(window: c.question), promptEnd: c.prompt.count)
            try model.forward(c.prompt, cache: cache)
            guard let obs = cache.observations, let window = obs.window(size: c.question) else { continue }
            for l in 0..<L {
                for h in 0..<H {
                    let slots = cache.slots(layer: l, head: h), w = window[l * H + h]
                    var onNeedle: Float = 0
                    for (s, slot) in slots.enumerated() where c.needle.contains(slot.position) { for g in 0..<G { onNeedle += w[s * G + g] } }
                    total[l][h] += onNeedle / Float(c.question * G) / Float(calibrationDepths.count)
                }
            }
        }
        return total
    }

    /// The stream's retrieval score (0 when the calibration did not run).
    func headScore(_ s: StreamView) -> Float {
        guard let all = s.prepared[Self.passKey] as? [[Float]], s.layer < all.count, s.head < all[s.layer].count else { return 0 }
        return all[s.layer][s.head]
    }

    /// Within a stream (used when a caller plans layer by layer): sinks, then the most recent.
    public func scores(_ s: StreamView) -> [Float] { (0..<s.count).map { Float($0) } }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: sinks, last: 0) }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? {
        let streams = views.flatMap { $0 }
        guard !streams.isEmpty else { return [] }
        let total = budgets.joined().reduce(0, +)
        var window = sinks + recent
        // Below the all-streaming total, the streaming windows shrink (recent first) to fit.
        while window > 1 && streams.reduce(0, { $0 + min($1.count, window) }) > total { window -= 1 }
        var cost = streams.reduce(0) { $0 + min($1.count, window) }
        // Heads by retrieval score, highest first (ties: earlier layer and head).
        let order = streams.indices.sorted { (headScore(streams[$0]), -$0) > (headScore(streams[$1]), -$1) }
        var retrieval = Set<Int>()
        for i in order {
            let extra = streams[i].count - min(streams[i].count, window)
            if cost + extra <= total { retrieval.insert(i); cost += extra }
        }
        var out: [[[Int]]] = [], i = 0
        for layer in views {
            out.append(
                layer.map { v in
                    defer { i += 1 }
                    if retrieval.contains(i) || v.count <= window { return Array(0..<v.count) }
                    let first = min(sinks, window)
                    return Array(0..<first) + Array((v.count - (window - first))..<v.count)
                })
        }
        return out
    }

    public static let info = PolicyInfo(
        DuoAttentionPolicy.self, summary: "whole streams for retrieval heads (calibrated), sinks + recent for the rest",
        paper: "Xiao et al. 2024, DuoAttention (arXiv:2410.10819)")
}
