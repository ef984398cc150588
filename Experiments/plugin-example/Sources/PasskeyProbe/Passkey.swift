import Probes

/// `passkey` — passkey retrieval (Mohtashami & Jaggi, "Landmark Attention", 2023; the test of LongLoRA
/// and most context-extension papers): "The pass key is 68259. Remember it. 68259 is the pass key." hidden
/// in the haystack at a depth; the question asks for it. Scored as the other needles: the 5-digit key
/// must be in the answer. One file; the plugin's executable registers it with one line.
public struct PasskeyProbe: Probe {
    public let name = "passkey"
    public var usesDepth: Bool { true }
    public var instruction: String {
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there.\n"
    }
    public init() {}

    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let key = String(10_000 + Int(d.rng.next() % 90_000))
        return (
            [(" The pass key is \(key). Remember it. \(key) is the pass key.", "passkey")],
            [Turn(question: "What is the pass key?", answerPrefix: "The pass key is", answers: [key], needles: ["passkey"])]
        )
    }

    /// A 5-digit key is settled once it is in the answer and not followed by a further digit.
    public func isSettled(_ answer: String, turn: Turn) -> Bool {
        turn.answers.allSatisfy { answer.contains($0) } && !(answer.last?.isNumber ?? true)
    }

    public static let info = ProbeInfo(
        PasskeyProbe(), summary: "a 5-digit pass key hidden at a depth (plugin example)",
        paper: "Mohtashami & Jaggi 2023, Landmark Attention (arXiv:2305.16300)")
}
