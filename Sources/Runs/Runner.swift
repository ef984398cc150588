import Foundation
import KVCache
import Models
import ModelFile
import Policies
import Probes
import TensorMath

/// One policy at one budget, as a run sweeps them.
public struct Variant: Sendable {
    public let spec: PolicySpec
    public let policy: any EvictionPolicy
    public let budget: Budget
    /// How the fork stores full pages after compression (nil: Float32), and its `--quant` name.
    public let codec: CacheCodec?
    public var quant: String { codec?.name ?? "fp32" }
    public init(spec: PolicySpec, policy: any EvictionPolicy, budget: Budget, codec: CacheCodec? = nil) {
        self.spec = spec; self.policy = policy; self.budget = budget; self.codec = codec
    }

    /// Every policy at every budget and codec, from command-line lists. `full` (which every run includes
    /// in Float32 as the reference) appears only with a codec, once, at budget 1.0: quantization alone.
    public static func grid(
        policies: [String], budgets: [String], quants: [String] = ["fp32"], registry: PolicyRegistry = .shared,
        codecs: CodecRegistry = .shared
    ) throws -> (variants: [Variant], budgets: [Budget]) {
        let bs = try budgets.map { try Budget(parsing: $0) }
        let cs = try quants.map { try codecs.make($0) }
        var out: [Variant] = []
        for text in policies {
            let spec = try registry.parse(text)
            let p = try registry.make(spec)
            for c in cs {
                if spec.name == "full" {
                    if let c, !out.contains(where: { $0.spec.name == "full" && $0.quant == c.name }) {
                        out.append(Variant(spec: spec, policy: p, budget: .fraction(1), codec: c))
                    }
                    continue
                }
                for b in bs { out.append(Variant(spec: spec, policy: p, budget: b, codec: c)) }
            }
        }
        return (out, bs)
    }
}

/// Runs probe cases against variants: one prefill per case with every statistic any variant needs, a
/// copy-on-write fork per variant, compression, then the case's turns on the compressed fork.
public struct Runner {
    public let model: any LanguageModel
    public var queryAware = false
    /// Answer tokens per turn (nil: by the turn, see `maxAnswerTokens(for:)`).
    public var maxAnswerTokens: Int?
    /// The cap for a turn without an answer prefix: the answer must be allowed to finish its sentence
    /// ("The special magic number for gentle-willow mentioned in the provided text is 7194421." is 24 tokens).
    public static let unprefixedAnswerTokens = 48
    public var pageSize = 16
    public var seed: UInt64 = 0
    /// Prefill once and fork (true), or prefill again for every variant (false; for the benchmark).
    public var sharePrefill = true
    /// Moves each variant's pages beyond the most recent `hotPages` per stream to the LZ4 cold store
    /// after compression (nil: every page stays hot). The full-cache reference stays hot.
    public var offload: OffloadConfig?
    /// With `offload`: a folder for the cold store's file (one per case's pool; nil: memory).
    public var offloadDirectory: String?
    /// Compress again while answering, back to the budget the prompt was given (a fixed token count per
    /// stream, as decode-time methods such as R-KV keep it): each `compressEvery` tokens appended (nil:
    /// never), and after each later turn's question is appended (`compressBetweenTurns`). Off, the cache
    /// is compressed once, after the prompt, and grows with the turns.
    public var compressEvery: Int?
    public var compressBetweenTurns = false
    var recompresses: Bool { compressEvery != nil || compressBetweenTurns }

    public init(model: any LanguageModel) { self.model = model }

    /// Tokens of a turn's text after the context (or after the previous answer).
    func turnTokens(_ turn: Turn, index: Int, previous: String?) -> [Int32] {
        let q = turn.question.replacingOccurrences(of: "{previous}", with: previous ?? "unknown")
        let p = turn.answerPrefix.replacingOccurrences(of: "{previous}", with: previous ?? "unknown")
        // The first question continues the open user turn that holds the context; later ones open their own.
        let lead = index == 0 ? "\n\n" : model.chatTemplate.header("user")
        return model.tokenizer.encode(lead + q + model.chatTemplate.userToAssistant + p)
    }

    /// Tokens a turn's answer may take: the case's own `max_new_tokens`, else the run's cap, else by the
    /// turn: after an answer prefix the values come first (room for each, 7 digits and a separator, at
    /// least 14 tokens); without one, 48 tokens so the sentence before the value can finish. Decoding
    /// stops earlier once more tokens could not change the score.
    func maxAnswerTokens(for turn: Turn) -> Int {
        if let n = turn.maxNewTokens ?? maxAnswerTokens { return n }
        return turn.answerPrefix.isEmpty ? max(Self.unprefixedAnswerTokens, 10 * turn.answers.count + 6) : max(14, 10 * turn.answers.count + 6)
    }

