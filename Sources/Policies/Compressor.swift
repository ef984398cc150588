import Foundation
import KVCache
import TensorMath

/// What one compression did, for reports.
public struct CompressionStats: Sendable, Codable, Equatable {
    /// Tokens summed over every (layer, KV head) stream, before and after.
    public var slotsBefore = 0, slotsAfter = 0
    public var liveBytesBefore = 0, liveBytesAfter = 0
    /// Pages referenced by the cache, before and after.
    public var pagesBefore = 0, pagesAfter = 0
    public var seconds = 0.0
    public init() {}
}

/// Applies an eviction policy to every stream of a cache.
public enum Compressor {
    /// Turns on the observations `needs` asks for, for a prompt whose last token will be at position
    /// `promptEnd − 1`: the window covers the last `needs.window` prompt positions. `rope` is the model's
    /// rotation, which query moments carry for the policies that rotate them (nil: the cache's model has none).
    /// Statistics are laid out by the cache's own query group (`PagedKVCache.group`, from the model).
    /// `question`: the length of the question that ends the prompt (query-aware runs), tapped as a window
    /// of its own when a policy asks for the question's attention.
    public static func prepare(_ cache: PagedKVCache, needs: ObservationNeeds, promptEnd: Int, rope: RoPEInfo? = nil, question: Int? = nil) {
        let group = cache.group
        guard needs.tapsAttention else { return }
        if cache.observations == nil {
            cache.observations = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: group, windowStart: nil)
        }
        let slots = (0..<cache.layers).flatMap { l in (0..<cache.kvHeads).map { cache.count(layer: l, head: $0) } }
        // Turned on over a cache that already holds tokens (a compression while decoding): their statistics
        // start at zero, one per slot, so they stay aligned with the slots.
        for st in needs.statistics { cache.observations!.statistics.install(st, promptEnd: promptEnd, slots: slots, group: group) }
        let asked = needs.questionWindow ? question.flatMap { $0 > 0 && $0 <= promptEnd ? $0 : nil } : nil
        cache.observations!.question = asked
        let sizes = needs.windows.union(asked.map { [$0] } ?? [])
        cache.observations!.restartWindows(sizes.sorted().map { (size: $0, start: Int32(max(0, promptEnd - $0))) }, slots: slots)
        for spec in needs.chunks where !cache.observations!.chunked.contains(where: { $0.spec == spec }) {
            cache.observations!.chunked.append(
                ChunkedAttention(
                    spec: spec, promptEnd: promptEnd, layers: cache.layers, heads: group * cache.kvHeads, kvHeads: cache.kvHeads, headDim: cache.headDim))
        }
        // Query moments keep accumulating across turns: they describe every query the model has seen.
        for from in needs.queryStarts.sorted() where cache.observations!.queries(from: Int32(from)) == nil {
            cache.observations!.queryMoments.append(
                QueryMoments(
                    layers: cache.layers, heads: group * cache.kvHeads, headDim: cache.headDim,
                    from: Int32(from), rope: rope ?? RoPEInfo(frequencies: [])))
        }
    }

    /// Compresses every (layer, KV head) stream of `cache` to `budget` with `policy`; a policy with a
    /// parameter outside its declaration is refused (`PolicyError.badValue`) before anything changes.
    /// `context` carries what the policy needs from the prefill besides the cache (token text,
    /// self-information); the result carries the page selector later passes read through.
    @discardableResult
    public static func compress(
        _ cache: PagedKVCache, policy: any EvictionPolicy, budget: Budget, seed: UInt64 = 0,
        context: CompressionContext = .init()
    ) throws -> Compression {
        let clock = ContinuousClock(), t0 = clock.now
        var st = CompressionStats()
        st.slotsBefore = cache.totalSlots
        st.liveBytesBefore = cache.liveTokenBytes
        st.pagesBefore = cache.uniquePages
        var reads: (any PageSelector)?
        if !budget.isFull && policy.compresses {
            let plan = try plan(cache, policy: policy, budget: budget, seed: seed, context: context)
            for l in 0..<cache.layers {
                for h in 0..<cache.kvHeads { cache.keep(layer: l, head: h, indices: plan.keep[l][h]) }
            }
            reads = policy.reads(cache, budget: budget)
        }
        st.slotsAfter = cache.totalSlots
        st.liveBytesAfter = cache.liveTokenBytes
        st.pagesAfter = cache.uniquePages
        st.seconds = (clock.now - t0).seconds
        return Compression(stats: st, reads: reads)
    }

    /// What a compression would keep, without applying it: per layer and head, the kept slots and the
    /// budget the policy was given. Used by `compress` and by the conformance kit.
    public struct Plan: Equatable {
        public var keep: [[[Int]]]  // [layer][head] ascending slot indices
        public var budgets: [[Int]]  // [layer][head]
    }

    public static func plan(
        _ cache: PagedKVCache, policy: any EvictionPolicy, budget: Budget, seed: UInt64 = 0,
        context: CompressionContext = .init()
    ) throws -> Plan {
        try policy.checkParameters()
        let H = cache.kvHeads, L = cache.layers
        precondition(cache.observations.map { $0.group == cache.group } ?? true, "observations laid out for another query group than the cache's")
        let counts = (0..<L).map { l in (0..<H).map { cache.count(layer: l, head: $0) } }
        let meanCounts = counts.map { $0.reduce(0, +) / max(H, 1) }
        let uniform = meanCounts.map { budget.tokens(for: $0) }
        let layerBudgets = policy.layerBudgets(uniform: uniform, counts: meanCounts)
        var plan = Plan(keep: [], budgets: [])
        // A policy ranking across layers sees every stream at once; the kept total stays the uniform one.
        let allBudgets = (0..<L).map { l in (0..<H).map { min(layerBudgets[l], counts[l][$0]) } }
        let allViews = (0..<L).map { l in (0..<H).map { view(cache, layer: l, head: $0, seed: seed, context: context, needs: policy.needs) } }
        if let keep = policy.selectAll(layers: allViews, budgets: allBudgets) {
            return Plan(keep: keep, budgets: keep.map { $0.map(\.count) })
        }
        for l in 0..<L {
            let budgets = (0..<H).map { min(layerBudgets[l], counts[l][$0]) }
            let source = policy.selectionSource(layer: l)
            if source >= 0 && source < l {
                // Reuse: keep the positions the source layer kept (within this layer's budget).
                plan.keep.append(
                    (0..<H).map { h in
                        let sourceSlots = cache.slots(layer: source, head: h)
                        let wanted = Set(plan.keep[source][h].map { sourceSlots[$0].position })
                        let slots = cache.slots(layer: l, head: h).enumerated().filter { wanted.contains($0.element.position) }.map(\.offset)
                        return Array(slots.suffix(budgets[h]))
                    })
            } else {
                plan.keep.append(policy.select(layer: allViews[l], budgets: budgets))
            }
            plan.budgets.append(budgets)
        }
        return plan
    }

    /// The policy's view of one stream: the statistics of the policy's own settings (`needs`: its
    /// observation window, its query moments; `StreamView.seen(by:)`), every `[slot][group]` statistic
    /// sliced by the cache's query group (from the model), whatever was tapped.
    public static func view(
        _ cache: PagedKVCache, layer: Int, head: Int, seed: UInt64,
        context: CompressionContext = .init(), needs: ObservationNeeds = .none
    ) -> StreamView {
        let group = cache.group
        let slots = cache.slots(layer: layer, head: head)
        let i = layer * cache.kvHeads + head
        let obs = cache.observations
        var v = StreamView(
            layer: layer, head: head, layers: cache.layers, count: slots.count, group: group,
            headDim: cache.headDim, positions: slots.map(\.position), tokenIds: slots.map(\.token),
            window: nil,
            selfInformation: context.selfInformation.map { si in slots.map { Int($0.position) < si.count ? si[Int($0.position)] : 0 } },
            queries: nil, seed: seed &* 1_000_003 &+ UInt64(i), text: context.tokenText, cache: cache
        ).seen(by: needs)
        v.prepared = context.prepared
        return v
    }
}
