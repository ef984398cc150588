/// A per-slot statistic of the attention probabilities, declared by a policy in its own file: the open
/// kind of attention observation. The kernel's observation pass recomputes every observed query row's
/// probabilities over the keys of its stream (the model's own softmax, causal, within a sliding window) and
/// hands each installed statistic the rows it `observes`; the statistic folds them into a `[slot][group]`
/// column per (layer, KV head) stream that moves with the slots (eviction, forks), as H2O's totals do.
///
/// A sum of probabilities needs only `key` (the default `fold` adds them: SnapKV's `ObservationWindow`, H2O's
/// totals); a statistic of its own (a count above a threshold, a maximum, a power) overrides `fold`. Installed through
/// `ObservationNeeds.statistics`; read back with `StreamView.statistic(_:)`.
public protocol AttentionStatistic: Sendable {
    /// Names the statistic: statistics with one key compute the same, so a cache holds one.
    var key: String { get }
    /// Whether the query at `position` contributes, for a prompt whose last token is at `promptEnd − 1` (the
    /// latest `Compressor.prepare`'s; a statistic of the last w queries observes `position ≥ promptEnd − w`).
    /// Default: every query row the model runs.
    func observes(query position: Int32, promptEnd: Int32) -> Bool
    /// Whether `fold` reads `AttentionRow.visible` (two binary searches per row over the stream's positions,
    /// so the kernel counts only for statistics that ask). Default: false.
    var needsVisibleCount: Bool { get }
    /// Folds one query's probabilities over `count` keys of its stream (`probabilities[j]` for the key at
    /// position `keys[j]`; 0 for a key the query cannot see) into those keys' entries `column[j · stride]`.
    func fold(
        _ probabilities: UnsafePointer<Float>, keys: UnsafePointer<Int32>, count: Int, row: AttentionRow, into column: UnsafeMutablePointer<Float>, stride: Int)
}

extension AttentionStatistic {
    public func observes(query position: Int32, promptEnd: Int32) -> Bool { true }
    public var needsVisibleCount: Bool { false }
    public func fold(
        _ probabilities: UnsafePointer<Float>, keys: UnsafePointer<Int32>, count: Int, row: AttentionRow, into column: UnsafeMutablePointer<Float>, stride: Int
    ) {
        for j in 0..<count { column[j * stride] += probabilities[j] }
    }
}

/// The query row a statistic folds: its position and the keys it sees.
public struct AttentionRow: Sendable {
    /// The query's position.
    public let query: Int32
    /// Keys at or before this position are outside the layer's sliding window (`.min` for a global layer).
    public let oldest: Int32
    private let visibleCount: Int
    /// The number of keys of the stream the query sees (causal, within the window): for statistics relative
    /// to the uniform 1 / visible. Counted only for a statistic that declares `needsVisibleCount`.
    public var visible: Int {
        precondition(visibleCount >= 0, "AttentionRow.visible is counted only for statistics that declare needsVisibleCount = true")
        return visibleCount
    }
    /// `visible`: −1 where it was not counted.
    public init(query: Int32, oldest: Int32, visible: Int) { self.query = query; self.oldest = oldest; visibleCount = visible }
    /// Whether the query sees the key at `position`.
    @inline(__always) public func sees(_ position: Int32) -> Bool { position <= query && position > oldest }
}

/// The attention statistics installed on one cache, in installation order, with their values
/// (`[layer·kvHeads + head]` → `[slot][group]`); at most one per key.
public struct AttentionStatistics: Sendable, Equatable {
    public struct Entry: Sendable {
        public let statistic: any AttentionStatistic
        /// The prompt end of the latest `install`: the values keep accumulating across compressions.
        public var promptEnd: Int32
        public var values: [[Float]]
        /// Whether the query at `position` is folded.
        public func observes(_ position: Int32) -> Bool { statistic.observes(query: position, promptEnd: promptEnd) }
    }
    public private(set) var entries: [Entry] = []
    public init() {}
    public var isEmpty: Bool { entries.isEmpty }
    /// The values of the statistic installed under `key` (nil: not installed).
    public subscript(key: String) -> [[Float]]? { entries.first { $0.statistic.key == key }?.values }

    /// Installs `statistic` with zero values for the slots already held (`slots[i]`: stream i's count) for a
    /// prompt ending at `promptEnd`; one with its key already there keeps its values and takes the new end.
    public mutating func install(_ statistic: any AttentionStatistic, promptEnd: Int, slots: [Int], group: Int) {
        if let e = entries.firstIndex(where: { $0.statistic.key == statistic.key }) {
            entries[e].promptEnd = Int32(clamping: promptEnd)
            return
        }
        entries.append(Entry(statistic: statistic, promptEnd: Int32(clamping: promptEnd), values: slots.map { [Float](repeating: 0, count: $0 * group) }))
    }
    /// Whether any statistic observes a query at one of `positions`.
    public func observes(_ positions: [Int32]) -> Bool {
        entries.contains { e in positions.contains { e.observes($0) } }
    }
    /// Installs `statistic` with the given values (`[stream][slot·group]`), replacing one with its key.
    public mutating func install(_ statistic: any AttentionStatistic, values: [[Float]], promptEnd: Int = 0) {
        removeAll { $0.key == statistic.key }
        entries.append(Entry(statistic: statistic, promptEnd: Int32(clamping: promptEnd), values: values))
    }
    /// Removes the statistics `matching` selects.
    public mutating func removeAll(where matching: (any AttentionStatistic) -> Bool) { entries.removeAll { matching($0.statistic) } }
    /// Sets stream `i`'s values of the statistic under `key` (the kernel's pass; hand-built observations, the
    /// conformance kit).
    public mutating func set(_ key: String, stream i: Int, _ values: [Float]) {
        if let e = entries.firstIndex(where: { $0.statistic.key == key }) { entries[e].values[i] = values }
    }
    mutating func appended(stream i: Int, count n: Int, group: Int) {
        for e in entries.indices { entries[e].values[i] += repeatElement(0, count: n * group) }
    }
    mutating func keep(stream i: Int, pick: ([Float]) -> [Float]) {
        for e in entries.indices { entries[e].values[i] = pick(entries[e].values[i]) }
    }
    /// Empties every stream (the cache was emptied); the statistics stay installed.
    mutating func clear() {
        for e in entries.indices { for i in entries[e].values.indices { entries[e].values[i] = [] } }
    }
    public static func == (a: AttentionStatistics, b: AttentionStatistics) -> Bool {
        a.entries.count == b.entries.count
            && zip(a.entries, b.entries).allSatisfy { $0.statistic.key == $1.statistic.key && $0.values == $1.values }
    }
}
