import Foundation
import KVCache
import KVKitTestSupport
import PolicyConformance
import TensorMath
import Testing
@testable import Policies

/// One layer, `heads` KV heads of `n` tokens; key `i` of head `h` is `keyNorms[h][i]` along the first axis.
/// Observations are set by hand: accumulated[h][i·G + g] and window[h][i·G + g].
func handCache(
    n: Int, heads: Int = 1, group: Int = 1, keyNorms: [[Float]]? = nil,
    accumulated: [[Float]]? = nil, window: [[Float]]? = nil
) -> PagedKVCache {
    let hd = 4
    let cache = PagedKVCache(layers: 1, kvHeads: heads, headDim: hd, group: group, pageSize: 4)
    var k = [Float](repeating: 0, count: n * heads * hd)
    for i in 0..<n { for h in 0..<heads { k[(i * heads + h) * hd] = keyNorms?[h][i] ?? 1 } }
    let pos = (0..<n).map(Int32.init)
    cache.append(layer: 0, keys: k, values: k, positions: pos, tokens: pos)
    cache.nextPosition = n
    var obs = Observations(layers: 1, kvHeads: heads, group: group, windowStart: window != nil ? 0 : nil)
    if let a = accumulated {
        obs.statistics.install(H2OPolicy.Totals(), promptEnd: n, slots: a.map { $0.count / group }, group: group)
        for (h, values) in a.enumerated() { obs.statistics.set(H2OPolicy.Totals().key, stream: h, values) }
    }
    if let w = window { obs.window = w }
    if accumulated != nil || window != nil { cache.observations = obs }
    return cache
}

func kept(
    _ cache: PagedKVCache, _ policy: any EvictionPolicy, _ budget: Budget, head: Int = 0,
    context: CompressionContext = .init()
) -> [Int32] {
    do { try Compressor.compress(cache, policy: policy, budget: budget, context: context) } catch { Issue.record("\(error)"); return [] }
    return cache.slots(layer: 0, head: head).map(\.position)
}

@Suite struct HandBuiltPolicyTests {
    @Test func fullKeepsEverything() {
        #expect(kept(handCache(n: 10), FullPolicy(), .tokens(3)) == Array(0..<10))
    }

    @Test func streamingKeepsSinksAndRecent() {
        #expect(kept(handCache(n: 20), StreamingLLMPolicy { $0.sinks = 4 }, .tokens(8)) == [0, 1, 2, 3, 16, 17, 18, 19])
    }

    @Test func h2oKeepsHeavyHittersAndRecent() {
        var acc = [Float](repeating: 0.1, count: 20)
        acc[5] = 3; acc[9] = 2; acc[2] = 1; acc[18] = 9  // 18 is recent anyway
        // Budget 6, recent share 0.5: the last 3 slots, then the 3 heaviest of the rest.
        #expect(kept(handCache(n: 20, accumulated: [acc]), H2OPolicy(), .tokens(6)) == [2, 5, 9, 17, 18, 19])
    }

    @Test func h2oCombinesGroupedHeadsByMeanOrMax() {
        // Two query heads share the KV head: slot 3 is loved by one head only, slot 7 mildly by both.
        var acc = [Float](repeating: 0, count: 10 * 2)
        acc[3 * 2 + 0] = 1.0; acc[3 * 2 + 1] = 0.0
        acc[7 * 2 + 0] = 0.6; acc[7 * 2 + 1] = 0.6
        let mean = kept(
            handCache(n: 10, group: 2, accumulated: [acc]),
            H2OPolicy {
                $0.recent = 0; $0.gqa = .mean
            }, .tokens(1))
        let max = kept(
            handCache(n: 10, group: 2, accumulated: [acc]),
            H2OPolicy {
                $0.recent = 0; $0.gqa = .max
            }, .tokens(1))
        #expect(mean == [7] && max == [3])
    }

    @Test func tovaKeepsWhatTheLastQueryAttendsTo() {
        var w = [Float](repeating: 0, count: 12)
        w[4] = 0.5; w[8] = 0.3; w[0] = 0.1
        #expect(kept(handCache(n: 12, window: [w]), TOVAPolicy(), .tokens(3)) == [4, 8, 11])
    }

    @Test func tovaDecidesForTheWholeLayerOrPerKVHead() {
        // KV head 0's queries look at slot 2 (0.9), head 1's at slot 6 (0.4) and a little at slot 2 (0.2).
        var w0 = [Float](repeating: 0, count: 10), w1 = w0
        w0[2] = 0.9; w0[6] = 0.0; w1[2] = 0.2; w1[6] = 0.4
        // Budget 2 = the last slot + one: layer mean (slot 2: 0.55, slot 6: 0.2) picks 2 for both heads;
        // per group, head 1 picks its own slot 6.
        let layer = handCache(n: 10, heads: 2, window: [w0, w1])
        #expect(kept(layer, TOVAPolicy(), .tokens(2), head: 0) == [2, 9])
        #expect(layer.slots(layer: 0, head: 1).map(\.position) == [2, 9])
        let group = handCache(n: 10, heads: 2, window: [w0, w1])
        #expect(kept(group, TOVAPolicy { $0.heads = .group }, .tokens(2), head: 0) == [2, 9])
        #expect(group.slots(layer: 0, head: 1).map(\.position) == [6, 9])
    }

    @Test func snapkvPoolsAroundAttendedTokensAndKeepsTheWindow() {
        var w = [Float](repeating: 0, count: 30)
        w[6] = 1  // one attended token; max pooling with kernel 3 spreads it to 5, 6, 7
        let p = SnapKVPolicy {
            $0.window = 4; $0.kernel = 3; $0.pool = .max
        }
        #expect(kept(handCache(n: 30, window: [w]), p, .tokens(7)) == [5, 6, 7, 26, 27, 28, 29])
    }

    @Test func pyramidkvBudgetsShrinkWithDepthAndAverageToTheUniformBudget() {
        let p = PyramidKVPolicy {
            $0.snap.window = 4; $0.beta = 20
        }
        let b = p.layerBudgets(uniform: [20, 20, 20], counts: [100, 100, 100])
        #expect(b == [35, 20, 5])  // B′ = 16: 4 + 31.2, 4 + 16, 4 + 0.8
        #expect(p.layerBudgets(uniform: [100, 100, 100], counts: [100, 100, 100]) == [100, 100, 100], "full budget falls back to uniform")
    }

    @Test func knormKeepsTheSmallestKeys() {
        let norms: [Float] = [5, 1, 4, 0.5, 3, 2]
        #expect(kept(handCache(n: 6, keyNorms: [norms]), KNormPolicy(), .tokens(3)) == [1, 3, 5])
    }

    @Test func randomIsSeeded() {
        let a = kept(handCache(n: 50), RandomPolicy { $0.seed = 1 }, .tokens(10))
        let b = kept(handCache(n: 50), RandomPolicy { $0.seed = 1 }, .tokens(10))
        let c = kept(handCache(n: 50), RandomPolicy { $0.seed = 2 }, .tokens(10))
        #expect(a == b && a != c && a.count == 10)
    }

    @Test func adakvGivesConcentratedHeadsLessAndSpreadHeadsMore() throws {
        // Head 0 attends to two tokens only; head 1 spreads its attention evenly.
        var w0 = [Float](repeating: 0, count: 40), w1 = [Float](repeating: 0.025, count: 40)
        w0[10] = 0.5; w0[20] = 0.5
        w1[39] = 0.025
        let cache = handCache(n: 40, heads: 2, window: [w0, w1])
        let policy = AdaKVPolicy {
            $0.base = SnapKVPolicy {
                $0.window = 1; $0.kernel = 1
            }; $0.floor = 0.2
        }
        try Compressor.compress(cache, policy: policy, budget: .tokens(10))
        let c0 = cache.count(layer: 0, head: 0), c1 = cache.count(layer: 0, head: 1)
        #expect(c0 + c1 == 20, "the layer's total budget is kept")
        #expect(c0 < 10 && c1 > 10, "head 0 \(c0), head 1 \(c1)")
        #expect(Set(cache.slots(layer: 0, head: 0).map(\.position)).isSuperset(of: [10, 20, 39]))
    }
}

/// A one-head cache whose rows are given in full (keys; values equal the keys unless given).
func rowCache(_ keys: [[Float]], values: [[Float]]? = nil) -> PagedKVCache {
    let hd = keys[0].count
    let cache = PagedKVCache(layers: 1, kvHeads: 1, headDim: hd, pageSize: 4)
    let pos = (0..<keys.count).map(Int32.init)
    cache.append(layer: 0, keys: keys.flatMap { $0 }, values: (values ?? keys).flatMap { $0 }, positions: pos, tokens: pos)
    cache.nextPosition = keys.count
    return cache
}

