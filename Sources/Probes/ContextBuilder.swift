import ModelFile

/// Builds a context token by token-exact segments: each segment is tokenized alone and appended, so
/// every needle's token span is known exactly (the same tokens for every policy of a run).
struct ContextBuilder {
    let tokenizer: Tokenizer
    var tokens: [Int32] = []
    var needles: [NeedleSpan] = []

    /// Starts with the tokenizer's `beginning` (BOS where the model wants one).
    init(tokenizer: Tokenizer) { self.tokenizer = tokenizer; tokens = tokenizer.beginning }

    @discardableResult
    mutating func append(_ text: String) -> Range<Int> {
        let ids = tokenizer.encode(text)
        let start = tokens.count
        tokens += ids
        return start..<tokens.count
    }

    mutating func appendNeedle(_ text: String, label: String) {
        let r = append(text)
        needles.append(NeedleSpan(label: label, text: text, start: r.lowerBound, end: r.upperBound))
    }
}
