import Foundation
import TensorMath

/// Non-causal attention within fixed chunks of the prompt (Compactor's `NonCausalAttnPress` in kvpress
/// 0.5.5), tapped while the prompt runs: the positions `from ..< until` are cut into chunks of `chunk`
/// tokens starting at `from`; every query of a chunk attends to every key of its chunk, before and after
/// it, with logits q·k after RoPE and no 1/√d scale (as kvpress), and each key gets the sum over the
/// chunk's queries of the probability they give it, per query head. kvpress pads the last chunk to
/// `chunk` rows with zero queries and keys whose logits are masked to −1e−9 (not −∞); that is reproduced:
/// each real query's softmax also counts the pads (logit ≈ 0), and each pad query, uniform over the
/// chunk's columns, adds 1/chunk to every real key. Queries and keys of the chunk in progress are held
/// until it is complete (or the range ends), so prefill calls need not align with chunks.
public struct ChunkedAttention: Sendable, Equatable {
    /// What a policy asks for: the chunk size and the prompt positions left out at each end (sinks).
    public struct Spec: Sendable, Hashable {
        public var chunk: Int
        public var skipFirst: Int
        public var skipLast: Int
        public init(chunk: Int, skipFirst: Int, skipLast: Int) { self.chunk = chunk; self.skipFirst = skipFirst; self.skipLast = skipLast }
    }
    public let spec: Spec
    /// Positions scored: `from ..< until`.
    public let from: Int32, until: Int32
    let heads: Int, kvHeads: Int, headDim: Int
    /// [layer·kvHeads + head] → [(position − from)·group + g]: the summed probabilities.
    public private(set) var sums: [[Float]]
    private var pendingQ: [[Float]], pendingK: [[Float]], pendingStart: [Int32]

    public init(spec: Spec, promptEnd: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int) {
        self.spec = spec
        from = Int32(spec.skipFirst)
        until = Int32(max(spec.skipFirst, promptEnd - spec.skipLast))
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        let n = Int(until - from), group = heads / kvHeads
        sums = Array(repeating: [Float](repeating: 0, count: n * group), count: layers * kvHeads)
        pendingQ = Array(repeating: [], count: layers); pendingK = pendingQ
        pendingStart = Array(repeating: 0, count: layers)
    }

    /// Takes one layer's rows of a forward call: `q` `[positions.count][heads·headDim]` and `k`
    /// `[positions.count][kvHeads·headDim]`, both after RoPE, at ascending `positions`.
    public mutating func add(layer: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, positions: [Int32]) {
        let qw = heads * headDim, kw = kvHeads * headDim
        for (t, p) in positions.enumerated() where p >= from && p < until {
            if pendingQ[layer].isEmpty { pendingStart[layer] = p }
            pendingQ[layer] += UnsafeBufferPointer(start: q + t * qw, count: qw)
            pendingK[layer] += UnsafeBufferPointer(start: k + t * kw, count: kw)
            if pendingQ[layer].count / qw == spec.chunk || p == until - 1 { flush(layer: layer) }
        }
    }

    private mutating func flush(layer: Int) {
        let d = headDim, qw = heads * d, kw = kvHeads * d, group = heads / kvHeads
        let n = pendingQ[layer].count / qw, pads = spec.chunk - n, base = Int(pendingStart[layer] - from)
        guard n > 0 else { return }
        var logits = [Float](repeating: 0, count: n * n)
        for h in 0..<kvHeads {
            var column = [Float](repeating: 0, count: n * group)
            for g in 0..<group {
                let qh = h * group + g
                pendingQ[layer].withUnsafeBufferPointer { qp in
                    pendingK[layer].withUnsafeBufferPointer { kp in
                        BLAS.gemm(
                            m: n, n: n, k: d, qp.baseAddress! + qh * d, lda: qw, kp.baseAddress! + h * d, ldb: kw, transB: true,
                            beta: 0, &logits, ldc: n)
                    }
                }
                for i in 0..<n {
                    // The pads' logits are −1e−9: ≈ 0 in Float32.
                    var m: Float = pads > 0 ? -1e-9 : -.infinity
                    for j in 0..<n { m = max(m, logits[i * n + j]) }
                    var z = Float(pads) * expf(-1e-9 - m)
                    for j in 0..<n {
                        let e = expf(logits[i * n + j] - m)
                        logits[i * n + j] = e
                        z += e
                    }
                    for j in 0..<n { column[j * group + g] += logits[i * n + j] / z }
                }
                // Each pad query: logits 0 to the real keys, −1e−9 to the pads: uniform over the chunk.
                if pads > 0 { for j in 0..<n { column[j * group + g] += Float(pads) / Float(spec.chunk) } }
            }
            let i = layer * kvHeads + h
            for j in 0..<(n * group) { sums[i][base * group + j] = column[j] }
        }
        pendingQ[layer] = []; pendingK[layer] = []
    }
}
