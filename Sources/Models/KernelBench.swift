import Foundation
import TensorMath

/// One matrix shape of a model timed by `kvkit bench --kernels`: the many-row product (a prefill chunk) by
/// panels + sgemm and by the integer kernel, medians of alternating calls.
public struct ManyRowTiming: Sendable {
    /// The first tensor of this type and shape, e.g. `blk.0.ffn_down`.
    public let matrix: String
    public let type: String, out: Int, inDim: Int, rows: Int
    /// Median seconds per call (activation coding included).
    public let sgemmSeconds: Double
    /// nil where the build has no integer many-row kernel for the type.
    public let integerSeconds: Double?
    /// max |integer − sgemm| over max |sgemm|: both multiply the same rounded activations.
    public let maxRelativeDifference: Double?

    /// Multiply-adds per second of a path.
    public func macsPerSecond(_ seconds: Double) -> Double { Double(rows * out * inDim) / seconds }
}

extension DecoderModel {
    /// Whether the many-row product of every matrix that has the integer kernel uses it (the default) or
    /// panels + sgemm: `kvkit bench --kernels` prefills the same prompt both ways, alternating.
    public func useIntegerManyRows(_ integer: Bool) {
        for w in layers.flatMap(\.matrices) + [output] where w.hasIntegerManyRows {
            w.manyRows = integer ? .integer : .sgemm
        }
    }

    /// Times `linear` on `rows` random input rows for each distinct (type, shape) among the model's layer
    /// matrices, the two many-row kernels alternating call by call (`rounds` each, the first call of each
    /// untimed) so that a host whose speed drifts affects both alike.
    public func benchManyRows(rows T: Int, rounds: Int) -> [ManyRowTiming] {
        var seen = Set<String>(), picked: [(String, Weights)] = []
        for (i, l) in layers.enumerated() {
            let named = [
                ("attn_q", l.wq), ("attn_k", l.wk), ("attn_v", l.wv), ("attn_output", l.wo), ("ffn_gate", l.wGate), ("ffn_up", l.wUp), ("ffn_down", l.wDown),
            ]
            for (name, w) in named where seen.insert("\(w.type) \(w.out) \(w.inDim)").inserted { picked.append(("blk.\(i).\(name)", w)) }
        }
        return picked.map { name, w in
            var rng = SplitMix64(seed: 1)
            let x = (0..<(T * w.inDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            var ys = [Float](repeating: 0, count: T * w.out), yi = ys
            let original = w.manyRows
            defer { w.manyRows = original }
            let hasInteger = w.hasIntegerManyRows
            func time(_ kind: Weights.ManyRows, _ y: inout [Float]) -> Double {
                w.manyRows = kind
                let start = ContinuousClock.now
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) } }
                return (ContinuousClock.now - start).seconds
            }
            var s: [Double] = [], n: [Double] = []
            for r in 0...rounds {
                if r % 2 == 0 || !hasInteger {
                    s.append(time(.sgemm, &ys)); if hasInteger { n.append(time(.integer, &yi)) }
                } else {
                    n.append(time(.integer, &yi)); s.append(time(.sgemm, &ys))
                }
            }
            func median(_ v: [Double]) -> Double { let v = v.dropFirst().sorted(); return v[v.count / 2] }
            var diff: Double?
            if hasInteger {
                let scale = ys.map { Double(abs($0)) }.max() ?? 0
                diff = zip(ys, yi).map { Double(abs($0 - $1)) }.max()! / max(scale, 1e-30)
            }
            return ManyRowTiming(
                matrix: name, type: "\(w.type)".uppercased(), out: w.out, inDim: w.inDim, rows: T, sgemmSeconds: median(s),
                integerSeconds: hasInteger ? median(n) : nil, maxRelativeDifference: diff)
        }
    }
}
