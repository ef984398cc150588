import KVCache
import ModelFile
import Models
import Policies

/// KVzip's context-reconstruction pass (Kim et al. 2025, arXiv:2505.23416), as kvpress 0.5.5's `KVzipPress`
/// computes it: the prompt after the chat template's opening is re-read in chunks of 2,048 tokens, each on
/// a throw-away copy-on-write fork of the prefilled cache, after "\n\nRepeat the previous context exactly."
/// (first chunk) or "\n\nRepeat the part of the previous context exactly, starting with" and the previous
/// chunk's last 8 tokens (later chunks), then the turn's close and the assistant's opening. The model
/// runs as usual (every query sees the whole cache); a key's score is the largest probability any re-read
/// query of its chunk gives it in a softmax over the 4 sink tokens, the chunk and the re-read tokens only
/// (`Observations.MaximaKeys`), kept per query head. Tokens of the opening (after the sinks) are never
/// re-read and score 0; the sinks are pinned by the policy.
public enum Reconstruction {
    public static let instruction = "Repeat the previous context exactly."
    public static let continuation = "Repeat the part of the previous context exactly, starting with"
    /// Prompt tokens re-read per pass (kvpress's and the paper's `chunk_size`).
    public static let chunk = 2048
    /// Tokens of the previous chunk quoted after `continuation` (kvpress's `prev_postfix_size`).
    public static let quoted = 8
    /// Attention sinks: the first tokens, in every re-read query's softmax and never evicted (kvpress's `n_sink`).
    public static let sinks = 4

    /// The scores for a cache that still holds its whole prompt (read back from its slots): what
    /// `kvkit generate --policy kvzip` compresses with, once, right after the prompt.
    public static func scores(model: any LanguageModel, cache: PagedKVCache) throws -> [[Float]] {
        let slots = cache.slots(layer: 0, head: 0)
        guard slots.count == cache.nextPosition, slots.enumerated().allSatisfy({ Int($0.element.position) == $0.offset }) else {
            throw RunError.usage("kvzip compresses once, right after the prompt (its score re-reads the whole prompt); drop --compress-every and --prefill-chunk")
        }
        return try scores(model: model, cache: cache, prompt: slots.map(\.token))
    }

    /// `[layer·kvHeads + head][position][group]` for the prompt's positions; the cache holds exactly the
    /// prompt (its first `opening` tokens are the chat template's opening, which is not re-read).
    public static func scores(model: any LanguageModel, cache: PagedKVCache, prompt: [Int32]) throws -> [[Float]] {
        let chat = model.chatTemplate, tokenizer = model.tokenizer
        let openingTokens = tokenizer.encode(chat.openingOfFirstUserTurn(), addBOS: true)
        let opening = prompt.starts(with: openingTokens) ? openingTokens.count : 0
        // Each piece tokenized on its own, as kvpress concatenates their ids.
        let first = tokenizer.encode("\n\n" + instruction), later = tokenizer.encode("\n\n" + continuation)
        let close = tokenizer.encode(chat.userToAssistant)
        let longestLead = max(first.count, later.count + quoted) + close.count
        let group = cache.group
        let room = model.config.contextLength - cache.nextPosition - longestLead
        guard room >= 64 else {
            throw RunError.usage("kvzip needs room after the prompt to re-read it (\(longestLead + 64) tokens at least; the prompt of \(prompt.count) leaves \(model.config.contextLength - cache.nextPosition)); use a shorter context")
        }
        var maxima = Array(repeating: [Float](repeating: 0, count: prompt.count * group), count: cache.layers * cache.kvHeads)
        let body = Array(prompt[opening...])
        var start = 0
        while start < body.count {
            let end = min(body.count, start + min(chunk, room))
            let lead = start == 0 ? first : later + body[max(0, start - quoted)..<start]
            let fork = cache.fork()
            var obs = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: group, accumulate: false, windowStart: nil)
            obs.maxima = maxima
            obs.maximaKeys = .init(sinks: Int32(min(sinks, opening + start)), chunk: Int32(opening + start)..<Int32(opening + end),
                                   repeatFrom: Int32(fork.nextPosition))
            fork.observations = obs
            try model.forward(lead + close + body[start..<end], cache: fork)
            maxima = fork.observations!.maxima!
            start = end
        }
        return maxima
    }
}
