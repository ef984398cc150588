import Foundation

/// Turns a stream's slots into contiguous spans — units of meaning such as fixed chunks or sentences —
/// that a retention policy keeps or drops whole. Token eviction keeps the best tokens one by one and cuts
/// a 7-digit number into fragments; keeping spans keeps it whole or not at all.
public protocol SpanGrouping: Sendable {
    /// Ascending, contiguous slot ranges that together cover `0..<s.count`.
    func spans(_ s: StreamView) -> [Range<Int>]
}

/// Fixed chunks of `size` consecutive slots (ChunkKV); the last chunk may be shorter.
public struct FixedChunks: SpanGrouping {
    public var size: Int
    public init(size: Int) { self.size = max(1, size) }
    public func spans(_ s: StreamView) -> [Range<Int>] {
        stride(from: 0, to: s.count, by: size).map { $0..<min(s.count, $0 + size) }
    }
}

/// Sentences as the tokenizer sees them: a span ends after a token whose text ends in `.`, `!` or `?`
/// (optionally followed by quotes or brackets) or holds a newline, and is cut at `maxLength` slots.
/// Slots are contiguous in the cache but may skip positions after an earlier eviction; that does not
/// matter here because spans are built from the slots a stream holds.
public struct SentenceSpans: SpanGrouping {
    public var maxLength: Int
    public init(maxLength: Int) { self.maxLength = max(1, maxLength) }

    public static func endsSentence(_ text: String) -> Bool {
        if text.contains("\n") { return true }
        let t = text.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"')]}"))
        return t.last.map { ".!?".contains($0) } ?? false
    }

    public func spans(_ s: StreamView) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        for i in 0..<s.count {
            if Self.endsSentence(s.tokenText(i)) || i + 1 - start >= maxLength || i == s.count - 1 {
                out.append(start..<(i + 1)); start = i + 1
            }
        }
        return out
    }
}

/// How a span's score is formed from its tokens' scores.
public enum SpanScore: String, ParameterChoice {
    case sum, mean
}

/// Keeps the pinned slots, then whole spans in order of score while they fit; the budget left when the
/// next span no longer fits goes to later, shorter spans that do, and what still remains to the
/// best-scoring tokens of the best span not kept (so the kept count equals the budget, as for token
/// eviction at the same budget). Returns ascending slot indices.
public func keepSpans(_ v: StreamView, spans: [Range<Int>], tokenScores: [Float], by how: SpanScore, budget: Int, pinned: [Int]) -> [Int] {
    let b = min(max(budget, 0), v.count)
    if b >= v.count { return Array(0..<v.count) }
    var chosen = Set<Int>()
    for p in pinned where chosen.count < b && p >= 0 && p < v.count { chosen.insert(p) }
    let scored = spans.map { r -> (range: Range<Int>, score: Float) in
        let sum = r.reduce(Float(0)) { $0 + tokenScores[$1] }
        return (r, how == .sum ? sum : sum / Float(max(r.count, 1)))
    }
    let order = scored.indices.sorted { scored[$0].score != scored[$1].score ? scored[$0].score > scored[$1].score : $0 > $1 }
    var partial: Range<Int>?
    for i in order where chosen.count < b {
        let r = scored[i].range
        let missing = r.filter { !chosen.contains($0) }
        if missing.count <= b - chosen.count { chosen.formUnion(missing) } else if partial == nil { partial = r }
    }
    if chosen.count < b, let r = partial {
        let rest = r.filter { !chosen.contains($0) }.sorted { tokenScores[$0] != tokenScores[$1] ? tokenScores[$0] > tokenScores[$1] : $0 > $1 }
        for i in rest.prefix(b - chosen.count) { chosen.insert(i) }
    }
    return chosen.sorted()
}