@Suite struct KVzipPolicyTests {
    /// Two layers × two KV heads of 10 tokens at positions `first`…, reconstruction scores set by hand.
    static func keptBy(_ scope: KVzipPolicy.Scope, first: Int32, budget: Int) throws -> [[Int32]] {
        var s = [[Float]](repeating: [Float](repeating: 0.01, count: Int(first) + 10), count: 4)
        func set(_ i: Int, _ p: Int, _ v: Float) { s[i][Int(first) + p] = v }
        set(0, 1, 0.9); set(0, 2, 0.8); set(0, 3, 0.7); set(0, 4, 0.6)
        for p in 0..<10 { set(1, p, 0.02); set(2, p, 0.03) }
        set(1, 5, 0.05); set(2, 0, 0.04); set(3, 7, 0.95); set(3, 8, 0.5)
        let cache = PagedKVCache(layers: 2, kvHeads: 2, headDim: 4, pageSize: 4)
        let pos = (first..<(first + 10)).map { $0 }, kv = [Float](repeating: 1, count: 10 * 2 * 4)
        for l in 0..<2 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
        cache.nextPosition = Int(first) + 10
        try Compressor.compress(
            cache, policy: KVzipPolicy { $0.scope = scope }, budget: .tokens(budget), context: CompressionContext(prepared: [KVzipPolicy.passKey: s]))
        return (0..<2).flatMap { l in (0..<2).map { cache.slots(layer: l, head: $0).map { $0.position - first } } }
    }

    /// Away from the sinks (positions 10…19), budget 2 per stream (8 in all): `global` gives every stream its
    /// best token (1, 5, 0, 7), then the 4 best scores anywhere (0.8, 0.7, 0.6 in stream (0,0), 0.5 in (1,1));
    /// `layer` pools each layer's 4; `head` keeps each stream's 2.
    @Test func kvzipRanksReconstructionScoresGloballyByLayerOrByHead() throws {
        #expect(try Self.keptBy(.global, first: 10, budget: 2) == [[1, 2, 3, 4], [5], [0], [7, 8]])
        #expect(try Self.keptBy(.layer, first: 10, budget: 2) == [[1, 2, 3], [5], [0, 9], [7, 8]])
        #expect(try Self.keptBy(.head, first: 10, budget: 2) == [[1, 2], [5, 9], [0, 9], [7, 8]])
    }

    /// The first 4 positions (attention sinks) are never evicted, as in kvpress's `KVzipPress`: with the
    /// streams at positions 0…9 and 5 per stream (20 in all), the 16 sinks go first, then the 4 best other
    /// scores anywhere (0.95 and 0.5 in stream (1,1), 0.6 in (0,0), 0.05 in (0,1)).
    @Test func kvzipKeepsTheSinks() throws {
        #expect(try Self.keptBy(.global, first: 0, budget: 5) == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 5], [0, 1, 2, 3], [0, 1, 2, 3, 7, 8]])
        #expect(try Self.keptBy(.head, first: 0, budget: 2) == [[0, 1], [0, 1], [0, 1], [0, 1]])
    }
}

