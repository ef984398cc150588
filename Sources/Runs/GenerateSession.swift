import Foundation
import KVCache
import Models
import Policies

/// Compressing one variant's cache and storing its pages afterwards: the one code path for `run`'s forks
/// (after the prompt, and again while answering) and `generate` (after the prompt or each prefill chunk,
/// and every N decode steps). Eviction first, then quantization and offload, as in KIVI: the prompt's own
/// attention ran in full precision.
struct VariantStep {
    let policy: any EvictionPolicy
    let seed: UInt64
    let codec: CacheCodec?
    let offload: OffloadConfig?

    @discardableResult
    func compress(_ cache: PagedKVCache, budget: Budget, context: CompressionContext) throws -> Compression {
        try Compressor.compress(cache, policy: policy, budget: budget, seed: seed, context: context)
    }

    /// Brings the cache's pages to the variant's codec and offload settings (new full pages included).
    func store(_ cache: PagedKVCache) throws {
        try cache.quantize(codec)
        if let offload { try cache.setOffload(offload) }
    }
}

/// `kvkit generate` as a library session: one prompt, one variant (policy, budget, codec), compressed by
/// the steps `run` compresses a variant's fork with — `PolicyPreparation` for the statistics and passes,
/// `VariantStep` for eviction and page storage, a decode-time budget fixed at the prompt's size — then
/// greedy decoding (`LanguageModel.generate`). The command line only parses flags and prints.
public struct GenerateSession {
    public let model: any LanguageModel
    public let variant: Variant
    /// Moves pages beyond the most recent `hotPages` per stream to the cold store once the prompt has run.
    public var offload: OffloadConfig?
    /// Where cold pages go (the default: memory).
    public var coldStore = ColdStore()
    /// Also compress every N decode steps (nil: only after the prompt).
    public var compressEvery: Int?
    /// Prefill the prompt N tokens at a time, compressing after each chunk (nil: all at once).
    public var prefillChunk: Int?
    public var seed: UInt64 = 0
    public var pageSize = 16

    public init(model: any LanguageModel, variant: Variant) { self.model = model; self.variant = variant }

    /// What one generation produced: the tokens and timings, the cache as it ended, the last compression's figures.
    public struct Outcome {
        public let generation: Generation
        public let cache: PagedKVCache
        public let lastCompression: CompressionStats?
        /// The generated text, end-of-turn tokens left out.
        public let answer: String
    }

    /// Whether the session touches the cache at all (a policy that compresses, a schedule, or page storage).
    var compresses: Bool {
        variant.policy.compresses || compressEvery != nil || prefillChunk != nil || variant.codec != nil || offload != nil
    }

    /// Checks the settings and the prompt's length before any work: one-line usage errors.
    public func check(promptTokens: Int, maxTokens: Int) throws {
        guard (1...(1 << 20)).contains(maxTokens) else { throw RunError.usage("--max-tokens must be from 1 to 1048576 (got \(maxTokens))") }
        if let n = compressEvery, n < 1 { throw RunError.usage("--compress-every must be at least 1 (got \(n))") }
        if let n = prefillChunk, n < 1 { throw RunError.usage("--prefill-chunk must be at least 1 (got \(n))") }
        guard promptTokens > 0 else { throw RunError.usage("the prompt is empty") }
        guard promptTokens + maxTokens <= model.config.contextLength else {
            throw RunError.usage(
                "prompt (\(promptTokens) tokens) plus --max-tokens \(maxTokens) exceeds the model's context of \(model.config.contextLength); shorten the prompt or lower --max-tokens"
            )
        }
    }

