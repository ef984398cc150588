import ArgumentParser
import KVCache
import Models
import Policies
import Runs

/// Flags that choose a compression policy.
struct PolicyOptions: ParsableArguments {
    @Option(help: "Compression policy: NAME or NAME:param=value,... (see 'kvkit policies').")
    var policy: String = "full"

    @Option(parsing: .unconditional, help: "Budget per stream: a fraction in (0, 1] (0.25) or a token count (256).")
    var budget: String = "1.0"

    @Option(parsing: .unconditional, help: "Also compress every N decode steps (default: only after the prompt).")
    var compressEvery: Int?

    @Option(parsing: .unconditional, help: "Prefill the prompt N tokens at a time, compressing after each chunk.")
    var prefillChunk: Int?

    @Option(parsing: .unconditional, help: "Seed for seeded policies (random).")
    var seed: UInt64 = 0

    /// Parses the policy and budget, turning mistakes into one-line usage errors (exit 64).
    func resolve() throws -> (spec: PolicySpec, policy: any EvictionPolicy, budget: Budget) {
        do {
            let spec = try PolicyRegistry.shared.parse(policy)
            let p = try PolicyRegistry.shared.make(spec)
            let b = try Budget(parsing: budget)
            if let n = compressEvery, n < 1 { throw fail("--compress-every must be at least 1 (got \(n))", code: ExitCodes.usage) }
            if let n = prefillChunk, n < 1 { throw fail("--prefill-chunk must be at least 1 (got \(n))", code: ExitCodes.usage) }
            return (spec, p, b)
        } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
    }

    /// Hooks that compress with the policy after the prompt (and per the schedule flags).
    /// With a codec or offload settings, pages are stored that way once the prompt has run. While
    /// decoding, a fractional budget means that share of the prompt's `promptTokens` (a fixed size, as
    /// decode-time methods keep it), not of the cache as it stands: otherwise each compression would
    /// shrink the cache again.
    func hooks(
        model: any LanguageModel, policy: any EvictionPolicy, budget: Budget, stats: StatsBox, promptTokens: Int,
        codec: CacheCodec? = nil, offload: OffloadConfig? = nil
    ) -> CompressionHooks? {
        let storing = codec != nil || offload != nil
        if !policy.compresses && compressEvery == nil && prefillChunk == nil && !storing { return nil }
        let preparation = PolicyPreparation(policies: [policy])
        return CompressionHooks(
            prepare: { cache, end in try preparation.begin(cache, model: model, promptEnd: end) },
            compress: { cache in
                let context = try preparation.context(cache, model: model)
                let decoding = cache.nextPosition > promptTokens
                let done = try Compressor.compress(
                    cache, policy: policy, budget: decoding ? budget.fixed(atPrompt: promptTokens) : budget,
                    seed: seed, context: context)
                stats.last = done.stats
                return done.reads
            },
            logitsTap: preparation.logitsTap,
            prefillChunk: prefillChunk, every: compressEvery,
            store: storing
                ? { cache in
                    if cache.codec == nil, let codec { try cache.quantize(codec) }
                    if cache.offload == nil, let offload { try cache.setOffload(offload) }
                } : nil)
    }
}

/// The last compression's figures, filled in by the hook.
final class StatsBox { var last: CompressionStats? }
