import Foundation
import KVCache
import Policies
import TensorMath

/// The conformance kit any policy's tests can call (KVKit runs it over every registered policy):
/// on seeded random caches with random attention statistics, a policy
/// - never keeps more than its budget (per layer, over its heads, up to rounding of per-layer budgets),
/// - never drops its pinned slots (sinks, observation window),
/// - is deterministic for a seed,
/// - chooses the same slots on a copy-on-write fork as on the original.
/// Returns a list of failures (empty = conformant), so it works from XCTest or Swift Testing alike.
public enum PolicyConformance {
    public static func check(_ policy: any EvictionPolicy, seeds: Range<UInt64> = 0..<4) -> [String] {
        var failures: [String] = []
        do { try check(policy, seeds: seeds, into: &failures) } catch { failures.append("\(policy.name): \(error)") }
        return failures
    }

    private static func check(_ policy: any EvictionPolicy, seeds: Range<UInt64>, into failures: inout [String]) throws {
        for seed in seeds {
            for budget in [Budget.fraction(0.1), .fraction(0.25), .fraction(0.5), .tokens(7)] {
                let cache = randomCache(seed: seed, group: 2)
                tapChunks(cache, needs: policy.needs, seed: seed)
                tapStatistics(cache, needs: policy.needs, seed: seed)
                let context = try randomContext(cache, seed: seed, group: 2, passes: policy.passes)
                let plan = try Compressor.plan(cache, policy: policy, budget: budget, seed: seed, context: context)
                let tag = "\(policy.name) seed \(seed) budget \(budget)"
                if policy.compresses && policy.evicts {
                    let allowed = (0..<cache.layers).reduce(0) { acc, l in
                        acc + (0..<cache.kvHeads).reduce(0) { $0 + budget.tokens(for: cache.count(layer: l, head: $1)) }
                    }
                    let kept = plan.keep.joined().reduce(0) { $0 + $1.count }
                    if kept > allowed + cache.layers * cache.kvHeads {
                        failures.append("\(tag): keeps \(kept) slots, budget allows \(allowed)")
                    }
                }
                for l in 0..<cache.layers {
                    for h in 0..<cache.kvHeads {
                        let v = Compressor.view(cache, layer: l, head: h, seed: seed, context: context, needs: policy.needs)
                        let keep = plan.keep[l][h]
                        if keep != keep.sorted() || Set(keep).count != keep.count || keep.contains(where: { $0 < 0 || $0 >= v.count }) {
                            failures.append("\(tag) (\(l),\(h)): kept slots are not ascending, unique and in range")
                        }
                        let pins = policy.pinned(v, budget: plan.budgets[l][h])
                        if pins.count <= plan.budgets[l][h], !Set(pins).isSubset(of: keep) {
                            failures.append("\(tag) (\(l),\(h)): drops pinned slots \(Set(pins).subtracting(keep).sorted())")
                        }
                    }
                }
                if try Compressor.plan(cache, policy: policy, budget: budget, seed: seed, context: context) != plan {
                    failures.append("\(tag): not deterministic for a seed")
                }
                let fork = cache.fork()
                try Compressor.compress(fork, policy: policy, budget: budget, seed: seed, context: context)
                let compression = try Compressor.compress(cache, policy: policy, budget: budget, seed: seed, context: context)
                // A read-side policy: every stream's page choice for a random query fits the budget in pages.
                if let selector = compression.reads {
                    var rng = SplitMix64(seed: seed &+ 99)
                    let q = (0..<(2 * cache.headDim)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let sparse = (0..<cache.layers).filter { !selector.readsEveryPage(layer: $0, tokens: 1) }
                    if sparse.isEmpty { failures.append("\(tag): the page selector reads every page at every layer") }
                    for l in sparse {
                        for h in 0..<cache.kvHeads {
                            let n = cache.table(layer: l, head: h).pages.count
                            let allowed = (budget.tokens(for: cache.count(layer: l, head: h)) + cache.pageSize - 1) / cache.pageSize
                            let pages = selector.select(layer: l, head: h, pageCount: n, q: q, rows: 2, tokens: 1)
                            if pages != pages.sorted() || Set(pages).count != pages.count || pages.contains(where: { $0 < 0 || $0 >= n })
                                || pages.count > max(allowed, 1)
                            {
                                failures.append("\(tag) (\(l),\(h)): reads pages \(pages) of \(n), budget allows \(allowed)")
                            }
                        }
                    }
                } else if !policy.evicts {
                    failures.append("\(tag): keeps every token but installs no page selector")
                }
                for l in 0..<cache.layers {
                    for h in 0..<cache.kvHeads where fork.slots(layer: l, head: h).map(\.position) != cache.slots(layer: l, head: h).map(\.position) {
                        failures.append("\(tag) (\(l),\(h)): a fork keeps different slots than the original")
                    }
                }
            }
        }
    }

    /// What the prefill would give a policy besides the cache: per-position self-information, random and
    /// seeded, and the results of the policy's own `passes` (KVzip's reconstruction, Duo's calibration),
    /// run for real on a `RandomModel` shaped like the cache.
    public static func randomContext(_ cache: PagedKVCache, seed: UInt64, group: Int, passes: [PolicyPass] = []) throws -> CompressionContext {
        var rng = SplitMix64(seed: seed &+ 0xFACADE)
        let n = cache.nextPosition
        var context = CompressionContext(selfInformation: (0..<n).map { _ in Float.random(in: 0...12, using: &rng) })
        let model = RandomModel(layers: cache.layers, kvHeads: cache.kvHeads, group: group, headDim: cache.headDim, contextLength: 4 * n + 256, seed: seed)
        // The cache's tokens are its positions: the prompt the passes re-read is read back from the slots.
        for pass in passes.uniqued() {
            var result = try pass.run(model, cache, nil)
            // A tap installed before the prompt sees every prompt row, as the model would have fed it.
            if pass.stage == .beforePrompt, var tap = result as? any LayerInputTap {
                for l in 0..<cache.layers {
                    let slots = cache.slots(layer: l, head: 0)
                    let rows = slots.flatMap { model.hiddenRow(layer: l, token: $0.token, position: $0.position) }
                    rows.withUnsafeBufferPointer { tap.add(layer: l, rows: $0.baseAddress!, width: model.hidden, positions: slots.map(\.position)) }
                }
                result = tap
            }
            context.prepared[pass.key] = result
        }
        return context
    }

    /// Chunked non-causal attention (`ObservationNeeds.chunks`) over the cache's own keys and random
    /// queries, through the real `ChunkedAttention` tap, for policies that ask for it.
    public static func tapChunks(_ cache: PagedKVCache, needs: ObservationNeeds, seed: UInt64) {
        guard !needs.chunks.isEmpty, cache.observations != nil else { return }
        var rng = SplitMix64(seed: seed &+ 0xC4C4)
        let n = cache.nextPosition, hd = cache.headDim, heads = cache.kvHeads * cache.group
        for spec in needs.chunks {
            var c = ChunkedAttention(spec: spec, promptEnd: n, layers: cache.layers, heads: heads, kvHeads: cache.kvHeads, headDim: hd)
            for l in 0..<cache.layers {
                let views = (0..<cache.kvHeads).map { Compressor.view(cache, layer: l, head: $0, seed: seed) }
                let k = (0..<n).flatMap { t in views.flatMap { $0.key(t) } }
                let q = (0..<(n * heads * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in c.add(layer: l, q: qp.baseAddress!, k: kp.baseAddress!, positions: (0..<n).map(Int32.init)) }
                }
            }
            cache.observations!.chunked.append(c)
        }
    }

    /// The policy's own attention statistics (`ObservationNeeds.statistics`), each folded by its real `fold`
    /// from random attention-like rows (non-negative, each query's row summing to one over the keys it sees)
    /// for every query it observes.
    public static func tapStatistics(_ cache: PagedKVCache, needs: ObservationNeeds, seed: UInt64) {
        guard !needs.statistics.isEmpty, cache.observations != nil else { return }
        var rng = SplitMix64(seed: seed &+ 0x57A7)
        let n = cache.nextPosition, G = cache.group
        for st in needs.statistics {
            let slots = (0..<cache.layers).flatMap { l in (0..<cache.kvHeads).map { cache.count(layer: l, head: $0) } }
            cache.observations!.statistics.install(st, promptEnd: n, slots: slots, group: G)
            for l in 0..<cache.layers {
                for h in 0..<cache.kvHeads {
                    let count = cache.count(layer: l, head: h)
                    var values = [Float](repeating: 0, count: count * G)
                    let positions = cache.slots(layer: l, head: h).map(\.position)
                    for q in Int32(0)..<Int32(n) where st.observes(query: q, promptEnd: Int32(n)) {
                        let row = AttentionRow(query: q, oldest: .min, visible: positions.filter { $0 <= q }.count)
                        for g in 0..<G {
                            var p = positions.map { row.sees($0) ? Float.random(in: 0...1, using: &rng) * Float.random(in: 0...1, using: &rng) : 0 }
                            let z = max(p.reduce(0, +), .leastNormalMagnitude)
                            for j in p.indices { p[j] /= z }
                            values.withUnsafeMutableBufferPointer { c in
                                st.fold(p, keys: positions, count: count, row: row, into: c.baseAddress! + g, stride: G)
                            }
                        }
                    }
                    cache.observations!.statistics.set(st.key, stream: l * cache.kvHeads + h, values)
                }
            }
        }
    }

    /// A cache of 3 layers × 2 KV heads with 40–90 tokens of random K/V per stream and random,
    /// attention-like window totals (non-negative; each query's row sums to one over visible keys);
    /// a policy's own statistics are folded by `tapStatistics`.
    public static func randomCache(seed: UInt64, group: Int) -> PagedKVCache {
        var rng = SplitMix64(seed: seed &+ 0xC0FFEE)
        let layers = 3, heads = 2, hd = 8
        let cache = PagedKVCache(layers: layers, kvHeads: heads, headDim: hd, group: group, pageSize: 5)
        let n = Int.random(in: 40...90, using: &rng)
        let window = 16
        cache.observations = Observations(layers: layers, kvHeads: heads, group: group, windowStart: Int32(n - window))
        let pos = (0..<n).map(Int32.init)
        for l in 0..<layers {
            let k = (0..<(n * heads * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
            let v = (0..<(n * heads * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
            cache.append(layer: l, keys: k, values: v, positions: pos, tokens: pos)
            for h in 0..<heads {
                var win = [Float](repeating: 0, count: n * group)
                for q in 0..<n {
                    for g in 0..<group {
                        let w = (0...q).map { _ in Float.random(in: 0...1, using: &rng) * Float.random(in: 0...1, using: &rng) }
                        let z = w.reduce(0, +)
                        for j in 0...q {
                            if q >= n - window { win[j * group + g] += w[j] / z }
                        }
                    }
                }
                cache.observations!.window[l * heads + h] = win
            }
        }
        // Random queries before RoPE, as the model would record them (Expected Attention's moments).
        var moments = QueryMoments(
            layers: layers, heads: heads * group, headDim: hd, from: 2,
            rope: RoPEInfo(frequencies: (0..<(hd / 2)).map { pow(10_000, -2 * Double($0) / Double(hd)) }))
        for l in 0..<layers {
            let q = (0..<(n * heads * group * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
            q.withUnsafeBufferPointer { moments.add(layer: l, q: $0.baseAddress!, positions: pos) }
        }
        cache.observations!.queries = moments
        cache.nextPosition = n
        return cache
    }
}