@Suite struct FastKVzipPolicyTests {
    /// A small gate (hidden 8, 2 KV heads of 2 query heads) with every parameter set off zero, 12 rows.
    static func gate() -> (FastKVzipGate, [Float], [Float]) {
        var g = FastKVzipGate(hidden: 8, kvHeads: 2, group: 2, seed: 3)
        var rng = SplitMix64(seed: 9)
        func r(_ s: Float) -> Float { (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * s }
        g.setParameters(g.parameters.map { $0 + r(0.3) })
        let x = (0..<(12 * 8)).map { _ in r(2) }, y = (0..<(12 * 2)).map { _ in (r(1) + 1) / 2 }
        return (g, x, y)
    }

    /// The analytic gradient of the paper's loss equals central finite differences for parameters of every
    /// kind (projections, bias, norm weights, sink keys, logit bias).
    @Test func theGradientIsTheLossesDerivative() {
        let (g, x, y) = Self.gate()
        let analytic = x.withUnsafeBufferPointer { g.lossAndGradient($0.baseAddress!, y, rows: 12).gradient }
        let p0 = g.parameters
        let sizes = [g.wq.count, g.bq.count, g.wk.count, g.qNorm.count, g.kNorm.count, g.kBase.count, g.b.count]
        var start = 0, checked = 0
        for size in sizes {
            for i in stride(from: start, to: start + size, by: max(1, size / 5)) {
                func loss(_ d: Float) -> Double {
                    var q = g
                    var p = p0
                    p[i] += d
                    q.setParameters(p)
                    return x.withUnsafeBufferPointer { q.lossAndGradient($0.baseAddress!, y, rows: 12).loss }
                }
                let h: Float = 1e-2
                let numeric = (loss(h) - loss(-h)) / Double(2 * h)
                #expect(abs(numeric - Double(analytic[i])) <= 0.03 * abs(numeric) + 2e-4, "parameter \(i): numeric \(numeric), analytic \(analytic[i])")
                checked += 1
            }
            start += size
        }
        #expect(checked >= 30)
    }

    /// Training lowers the loss, and the score is 1 / (1 + Σ exp(sink − key)) averaged over the group: with the
    /// sink keys far above every key it is near 0, far below near 1.
    @Test func trainingLowersTheLossAndScoresAreSinkAttentionProbabilities() {
        var (g, x, y) = Self.gate()
        let before = x.withUnsafeBufferPointer { g.lossAndGradient($0.baseAddress!, y, rows: 12).loss }
        g.train(x: x, y: y, rows: 12, steps: 200, seed: 1, batch: 12)
        let after = x.withUnsafeBufferPointer { g.lossAndGradient($0.baseAddress!, y, rows: 12).loss }
        #expect(after < before * 0.9, "loss \(before) → \(after)")
        var low = g, high = g
        low.b = low.b.map { _ in -40 }; high.b = high.b.map { _ in 40 }
        let pl = x.withUnsafeBufferPointer { low.forward($0.baseAddress!, rows: 12).pred },
            ph = x.withUnsafeBufferPointer { high.forward($0.baseAddress!, rows: 12).pred }
        #expect(pl.allSatisfy { $0 < 1e-3 } && ph.allSatisfy { $0 > 0.999 })
    }

    /// The sinks and the last 2 % of the prompt score 1; the rest is ranked as kvzip ranks (globally).
    @Test func sinksAndTheLocalWindowAreKept() throws {
        let n = 100
        var tap = FastKVzipTap(key: FastKVzipPolicy().passKey, gates: FastKVzipGates(layers: [Self.gate().0], rows: 12))
        var rng = SplitMix64(seed: 5)
        let rows = (0..<(n * 8)).map { _ in Float(rng.next() >> 40) / Float(1 << 24) * 4 - 2 }
        rows.withUnsafeBufferPointer { tap.add(layer: 0, rows: $0.baseAddress!, width: 8, positions: (0..<Int32(n)).map { $0 }) }
        let cache = PagedKVCache(layers: 1, kvHeads: 2, headDim: 4, group: 2, pageSize: 4)
        let pos = (0..<Int32(n)).map { $0 }, kv = [Float](repeating: 1, count: n * 2 * 4)
        cache.append(layer: 0, keys: kv, values: kv, positions: pos, tokens: pos)
        cache.nextPosition = n
        try Compressor.compress(cache, policy: FastKVzipPolicy(), budget: .tokens(10), context: CompressionContext(prepared: [FastKVzipPolicy().passKey: tap]))
        let kept = (0..<2).map { cache.slots(layer: 0, head: $0).map(\.position) }
        #expect(kept.joined().count == 20)
        for h in 0..<2 { #expect([0, 1, 2, 3, 98, 99].allSatisfy(kept[h].contains), "head \(h) kept \(kept[h])") }
        // The other 8 slots are the highest gate scores of the two streams together.
        let rest = (0..<2).flatMap { h in (4..<98).map { (tap.scores[h][$0], h, Int32($0)) } }.sorted { $0.0 > $1.0 }.prefix(8)
        for (_, h, p) in rest { #expect(kept[h].contains(p)) }
    }
}

@Suite struct KVComposePolicyTests {
    /// Three layers × two KV heads of 6 tokens, re-read scores set by hand (group 1), budget 2 per stream
    /// (12 in all, 6 per KV head). Layer 2's heads agree on many strong tokens, layer 1 has few.
    static func keptBy(_ spec: String) throws -> [[Int32]] {
        let s: [[Float]] = [
            [0.9, 0.1, 0.15, 0.12, 0.11, 0.13], [0.1, 0.8, 0.14, 0.12, 0.11, 0.13],
            [0.2, 0.02, 0.03, 0.04, 0.05, 0.06], [0.03, 0.2, 0.02, 0.04, 0.05, 0.06],
            [0.7, 0.6, 0.5, 0.4, 0.01, 0.02], [0.01, 0.65, 0.55, 0.45, 0.35, 0.02],
        ]
        let cache = PagedKVCache(layers: 3, kvHeads: 2, headDim: 4, pageSize: 4)
        let pos = (0..<Int32(6)).map { $0 }, kv = [Float](repeating: 1, count: 6 * 2 * 4)
        for l in 0..<3 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
        cache.nextPosition = 6
        try Compressor.compress(
            cache, policy: try PolicyRegistry.shared.make(spec), budget: .tokens(2), context: CompressionContext(prepared: [KVComposePolicy.passKey: s]))
        return (0..<3).flatMap { l in (0..<2).map { cache.slots(layer: l, head: $0).map(\.position) } }
    }

    /// Structured, without the head mean: composite tokens per layer are the heads' sorted scores averaged
    /// rank by rank — layer 0 [.85, .145, .13, …], layer 1 [.2, .06, …], layer 2 [.675, .575, .475, …] — and
    /// layer 0's row is raised to the largest at each rank ([.85, .575, .475, …]). The best 6 composite tokens
    /// are 3 of layer 0 and 3 of layer 2; layer 1 earns none and keeps 1. Each head keeps that many of its own
    /// best. Unstructured: every stream's best, then the 6 best scores anywhere (all in layer 2).
    @Test func layersGetWhatTheirCompositeTokensEarnAndEveryHeadOfALayerKeepsAsMany() throws {
        #expect(try Self.keptBy("kvcompose:headmean=off") == [[0, 2, 5], [1, 2, 5], [0], [1], [0, 1, 2], [1, 2, 3]])
        #expect(try Self.keptBy("kvcompose:headmean=off,layout=unstructured") == [[0], [1], [0], [1], [0, 1, 2, 3], [1, 2, 3, 4]])
    }

    /// With the layer's mean over KV heads added (kvpress's default), a token one head of the layer favours
    /// counts for the other head too: layer 0's head 0 now keeps position 1 (head 1's best, 0.1 + 0.45)
    /// instead of 5, and head 1 keeps 0; the layer counts stay 3 / 1 / 3.
    @Test func theLayersHeadMeanIsAddedAtEachPosition() throws {
        #expect(try Self.keptBy("kvcompose") == [[0, 1, 2], [0, 1, 2], [0], [1], [0, 1, 2], [1, 2, 3]])
    }
}

@Suite struct KVzapPolicyTests {
    /// Linear heads `[kvHead][hidden]` with bias, applied to each layer's rows at their positions.
    @Test func theTapPredictsEachRowWithItsLayersLinearHeads() {
        let p = KVzapPredictor(layers: 2, kvHeads: 2, hidden: 3, weights: [[1, 0, 0, 0, 2, -1], [0, 0, 1, 1, 1, 1]], bias: [[0.5, 0], [0, -1]], rows: 0)
        var tap = KVzapTap(key: "k", predictor: p)
        let rows: [Float] = [1, 2, 3, 4, 5, 6]
        rows.withUnsafeBufferPointer { tap.add(layer: 1, rows: $0.baseAddress!, width: 3, positions: [2, 3]) }
        rows.withUnsafeBufferPointer { tap.add(layer: 0, rows: $0.baseAddress!, width: 3, positions: [0, 1]) }
        #expect(tap.scores[0] == [1.5, 4.5])  // layer 0, head 0: x₀ + 0.5
        #expect(tap.scores[1] == [1, 4])  // 2x₁ − x₂
        let unseen = -Float.greatestFiniteMagnitude
        #expect(tap.scores[2] == [unseen, unseen, 3, 6])  // layer 1, head 0: x₂, at positions 2 and 3
        #expect(tap.scores[3] == [unseen, unseen, 5, 14])  // x₀ + x₁ + x₂ − 1
        // A later row at a seen position replaces its prediction (a re-run prompt), others stay.
        let again: [Float] = [0, 0, 7]
        again.withUnsafeBufferPointer { tap.add(layer: 1, rows: $0.baseAddress!, width: 3, positions: [3]) }
        #expect(tap.scores[2] == [unseen, unseen, 3, 7])
    }

    /// With predictions ordered as `KVzipPolicyTests`' hand-set reconstruction scores (each stream's rows
    /// carry its score on its own head's weight), kvzap keeps exactly what kvzip keeps in every scope,
    /// sinks included: the selection is kvzip's, only the scores are predicted.
    @Test func predictionsAreRankedAsKVzipRanksItsScores() throws {
        for (scope, first, budget) in [(KVzipPolicy.Scope.global, Int32(10), 2), (.layer, 10, 2), (.head, 10, 2), (.global, 0, 5), (.head, 0, 2)] {
            var s = [[Float]](repeating: [Float](repeating: 0.01, count: Int(first) + 10), count: 4)
            func set(_ i: Int, _ p: Int, _ v: Float) { s[i][Int(first) + p] = v }
            set(0, 1, 0.9); set(0, 2, 0.8); set(0, 3, 0.7); set(0, 4, 0.6)
            for p in 0..<10 { set(1, p, 0.02); set(2, p, 0.03) }
            set(1, 5, 0.05); set(2, 0, 0.04); set(3, 7, 0.95); set(3, 8, 0.5)
            let predictor = KVzapPredictor(layers: 2, kvHeads: 2, hidden: 2, weights: [[1, 0, 0, 1], [1, 0, 0, 1]], bias: [[0, 0], [0, 0]], rows: 0)
            var tap = KVzapTap(key: KVzapPolicy().passKey, predictor: predictor)
            let pos = (first..<(first + 10)).map { $0 }
            for l in 0..<2 {
                let rows = pos.flatMap { p in [Foundation.log(s[l * 2][Int(p)]), Foundation.log(s[l * 2 + 1][Int(p)])] }
                rows.withUnsafeBufferPointer { tap.add(layer: l, rows: $0.baseAddress!, width: 2, positions: pos) }
            }
            let cache = PagedKVCache(layers: 2, kvHeads: 2, headDim: 4, pageSize: 4)
            let kv = [Float](repeating: 1, count: 10 * 2 * 4)
            for l in 0..<2 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
            cache.nextPosition = Int(first) + 10
            try Compressor.compress(
                cache, policy: KVzapPolicy { $0.scope = scope }, budget: .tokens(budget), context: CompressionContext(prepared: [KVzapPolicy().passKey: tap]))
            let kept = (0..<2).flatMap { l in (0..<2).map { cache.slots(layer: l, head: $0).map { $0.position - first } } }
            #expect(kept == (try KVzipPolicyTests.keptBy(scope, first: first, budget: budget)), "\(scope) \(first) \(budget)")
        }
    }

    /// The fit's solver: ridge normal equations solved by LAPACK recover a linear map from noisy rows
    /// (y₀ = 2x₀ − x₁ + 3, y₁ = x₂ − 1, noise ±0.01), and a singular system is reported, not trapped.
    @Test func ridgeNormalEquationsRecoverALinearMap() {
        var rng = SplitMix64(seed: 3)
        let n = 400, d = 3, m = 2
        var x = [Double](), y = [Double]()
        for _ in 0..<n {
            let r = (0..<d).map { _ in Double.random(in: -1...1, using: &rng) }
            x += r
            y += [2 * r[0] - r[1] + 3 + Double.random(in: -0.01...0.01, using: &rng), r[2] - 1 + Double.random(in: -0.01...0.01, using: &rng)]
        }
        // With a column of ones the intercept is a fourth weight (penalised by a negligible 1e-9 here).
        var xi = [Double]()
        for t in 0..<n { xi += x[(t * d)..<(t * d + d)]; xi.append(1) }
        var g = [Double](repeating: 0, count: 16), c = [Double](repeating: 0, count: 8)
        Ridge.accumulate(xi, y, rows: n, d: 4, m: m, gram: &g, cross: &c)
        for i in 0..<4 { g[i * 4 + i] += 1e-9 }
        #expect(Ridge.solve(&g, d: 4, &c, m: m))
        let expected: [Double] = [2, -1, 0, 3, 0, 0, 1, -1]
        #expect(zip(c, expected).allSatisfy { abs($0 - $1) < 0.01 }, "\(c)")
        var singular = [Double](repeating: 1, count: 4), b = [Double](repeating: 1, count: 2)
        #expect(!Ridge.solve(&singular, d: 2, &b, m: 1))
    }
}

@Suite struct DuoAttentionPolicyTests {
    /// Two layers × two KV heads of 20 tokens with retrieval scores 0.9, 0.1 / 0.5, 0.2; sinks 2 + recent 3.
    /// Budget 10 per stream (40 in all): every head streaming costs 20, the best head retrieving adds 15
    /// (35), the next would pass 40. Budget 3 (12 in all) is below all-streaming: windows shrink to 3.
    @Test func duoKeepsWholeStreamsForTheBestRetrievalHeadsWithinTheBudget() throws {
        func keptBy(_ budget: Budget) throws -> [[Int32]] {
            let cache = PagedKVCache(layers: 2, kvHeads: 2, headDim: 4, pageSize: 4)
            let pos = (0..<20).map(Int32.init), kv = [Float](repeating: 1, count: 20 * 2 * 4)
            for l in 0..<2 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
            cache.nextPosition = 20
            let policy = DuoAttentionPolicy {
                $0.sinks = 2; $0.recent = 3
            }
            try Compressor.compress(
                cache, policy: policy, budget: budget,
                context: CompressionContext(prepared: [DuoAttentionPolicy.passKey: [[0.9, 0.1], [0.5, 0.2]] as [[Float]]]))
            return (0..<2).flatMap { l in (0..<2).map { cache.slots(layer: l, head: $0).map(\.position) } }
        }
        let streaming: [Int32] = [0, 1, 17, 18, 19]
        #expect(try keptBy(.tokens(10)) == [Array(0..<20), streaming, streaming, streaming])
        #expect(try keptBy(.tokens(3)) == [[0, 1, 19], [0, 1, 19], [0, 1, 19], [0, 1, 19]])
        #expect(try keptBy(.fraction(1)) == Array(repeating: Array(0..<20), count: 4))
    }
}

@Suite struct ComposePolicyTests {
    /// `compose:streaming+kvzip` on one layer of two 10-token streams, budget 8 each (16): streaming spends
    /// half (its 4 sinks per stream), then KVzip ranks the 12 slots left across both streams by its
    /// reconstruction scores and takes the best 8.
    @Test func firstSpendsItsShareThenSecondRanksWhatIsLeft() throws {
        let cache = PagedKVCache(layers: 1, kvHeads: 2, headDim: 4, pageSize: 4)
        let pos = (0..<10).map(Int32.init), kv = [Float](repeating: 1, count: 10 * 2 * 4)
        cache.append(layer: 0, keys: kv, values: kv, positions: pos, tokens: pos)
        cache.nextPosition = 10
        var s0 = [Float](repeating: 0.01, count: 10), s1 = s0
        s0[5] = 0.9; s0[6] = 0.8
        for (slot, v) in [(7, 0.7), (8, 0.6), (9, 0.5), (4, 0.4), (5, 0.3), (6, 0.2)] as [(Int, Float)] { s1[slot] = v }
        let policy = try PolicyRegistry.shared.make("compose:streaming+kvzip")
        #expect(try PolicyRegistry.shared.parse("compose:streaming+kvzip").description == "compose:first=streaming,share=0.5,then=kvzip")
        try Compressor.compress(cache, policy: policy, budget: .tokens(8), context: CompressionContext(prepared: [KVzipPolicy.passKey: [s0, s1]]))
        #expect(cache.slots(layer: 0, head: 0).map(\.position) == [0, 1, 2, 3, 5, 6])
        #expect(cache.slots(layer: 0, head: 1).map(\.position) == Array(0..<10))
    }

    /// What `spec` keeps of one `n`-token stream whose observation windows (each of its size, ending at the
    /// last token) hold the given totals.
    static func kept(_ spec: String, n: Int, windows: [(size: Int, totals: [Float])], budget: Int) throws -> [Int32] {
        let cache = handCache(n: n)
        var obs = Observations(layers: 1, kvHeads: 1, group: 1, windowStart: nil)
        obs.restartWindows(windows.map { (size: $0.size, start: Int32(n - $0.size)) }, slots: [n])
        for (i, w) in windows.enumerated() { obs.statistics.set(obs.windows[i].key, stream: 0, w.totals) }
        cache.observations = obs
        return PoliciesTests.kept(cache, try PolicyRegistry.shared.make(spec), .tokens(budget))
    }

    /// The prefill taps SnapKV's 32-query window and TOVA's last query; inside
    /// `compose:first=snapkv,then=tova` TOVA ranks by its own last query, as it would alone, not by the
    /// 32 queries' totals (which would keep other slots).
    @Test func eachPartReadsTheStatisticsOfItsOwnSettings() throws {
        let last: [Float] = [0, 0, 0.5, 0, 0, 0, 0.2, 0, 0, 0.3, 0, 0], wide: [Float] = [0, 5, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0]
        func compressed(windows: [(size: Int, totals: [Float])]) throws -> [Int32] {
            try Self.kept("compose:first=snapkv,then=tova,share=0", n: 12, windows: windows, budget: 3)
        }
        let together = try compressed(windows: [(1, last), (32, wide)])
        #expect(together == [2, 6, 9])
        // Whatever SnapKV's window holds (it spends no share here), TOVA's choice is its own.
        #expect(together == (try compressed(windows: [(1, last), (32, wide.reversed())])))
        #expect(together != (try compressed(windows: [(1, wide), (32, wide)])))
    }

    /// The issue's case: in `compose:snapkv+rkv` (share 0: rkv spends the whole budget) rkv ranks by its own
    /// 8-query window — a spike at slot 5 there — not by SnapKV's 32 queries (a spike at slot 20).
    @Test func composeScoresRKVOnItsOwnEightQueryWindow() throws {
        var eight = [Float](repeating: 0.01, count: 40), wide = eight
        eight[5] = 1; wide[20] = 1
        func compressed(_ windows: [(size: Int, totals: [Float])]) throws -> [Int32] {
            try Self.kept("compose:first=snapkv,then=rkv,share=0", n: 40, windows: windows, budget: 3)
        }
        let together = try compressed([(8, eight), (32, wide)])
        #expect(together.allSatisfy { (2...8).contains($0) }, "\(together)")
        #expect(together == (try compressed([(8, eight), (32, wide.reversed())])))
        #expect(try compressed([(8, wide), (32, wide)]).allSatisfy { (17...23).contains($0) })
    }

    /// A part is any registered policy that frees tokens (a plug-in's too: the plug-in example's test);
    /// wrappers, `full` and read-side policies are refused, naming what is accepted.
    @Test func partsAreRegisteredPoliciesThatFreeTokens() throws {
        let registry = PolicyRegistry.shared
        #expect(PolicyName.accepted.contains("kvzip") && PolicyName.accepted.contains("expected-attention"))
        for bad in ["full", "quest", "compose", "adakv"] { #expect(!PolicyName.accepted.contains(bad)) }
        let ada = try registry.make("adakv:base=keydiff") as! AdaKVPolicy
        #expect(ada.base.name == "keydiff")
        for spec in ["compose:first=quest,then=kvzip", "adakv:base=compose", "compose:first=nope,then=kvzip"] {
            #expect(throws: PolicyError.self) { try registry.make(spec) }
        }
        // Set by a Swift initializer, the same check runs before anything is compressed.
        let bad = ComposePolicy { $0.then = "nope" }
        #expect(throws: PolicyError.self) { try Compressor.compress(handCache(n: 12), policy: bad, budget: .tokens(4)) }
    }
}

@Suite struct KeyOnlyPolicyTests {
    /// Twelve keys point along the first axis (lengths vary, cosine 1 with the mean direction); three
    /// point elsewhere. KeyDiff keeps the three, whatever their length; knorm would keep the shortest.
    @Test func keydiffKeepsTheKeysLeastLikeTheMeanKey() throws {
        var keys = (0..<15).map { i -> [Float] in [Float(1 + i % 4), 0.05 * Float(i % 3), 0, 0] }
        keys[3] = [0, 2, 0, 0]; keys[8] = [0, 0, 3, 0]; keys[12] = [-1, 0, 0, 1]
        #expect(kept(rowCache(keys), KeyDiffPolicy(), .tokens(3)) == [3, 8, 12])
    }

    /// CurDKV's local leverage: squared key and value norms, each divided by its window's sum. Windows of
    /// 4: tokens 0–3 have ‖k‖² = 100, 100, 100, 400 and tokens 4–7 1, 1, 1, 4, so tokens 3 and 7 lead
    /// their windows alike (4/7 each, squared in the product) though token 7's raw norm is the smallest
    /// but three; token 0 is the sink. `leverage=value` ranks by the values alone.
    @Test func curRanksLeverageWithinEachWindow() throws {
        let keys: [[Float]] = [[10, 0], [10, 0], [10, 0], [20, 0], [1, 0], [1, 0], [1, 0], [2, 0]]
        let p = CURPolicy {
            $0.window = 4; $0.sinks = 1
        }
        #expect(kept(rowCache(keys), p, .tokens(3)) == [0, 3, 7])
        var values = keys.map { _ in [Float](repeating: 1, count: 2) }
        values[1] = [3, 0]; values[5] = [0, 2]
        #expect(
            kept(
                rowCache(keys, values: values),
                CURPolicy {
                    $0.window = 4; $0.sinks = 1; $0.leverage = .value
                }, .tokens(3)) == [0, 1, 5])
        // The product weighs both: token 1 (value 9/15, key 1/7) beats token 3 (2/15, 4/7); token 7 (key
        // 4/7, value 1/5) beats token 5 (1/7, 2/5).
        #expect(kept(rowCache(keys, values: values), p, .tokens(3)) == [0, 1, 7])
    }

    /// Sinks 2, lag 4, 14 tokens: partitions [2,6) and [6,10) are scored against the next one, [10,14)
    /// is the kept tail. In [2,6) token 4 departs most from [6,10)'s range (its channels straddle it: the
    /// largest spread); in [6,10), token 7. One token per partition plus sinks and tail fills budget 8.
    @Test func lagkvKeepsSinksTailAndEachPartitionsMostDepartingToken() throws {
        var keys = [[Float]](repeating: [0.5, 0.5, 0.5, 0.5], count: 14)
        for i in 6..<14 { keys[i] = [Float(i % 2), Float((i + 1) % 2), 0.5, 0.5] }  // range [0, 1] in every channel
        keys[4] = [-3, 4, 0.5, 0.5]; keys[7] = [0.5, 2.5, -2, 0.5]
        let p = LagKVPolicy {
            $0.sinks = 2; $0.lag = 4
        }
        #expect(kept(rowCache(keys), p, .tokens(8)) == [0, 1, 4, 7, 10, 11, 12, 13])
        // Too short to compare two partitions: the sinks and the most recent tokens, as streaming.
        #expect(kept(rowCache(Array(keys.prefix(9))), p, .tokens(5)) == [0, 1, 6, 7, 8])
    }
}

@Suite struct PolicyConformanceTests {
    @Test(arguments: PolicyRegistry.shared.names)
    func everyRegisteredPolicyConforms(name: String) throws {
        let policy = try PolicyRegistry.shared.make(name)
        let failures = PolicyConformance.check(policy)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}

@Suite struct RegistryTests {
    let r = PolicyRegistry.shared

    @Test func parsesTypedParameters() throws {
        let s = try r.parse("snapkv:window=16,kernel=5,pool=avg")
        #expect(s.parameters.int("window") == 16 && s.parameters.int("kernel") == 5 && s.parameters.string("pool") == "avg")
        #expect(s.parameters.string("gqa") == "mean", "defaults filled in")
        let p = try r.make(s) as! SnapKVPolicy
        #expect(p.window == 16 && p.kernel == 5 && p.pool == .avg)
        #expect(try r.parse("h2o").description == "h2o:gqa=mean,recent=0.5")
    }

    @Test func rejectsBadSpecsWithOneLineListingWhatIsAccepted() {
        func message(_ text: String) -> String {
            do { _ = try r.make(text); return "" } catch { return "\(error)" }
        }
        #expect(message("nope").contains("accepted: full, random, streaming"))
        #expect(message("snapkv:windw=3").contains("accepted: window, kernel, pool, gqa"))
        #expect(message("snapkv:window=0").contains("expected an integer in 1...4096"))
        #expect(message("snapkv:kernel=4").contains("odd"))
        #expect(message("h2o:gqa=median").contains("one of mean, max"))
        #expect(message("h2o:recent").contains("NAME:param=value"))
        #expect(message("adakv:base=full").contains("one of random, streaming, h2o"))
        for m in [message("nope"), message("snapkv:windw=3")] { #expect(!m.contains("\n")) }
    }

    @Test func parametersAreDeclaredOnceAndCheckedWhicheverWayAPolicyIsBuilt() throws {
        // The Swift initializer path goes through the same check as the command line.
        let cache = PolicyConformance.randomCache(seed: 1, group: 2)
        #expect(throws: PolicyError.badValue(policy: "snapkv", name: "kernel", value: "4", expected: "an odd integer in 1...63")) {
            try Compressor.compress(cache, policy: SnapKVPolicy { $0.kernel = 4 }, budget: .fraction(0.5))
        }
        #expect(cache.count(layer: 0, head: 0) == PolicyConformance.randomCache(seed: 1, group: 2).count(layer: 0, head: 0), "nothing was evicted")
        #expect(throws: PolicyError.self) { try Compressor.compress(cache, policy: ChunkKVPolicy { $0.scoring.window = 0 }, budget: .fraction(0.5)) }
        #expect(throws: PolicyError.self) { try Compressor.compress(cache, policy: H2OPolicy { $0.recent = 1.5 }, budget: .fraction(0.5)) }
        // A spec and the initializer give the same policy; the declaration's defaults are the registry's.
        let fromSpec = try r.make("chunkkv:chunk=20,window=64,kernel=5") as! ChunkKVPolicy
        let fromSwift = ChunkKVPolicy {
            $0.chunk = 20; $0.scoring.window = 64; $0.scoring.kernel = 5
        }
        #expect(fromSpec.parameterValues == fromSwift.parameterValues)
        #expect(fromSpec.parameterValues == (try r.parse("chunkkv:chunk=20,window=64,kernel=5")).parameters.values)
        for info in r.all {
            let made = try r.make(info.name)
            guard let c = made as? any Configurable else { Issue.record("\(info.name) declares no parameters"); continue }
            #expect(c.parameterValues == Dictionary(uniqueKeysWithValues: info.parameters.map { ($0.name, $0.defaultValue) }), "\(info.name)")
        }
        // Summary labels (summary.csv's policy column) are unchanged by the declarations.
        #expect(try r.parse("snapkv").description == "snapkv:gqa=mean,kernel=7,pool=max,window=32")
        #expect(try r.parse("pyramidkv").description == "pyramidkv:beta=20,gqa=mean,kernel=7,pool=max,window=32")
        #expect(try r.parse("quest").description == "quest:dense_layers=2,prefill=dense,recent=1,sinks=1")
        // Codec settings are declared the same way.
        #expect(throws: PolicyError.self) { try CodecRegistry.shared.make("kivi2:group=1") }
        #expect(try CodecRegistry.shared.make("kivi4:residual=64")?.name == "kivi4:residual=64")
        #expect(CodecRegistry.shared.entry("kivi2")?.parameters.map(\.defaultValue) == ["32", "128"])
    }

    @Test func budgets() throws {
        #expect(try Budget(parsing: "0.25") == .fraction(0.25))
        #expect(try Budget(parsing: "256") == .tokens(256))
        #expect(try Budget(parsing: "1.0").isFull)
        for bad in ["0", "0.0", "-0.5", "1.5", "-3", "abc", "nan", ""] {
            #expect(throws: PolicyError.badBudget(bad)) { try Budget(parsing: bad) }
        }
        #expect(Budget.fraction(0.25).tokens(for: 10) == 3 && Budget.tokens(256).tokens(for: 10) == 10)
    }
}

@Suite struct RetentionPolicyTests {
    /// A 10-token needle whose tokens the window attends to unevenly, among scattered mid-scoring tokens:
    /// token-level snapkv keeps half of it; chunkkv at the same budget keeps it whole.
    @Test func snapkvFragmentsANeedleThatChunkkvKeepsWhole() {
        var w = [Float](repeating: 0, count: 60)
        for i in 20..<30 { w[i] = i % 2 == 0 ? 0.9 : 0.05 }
        for i in [3, 8, 13, 33, 38, 43, 48] { w[i] = 0.3 }
        let needle = Set(Int32(20)..<30)
        let snap = SnapKVPolicy {
            $0.window = 4; $0.kernel = 1
        }
        let snapKept = Set(kept(handCache(n: 60, window: [w]), snap, .tokens(14)))
        let chunkKept = Set(
            kept(
                handCache(n: 60, window: [w]),
                ChunkKVPolicy {
                    $0.chunk = 10; $0.scoring = snap
                }, .tokens(14)))
        #expect(snapKept.intersection(needle).count == 5, "snapkv keeps the 5 high tokens only: \(snapKept.sorted())")
        #expect(chunkKept == needle.union(56..<60), "chunkkv keeps the needle chunk and the window: \(chunkKept.sorted())")
        #expect(snapKept.count == 14 && chunkKept.count == 14, "same budget")
    }

    /// Sentences [0,10) [10,15) [15,30) [30,36) [36,40) with self-information set by hand: `selective`
    /// keeps the sinks, the recent window, then the sentence carrying the most information (by sum: the
    /// long one with a surprising run; by mean: the short, uniformly surprising one), never part of one.
    @Test func selectiveKeepsTheMostInformativeSentences() {
        var info = [Float](repeating: 0.5, count: 40)
        for i in 10..<15 { info[i] = 3 }  // short, all surprising: mean 3, sum 15
        for i in 18..<26 { info[i] = 4 }  // long sentence [15,30): sum 4·8 + 0.5·7 = 35.5, mean 2.4
        let ends: Set<Int32> = [9, 14, 29, 35]
        // Token text and self-information travel in the compression context, not in the cache.
        let context = CompressionContext(tokenText: { ends.contains($0) ? "." : " w" }, selfInformation: info)
        let sum = SelectiveContextPolicy {
            $0.by = .sum; $0.sinks = 2; $0.window = 3
        }
        #expect(sum.needs == ObservationNeeds(selfInformation: true))
        #expect(kept(handCache(n: 40), sum, .tokens(20), context: context) == [0, 1] + Array(15..<30) + [37, 38, 39])
        let mean = SelectiveContextPolicy {
            $0.by = .mean; $0.sinks = 2; $0.window = 3
        }
        #expect(kept(handCache(n: 40), mean, .tokens(10), context: context) == [0, 1] + Array(10..<15) + [37, 38, 39])
    }

    @Test func sentencesEndAtPunctuationAndNewlines() {
        for t in [".", " end.", "?\"", "!)", "\n", " a\n\n"] { #expect(SentenceSpans.endsSentence(t), "\(t)") }
        for t in ["word", " 3", ",", ".5x"] { #expect(!SentenceSpans.endsSentence(t), "\(t)") }
    }

    /// Sentences [0,10) [10,15) [15,30) [30,36) [36,40): the short, sharply attended one is kept whole by
    /// mean; a long sentence with one hot token is not.
    @Test func sentencekvKeepsWholeSentences() {
        var w = [Float](repeating: 0, count: 40)
        for i in 10..<15 { w[i] = 0.5 }
        w[20] = 0.9
        let ends: Set<Int32> = [9, 14, 29, 35]
        func cache() -> PagedKVCache { handCache(n: 40, window: [w]) }
        let context = CompressionContext(tokenText: { ends.contains($0) ? "." : " w" })
        let p = SentenceKVPolicy {
            $0.by = .mean; $0.maxLength = 48;
            $0.scoring = SnapKVPolicy {
                $0.window = 4; $0.kernel = 1
            }
        }
        #expect(kept(cache(), p, .tokens(9), context: context) == Array(10..<15) + Array(36..<40))
        // A maximum span length cuts the long sentence: [15,20) [20,25) … so the hot token's piece competes.
        let short = SentenceKVPolicy {
            $0.by = .sum; $0.maxLength = 5;
            $0.scoring = SnapKVPolicy {
                $0.window = 4; $0.kernel = 1
            }
        }
        let expected: [Int32] = [10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 36, 37, 38, 39]
        #expect(kept(cache(), short, .tokens(14), context: context) == expected)
    }

    @Test func keepSpansFillsTheBudgetExactly() {
        let c = handCache(n: 30)
        let v = Compressor.view(c, layer: 0, head: 0, seed: 0)
        let scores = (0..<30).map { Float($0 % 7) }
        for b in [0, 1, 5, 9, 13, 29, 30] {
            let k = keepSpans(v, spans: FixedChunks(size: 4).spans(v), tokenScores: scores, by: .sum, budget: b, pinned: [29])
            #expect(k.count == b && k == k.sorted() && (b == 0 || k.contains(29)), "budget \(b): \(k)")
        }
    }

    /// Layer-wise index reuse: layers 1 and 2 keep exactly the positions layer 0 chose.
    @Test func chunkkvReusesTheSelectionOfTheFirstLayerOfEachGroup() throws {
        let cache = PolicyConformance.randomCache(seed: 3, group: 2)
        let reuse = try Compressor.plan(
            cache,
            policy: ChunkKVPolicy {
                $0.reuse = 3; $0.scoring.window = 4
            }, budget: .fraction(0.3))
        let own = try Compressor.plan(
            cache,
            policy: ChunkKVPolicy {
                $0.reuse = 1; $0.scoring.window = 4
            }, budget: .fraction(0.3))
        func positions(_ plan: Compressor.Plan, _ l: Int, _ h: Int) -> [Int32] { plan.keep[l][h].map { cache.slots(layer: l, head: h)[$0].position } }
        for h in 0..<cache.kvHeads {
            for l in 1..<3 { #expect(Set(positions(reuse, l, h)).isSubset(of: Set(positions(reuse, 0, h))) && !positions(reuse, l, h).isEmpty) }
            #expect(positions(reuse, 0, h) == positions(own, 0, h))
        }
        #expect(
            (1..<3).contains { l in (0..<cache.kvHeads).contains { positions(own, l, $0) != positions(reuse, l, $0) } },
            "without reuse, later layers choose for themselves")
    }

    /// Quest keeps every token and reads the sink page, the newest page and the page whose key bound is highest.
    @Test func questReadsThePagesWithTheHighestKeyBound() throws {
        var norms = [Float](repeating: 1, count: 32)
        norms[21] = 50  // page 5 (pages of 4)
        let c = handCache(n: 32, keyNorms: [norms])
        let compression = try Compressor.compress(c, policy: QuestPolicy { $0.denseLayers = 0 }, budget: .tokens(12))
        #expect(c.totalSlots == 32, "nothing evicted")
        let sel = try #require(compression.reads as? QuestSelector)
        let q: [Float] = [1, 0, 0, 0]
        #expect(sel.select(layer: 0, head: 0, pageCount: 8, q: q, rows: 1, tokens: 1) == [0, 5, 7])
        #expect(sel.select(layer: 0, head: 0, pageCount: 8, q: q, rows: 1, tokens: 3) == Array(0..<8), "a multi-token block reads densely")
        #expect(abs(sel.readFraction - 11.0 / 16) < 1e-12)
    }
}

/// Expected Attention on caches a reader can score by hand: head size 2, one KV head, one query head.
@Suite struct ExpectedAttentionTests {
    /// Keys and values as (x, y) pairs, and the queries the model saw before RoPE.
    func cache(keys: [(Float, Float)], values: [(Float, Float)], queries: [(Float, Float)], rope: [Double] = []) -> PagedKVCache {
        let n = keys.count
        let c = PagedKVCache(layers: 1, kvHeads: 1, headDim: 2, pageSize: 4)
        let pos = (0..<n).map(Int32.init)
        c.append(layer: 0, keys: keys.flatMap { [$0.0, $0.1] }, values: values.flatMap { [$0.0, $0.1] }, positions: pos, tokens: pos)
        c.nextPosition = n
        var m = QueryMoments(layers: 1, heads: 1, headDim: 2, from: 0, rope: RoPEInfo(frequencies: rope))
        let q = queries.flatMap { [$0.0, $0.1] }
        q.withUnsafeBufferPointer { m.add(layer: 0, q: $0.baseAddress!, positions: (0..<queries.count).map(Int32.init)) }
        var obs = Observations(layers: 1, kvHeads: 1, group: 1, windowStart: nil)
        obs.queries = m
        c.observations = obs
        return c
    }

    @Test func keysAlongTheMeanQueryWinUnlessTheirValueIsSmall() {
        // Every query is (1, 0): a key's score is softmax(x/√2) · |v|. Slot 0 is the sink.
        let keys: [(Float, Float)] = [(0, 0), (1, 0), (5, 0), (2, 0), (4, 0), (3, 0)]
        let values: [(Float, Float)] = [(1, 0), (1, 0), (0.01, 0), (1, 0), (1, 0), (1, 0)]
        let q: [(Float, Float)] = [(1, 0), (1, 0)]
        // With value norms: slot 2 (x = 5) has a tiny value: e^3.54·0.01 < e^2.12 (slot 5), so 4 and 5 stay.
        let p = ExpectedAttentionPolicy { $0.sinks = 1 }
        #expect(kept(cache(keys: keys, values: values, queries: q), p, .tokens(3)) == [0, 4, 5])
        #expect(
            kept(
                cache(keys: keys, values: values, queries: q),
                ExpectedAttentionPolicy {
                    $0.sinks = 1; $0.vnorm = .off
                }, .tokens(3)) == [0, 2, 4])
    }

    @Test func theQueriesSpreadCountsWithTheCovariance() {
        // Queries (1, ±3): mean (1, 0), variance 9 along y. Key (0, 2): mean term 0, covariance term
        // kᵀΣk/(2d) = 9·4/4 = 9; key (3, 0): 3/√2 ≈ 2.1 and no covariance term.
        let keys: [(Float, Float)] = [(0, 2), (3, 0), (0, 0), (0, 0)]
        let values = [(Float, Float)](repeating: (1, 0), count: 4)
        let q: [(Float, Float)] = [(1, 3), (1, -3)]
        #expect(kept(cache(keys: keys, values: values, queries: q), ExpectedAttentionPolicy { $0.sinks = 0 }, .tokens(1)) == [0])
        #expect(
            kept(
                cache(keys: keys, values: values, queries: q),
                ExpectedAttentionPolicy {
                    $0.sinks = 0; $0.covariance = .off
                }, .tokens(1)) == [1])
    }

    @Test func theMeanQueryIsRotatedToTheNextPositions() {
        // One rotated pair with frequency π/8; 4 tokens, so the next position is 4 and its angle π/2:
        // averaged over one future position the mean query (1, 0) becomes (0, 1), which favours key (0, 2).
        let keys: [(Float, Float)] = [(0, 2), (2, 0), (0, 0), (0, 0)]
        let values = [(Float, Float)](repeating: (1, 0), count: 4)
        let q: [(Float, Float)] = [(1, 0), (1, 0)]
        let rotated = cache(keys: keys, values: values, queries: q, rope: [Double.pi / 8])
        #expect(
            kept(
                rotated,
                ExpectedAttentionPolicy {
                    $0.sinks = 0; $0.future = 1
                }, .tokens(1)) == [0])
        #expect(
            kept(
                cache(keys: keys, values: values, queries: q),
                ExpectedAttentionPolicy {
                    $0.sinks = 0; $0.future = 1
                }, .tokens(1)) == [1])
    }
}

@Suite struct RKVPolicyTests {
    /// Ten 5-dimensional keys: 0–5 are copies of one direction, 6 and 7 point elsewhere, 8–9 are the window
    /// (always kept). Redundancy: a copy's row sums 5 (its five twins) minus its latest twin's 1, over 10
    /// tokens: 0.4; a distinct key 0; softmax → 0.1152 for a copy, 0.0772 otherwise.
    /// - λ = 0.5, the window's attention uniform (0.1 a token): redundancy decides, the two distinct keys stay.
    /// - λ = 0.07 (the paper's), attention 0.9 on copy 1 and 0.1/9 elsewhere: copy 1 scores 0.07·0.9 −
    ///   0.93·0.1152 = −0.044, the distinct keys 0.07·0.011 − 0.93·0.0772 = −0.071, the other copies −0.106.
    @Test func rkvKeepsImportantTokensAndDropsRedundantOnes() throws {
        var keys = (0..<10).map { _ in [Float](repeating: 0, count: 5) }
        for i in 0..<6 { keys[i][0] = Float(1 + i) }
        keys[6][1] = 1; keys[7][2] = 2; keys[8][3] = 1; keys[9][4] = 1
        func cache(attention: [Float]) -> PagedKVCache {
            let c = rowCache(keys)
            var obs = Observations(layers: 1, kvHeads: 1, group: 1, windowStart: 0)
            obs.window = [attention]
            c.observations = obs
            return c
        }
        let uniform = [Float](repeating: 0.1, count: 10)
        #expect(
            kept(
                cache(attention: uniform),
                RKVPolicy {
                    $0.window = 2; $0.kernel = 1; $0.lambda = 0.5
                }, .tokens(4)) == [6, 7, 8, 9])
        var focused = [Float](repeating: 0.1 / 9, count: 10)
        focused[1] = 0.9
        #expect(
            kept(
                cache(attention: focused),
                RKVPolicy {
                    $0.window = 2; $0.kernel = 1
                }, .tokens(5)) == [1, 6, 7, 8, 9])
        // Importance alone (λ = 1) is SnapKV's choice without pooling: the attended copy, then the latest ties.
        #expect(
            kept(
                cache(attention: focused),
                RKVPolicy {
                    $0.window = 2; $0.kernel = 1; $0.lambda = 1
                }, .tokens(3)) == [1, 8, 9])
        // The redundancy term on its own, against the arithmetic above.
        let r = RKVPolicy.redundancy(Compressor.view(rowCache(keys), layer: 0, head: 0, seed: 0), threshold: 0.5)
        #expect(abs(r[0] - 0.11519) < 1e-4 && abs(r[6] - 0.07721) < 1e-4 && abs(r.reduce(0, +) - 1) < 1e-5)
    }
}

