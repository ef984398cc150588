import Foundation
import KVCache

/// `kvzip` — KVzip (Kim et al., "KVzip: Query-Agnostic KV Cache Compression with Context
/// Reconstruction", 2025). A KV pair matters if the model needs it to reproduce the context: after the
/// prompt, the model is asked to repeat it and reads it again, and each prompt key's score is the largest
/// attention any of those reconstruction queries gives it (the pass `reconstruction` below, run chunk by
/// chunk on throw-away forks; the runner counts it as prefill).
/// The query heads of a group are combined by `gqa` (max, as the paper). As in the paper, the scores are
/// ranked across every head of every layer at once (`scope=global`: heads and layers get what their
/// scores earn, the total stays the budget's, each stream keeps at least its best token); `scope=layer`
/// ranks within each layer, `scope=head` keeps each stream's own top share. Query-agnostic: the score does
/// not depend on any question, so one compressed cache serves them all. The first 4 tokens (sinks) are
/// always kept. Scores as kvpress 0.5.5's `KVzipPress` computes them (`reconstruction` says how).
/// Parameters: `gqa`, `scope`.
public struct KVzipPolicy: EvictionPolicy, Configurable {
    public enum Scope: String, ParameterChoice { case global, layer, head }
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.max
    @Parameter("scope", "where scores compete for the budget: across every layer and head (global, the paper's), within a layer, or per head") public
        var scope = Scope.global
    public var name: String { "kvzip" }
    public init() {}

    /// Attention sinks (the first tokens) are never evicted, as kvpress's `KVzipPress` (`n_sink`).
    public static let sinks: Int32 = 4
    public static let instruction = "Repeat the previous context exactly."
    public static let continuation = "Repeat the part of the previous context exactly, starting with"
    /// Prompt tokens re-read per pass (kvpress's and the paper's `chunk_size`).
    public static let chunk = 2048
    /// Tokens of the previous chunk quoted after `continuation` (kvpress's `prev_postfix_size`).
    public static let quoted = 8
    /// The key of the reconstruction pass's result (it does not depend on `gqa` or `scope`: every kvzip variant shares it).
    public static let passKey = "kvzip.reconstruction"

    public var passes: [PolicyPass] {
        [
            PolicyPass(key: Self.passKey, label: "reconstruction") { model, cache, prompt in
                try prompt.map { try Self.reconstruction(model: model, cache: cache, prompt: $0) } ?? Self.reconstruction(model: model, cache: cache)
            }
        ]
    }

    /// The reconstruction scores for a cache that still holds its whole prompt (read back from its slots):
    /// what `kvkit generate --policy kvzip` compresses with, once, right after the prompt.
    public static func reconstruction(model: any ModelPass, cache: PagedKVCache) throws -> [[Float]] {
        try reconstruction(model: model, cache: cache, prompt: promptReadBack(from: cache, policy: "kvzip"))
    }

    /// The prompt's tokens read back from a cache that still holds exactly its prompt (every position from 0 in
    /// order, as after the prefill): what a policy re-reading the prompt (kvzip, kvcompose) scores when the
    /// caller has no copy. Throws the one-line "compresses once" error otherwise.
    public static func promptReadBack(from cache: PagedKVCache, policy: String) throws -> [Int32] {
        let slots = cache.slots(layer: 0, head: 0)
        guard slots.count == cache.nextPosition, slots.enumerated().allSatisfy({ Int($0.element.position) == $0.offset }) else {
            throw PolicyError.passUnavailable(
                policy: policy,
                reason: "it compresses once, right after the prompt (its score re-reads the whole prompt); drop --compress-every and --prefill-chunk")
        }
        return slots.map(\.token)
    }