    /// Prefills `prompt`, compresses as `run` compresses this variant, and decodes up to `maxTokens` tokens
    /// greedily, stopping at an end of turn; `onToken` sees each token as it is chosen.
    public func generate(prompt: [Int32], maxTokens: Int, onToken: (Int32) -> Void = { _ in }) throws -> Outcome {
        try check(promptTokens: prompt.count, maxTokens: maxTokens)
        let cache = model.makeCache(pageSize: pageSize)
        cache.pool.coldStore = coldStore
        let step = VariantStep(policy: variant.policy, seed: seed, codec: variant.codec, offload: offload)
        var last: CompressionStats?
        var hooks: CompressionHooks?
        if compresses {
            let preparation = PolicyPreparation(policies: [variant.policy])
            let budget = variant.budget, promptTokens = prompt.count
            hooks = CompressionHooks(
                prepare: { cache, end in try preparation.begin(cache, model: model, promptEnd: end) },
                compress: { cache in
                    let context = try preparation.context(cache, model: model)
                    // While decoding, a fractional budget is that share of the prompt (a fixed size, as
                    // decode-time methods keep it), not of the cache as it stands.
                    let decoding = cache.nextPosition > promptTokens
                    let done = try step.compress(cache, budget: decoding ? budget.fixed(atPrompt: promptTokens) : budget, context: context)
                    last = done.stats
                    return done.reads
                },
                logitsTap: preparation.logitsTap, prefillChunk: prefillChunk, every: compressEvery,
                store: variant.codec != nil || offload != nil ? { try step.store($0) } : nil)
        }
        let g: Generation
        do {
            g = try model.generate(prompt: prompt, cache: cache, maxTokens: maxTokens, hooks: hooks, onToken: onToken)
        } catch let e as PolicyError {
            throw RunError.usage(e.description)
        }
        let stops = model.tokenizer.stopIds
        return Outcome(generation: g, cache: cache, lastCompression: last, answer: model.tokenizer.decode(g.tokens.filter { !stops.contains($0) }))
    }
}

/// Figures of one `kvkit generate` run (`--report FILE`), for scripts and tests.
public struct GenerateReport: Codable, Sendable {
    public var promptTokens: Int, generatedTokens: Int, threads: Int, pageSize: Int
    public var prefillTokensPerSecond: Double, decodeTokensPerSecond: Double
    public var kvLiveTokenBytes: Int, kvPageBytes: Int, kvPoolAllocatedBytes: Int
    public var weightBytes: Int, modelFileBytes: Int, prefillChunk: Int
    public var peakResidentBytes: Int?
    public var policy: String, budget: String, keptSlots: Int, peakKVPageBytes: Int, compressions: Int
    /// Fraction of the pages the kernel read during decoding (1 unless a read-side policy such as quest chose pages).
    public var readFraction: Double
    /// The codec of full pages, K/V data bytes as stored and the ratio of their fp16 size to that.
    public var quant: String, kvDataBytes: Int, ratioVsFP16: Double
    /// Of the K/V data: hot, cold (compressed) and the cold data uncompressed.
    public var hotBytes: Int, coldBytes: Int, coldUncompressedBytes: Int
    public var answer: String

    /// The report of `outcome`, produced by `session` with `threads` threads (`peakResident`: the process's peak RSS).
    public init(_ outcome: GenerateSession.Outcome, session: GenerateSession, threads: Int, peakResident: Int?) {
        let g = outcome.generation, cache = outcome.cache, model = session.model, b = cache.byteBreakdown
        promptTokens = g.promptTokens; generatedTokens = g.tokens.count; self.threads = threads; pageSize = session.pageSize
        prefillTokensPerSecond = g.prefillTokensPerSecond; decodeTokensPerSecond = g.decodeTokensPerSecond
        kvLiveTokenBytes = cache.liveTokenBytes; kvPageBytes = cache.pageBytes; kvPoolAllocatedBytes = cache.pool.allocatedBytes
        weightBytes = model.weightBytes; modelFileBytes = model.file.file.size; prefillChunk = model.prefillChunk
        peakResidentBytes = peakResident
        policy = session.variant.spec.description; budget = session.variant.budget.description; keptSlots = cache.totalSlots
        peakKVPageBytes = g.peakKVPageBytes; compressions = g.compressions; readFraction = g.reads?.readFraction ?? 1
        quant = cache.codec?.name ?? "fp32"; kvDataBytes = cache.kvDataBytes; ratioVsFP16 = Self.ratioVsFP16(cache)
        hotBytes = b.raw + b.packed; coldBytes = b.cold; coldUncompressedBytes = b.coldUncompressed
        answer = outcome.answer
    }

    /// The fp16 size of the cache's K/V over the bytes they are stored in.
    public static func ratioVsFP16(_ c: PagedKVCache) -> Double { Double(c.totalSlots * 2 * c.headDim * 2) / Double(max(c.kvDataBytes, 1)) }
}