@Suite struct CriticalKVPolicyTests {
    /// A model pass whose W_o is set by hand: 2 query heads of width 2 on one KV head, hidden width 2;
    /// head 0's columns are the identity, head 1's twice the identity.
    struct HandModel: ModelPass {
        var layers: Int { 1 }; var kvHeads: Int { 1 }; var heads: Int { 2 }; var contextLength: Int { 64 }
        var hidden: Int { 2 }; var headDim: Int { 2 }
        var rope: RoPEInfo { RoPEInfo(frequencies: [1]) }
        var identity: (file: String, arithmetic: String) { ("hand", "") }
        var home: String? { nil }
        func encode(_ text: String, addBOS: Bool) -> [Int32] { [] }
        var opening: String { "" }; var userToAssistant: String { "" }
        func makeCache() -> PagedKVCache { PagedKVCache(layers: 1, kvHeads: 1, headDim: 2, group: 2, pageSize: 4) }
        func forward(_ tokens: [Int32], cache: PagedKVCache) throws {}
        func needleCase(length: Int, depth: Double, sample: Int) -> (prompt: [Int32], question: Int, needle: Range<Int32>)? { nil }
        func outputProjection(layer: Int) -> [Float] {
            [
                1, 0, 2, 0,
                0, 1, 0, 2,
            ]
        }
    }

