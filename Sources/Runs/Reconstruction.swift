import KVCache
import ModelFile
import Models
import Policies

/// KVzip's context-reconstruction pass (Kim et al. 2025, arXiv:2505.23416): the score of each prompt KV
/// pair is the most attention it receives while the model, after the prompt, is asked to repeat it and
/// reads it again. Chunk by chunk (the paper's chunked scoring), each on a throw-away copy-on-write fork
/// of the prefilled cache: "\n\nRepeat the previous context exactly." closing the user turn, the
/// assistant's opening, then one chunk of the prompt's text; the chunk's queries attend to the whole
/// cached prompt, and the fork (its pages for the chunk) is dropped before the next chunk, so memory
/// stays at one chunk beyond the cache. The maximum is over queries and is kept per query head.
public enum Reconstruction {
    public static let instruction = "Repeat the previous context exactly."
    /// Prompt tokens re-read per pass (KVzip uses 2K; 512 keeps the extra activations at one prefill chunk).
    public static let chunk = 512

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
        let lead = tokenizer.encode("\n\n" + instruction + chat.userToAssistant)
        let group = cache.group
        let room = model.config.contextLength - cache.nextPosition - lead.count
        guard room >= 64 else {
            throw RunError.usage("kvzip needs room after the prompt to re-read it (\(lead.count + 64) tokens at least; the prompt of \(prompt.count) leaves \(model.config.contextLength - cache.nextPosition)); use a shorter context")
        }
        var maxima = Array(repeating: [Float](repeating: 0, count: prompt.count * group), count: cache.layers * cache.kvHeads)
        let body = Array(prompt[opening...])
        var start = 0
        while start < body.count {
            let end = min(body.count, start + min(chunk, room))
            let fork = cache.fork()
            var obs = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: group, accumulate: false, windowStart: nil)
            obs.maxima = maxima
            fork.observations = obs
            try model.forward(lead + body[start..<end], cache: fork)
            maxima = fork.observations!.maxima!
            start = end
        }
        return maxima
    }
}
