/// A needle inside a case's context: a label (the key it states) and its token span.
public struct NeedleSpan: Codable, Sendable, Equatable {
    public var label: String
    public var text: String
    /// Token indices in `ProbeCase.context` (positions, since the context starts at position 0).
    public var start: Int
    public var end: Int
    public var range: Range<Int> { start..<end }
}

/// One question asked after the context (or after the previous turn, on the same cache).
public struct Turn: Codable, Sendable, Equatable {
    /// The question. In a chained multi-hop case, `{previous}` is replaced by the number the model
    /// gave in the previous turn (the probe plays the planner).
    public var question: String
    /// Text the assistant's answer starts with, ending where the value should come.
    public var answerPrefix: String
    /// Expected values; the score is the fraction found in the answer (all for exact match).
    public var answers: [String]
    /// Needles this turn needs (for survival per hop).
    public var needles: [String]
    /// Tokens the answer may take (nil: the run's `--max-answer-tokens`, or room for every expected value).
    public var maxNewTokens: Int?

    public init(question: String, answerPrefix: String, answers: [String], needles: [String], maxNewTokens: Int? = nil) {
        self.question = question; self.answerPrefix = answerPrefix; self.answers = answers; self.needles = needles
        self.maxNewTokens = maxNewTokens
    }
}

/// One probe case: the context that gets compressed, its needles, and the turns asked afterwards.
public struct ProbeCase: Codable, Sendable, Equatable {
    public var id: String
    public var probe: String
    /// Target context length in tokens, and the needle depth (0 = start, 1 = end) where it applies.
    public var length: Int
    public var depth: Double
    public var sample: Int
    /// ChatML header, instruction and the haystack with needles, as token ids.
    public var context: [Int32]
    public var needles: [NeedleSpan]
    public var turns: [Turn]
}