    /// Values (1, 0), (0, 1), (1, −1): through head 0 their L1 norms are 1, 1, 2, through head 1 twice
    /// that; the group's mean is 1.5, 1.5, 3.
    @Test func projectedNormsAreTheValuesL1NormThroughEachHeadsColumnsOfWo() throws {
        let m = HandModel(), cache = m.makeCache()
        cache.append(layer: 0, keys: [Float](repeating: 1, count: 6), values: [1, 0, 0, 1, 1, -1], positions: [0, 1, 2], tokens: [5, 6, 7])
        cache.nextPosition = 3
        #expect(CriticalKVPolicy.projectedNorms(model: m, cache: cache) == [[1.5, 1.5, 3]])
    }

    /// Ten tokens whose key norms are 1…10 (`knorm` keeps the smallest first), projected norms 1 except
    /// 0.1 at slot 5 and 0.01 at slot 7; budget 4, first 0.5: the first stage keeps knorm's best two (0, 1),
    /// the second ranks (−‖k‖ + ε) · norm: slot 7 (−0.08), slot 5 (−0.6) before slot 2 (−3). Plain knorm keeps 0…3.
    @Test func firstStageByTheBaseThenReweightedByTheProjectedNorm() throws {
        func kept(_ policy: any EvictionPolicy) throws -> [Int32] {
            let cache = PagedKVCache(layers: 1, kvHeads: 1, headDim: 2, pageSize: 4)
            let keys: [Float] = (0..<10).flatMap { [Float($0 + 1), 0] as [Float] }
            cache.append(layer: 0, keys: keys, values: keys, positions: (0..<10).map(Int32.init), tokens: (0..<10).map(Int32.init))
            cache.nextPosition = 10
            var norms = [Float](repeating: 1, count: 10)
            norms[5] = 0.1; norms[7] = 0.01
            try Compressor.compress(cache, policy: policy, budget: .tokens(4), context: CompressionContext(prepared: [CriticalKVPolicy.passKey: [norms]]))
            return cache.slots(layer: 0, head: 0).map(\.position)
        }
        #expect(try kept(PolicyRegistry.shared.make("criticalkv:base=knorm")) == [0, 1, 5, 7])
        #expect(try kept(PolicyRegistry.shared.make("criticalkv:base=knorm,first=1")) == [0, 1, 2, 3])
        #expect(try kept(KNormPolicy()) == [0, 1, 2, 3])
    }
}

