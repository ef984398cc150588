import Foundation
import KVCache
import Policies
import TensorMath

/// A small random "model" that policies' own passes run on in the conformance kit (as kvpress tests its
/// presses on a tiny random model): every token's query, key and value rows in every layer are seeded by
/// the token, its position and the layer, the keys go into the cache and the queries attend through the
/// real paged kernel, so the cache's observations (KVzip's maxima, windows) are tapped as in a real model.
/// Text is encoded one id per character. Shaped like `PolicyConformance.randomCache` (3 layers, 2 KV heads,
/// head dim 8), so a pass's result fits the caches the kit compresses.
public struct RandomModel: ModelPass {
    public let layers: Int, kvHeads: Int, heads: Int, headDim: Int, contextLength: Int, seed: UInt64
    /// Where per-model calibrations are kept: nil (never on disk) unless a test gives a folder.
    public let home: String?
    public init(
        layers: Int = 3, kvHeads: Int = 2, group: Int = 2, headDim: Int = 8, contextLength: Int = 512, seed: UInt64 = 0, home: String? = nil
    ) {
        self.layers = layers; self.kvHeads = kvHeads; self.heads = kvHeads * group; self.headDim = headDim
        self.contextLength = contextLength; self.seed = seed; self.home = home
    }
    public var hidden: Int { 12 }
    /// Adjacent pairs, base 10,000 (the keys are random, so any rotation is as good).
    public var rope: RoPEInfo { RoPEInfo(frequencies: (0..<(headDim / 2)).map { pow(10_000, -2 * Double($0) / Double(headDim)) }) }
    /// Random, seeded by the layer.
    public func outputProjection(layer: Int) -> [Float] {
        var rng = SplitMix64(seed: seed &+ 0x0E7 &+ UInt64(layer))
        return (0..<(hidden * heads * headDim)).map { _ in Float.random(in: -1...1, using: &rng) }
    }
    public var identity: (file: String, arithmetic: String) { ("random-model-\(seed)", "-conformance") }
    public func encode(_ text: String, addBOS: Bool) -> [Int32] { (addBOS ? [1] : []) + text.unicodeScalars.map { Int32($0.value % 97) + 2 } }
    public var opening: String { "<u>" }
    public var userToAssistant: String { "</u><a>" }
    public func makeCache() -> PagedKVCache { PagedKVCache(layers: layers, kvHeads: kvHeads, headDim: headDim, group: heads / kvHeads, pageSize: 5) }

    public func forward(_ tokens: [Int32], cache: PagedKVCache) throws {
        let n = tokens.count, start = cache.nextPosition
        guard n > 0 else { return }
        let positions = (0..<n).map { Int32(start + $0) }
        for l in 0..<layers {
            if cache.observations?.inputTaps.isEmpty == false {
                let rows = zip(tokens, positions).flatMap { hiddenRow(layer: l, token: $0, position: $1) }
                rows.withUnsafeBufferPointer { cache.observations!.inputTaps.add(layer: l, rows: $0.baseAddress!, width: hidden, positions: positions) }
            }
            var q = [Float](), k = [Float](), v = [Float]()
            for (t, token) in tokens.enumerated() {
                var rng = SplitMix64(seed: seed &* 0x9E37_79B9 &+ UInt64(l) &* 1_000_003 &+ UInt64(UInt32(bitPattern: token)) &* 7919 &+ UInt64(start + t))
                q += (0..<(heads * headDim)).map { _ in Float.random(in: -2...2, using: &rng) }
                k += (0..<(kvHeads * headDim)).map { _ in Float.random(in: -2...2, using: &rng) }
                v += (0..<(kvHeads * headDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            }
            // Query statistics before RoPE, as the model taps them (the rows are random: no rotation to undo).
            for m in cache.observations?.queryMoments.indices ?? 0..<0 {
                q.withUnsafeBufferPointer { cache.observations!.queryMoments[m].add(layer: l, q: $0.baseAddress!, positions: positions) }
            }
            cache.append(layer: l, keys: k, values: v, positions: positions, tokens: tokens)
            var out = [Float](repeating: 0, count: n * heads * headDim)
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    PagedAttention.attendBatch([.init(cache: cache, q: qp.baseAddress!, positions: positions, out: op.baseAddress!)], layer: l, nHeads: heads)
                }
            }
        }
        cache.nextPosition += n
    }

    /// The attention input `LayerInputTap`s see for a token at a position in a layer: random, seeded by the three.
    public func hiddenRow(layer: Int, token: Int32, position: Int32) -> [Float] {
        var rng = SplitMix64(seed: seed &* 0x51ED &+ UInt64(layer) &* 65_537 &+ UInt64(UInt32(bitPattern: token)) &* 131 &+ UInt64(position))
        return (0..<hidden).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    /// Random tokens, seeded by the sample; three samples.
    public func calibrationText(tokens: Int, sample: Int) -> [Int32]? {
        guard sample < 3 else { return nil }
        var rng = SplitMix64(seed: seed &+ 0x7E47 &+ UInt64(sample))
        return (0..<tokens).map { _ in Int32.random(in: 2...98, using: &rng) }
    }

    /// Random tokens with a 5-token needle at `depth` and a 6-token question last.
    public func needleCase(length: Int, depth: Double, sample: Int) -> (prompt: [Int32], question: Int, needle: Range<Int32>)? {
        guard length >= 16 else { return nil }
        var rng = SplitMix64(seed: seed &+ UInt64(sample) &* 31 &+ UInt64(length))
        let prompt = (0..<length).map { _ in Int32.random(in: 2...98, using: &rng) }
        let at = Int32(Double(length - 11) * depth)
        return (prompt, 6, at..<(at + 5))
    }
}
