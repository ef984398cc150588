import Foundation
import TensorMath

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
    /// Moments of the queries before RoPE (Expected Attention's query statistics), when requested: one
    /// set per first counted position, so that policies leaving out different sink rows each read their own.
    public var queryMoments: [QueryMoments] = []
    /// The moments counted from `from` (nil: none were requested from there).
    public func queries(from: Int32) -> QueryMoments? { queryMoments.first { $0.from == from } }
    /// The only (or first) set of moments; setting it replaces them all (hand-built observations).
    public var queries: QueryMoments? {
        get { queryMoments.first }
        set { queryMoments = newValue.map { [$0] } ?? [] }
    }
    /// [layer·kvHeads + head] → [position][group]: the most attention any query gave the key at each
    /// position below `maxima.count / group` (KVzip's reconstruction score), when requested. Indexed by
    /// position, not slot, so slots freed or moved meanwhile do not shift it.
    public var maxima: [[Float]]?
    /// Which keys a query's probabilities for `maxima` are taken over (nil: every key it sees, the
    /// model's own softmax).
    public var maximaKeys: MaximaKeys?
    /// Non-causal attention within chunks of the prompt (Compactor), one per spec asked for.
    public var chunked: [ChunkedAttention] = []
    /// The length of the question that ends the prompt (query-aware runs), whose window is tapped for the
    /// policies that ask for it (`ObservationNeeds.questionWindow`); nil when the prompt has no question.
    public var question: Int?
    /// Statistics of the layers' attention inputs that policies declared in their own files (`LayerInputTap`).
    public var inputTaps = LayerInputTaps()
    /// Statistics of the attention probabilities (`AttentionStatistic`): the observation windows
    /// (`ObservationWindow`) and those policies declare in their own files (H2O's totals, …).
    public var statistics = AttentionStatistics()

    /// Whether the kernel must recompute the probabilities of a pass over queries at `positions`.
    public func observes(_ positions: [Int32]) -> Bool {
        maxima != nil || statistics.observes(positions)
    }

    /// KVzip's reconstruction softmax as kvpress's `KVzipPress` computes it: each re-read query's
    /// probabilities over the attention sinks, the chunk of the prompt being re-read and the re-read tokens
    /// themselves (causally), not over the whole prompt; only the chunk's keys are scored.
    public struct MaximaKeys: Sendable, Equatable {
        /// Keys at positions below this are the sinks.
        public var sinks: Int32
        /// The positions of the prompt chunk being re-read: the keys that are scored.
        public var chunk: Range<Int32>
        /// Keys at or after this position are the re-read tokens.
        public var repeatFrom: Int32
        public init(sinks: Int32, chunk: Range<Int32>, repeatFrom: Int32) { self.sinks = sinks; self.chunk = chunk; self.repeatFrom = repeatFrom }
        @inline(__always) func admits(_ p: Int32) -> Bool { p < sinks || chunk.contains(p) || p >= repeatFrom }
    }

    public init(layers: Int, kvHeads: Int, group: Int, windowStart: Int32?) {
        self.layers = layers; self.kvHeads = kvHeads; self.group = group
        if let ws = windowStart { statistics.install(ObservationWindow(size: nil, start: ws), values: Array(repeating: [], count: layers * kvHeads)) }
    }

    /// New slots start with zero attention.
    mutating func appended(layer: Int, count n: Int) {
        for h in 0..<kvHeads {
            let i = layer * kvHeads + h
            statistics.appended(stream: i, count: n, group: group)
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
        statistics.keep(stream: i, pick: pick)
    }

    mutating func reset() {
        for q in queryMoments.indices { queryMoments[q].clear() }
        chunked = []
        inputTaps = LayerInputTaps()
        statistics.clear()
    }
}

/// A model's rotary position embedding as policies need it: pair `i` of a head rotates by
/// `position · frequencies[i]`; pairs are adjacent (x[2i], x[2i+1], GGML's "normal" RoPE) or halves
/// (x[i], x[i + d/2], "NeoX"). Empty frequencies: no rotation.
public struct RoPEInfo: Sendable, Equatable {
    public var frequencies: [Double]
    public var halves: Bool
    /// Per-layer frequencies where layers differ (Gemma 3's local and global layers); nil: `frequencies` everywhere.
    public var layerFrequencies: [[Double]]?
    public init(frequencies: [Double], halves: Bool = false, layerFrequencies: [[Double]]? = nil) {
        self.frequencies = frequencies; self.halves = halves; self.layerFrequencies = layerFrequencies
    }

