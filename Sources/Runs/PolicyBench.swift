import Foundation
import KVCache
import Models
import Policies
import Probes
import TensorMath

/// `kvkit bench-policies` as a library session: one prefill with every policy's statistics and passes
/// (`PolicyPreparation`, as `run` prepares a prefill), then per policy its selection and compaction timed
/// on forks, and optionally greedy decoding on the compressed fork (`VariantStep`, as `run` compresses a
/// variant). The command line prints the report.
public struct PolicyBench {
    public let model: any LanguageModel
    public var pageSize = 16
    /// Repetitions of each compression (the median is reported).
    public var repeats = 5
    /// Tokens decoded after each policy's compression (0: no decode figures).
    public var decodeTokens = 16
    /// With `decodeTokens`: also decode with pages beyond this many per stream in the LZ4 cold tier (0: not).
    public var hotPages = 0

    public init(model: any LanguageModel) { self.model = model }

    /// One policy's figures; nil figures where it could not run (its own pass could not run on the prompt).
    public struct Row: Sendable {
        public let name: String
        /// Median seconds of selection and compaction.
        public let compressSeconds: Double?
        public let keptSlots: Int?, liveBytesAfter: Int?
        public let decodeTokensPerSecond: Double?, readFraction: Double?, coldDecodeTokensPerSecond: Double?
    }

    public struct Report: Sendable {
        public let promptTokens: Int
        /// Prefill with every policy's statistics tapped, and without.
        public let prefillSeconds: Double, plainPrefillSeconds: Double
        /// The widest observation window any policy asked for.
        public let window: Int
        /// Median seconds to fork the whole cache, its bytes and pages.
        public let forkSeconds: Double, cacheBytes: Int, cachePages: Int
        /// Each pass that ran after the prompt (label, seconds), and those that could not run.
        public let passes: [(label: String, seconds: Double)]
        public let unavailable: [String]
        public let rows: [Row]
    }

    /// Prompt tokens for speed measurements: the generated haystack's varied English, cut at `tokens`.
    public static func prompt(_ model: any LanguageModel, tokens: Int) -> [Int32] {
        var ids = model.tokenizer.beginning
        var i = 0
        let hay = HaystackGenerator(seed: 1)
        while ids.count < tokens {
            ids += model.tokenizer.encode(" " + hay.sentences(from: i, count: 16).joined(separator: " "))
            i += 16
        }
        return Array(ids.prefix(tokens))
    }

    /// Greedy decode speed on `cache` in tokens/s: `tokens` steps starting from `logits`, the logits of the
    /// prompt the cache holds.
    public static func greedyDecodeRate(
        _ model: any LanguageModel, cache: PagedKVCache, reads: (any PageSelector)? = nil, from logits: [Float], tokens: Int
    ) throws -> Double {
        var logits = logits
        let t = try ContinuousClock().measure {
            for _ in 0..<tokens {
                let next = Int32(logits.withUnsafeBufferPointer { Vector.argmax($0) })
                logits = try model.forward([next], cache: cache, reads: reads)
            }
        }
        return Double(tokens) / t.seconds
    }

    /// Measures `policies` (name, policy) at `budget` on `prompt`.
    public func measure(prompt ids: [Int32], policies: [(String, any EvictionPolicy)], budget: Budget) throws -> Report {
        let clock = ContinuousClock()
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        let cache = model.makeCache(pageSize: pageSize)
        let preparation = PolicyPreparation(policies: policies.map(\.1))
        try preparation.begin(cache, model: model, promptEnd: ids.count)
        var promptLogits: [Float] = []
        let prefill = try clock.measure { promptLogits = try model.forward(ids, cache: cache, logitsTap: preparation.logitsTap) }.seconds
        var passes: [(label: String, seconds: Double)] = [], unavailable: [String] = []
        // No room to re-read the prompt: kvzip reports n/a, every other policy still runs.
        let context = try preparation.context(
            cache, model: model, prompt: ids, timed: { passes.append(($0, $1)) }, unavailable: { unavailable.append($0.description) })
        let plain = model.makeCache(pageSize: pageSize)
        let plainPrefill = try clock.measure { try model.forward(ids, cache: plain) }.seconds
        let forkSeconds = median((0..<max(1, repeats)).map { _ in clock.measure { _ = cache.fork() }.seconds })
        var rows: [Row] = []
        for (name, policy) in policies {
            if policy.passes.contains(where: { context.prepared[$0.key] == nil }) {
                rows.append(
                    Row(
                        name: name, compressSeconds: nil, keptSlots: nil, liveBytesAfter: nil, decodeTokensPerSecond: nil, readFraction: nil,
                        coldDecodeTokensPerSecond: nil))
                continue
            }
            let step = VariantStep(policy: policy, seed: 0, codec: nil, offload: nil)
            var times: [Double] = [], last = CompressionStats()
            for _ in 0..<max(1, repeats) {
                last = try step.compress(cache.fork(), budget: budget, context: context).stats
                times.append(last.seconds)
            }
            var rate: Double?, read: Double?, coldRate: Double?
            if decodeTokens > 0 {
                let f = cache.fork()
                let reads = try step.compress(f, budget: budget, context: context).reads
                f.observations = nil
                rate = try Self.greedyDecodeRate(model, cache: f, reads: reads, from: promptLogits, tokens: decodeTokens)
                read = reads?.readFraction ?? 1
                if hotPages > 0 {
                    let g = cache.fork()
                    let reads = try step.compress(g, budget: budget, context: context).reads
                    g.observations = nil
                    try g.setOffload(OffloadConfig(hotPages: hotPages))
                    coldRate = try Self.greedyDecodeRate(model, cache: g, reads: reads, from: promptLogits, tokens: decodeTokens)
                }
            }
            rows.append(
                Row(
                    name: name, compressSeconds: median(times), keptSlots: last.slotsAfter, liveBytesAfter: last.liveBytesAfter,
                    decodeTokensPerSecond: rate, readFraction: read, coldDecodeTokensPerSecond: coldRate))
        }
        return Report(
            promptTokens: ids.count, prefillSeconds: prefill, plainPrefillSeconds: plainPrefill, window: preparation.needs.window,
            forkSeconds: forkSeconds, cacheBytes: cache.pageBytes, cachePages: cache.uniquePages, passes: passes, unavailable: unavailable, rows: rows)
    }
}
