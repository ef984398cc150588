/// Attention statistics the kernel taps for policies, aligned with each stream's slots.
///
/// Computed only when a policy asks (a cache without `observations` pays nothing): the kernel's first
/// pass gives each query row its softmax max and normaliser; a second pass recomputes that row's
/// probabilities and adds them to the keys' totals. Stored per query head (`G` per KV head) so that a
/// policy can combine the heads of a group by mean or max as the papers do. A value type: a fork shares
/// the arrays until either side writes (Swift copy-on-write), then each keeps accumulating its own.
public struct Observations: Sendable, Equatable {
    public let layers: Int
    public let kvHeads: Int
    /// Query heads per KV head.
    public let group: Int
    /// Whether every query's attention is added to `accumulated` (H2O's heavy-hitter statistic).
    public var accumulate: Bool
    /// Queries at or after this position add their attention to `window` (SnapKV's observation window,
    /// TOVA's last query); nil turns the window off.
    public var windowStart: Int32?
    /// [layer·kvHeads + head] → [slot][group]: attention summed over every query since the slot arrived.
    public var accumulated: [[Float]]
    /// [layer·kvHeads + head] → [slot][group]: attention summed over the window's queries.
    public var window: [[Float]]

    public init(layers: Int, kvHeads: Int, group: Int, accumulate: Bool, windowStart: Int32?) {
        self.layers = layers; self.kvHeads = kvHeads; self.group = group
        self.accumulate = accumulate; self.windowStart = windowStart
        accumulated = Array(repeating: [], count: layers * kvHeads)
        window = Array(repeating: [], count: layers * kvHeads)
    }

    /// New slots start with zero attention.
    mutating func appended(layer: Int, count n: Int) {
        for h in 0..<kvHeads {
            let i = layer * kvHeads + h
            if accumulate { accumulated[i] += repeatElement(0, count: n * group) }
            if windowStart != nil { window[i] += repeatElement(0, count: n * group) }
        }
    }

    /// Mirrors `PagedKVCache.keep`.
    mutating func keep(stream i: Int, indices: [Int]) {
        let g = group
        func pick(_ a: [Float]) -> [Float] {
            guard !a.isEmpty else { return a }
            var out = [Float]()
            out.reserveCapacity(indices.count * g)
            for s in indices { out += a[(s * g)..<(s * g + g)] }
            return out
        }
        accumulated[i] = pick(accumulated[i])
        window[i] = pick(window[i])
    }

    /// Clears the window totals and moves its start (e.g. before observing a new question).
    public mutating func restartWindow(at position: Int32?) {
        windowStart = position
        for i in window.indices {
            let n = max(accumulated[i].count, window[i].count)
            window[i] = position == nil ? [] : [Float](repeating: 0, count: n)
        }
    }

    mutating func reset() {
        for i in accumulated.indices { accumulated[i] = []; window[i] = [] }
    }
}