@Suite struct LeveragePolicyTests {
    /// Keys (1, 0), (−1, 0), (2, 0), (−2, 0), (0, 1), rotated by RoPE at their positions with `frequency`.
    static func view(frequency: Double) -> StreamView {
        let raw: [[Float]] = [[1, 0], [-1, 0], [2, 0], [-2, 0], [0, 1]]
        let keys = raw.enumerated().flatMap { p, k -> [Float] in
            let a = Double(p) * frequency, c = Float(cos(a)), s = Float(sin(a))
            return [k[0] * c - k[1] * s, k[0] * s + k[1] * c]
        }
        let cache = PagedKVCache(layers: 1, kvHeads: 1, headDim: 2, pageSize: 4)
        cache.append(layer: 0, keys: keys, values: keys, positions: [0, 1, 2, 3, 4], tokens: [0, 1, 2, 3, 4])
        cache.nextPosition = 5
        return Compressor.view(
            cache, layer: 0, head: 0, seed: 0, context: CompressionContext(prepared: [PolicyPass.rope.key: RoPEInfo(frequencies: [frequency])]))
    }

    /// Centred, the keys are (1, −.2), (−1, −.2), (2, −.2), (−2, −.2), (0, .8); XᵀX + 0.01·I = diag(10.01, 0.81), so the
    /// leverages are x²/10.01 + y²/0.81: 0.149, 0.149, 0.449, 0.449 and 0.790 for the one key off the line;
    /// the same whatever rotation RoPE applied (the keys are read before it).
    /// `LeveragePolicy.leverage` as it was written first, on Swift arrays: the plain reference its pointer version
    /// must equal bit for bit.
    static func leverageReference(_ s: StreamView, slots: Range<Int>, rope: RoPEInfo, sketch: Int) -> [Float] {
        let ridge = LeveragePolicy.ridge, gaussian = LeveragePolicy.gaussian
        let r = rope.layer(s.layer), d = s.headDim, n = slots.count
        guard n > 0 else { return [] }
        var x = [Double](repeating: 0, count: n * d)
        for (i, slot) in slots.enumerated() {
            let k = r.unrotate(s.key(slot), position: s.positions[slot])
            for j in 0..<d { x[i * d + j] = Double(k[j]) }
        }
        // Centre over the sequence (kvpress: key_states − mean over the tokens).
        for j in 0..<d {
            var m = 0.0
            for i in 0..<n { m += x[i * d + j] }
            m /= Double(n)
            for i in 0..<n { x[i * d + j] -= m }
        }
        var k = d
        if sketch > 0 {
            // X · Φ with Φ [d][sketch] Gaussian / √sketch, seeded per stream.
            var rng = SplitMix64(seed: s.seed)
            let phi = (0..<(d * sketch)).map { _ in gaussian(&rng) / Double(sketch).squareRoot() }
            var y = [Double](repeating: 0, count: n * sketch)
            for i in 0..<n {
                for a in 0..<d where x[i * d + a] != 0 {
                    let v = x[i * d + a]
                    for b in 0..<sketch { y[i * sketch + b] += v * phi[a * sketch + b] }
                }
            }
            x = y
            k = sketch
        }
        // G = XᵀX + λI, its Cholesky factor L; score_i = ‖L⁻¹ xᵢ‖².
        var g = [Double](repeating: 0, count: k * k)
        for i in 0..<n {
            for a in 0..<k where x[i * k + a] != 0 {
                let v = x[i * k + a]
                for b in 0...a { g[a * k + b] += v * x[i * k + b] }
            }
        }
        for a in 0..<k { g[a * k + a] += ridge }
        var l = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in 0...a {
                var sum = g[a * k + b]
                for c in 0..<b { sum -= l[a * k + c] * l[b * k + c] }
                l[a * k + b] = a == b ? Swift.max(sum, 1e-12).squareRoot() : sum / l[b * k + b]
            }
        }
        return (0..<n).map { i in
            var y = [Double](repeating: 0, count: k), total = 0.0
            for a in 0..<k {
                var sum = x[i * k + a]
                for c in 0..<a { sum -= l[a * k + c] * y[c] }
                y[a] = sum / l[a * k + a]
                total += y[a] * y[a]
            }
            return Float(total)
        }
    }

    /// The pointer version equals the array version bit for bit on random keys (64 dimensions, 300 tokens, two
    /// RoPE frequencies), exact and sketched, and on a sub-range of slots (Compactor's chunks).
    @Test func leverageEqualsItsArrayVersion() {
        var rng = SplitMix64(seed: 61)
        let d = 64, n = 300
        let cache = PagedKVCache(layers: 1, kvHeads: 1, headDim: d, pageSize: 16)
        let keys = (0..<(n * d)).map { _ in Float.random(in: -2...2, using: &rng) }
        cache.append(layer: 0, keys: keys, values: keys, positions: (0..<n).map { Int32($0) }, tokens: (0..<n).map { Int32($0) })
        cache.nextPosition = n
        let rope = RoPEInfo(frequencies: (0..<(d / 2)).map { pow(10_000, -2 * Double($0) / Double(d)) })
        let v = Compressor.view(cache, layer: 0, head: 0, seed: 3, context: CompressionContext(prepared: [PolicyPass.rope.key: rope]))
        for (slots, sketch) in [(0..<n, 0), (0..<n, 48), (40..<200, 0)] {
            let fast = LeveragePolicy.leverage(v, slots: slots, rope: rope, sketch: sketch)
            let slow = Self.leverageReference(v, slots: slots, rope: rope, sketch: sketch)
            #expect(fast.count == slow.count && zip(fast, slow).allSatisfy { $0.bitPattern == $1.bitPattern }, "slots \(slots), sketch \(sketch)")
        }
    }

    @Test func leverageIsTheHatMatrixDiagonalOfTheKeysBeforeRoPE() throws {
        let expected: [Float] = [0.1493, 0.1493, 0.4490, 0.4490, 0.7901]
        for f in [0.0, 0.7] {
            let s = LeveragePolicy().scores(Self.view(frequency: f))
            #expect(zip(s, expected).allSatisfy { abs($0 - $1) < 0.001 }, "frequency \(f): \(s)")
        }
        let v = Self.view(frequency: 0.7)
        #expect(topK(v, budget: 2, scores: LeveragePolicy().scores(v), pinned: []) == [3, 4])
        // A wide Gaussian sketch (ΦΦᵀ ≈ I) approximates the exact leverage: within 15 %, the outlier first.
        let sketched = LeveragePolicy { $0.sketch = 512 }.scores(v)
        #expect(zip(sketched, expected).allSatisfy { abs($0 - $1) < 0.15 * $1 }, "\(sketched)")
        #expect(topK(v, budget: 1, scores: sketched, pinned: []) == [4])
    }
}

