/// `duo` — DuoAttention (Xiao et al., "DuoAttention: Efficient Long-Context LLM Inference with Retrieval
/// and Streaming Heads", 2024). Only some heads retrieve from far back; the others need attention sinks and
/// recent tokens. Retrieval heads keep their whole stream, streaming heads `sinks` + `recent` tokens; the
/// budget decides how many heads retrieve: heads are taken in order of their retrieval score until the
/// kept total would pass the budget's (below the all-streaming total, streaming windows shrink). The
/// paper learns the score as a gate on synthetic passkey data; KVKit measures it on the model itself
/// (`ObservationNeeds.headCalibration`: the share of a passkey question's attention a head puts on the
/// needle, `HeadCalibration` in Runs, cached per model file). Sinks 64 and recent 256 in the paper's
/// 32k-token runs; 4 and 32 here, for contexts of 1–2k. Parameters: `sinks`, `recent`.
public struct DuoAttentionPolicy: EvictionPolicy, Configurable {
    @Parameter("sinks", 0...4096, "first tokens a streaming head keeps") public var sinks = 4
    @Parameter("recent", 0...65536, "last tokens a streaming head keeps") public var recent = 32
    public var name: String { "duo" }
    public var needs: ObservationNeeds { ObservationNeeds(headCalibration: true) }
    public init() {}

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
        let order = streams.indices.sorted { (streams[$0].headScore ?? 0, -$0) > (streams[$1].headScore ?? 0, -$1) }
        var retrieval = Set<Int>()
        for i in order {
            let extra = streams[i].count - min(streams[i].count, window)
            if cost + extra <= total { retrieval.insert(i); cost += extra }
        }
        var out: [[[Int]]] = [], i = 0
        for layer in views {
            out.append(layer.map { v in
                defer { i += 1 }
                if retrieval.contains(i) || v.count <= window { return Array(0..<v.count) }
                let first = min(sinks, window)
                return Array(0..<first) + Array((v.count - (window - first))..<v.count)
            })
        }
        return out
    }

    public static let info = PolicyInfo(DuoAttentionPolicy.self, summary: "whole streams for retrieval heads (calibrated), sinks + recent for the rest",
                                        paper: "Xiao et al. 2024, DuoAttention (arXiv:2410.10819)")
}
