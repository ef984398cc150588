/// `multihop-direct` — the same chain as `multihop`, asked in one question that needs every hop.
public struct MultihopDirectProbe: Probe {
    public let name = "multihop-direct"
    public var usesHops: Bool { true }
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let c = Chains(&d)
        let first = c.chain[0], k = d.hops
        let q: String
        switch d.wording {
        case .magic:
            q =
                "Start from the special magic number for \(first). Then find the special magic number for that number, and so on, \(k) times in all. What is the last number?"
        case .codebook: q = "In the code book, look up \(first), then look up what it maps to, and so on, \(k) times in all. What is the last number?"
        case .words: q = "Start from \(first) and follow the next keys \(k - 1) times; what is the special magic number for the key you reach?"
        }
        return (c.needles, [Turn(question: q, answerPrefix: "The last number is:", answers: [c.chain[k]], needles: c.linkLabels)])
    }
    public static let info = ProbeInfo(
        MultihopDirectProbe(), summary: "the multihop chain asked in one question",
        paper: "Lottery LLM Hypothesis (Tang et al. 2025), multi-step retrieval")
}
