import Foundation
import KVCache
import PolicyConformance
import Policies
import ScissorhandsPolicy
import TensorMath
import Testing

@Suite struct ScissorhandsTests {
    @Test func passesKVKitsConformanceKit() {
        #expect(PolicyConformance.check(ScissorhandsPolicy()).isEmpty)
    }

    /// The statistic declared in the plug-in's file is tapped by KVKit's attention kernel: after a prompt runs
    /// through `PagedAttention` on a cache prepared from the policy's `needs`, each key's count equals the
    /// count from probabilities computed here densely (Float32 rounding near 1/t allowed either way), and
    /// the policy keeps the keys counted least often.
    @Test func theKernelCountsWhatThePlugInDeclared() throws {
        var rng = SplitMix64(seed: 7)
        let H = 1, G = 2, nHeads = H * G, hd = 8, N = 48
        PolicyRegistry.shared.register(ScissorhandsPolicy.info)
        let policy = try PolicyRegistry.shared.make("scissorhands:history=8,recent=4") as! ScissorhandsPolicy
        let cache = PagedKVCache(layers: 1, kvHeads: H, headDim: hd, group: G, pageSize: 16)
        Compressor.prepare(cache, needs: policy.needs, promptEnd: N)
        let pos = (0..<N).map(Int32.init)
        let k = (0..<(N * H * hd)).map { _ in Float.random(in: -2...2, using: &rng) }
        let v = (0..<(N * H * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
        let q = (0..<(N * nHeads * hd)).map { _ in Float.random(in: -2...2, using: &rng) }
        cache.append(layer: 0, keys: k, values: v, positions: pos, tokens: pos)
        cache.nextPosition = N
        var out = [Float](repeating: 0, count: N * nHeads * hd)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer {
                PagedAttention.attend(cache: cache, layer: 0, q: qp.baseAddress!, positions: pos, nHeads: nHeads, out: $0.baseAddress!)
            }
        }
        var low = [Int](repeating: 0, count: N * G), lowLoose = low
        for t in (N - 8)..<N {
            for g in 0..<G {
                let s = (0...t).map { j in
                    (0..<hd).reduce(0.0) { $0 + Double(q[(t * nHeads + g) * hd + $1]) * Double(k[j * hd + $1]) } / Double(hd).squareRoot()
                }
                let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                for j in 0...t {
                    if e[j] / z < 1 / Double(t + 1) - 1e-5 { low[j * G + g] += 1 }
                    if e[j] / z < 1 / Double(t + 1) + 1e-5 { lowLoose[j * G + g] += 1 }
                }
            }
        }
        let view = Compressor.view(cache, layer: 0, head: 0, seed: 0, needs: policy.needs)
        let counts = try #require(view.statistic(ScissorhandsPolicy.LowAttentionCount(history: 8).key))
        #expect(counts.indices.allSatisfy { Int(counts[$0]) >= low[$0] && Int(counts[$0]) <= lowLoose[$0] })
        #expect(counts.reduce(0, +) > 0 && counts.contains(0), "some keys are under 1/t, others never")
        // Kept: the last 4, then the lowest mean counts.
        let kept = try Compressor.plan(cache, policy: policy, budget: .tokens(12)).keep[0][0]
        let mean: [Float] = (0..<N).map { i in (counts[i * G] + counts[i * G + 1]) / 2 }
        let others = kept.filter { $0 < N - 4 }
        let dropped = (0..<(N - 4)).filter { !kept.contains($0) }
        #expect(kept.count == 12 && Set(N - 4..<N).isSubset(of: kept))
        #expect(others.map { mean[$0] }.max()! <= dropped.map { mean[$0] }.min()!)
    }
}
