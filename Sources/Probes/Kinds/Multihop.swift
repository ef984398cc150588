/// `multihop` — a chain of k links (each link's answer is the next link's key) beside a distractor chain,
/// asked hop by hop on the same cache; the model's own answer keys the next question (the probe plays the
/// planner), and the case scores 1 only when the whole chain is right. `--hops` sets k, `--wording` the
/// links' phrasing (after the Lottery LLM Hypothesis' multi-step retrieval).
public struct MultihopProbe: Probe {
    public let name = "multihop"
    public var usesHops: Bool { true }
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let c = Chains(&d)
        let turns = (0..<d.hops).map { h in
            let (q, prefix) = c.question(h == 0 ? c.chain[0] : "{previous}", hop: h)
            return Turn(question: q, answerPrefix: prefix, answers: [c.chain[h + 1]], needles: ["hop\(h + 1)"])
        }
        return (c.needles, turns)
    }
    public static let info = ProbeInfo(
        MultihopProbe(), summary: "a k-link chain asked hop by hop, each answer keying the next question",
        paper: "Lottery LLM Hypothesis (Tang et al. 2025), multi-step retrieval")
}