    /// The rotation layer `l` applies.
    public func layer(_ l: Int) -> RoPEInfo {
        guard let f = layerFrequencies, l < f.count else { return self }
        return RoPEInfo(frequencies: f[l], halves: halves)
    }

    /// The indices of pair `i` in a head of `d` values.
    public func pair(_ i: Int, headDim d: Int) -> (Int, Int) { halves ? (i, i + d / 2) : (2 * i, 2 * i + 1) }

    /// A row as it was before this rotation at `position` (the inverse of the model's RoPE: each pair turned
    /// back by position × frequency). Use `layer(_:)` first where layers differ.
    public func unrotate(_ x: [Float], position: Int32) -> [Float] {
        var y = x
        for (i, f) in frequencies.enumerated() {
            let (a, b) = pair(i, headDim: x.count)
            guard b < x.count else { break }
            let angle = Double(position) * f, c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
            y[a] = x[a] * c + x[b] * s
            y[b] = -x[a] * s + x[b] * c
        }
        return y
    }
}

/// Running first and second moments of each layer's query rows before RoPE, per query head: what
/// Expected Attention (Devoto et al. 2025) models future queries with. The model adds every prompt row
/// at or after position `from` (the first rows are attention-sink outliers); `mean` and `covariance`
/// read them back. With the model's RoPE frequencies, so a policy can rotate the statistics to the
/// positions still to come.
public struct QueryMoments: Sendable, Equatable {
    public let heads: Int
    public let headDim: Int
    /// Rows before this position are not counted.
    public let from: Int32
    /// The model's rotary embedding, to rotate the statistics to future positions.
    public let rope: RoPEInfo
    /// Per layer: rows counted, `[head][headDim]` sums and `[head][headDim][headDim]` sums of outer products.
    public private(set) var rows: [Int]
    private var sums: [[Double]]
    private var outer: [[Float]]

    public init(layers: Int, heads: Int, headDim: Int, from: Int32, rope: RoPEInfo) {
        self.heads = heads; self.headDim = headDim; self.from = from; self.rope = rope
        rows = Array(repeating: 0, count: layers)
        sums = Array(repeating: [], count: layers)
        outer = Array(repeating: [], count: layers)
    }

    /// Adds the rows of `q` (`[positions.count][heads·headDim]`, before RoPE) whose position is at or after `from`.
    public mutating func add(layer: Int, q: UnsafePointer<Float>, positions: [Int32]) {
        let d = headDim, width = heads * d
        let first = positions.firstIndex { $0 >= from } ?? positions.count
        let n = positions.count - first
        guard n > 0 else { return }
        if sums[layer].isEmpty {
            sums[layer] = [Double](repeating: 0, count: heads * d)
            outer[layer] = [Float](repeating: 0, count: heads * d * d)
        }
        let base = q + first * width
        for t in 0..<n { for j in 0..<width { sums[layer][j] += Double(base[t * width + j]) } }
        outer[layer].withUnsafeMutableBufferPointer { o in
            for h in 0..<heads {
                // Σ q qᵀ over the rows: one sgemm per head, Qₕᵀ·Qₕ with the head's columns as a strided tile.
                BLAS.gemmTransA(m: d, n: d, k: n, base + h * d, lda: width, base + h * d, ldb: width, beta: 1, o.baseAddress! + h * d * d, ldc: d)
            }
        }
        rows[layer] += n
    }

    /// The mean query of `head` at `layer` (zero before any row).
    public func mean(layer: Int, head: Int) -> [Double] {
        guard rows[layer] > 0 else { return [Double](repeating: 0, count: headDim) }
        return (0..<headDim).map { sums[layer][head * headDim + $0] / Double(rows[layer]) }
    }

    /// The covariance of `head`'s queries at `layer` (divided by the row count, as kvpress does), `[d][d]`.
    public func covariance(layer: Int, head: Int) -> [Double] {
        let d = headDim, n = Double(rows[layer])
        guard n > 0 else { return [Double](repeating: 0, count: d * d) }
        let mu = mean(layer: layer, head: head)
        var c = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { c[i * d + j] = Double(outer[layer][head * d * d + i * d + j]) / n - mu[i] * mu[j] } }
        return c
    }

    mutating func clear() {
        for l in rows.indices { rows[l] = 0; sums[l] = []; outer[l] = [] }
    }
}
