import Foundation
import KVCache
import Testing

@Suite struct ChunkedAttentionTests {
    /// One head of width 1, chunks of 2 over positions 0…2. Queries 1, 2, 1 and keys 0, 1, 1:
    /// chunk {0, 1}: logits (0, 1) and (0, 2), softmax rows (0.2689, 0.7311) and (0.1192, 0.8808), so the keys
    /// get 0.3881 and 1.6119; chunk {2} is padded with one zero row: the real query's logits are 1 (its key) and
    /// −1e−9 (the pad), 1 / (1 + e⁻¹) = 0.7311, and the pad query, uniform over the 2 columns, adds 0.5.
    @Test func sumsAreEachChunksNonCausalSoftmaxWithKvpressPadding() {
        let spec = ChunkedAttention.Spec(chunk: 2, skipFirst: 0, skipLast: 0)
        func run(_ calls: [[Int32]]) -> [Float] {
            var c = ChunkedAttention(spec: spec, promptEnd: 3, layers: 1, heads: 1, kvHeads: 1, headDim: 1)
            let q: [Float] = [1, 2, 1], k: [Float] = [0, 1, 1]
            for positions in calls {
                let at = Int(positions[0])
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in c.add(layer: 0, q: qp.baseAddress! + at, k: kp.baseAddress! + at, positions: positions) }
                }
            }
            return c.sums[0]
        }
        let expected: [Float] = [0.3881, 1.6119, 1.2311]
        let whole = run([[0, 1, 2]]), split = run([[0], [1, 2]])
        #expect(zip(whole, expected).allSatisfy { abs($0 - $1) < 0.0005 }, "\(whole)")
        #expect(split == whole, "a chunk split across prefill calls is held until complete")
    }

    /// Positions before `skipFirst` and from `promptEnd − skipLast` on are not scored.
    @Test func sinksAndRecentAreLeftOut() {
        var c = ChunkedAttention(spec: .init(chunk: 4, skipFirst: 1, skipLast: 1), promptEnd: 4, layers: 1, heads: 1, kvHeads: 1, headDim: 1)
        let q: [Float] = [9, 1, 1, 9], k: [Float] = [9, 1, 1, 9]
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in c.add(layer: 0, q: qp.baseAddress!, k: kp.baseAddress!, positions: [0, 1, 2, 3]) } }
        #expect(c.from == 1 && c.until == 3 && c.sums[0].count == 2)
        // Two equal keys, two pads: each real query gives each real key e¹ / (2e¹ + 2), the pads add 2 × 1/4.
        let e = Float(M_E)
        #expect(c.sums[0].allSatisfy { abs($0 - (2 * e / (2 * e + 2) + 0.5)) < 0.0005 }, "\(c.sums[0])")
    }
}