@Suite struct QFilterPolicyTests {
    /// The filter is the top eigenvector of the queries' second moment, turned towards their mean:
    /// diag(1, 9, 4) has (0, ±1, 0) on top, and a mean of (0, −2, 0.1) turns it to (0, −1, 0). A
    /// non-diagonal moment (rows (2, 1), (1, 2): eigenvalues 3 and 1) gives (1, 1)/√2.
    @Test func theFilterIsTheQueriesMainDirectionTurnedTowardsTheirMean() {
        let u = QFilterPolicy.direction(secondMoment: [1, 0, 0, 0, 9, 0, 0, 0, 4], mean: [0, -2, 0.1], d: 3)
        #expect(zip(u, [0, -1, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(u)")
        let w = QFilterPolicy.direction(secondMoment: [2, 1, 1, 2], mean: [0.3, 0.1], d: 2)
        #expect(zip(w, [0.7071, 0.7071] as [Float]).allSatisfy { abs($0 - $1) < 1e-3 }, "\(w)")
    }

    /// A key's score is minus its projection on the filter before RoPE (kvpress's sign): for the filter
    /// (0.6, 0.8) the keys (1, 0), (−1, 0), (2, 0), (−2, 0), (0, 1) score −0.6, 0.6, −1.2, 1.2, −0.8 whatever
    /// rotation RoPE applied, and the two best are kept; `sinks=1` pins the first.
    @Test func keysScoreMinusTheirProjectionOnTheFilterBeforeRoPE() {
        let policy = QFilterPolicy()
        for f in [0.0, 0.7] {
            var v = LeveragePolicyTests.view(frequency: f)
            v.prepared[policy.passKey] = [[[Float(0.6), 0.8]]]
            let s = policy.scores(v)
            #expect(zip(s, [-0.6, 0.6, -1.2, 1.2, -0.8] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 }, "frequency \(f): \(s)")
            #expect(topK(v, budget: 2, scores: s, pinned: []) == [1, 3])
            #expect(QFilterPolicy { $0.sinks = 1 }.pinned(v, budget: 2) == [0])
        }
    }
}