    /// Variants answered together in one batched forward pass (each holds its own compressed fork).
    public var batchSize = 32

    /// One cache holding a case's prompt, and what travels beside it — the runner's state, not the
    /// cache's: the page selector its compression left (Quest) and the prompt's last logits (a
    /// query-aware conversation starts answering from them without running a token again).
    struct Fork {
        let cache: PagedKVCache
        var reads: (any PageSelector)?
        let promptLogits: [Float]
        /// How to compress again while answering (nil: never; the full cache and read-side policies).
        var recompress: Recompression? = nil
    }

    /// What compressing a fork again while it answers takes: the variant's policy, its budget fixed in
    /// tokens at the prompt, what the prefill gave the policy, and how pages are stored afterwards.
    struct Recompression {
        let step: VariantStep
        let budget: Budget
        let context: CompressionContext
        let every: Int?
        let betweenTurns: Bool
        let rope: RoPEInfo

        /// Compresses `cache` back to the budget and stores its pages as after the prompt.
        func apply(_ cache: PagedKVCache) throws {
            try step.compress(cache, budget: budget, context: context)
            try step.store(cache)
        }

        /// Restarts the attention statistics so that the queries up to position `end` (exclusive) are the
        /// next compression's observation window.
        func observe(_ cache: PagedKVCache, until end: Int) {
            Compressor.prepare(cache, needs: step.policy.needs, promptEnd: end, rope: rope)
        }
    }

    /// Asks every case turn on each fork (the context already in it; in query-aware mode also the
    /// first question), all forks advancing together one forward pass at a time.
    func askAll(_ c: ProbeCase, forks: [Fork]) throws -> [TurnOutcome] {
        let clock = ContinuousClock()
        let conversations = forks.map { Conversation(c, fork: $0, runner: self) }
        while true {
            let active = conversations.filter { !$0.done }
            guard !active.isEmpty else { break }
            let t0 = clock.now
            let logits = try model.forwardBatch(
                active.map(\.input), caches: active.map(\.fork.cache), reads: active.map(\.fork.reads),
                attentionTaps: active.map(\.tap))
            let seconds = (clock.now - t0).seconds, rows = Double(active.reduce(0) { $0 + $1.input.count })
            for (conv, l) in zip(active, logits) {
                let ran = conv.input.count
                conv.receive(l, seconds: seconds * Double(ran) / rows)
                try conv.recompressIfDue(appended: ran)
            }
        }
        return conversations.map(\.outcome)
    }

    /// Fraction of each needle's tokens present per (layer, head).
    static func survival(_ c: ProbeCase, cache: PagedKVCache) -> (byNeedle: [String: Double], byLayerHead: [[Double]]) {
        var byNeedle: [String: Double] = [:]
        var grid = [[Double]](repeating: [Double](repeating: 0, count: cache.kvHeads), count: cache.layers)
        let needlePositions = c.needles.map { Set($0.range.map(Int32.init)) }
        for l in 0..<cache.layers {
            for h in 0..<cache.kvHeads {
                let kept = Set(cache.slots(layer: l, head: h).map(\.position))
                var sum = 0.0
                for (n, pos) in zip(c.needles, needlePositions) {
                    let f = Double(pos.intersection(kept).count) / Double(max(pos.count, 1))
                    byNeedle[n.label, default: 0] += f / Double(cache.layers * cache.kvHeads)
                    sum += f
                }
                grid[l][h] = sum / Double(max(c.needles.count, 1))
            }
        }
        return (byNeedle, c.needles.isEmpty ? [] : grid)
    }

