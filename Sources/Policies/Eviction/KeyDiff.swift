/// `keydiff` — KeyDiff (Park et al., "KeyDiff: Key Similarity-Based KV Cache Eviction for Long-Context LLM
/// Inference in Resource-Constrained Environments", 2025). Keys that point the way most keys point draw
/// the same queries; distinctive ones carry what the others do not. A token's score is minus the cosine
/// between its key and the anchor, the mean of the stream's L2-normalized keys, so the least typical keys
/// are kept. Needs no attention, so it is query-agnostic and runs with any attention kernel (kvpress's
/// KeyDiffPress computes the same score).
public struct KeyDiffPolicy: EvictionPolicy, Configurable {
    public var name: String { "keydiff" }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        let keys = (0..<s.count).map(s.key)
        let unit = keys.map { k -> [Float] in
            let n = k.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return n > 0 ? k.map { $0 / n } : k
        }
        var anchor = [Float](repeating: 0, count: s.headDim)
        for u in unit { for d in 0..<s.headDim { anchor[d] += u[d] } }
        for d in 0..<s.headDim { anchor[d] /= Float(max(s.count, 1)) }
        let anchorNorm = anchor.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return unit.map { u in
            guard anchorNorm > 0 else { return 0 }
            var dot: Float = 0
            for d in 0..<s.headDim { dot += u[d] * anchor[d] }
            let uNorm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return uNorm > 0 ? -dot / (uNorm * anchorNorm) : 0
        }
    }

    public static let info = PolicyInfo(
        KeyDiffPolicy.self, summary: "keys least similar (cosine) to the mean key",
        paper: "Park et al. 2025, KeyDiff (arXiv:2504.15364)")
}