    /// KVzip's context-reconstruction pass (Kim et al. 2025), as kvpress 0.5.5's `KVzipPress` computes it:
    /// the prompt after the chat template's opening is re-read in chunks of 2,048 tokens, each on a
    /// throw-away copy-on-write fork of the prefilled cache, after "\n\nRepeat the previous context
    /// exactly." (first chunk) or "\n\nRepeat the part of the previous context exactly, starting with" and
    /// the previous chunk's last 8 tokens (later chunks), then the turn's close and the assistant's opening.
    /// The model runs as usual (every query sees the whole cache); a key's score is the largest probability
    /// any re-read query of its chunk gives it in a softmax over the 4 sink tokens, the chunk and the
    /// re-read tokens only (`Observations.MaximaKeys`), kept per query head. Tokens of the opening (after
    /// the sinks) are never re-read and score 0; the sinks are pinned by `scores`.
    /// Returns `[layer·kvHeads + head][position·group + g]` for the prompt's positions; `cache` (holding
    /// exactly the prompt) is left unchanged.
    public static func reconstruction(model: any ModelPass, cache: PagedKVCache, prompt: [Int32]) throws -> [[Float]] {
        let openingTokens = model.encode(model.opening, addBOS: true)
        let opening = prompt.starts(with: openingTokens) ? openingTokens.count : 0
        // Each piece tokenized on its own, as kvpress concatenates their ids.
        let first = model.encode("\n\n" + instruction, addBOS: false), later = model.encode("\n\n" + continuation, addBOS: false)
        let close = model.encode(model.userToAssistant, addBOS: false)
        let longestLead = max(first.count, later.count + quoted) + close.count
        let group = cache.group
        let room = model.contextLength - cache.nextPosition - longestLead
        guard room >= 64 else {
            throw PolicyError.passUnavailable(
                policy: "kvzip",
                reason:
                    "it needs room after the prompt to re-read it (\(longestLead + 64) tokens at least; the prompt of \(prompt.count) leaves \(model.contextLength - cache.nextPosition)); use a shorter context"
            )
        }
        var maxima = Array(repeating: [Float](repeating: 0, count: prompt.count * group), count: cache.layers * cache.kvHeads)
        let body = Array(prompt[opening...])
        var start = 0
        while start < body.count {
            let end = min(body.count, start + min(chunk, room))
            let lead = start == 0 ? first : later + body[max(0, start - quoted)..<start]
            let fork = cache.fork()
            var obs = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: group, windowStart: nil)
            obs.maxima = maxima
            obs.maximaKeys = .init(
                sinks: Int32(min(Int(sinks), opening + start)), chunk: Int32(opening + start)..<Int32(opening + end),
                repeatFrom: Int32(fork.nextPosition))
            fork.observations = obs
            try model.forward(lead + close + body[start..<end], cache: fork)
            maxima = fork.observations!.maxima!
            start = end
        }
        return maxima
    }

    /// `[slot][group]` reconstruction scores of one stream (positions past the re-read prompt score 0).
    public func reconstructionScores(_ s: StreamView) -> [Float]? {
        guard let all = s.prepared[Self.passKey] as? [[Float]], s.stream < all.count else { return nil }
        let r = all[s.stream], g = s.group, known = r.count / g
        return s.positions.flatMap { p in Int(p) < known ? Array(r[(Int(p) * g)..<(Int(p) * g + g)]) : [Float](repeating: 0, count: g) }
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let r = reconstructionScores(s) else {
            preconditionFailure("kvzip needs its reconstruction pass's scores; the runner runs `passes` before compressing")
        }
        var c = s.combine(r, gqa)
        // Above every score, the first sink first (so a budget below the sinks keeps the earliest).
        for (i, p) in s.positions.enumerated() where p < Self.sinks { c[i] = .greatestFiniteMagnitude / Float(p + 1) }
        return c
    }

    public var ranksAcrossStreams: Bool { scope == .global }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? { Self.select(scope, views, budgets, scores: scores) }

    /// The selection of `scope` over scores (shared with `kvzap`): nil per head (each stream's own top share).
    static func select(_ scope: Scope, _ views: [[StreamView]], _ budgets: [[Int]], scores: (StreamView) -> [Float]) -> [[[Int]]]? {
        switch scope {
        case .head: return nil
        case .layer: return zip(views, budgets).map { pooled([$0], [$1], scores: scores)[0] }
        case .global: return pooled(views, budgets, scores: scores)
        }
    }

    /// Every stream's best slot, then the highest scores of all streams until the summed budget is spent
    /// (shared with `kvzap`, which ranks its predicted scores the same way).
    static func pooled(_ views: [[StreamView]], _ budgets: [[Int]], scores: (StreamView) -> [Float]) -> [[[Int]]] {
        var total = budgets.joined().reduce(0, +)
        var keep = views.map { $0.map { _ in [Int]() } }
        var pool: [(score: Float, layer: Int, head: Int, slot: Int)] = []
        for (l, layer) in views.enumerated() {
            for (h, v) in layer.enumerated() where v.count > 0 {
                let s = scores(v)
                let best = s.indices.max { s[$0] < s[$1] || (s[$0] == s[$1] && $0 < $1) }!
                keep[l][h].append(best); total -= 1
                for (i, x) in s.enumerated() where i != best { pool.append((x, l, h, i)) }
            }
        }
        // Highest first; ties to the later slot, then the later layer and head (deterministic).
        pool.sort { ($0.score, $0.slot, $0.layer, $0.head) > ($1.score, $1.slot, $1.layer, $1.head) }
        for e in pool.prefix(max(0, total)) { keep[e.layer][e.head].append(e.slot) }
        return keep.map { $0.map { $0.sorted() } }
    }

    public static let info = PolicyInfo(
        KVzipPolicy.self, summary: "most attention received while the model repeats the context",
        paper: "Kim et al. 2025, KVzip (arXiv:2505.23416)")
}
