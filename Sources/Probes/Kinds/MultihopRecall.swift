/// `multihop-recall` — the `multihop` chain, where every question after the first points at the model's
/// own previous answer instead of restating it ("the number you gave in your last answer"): to ask the
/// next hop the model must read what it wrote itself, so the cache has to hold the model's output as well
/// as the needles. Run it with `--compress-between-turns` (or `--compress-every`) to see what a
/// compression that can evict the model's earlier answers keeps, against compressing only after the
/// prompt. Each later answer opens with "The special magic number for the number I gave (": the model
/// restates the number it looks up, closes the parenthesis, then gives the new one. A later turn scores
/// when the answer's last 7-digit number is the expected one.
public struct MultihopRecallProbe: Probe {
    public let name = "multihop-recall"
    public var usesHops: Bool { true }
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let c = Chains(&d)
        let turns = (0..<d.hops).map { h -> Turn in
            if h == 0 {
                let (q, prefix) = c.question(c.chain[0], hop: 0)
                return Turn(question: q, answerPrefix: prefix, answers: [c.chain[1]], needles: ["hop1"])
            }
            // The answer restates the looked-up number (up to 7 digits, ~16 tokens) before the new one.
            return Turn(
                question: "What is the special magic number for the number you gave in your last answer?",
                answerPrefix: "The special magic number for the number I gave (", answers: [c.chain[h + 1]], needles: ["hop\(h + 1)"], maxNewTokens: 32)
        }
        return (c.needles, turns)
    }
    /// The value is the number after the restated one: the last 7-digit run.
    public func previousValue(_ answer: String, turn: Turn) -> String? {
        var runs: [String] = [], cur = ""
        for ch in answer + " " {
            if ch.isASCII && ch.isNumber { cur.append(ch) } else { if cur.count >= 7 { runs.append(cur) }; cur = "" }
        }
        return runs.last
    }
    public func score(_ answer: String, turn: Turn) -> Double {
        turn.answers.count == 1 && previousValue(answer, turn: turn) == turn.answers[0] ? 1 : 0
    }
    public static let info = ProbeInfo(
        MultihopRecallProbe(), summary: "the multihop chain, each later question pointing at the model's own last answer",
        paper: "KVKit; after R-KV (Cai et al. 2025): the cache must keep what the model wrote")
}