    /// One turn: its score (a fraction for multi-value). Several turns (multi-query, chained multi-hop):
    /// 1 only when every turn is fully right ("all k found", "whole chain"); per-turn scores stay in the result.
    static func caseScore(_ turns: [Double]) -> Double {
        turns.count == 1 ? turns[0] : (turns.allSatisfy { $0 == 1 } ? 1 : 0)
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return .nan }
        var d = 0.0, na = 0.0, nb = 0.0
        for i in a.indices { d += Double(a[i]) * Double(b[i]); na += Double(a[i]) * Double(a[i]); nb += Double(b[i]) * Double(b[i]) }
        return na > 0 && nb > 0 ? d / (na.squareRoot() * nb.squareRoot()) : (na == nb ? 1 : 0)
    }

    /// ‖b − a‖ / ‖a‖: the compressed output's error relative to the full cache's.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return .nan }
        var d = 0.0, na = 0.0
        for i in a.indices { let e = Double(b[i]) - Double(a[i]); d += e * e; na += Double(a[i]) * Double(a[i]) }
        return na > 0 ? (d / na).squareRoot() : (d == 0 ? 0 : .infinity)
    }

    static func kl(_ p: [Float], _ q: [Float]) -> Double {
        func logSoftmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max() ?? 0)
            let lse = m + Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
            return x.map { Double($0) - lse }
        }
        let lp = logSoftmax(p), lq = logSoftmax(q)
        var s = 0.0
        for i in lp.indices { s += Foundation.exp(lp[i]) * (lp[i] - lq[i]) }
        return max(0, s)
    }

    /// A fresh cache holding `prompt`, with the statistics `policies` need tapped, its prefill time and
    /// last logits, and what they need from the prefill besides the cache (token text; self-information
    /// when asked; the results of their own passes).
    func prefill(_ prompt: [Int32], question: Int?, policies: [any EvictionPolicy]) throws -> (
        cache: PagedKVCache, seconds: Double, logits: [Float], context: CompressionContext
    ) {
        let clock = ContinuousClock()
        let cache = model.makeCache(pageSize: pageSize)
        if offload != nil, let dir = offloadDirectory { cache.pool.coldStore = try ColdStore(directory: dir) }
        let preparation = PolicyPreparation(policies: policies)
        try preparation.begin(cache, model: model, promptEnd: prompt.count, question: question)
        let t = clock.now
        let logits = try model.forward(prompt, cache: cache, logitsTap: preparation.logitsTap)
        // KVzip's reconstruction pass counts as prefill: it runs once per case for every kvzip variant.
        let context = try preparation.context(cache, model: model, prompt: prompt)
        return (cache, (clock.now - t).seconds, logits, context)
    }

    /// The prompt a case compresses: its context, and in query-aware mode the first question too.
    func prompt(_ c: ProbeCase) -> [Int32] { queryAware ? c.context + turnTokens(c.turns[0], index: 0, previous: nil) : c.context }
    /// The length of the question that ends `prompt(c)` (query-aware mode: the first turn's tokens), else nil.
    func question(_ c: ProbeCase, prompt: [Int32]) -> Int? { queryAware ? prompt.count - c.context.count : nil }

    /// The positions each (layer, KV head) stream keeps of a case's prompt once `variant` has compressed
    /// it, `[layer][head]` ascending: which tokens survived where, and what a side-by-side check against
    /// another implementation compares.
    public func keptPositions(_ c: ProbeCase, variant: Variant) throws -> [[[Int32]]] {
        try keptPositions(c, variants: [variant])[0]
    }

    /// `keptPositions` for several variants from one prefill (each compresses its own fork, as `run` does).
    public func keptPositions(_ c: ProbeCase, variants: [Variant]) throws -> [[[[Int32]]]] {
        let prompt = self.prompt(c)
        let p = try prefill(prompt, question: question(c, prompt: prompt), policies: variants.map(\.policy))
        return try variants.map { v in
            let cache = p.cache.fork()
            try Compressor.compress(cache, policy: v.policy, budget: v.budget, seed: seed, context: p.context)
            return (0..<cache.layers).map { l in (0..<cache.kvHeads).map { h in cache.slots(layer: l, head: h).map(\.position) } }
        }
    }

    /// Runs one case against the full cache and every variant.
    public func run(_ c: ProbeCase, variants: [Variant]) throws -> [VariantResult] {
        let clock = ContinuousClock()
        let prompt = self.prompt(c)
        let question = self.question(c, prompt: prompt)
        let shared = sharePrefill ? try prefill(prompt, question: question, policies: variants.map(\.policy)) : nil
        let fullCache: PagedKVCache, fullPrefill: Double, fullLogits: [Float]
        if let shared {
            fullCache = shared.cache.fork(); fullPrefill = shared.seconds; fullLogits = shared.logits
        } else {
            (fullCache, fullPrefill, fullLogits, _) = try prefill(prompt, question: question, policies: [])
        }
        let fullLive = fullCache.liveTokenBytes

        // Compressed forks, measured right after compression (before the turns append their tokens).
        struct Prepared {
            let spec: String, budget: String, quant: String, fork: Fork, prefill: Double, compress: Double
            let survival: (byNeedle: [String: Double], byLayerHead: [[Double]]), live: Int, kept: Int
            let bytes: (raw: Int, packed: Int, cold: Int, coldUncompressed: Int)
        }
        let fullPrepared = Prepared(
            spec: "full", budget: "1.0", quant: "fp32", fork: Fork(cache: fullCache, promptLogits: fullLogits), prefill: fullPrefill, compress: 0,
            survival: Self.survival(c, cache: fullCache), live: fullLive,
            kept: fullCache.totalSlots, bytes: fullCache.byteBreakdown)
        // fp16 bytes of the full cache's K/V: what every ratio against fp16 divides.
        let fp16Bytes = fullCache.totalSlots * 2 * fullCache.headDim * 2
        func prepare(_ v: Variant) throws -> Prepared {
            let (cache, pre, logits, context): (PagedKVCache, Double, [Float], CompressionContext)
            if let shared {
                (cache, pre, logits, context) = (shared.cache.fork(), 0, shared.logits, shared.context)
            } else {
                (cache, pre, logits, context) = try prefill(prompt, question: question, policies: [v.policy])
            }
            let t = clock.now
            let step = VariantStep(policy: v.policy, seed: seed, codec: v.codec, offload: offload)
            let compression = try step.compress(cache, budget: v.budget, context: context)
            let recompress = recompresses && v.policy.compresses && v.policy.evicts && !v.budget.isFull
            // Compressing again while answering keeps the statistics going (H2O's totals span every query).
            if !recompress { cache.observations = nil }
            // Quantization and offload come after eviction, as in KIVI: the prompt ran in full precision.
            try step.store(cache)
            try cache.pool.checkIntegrity()
            var fork = Fork(cache: cache, reads: compression.reads, promptLogits: logits)
            if recompress {
                let r = Recompression(
                    step: step, budget: v.budget.fixed(atPrompt: prompt.count), context: context,
                    every: compressEvery, betweenTurns: compressBetweenTurns, rope: model.rope)
                if let every = compressEvery { r.observe(cache, until: cache.nextPosition + every) }
                fork.recompress = r
            }
            return Prepared(
                spec: v.spec.description, budget: v.budget.description, quant: v.quant,
                fork: fork, prefill: pre,
                compress: v.codec == nil && offload == nil ? compression.stats.seconds : (clock.now - t).seconds,
                survival: Self.survival(c, cache: cache), live: cache.liveTokenBytes, kept: cache.totalSlots, bytes: cache.byteBreakdown)
        }
        // Compression is one-shot here: later passes need no attention statistics.
        fullCache.observations = nil
        // The full cache and the variants, `batchSize` at a time (bounds the forks alive at once).
        var answered: [(Prepared, TurnOutcome)] = []
        var pending = Array(variants.reversed())
        var batch = [fullPrepared]
        while !batch.isEmpty || !pending.isEmpty {
            while batch.count < max(1, batchSize), let v = pending.popLast() { batch.append(try prepare(v)) }
            answered += zip(batch, try askAll(c, forks: batch.map(\.fork))).map { ($0, $1) }
            batch = []
        }
        let full = answered[0].1, digest = c.contentSHA256
        return answered.map { p, outcome in
            let s = p.survival
            var r = VariantResult(
                caseId: c.id, probe: c.probe, length: c.length, depth: c.depth, sample: c.sample, policy: p.spec, budget: p.budget,
                quant: p.quant, queryAware: queryAware, score: Self.caseScore(outcome.scores),
                turnScores: outcome.scores, answers: outcome.answers,
                needleSurvival: s.byLayerHead.isEmpty ? nil : s.byLayerHead.joined().reduce(0, +) / Double(s.byLayerHead.joined().count),
                survivalByNeedle: s.byNeedle, survivalByLayer: s.byLayerHead.map { $0.reduce(0, +) / Double(max($0.count, 1)) },
                survivalByLayerHead: s.byLayerHead, firstTokenKL: Self.kl(full.firstLogits, outcome.firstLogits),
                attentionCosineByLayer: zip(full.firstAttention, outcome.firstAttention).map { Self.cosine($0, $1) },
                attentionRelativeErrorByLayer: zip(full.firstAttention, outcome.firstAttention).map { Self.relativeError($0, $1) },
                contextTokens: prompt.count, keptSlots: p.kept, liveBytes: p.live, fullLiveBytes: fullLive, windowFreedBytes: fullCache.windowFreedBytes,
                compressionRatio: Double(fullLive) / Double(max(p.live, 1)),
                kvDataBytes: p.bytes.raw + p.bytes.packed + p.bytes.cold,
                ratioVsFP16: Double(fp16Bytes) / Double(max(p.bytes.raw + p.bytes.packed + p.bytes.cold, 1)),
                hotBytes: p.bytes.raw + p.bytes.packed, coldBytes: p.bytes.cold, coldUncompressedBytes: p.bytes.coldUncompressed,
                readFraction: p.fork.reads?.readFraction ?? 1,
                recompressions: p.fork.recompress != nil ? outcome.recompressions : nil, recompressedSlots: outcome.recompressedSlots,
                ownAnswerSurvival: outcome.ownAnswerSurvival,
                prefillSeconds: p.prefill, compressSeconds: p.compress + outcome.recompressSeconds, decodeSeconds: outcome.seconds)
            r.caseSHA256 = digest
            return r
        }
    }
}

extension CompressionContext {
    /// What a prefill with `tokenizer` gives a policy: token text, and the self-information `collected`
    /// when a policy asked for it.
    public init(tokenizer: Tokenizer, selfInformation collected: SelfInformation?) {
        self.init(tokenText: { tokenizer.decode([$0]) }, selfInformation: collected?.values)
    }
}
