import Foundation
import KVCache
import TensorMath

/// `qfilter` — Q-Filters (Godey et al., "Q-Filters: Leveraging Query-Key Geometry for Efficient Key-Value
/// Cache Compression", 2025, arXiv:2503.02812; kvpress 0.5.5's `QFilterPress`). Queries and keys of a head
/// are anisotropic: one direction u carries most of the queries' energy, so a key's projection on u
/// estimates its attention without any attention weight. u is the first right singular vector of the
/// head's queries over calibration text (the top eigenvector of Σ q qᵀ over the KV head's query group),
/// turned so that the queries' mean projection is positive, and a key's score is −⟨k, u⟩, kvpress's
/// `-(q_filter * keys).sum(-1)`: measured once per model (`kvkit calibrate --policy qfilter`, or on first
/// use) over `samples` pieces of `tokens` tokens of essay text and kept in `$KVKIT_HOME`, like duo's heads.
/// The sign is the press's and was checked on Qwen2.5-Coder-0.5B (niah, 1,024 tokens, 6 cases, keep 50 %):
/// −⟨k, u⟩ answers 5 / 6, +⟨k, u⟩ 0 / 6.
/// Deliberate differences: kvpress downloads filters the authors computed on their data and applies them to
/// the cached keys after RoPE; KVKit computes u from its own pre-RoPE query statistics (the model's
/// query-moment tap) and scores the keys with their rotation undone (on the same 6 cases, the rotated keys
/// answer 1 / 6). Query-agnostic, no sinks by default (as the press). Parameters: `samples`, `tokens`, `sinks`.
public struct QFilterPolicy: EvictionPolicy, Configurable {
    @Parameter("samples", 1...256, "essay pieces the filters are measured on (once per model, then read from $KVKIT_HOME)") public var samples = 8
    @Parameter("tokens", 64...4096, "tokens per measuring piece") public var tokens = 512
    @Parameter("sinks", 0...4096, "first tokens always kept") public var sinks = 0
    public var name: String { "qfilter" }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: sinks, last: 0) }
    public init() {}

    /// The measurement's settings name the filters.
    public var passKey: String { "qfilter.filters-s\(samples)-t\(tokens)" }

    public var passes: [PolicyPass] {
        let (key, samples, tokens) = (passKey, samples, tokens)
        return [
            .rope,
            PolicyPass(key: key, label: "calibration", stage: .beforePrompt) { model, _, _ in
                try Self.filters(model: model, samples: samples, tokens: tokens)
            },
        ]
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let rope = s.prepared[PolicyPass.rope.key] as? RoPEInfo, let all = s.prepared[passKey] as? [[[Float]]], s.layer < all.count,
            s.head < all[s.layer].count
        else { preconditionFailure("qfilter needs its filters and the model's RoPE; the runner runs `passes` before compressing") }
        let u = all[s.layer][s.head], r = rope.layer(s.layer)
        return (0..<s.count).map { slot in
            let k = r.unrotate(s.key(slot), position: s.positions[slot])
            return -zip(k, u).reduce(0) { $0 + $1.0 * $1.1 }
        }
    }

    // MARK: The filters

    /// Version 2: stored through `ModelCalibration` (bump when the measurement changes).
    static let calibration = ModelCalibration<[[[Float]]]>(name: "qfilter", version: 2)

    /// `[layer][kvHead][headDim]` unit filters for `model`: from memory, from
    /// `$KVKIT_HOME/qfilter-<sha256 prefix><arithmetic>-s…-t….json`, or measured and kept there.
    public static func filters(model: any ModelPass, samples: Int, tokens: Int) throws -> [[[Float]]] {
        try calibration.value(
            model: model, settings: "-s\(samples)-t\(tokens)",
            valid: { $0.count == model.layers && $0.allSatisfy { $0.count == model.kvHeads && $0.allSatisfy { $0.count == model.headDim } } }
        ) { try measure(model: model, samples: samples, tokens: tokens) }
    }

    /// The measurement (no cache): each piece runs after the chat template's opening with the query-moment
    /// tap on (rows from position 4: the sinks' queries are outliers, as Expected Attention leaves them out);
    /// the second moments Σ q qᵀ and sums Σ q of every query head are added over the pieces, and each KV
    /// head's filter is the top eigenvector of its group's summed second moment (`direction`).
    public static func measure(model: any ModelPass, samples: Int, tokens: Int) throws -> [[[Float]]] {
        let L = model.layers, H = model.kvHeads, G = model.heads / H, d = model.headDim
        var second = [[Double]](repeating: [Double](repeating: 0, count: model.heads * d * d), count: L)
        var sums = [[Double]](repeating: [Double](repeating: 0, count: model.heads * d), count: L)
        var rows = 0
        let opening = model.encode(model.opening, addBOS: true), from = 4
        for s in 0..<samples {
            guard let text = model.calibrationText(tokens: min(tokens, model.contextLength - opening.count), sample: s) else { break }
            let prompt = opening + text
            let cache = model.makeCache()
            Compressor.prepare(cache, needs: ObservationNeeds(queriesFrom: from), promptEnd: prompt.count, rope: model.rope)
            try model.forward(prompt, cache: cache)
            guard let m = cache.observations?.queries(from: Int32(from)), m.rows.allSatisfy({ $0 > 0 }) else { continue }
            for l in 0..<L {
                let n = Double(m.rows[l])
                for h in 0..<model.heads {
                    let mu = m.mean(layer: l, head: h), c = m.covariance(layer: l, head: h)
                    for i in 0..<d {
                        sums[l][h * d + i] += mu[i] * n
                        for j in 0..<d { second[l][h * d * d + i * d + j] += (c[i * d + j] + mu[i] * mu[j]) * n }
                    }
                }
            }
            rows += m.rows[0]
            model.progress(done: s + 1, total: samples, label: "qfilter: measured on \(s + 1) of \(samples) essay pieces")
        }
        guard rows > 0 else {
            throw PolicyError.passUnavailable(
                policy: "qfilter", reason: "its filters are measured on essay text and none was found; run 'make setup' (it fetches the Paul Graham essays)")
        }
        return (0..<L).map { l in
            (0..<H).map { kv in
                var m = [Double](repeating: 0, count: d * d), mean = [Double](repeating: 0, count: d)
                for g in 0..<G {
                    let h = kv * G + g
                    for i in 0..<(d * d) { m[i] += second[l][h * d * d + i] }
                    for i in 0..<d { mean[i] += sums[l][h * d + i] }
                }
                return direction(secondMoment: m, mean: mean, d: d)
            }
        }
    }

    /// The unit top eigenvector of a symmetric positive semi-definite `d × d` matrix (power iteration from
    /// the mean's direction, 500 steps or until it settles), turned so that its product with `mean` is not negative.
    public static func direction(secondMoment m: [Double], mean: [Double], d: Int) -> [Float] {
        func normalized(_ v: [Double]) -> [Double] {
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return n > 0 ? v.map { $0 / n } : v
        }
        var v = normalized(mean.contains { $0 != 0 } ? mean : [Double](repeating: 1, count: d))
        for _ in 0..<500 {
            let w = normalized((0..<d).map { i in (0..<d).reduce(0.0) { $0 + m[i * d + $1] * v[$1] } })
            let change = zip(w, v).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
            v = w
            if change < 1e-10 { break }
        }
        let sign: Double = zip(v, mean).reduce(0) { $0 + $1.0 * $1.1 } < 0 ? -1 : 1
        return v.map { Float($0 * sign) }
    }

    public static let info = PolicyInfo(
        QFilterPolicy.self, summary: "keys' projection on the queries' main direction (calibrated per model)",
        paper: "Godey et al. 2025, Q-Filters (arXiv:2503.02812)")
}