/// The per-model calibration store (duo's heads, kvzap's predictor, qfilter's filters): measured once, then
/// read from memory or from its file; measured again when the file is corrupt, of another version or
/// rejected as another model's shapes; a home that cannot be written loses only the shortcut.
@Suite struct ModelCalibrationTests {
    @Test func measuresOnceThenReadsAndMeasuresAgainWhenTheFileDoesNotFit() throws {
        let home = NSTemporaryDirectory() + "kvkit-calibration-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let model = RandomModel(home: home)
        var measured = 0
        func measure() -> [Float] { measured += 1; return [1, 2, Float(measured)] }
        let c = ModelCalibration<[Float]>(name: "test", version: 1)
        #expect(try c.value(model: model, settings: "-x1", valid: { $0.count == 3 }, measure: measure) == [1, 2, 1])
        #expect(try c.value(model: model, settings: "-x1", valid: { $0.count == 3 }, measure: measure) == [1, 2, 1] && measured == 1)
        let path = try #require(c.path(model, "-x1"))
        #expect(path == home + "/test-random-model-0-conformance-x1.json" && FileManager.default.fileExists(atPath: path))
        // A fresh process (new store): read from the file.
        #expect(
            try ModelCalibration<[Float]>(name: "test", version: 1).value(model: model, settings: "-x1", valid: { _ in true }, measure: measure) == [1, 2, 1])
        #expect(measured == 1)
        // Other settings, another version, a value the model rejects, a corrupt file: measured again.
        #expect(try c.value(model: model, settings: "-x2", valid: { _ in true }, measure: measure) == [1, 2, 2])
        #expect(
            try ModelCalibration<[Float]>(name: "test", version: 2).value(model: model, settings: "-x1", valid: { _ in true }, measure: measure) == [1, 2, 3])
        #expect(
            try ModelCalibration<[Float]>(name: "test", version: 2).value(model: model, settings: "-x1", valid: { $0.count == 4 }, measure: measure) == [
                1, 2, 4,
            ])
        try Data("{".utf8).write(to: URL(fileURLWithPath: path))
        #expect(
            try ModelCalibration<[Float]>(name: "test", version: 2).value(model: model, settings: "-x1", valid: { _ in true }, measure: measure) == [1, 2, 5])
        // remember: a value measured elsewhere is what a fresh store reads.
        c.remember([7], model: model, settings: "-x3")
        #expect(try ModelCalibration<[Float]>(name: "test", version: 1).value(model: model, settings: "-x3", valid: { _ in true }, measure: measure) == [7])
        // A home that is a file: nothing kept, the value still returned.
        let blocked = RandomModel(home: path)
        #expect(try ModelCalibration<[Float]>(name: "test", version: 1).value(model: blocked, valid: { _ in true }, measure: measure) == [1, 2, 6])
        #expect(measured == 6)
    }
}

/// FINCH on the random model: with a question the window is exactly the question's queries (its own
/// totals, not SnapKV's 32), the question is kept whole, and the rest of the budget goes to the tokens it
/// attends to most (mean over the group); without a question the `window` parameter stands in.
@Suite struct FinchPolicyTests {
    @Test func theQuestionIsTheWindowAndIsKept() throws {
        let model = RandomModel(), policy = FinchPolicy()
        let prompt = model.encode("a context of some eighty tokens in all, long enough for a budget of forty, then a question", addBOS: true)
        let q = 9
        for question in [q, nil] {
            let cache = model.makeCache()
            Compressor.prepare(cache, needs: policy.needs.union(ObservationNeeds(window: 32)), promptEnd: prompt.count, question: question)
            try model.forward(prompt, cache: cache)
            let obs = try #require(cache.observations)
            #expect(obs.question == question)
            let w = question ?? policy.window
            for l in 0..<cache.layers {
                for h in 0..<cache.kvHeads {
                    let v = Compressor.view(cache, layer: l, head: h, seed: 0, needs: policy.needs)
                    #expect(v.question == question)
                    #expect(v.window == obs.window(size: w)?[l * cache.kvHeads + h])
                    if question != nil { #expect(v.window != obs.window(size: 32)?[l * cache.kvHeads + h], "its own window, not SnapKV's") }
                }
            }
            let budget = 40
            let kept = cache.fork()
            try Compressor.compress(kept, policy: policy, budget: .tokens(budget), context: CompressionContext())
            for l in 0..<cache.layers {
                for h in 0..<cache.kvHeads {
                    let v = Compressor.view(cache, layer: l, head: h, seed: 0, needs: policy.needs)
                    let positions = Set(kept.slots(layer: l, head: h).map(\.position))
                    let window = Set(((prompt.count - w)..<prompt.count).map(Int32.init))
                    #expect(window.isSubset(of: positions), "layer \(l) head \(h): the window is kept")
                    // The others: the highest group-mean scores before the window.
                    let s = v.combine(v.window!, .mean)
                    let rest = (0..<(prompt.count - w)).sorted { (s[$0], $1) > (s[$1], $0) }.prefix(budget - w).map(Int32.init)
                    #expect(Set(rest).isSubset(of: positions), "layer \(l) head \(h): top-scored context kept")
                }
            }
        }
    }
}
