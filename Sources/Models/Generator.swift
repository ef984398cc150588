import KVCache
import TensorMath

/// Greedy decoding over a paged cache, with timings.
public struct Generation: Sendable {
    public var tokens: [Int32] = []
    public var promptTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var stoppedAtEOS = false
    /// Logits that chose each generated token (kept only when asked).
    public var stepLogits: [[Float]] = []
    /// Largest bytes of pages the cache referenced at any point (after a forward, before compressing).
    public var peakKVPageBytes = 0
    /// Time spent in the compression hook, and how often it ran.
    public var compressSeconds = 0.0
    public var compressions = 0
    /// The pages decode steps read, as the last compression chose them (Quest); nil: every page.
    public var reads: (any PageSelector)?

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Decode rate over the forward passes after the first generated token.
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(tokens.count - 1, 0)) / decodeSeconds : 0 }
}

/// When and how to compress the cache during generation. The model knows nothing of policies: the
/// caller passes closures (KVKit's runner passes a policy's compressor).
public struct CompressionHooks {
    /// Called before a forward pass that ends at position `end` and is followed by a compression
    /// (to set up the attention statistics the policy needs).
    public var prepare: (PagedKVCache, _ end: Int) throws -> Void
    /// Compresses the cache; returns the page selector later passes read through (nil: every page).
    public var compress: (PagedKVCache) throws -> (any PageSelector)?
    /// Sees the prompt's logits, row by row (for policies that score tokens by the model's own surprise).
    public var logitsTap: LogitsTap?
    /// Prefill the prompt this many tokens at a time, compressing after each chunk (nil: all at once).
    public var prefillChunk: Int?
    /// Also compress after every N decode steps (nil: only after prefill).
    public var every: Int?
    /// Called after each prefill chunk's compression: sets how pages are stored (codec, cold tier), so the
    /// prompt's own attention ran in full precision, as in KIVI.
    public var store: ((PagedKVCache) throws -> Void)?

    public init(
        prepare: @escaping (PagedKVCache, Int) throws -> Void = { _, _ in }, compress: @escaping (PagedKVCache) throws -> (any PageSelector)?,
        logitsTap: LogitsTap? = nil, prefillChunk: Int? = nil, every: Int? = nil, store: ((PagedKVCache) throws -> Void)? = nil
    ) {
        self.prepare = prepare; self.compress = compress; self.logitsTap = logitsTap; self.prefillChunk = prefillChunk; self.every = every; self.store = store
    }
}

extension LanguageModel {
    /// Prefills `prompt` into `cache`, then greedily generates up to `maxTokens` tokens (argmax of raw
    /// logits), stopping at an end-of-turn token unless `stopAtEOS` is false. `onToken` sees each token.
    /// With `hooks`, the cache is compressed after the prompt (or after each prefill chunk) and optionally
    /// every N decode steps.
    public func generate(
        prompt: [Int32], cache: PagedKVCache, maxTokens: Int, stopAtEOS: Bool = true,
        keepLogits: Bool = false, hooks: CompressionHooks? = nil,
        onToken: (Int32) -> Void = { _ in }
    ) throws -> Generation {
        var g = Generation()
        g.promptTokens = prompt.count
        let clock = ContinuousClock()
        func compress() throws {
            guard let hooks else { return }
            let t = clock.now
            g.reads = try hooks.compress(cache)
            g.compressSeconds += (clock.now - t).seconds
            g.compressions += 1
        }
        func track() { g.peakKVPageBytes = max(g.peakKVPageBytes, cache.pageBytes) }
        var logits: [Float] = []
        let chunk = hooks?.prefillChunk ?? prompt.count
        let t0 = clock.now
        var start = 0
        while start < prompt.count {
            let end = min(prompt.count, start + max(1, chunk))
            try hooks?.prepare(cache, cache.nextPosition + end - start)
            let part = try forward(Array(prompt[start..<end]), cache: cache, reads: g.reads, logitsTap: hooks?.logitsTap)
            if end == prompt.count { logits = part }
            track()
            let p0 = clock.now
            try compress()
            try hooks?.store?(cache)
            g.prefillSeconds -= (clock.now - p0).seconds  // prefill time excludes compression and storing
            start = end
        }
        g.prefillSeconds += (clock.now - t0).seconds
        // Each decode-time compression observes the queries of the passes just before it: the statistics
        // restart right after a compression, with the window ending where the next one will happen.
        if let every = hooks?.every { try hooks?.prepare(cache, cache.nextPosition + every) }
        let t1 = clock.now
        for step in 0..<maxTokens {
            let next = Int32(logits.withUnsafeBufferPointer { Vector.argmax($0) })
            if keepLogits { g.stepLogits.append(logits) }
            g.tokens.append(next)
            onToken(next)
            if stopAtEOS && tokenizer.stopIds.contains(next) { g.stoppedAtEOS = true; break }
            if step == maxTokens - 1 { break }
            let compressNow = hooks?.every.map { (step + 1) % $0 == 0 } ?? false
            logits = try forward([next], cache: cache, reads: g.reads)
            track()
            if compressNow, let every = hooks?.every {
                try compress()
                try hooks?.prepare(cache, cache.nextPosition + every)
            }
        }
        g.decodeSeconds = (clock.now - t1).seconds
        return g
    }
}
