/// `niah-multivalue` — one key with several numbers; all must be returned (score = fraction found)
/// (RULER MV-NIAH).
public struct NIAHMultivalueProbe: Probe {
    public let name = "niah-multivalue"
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let key = d.keys[0]
        let vs = (0..<d.needleCount).map { _ in d.number() }
        let needles = vs.enumerated().map { (text: d.fact(key, $0.element), label: "\(key)#\($0.offset)") }
        return (
            needles,
            [
                Turn(
                    question: "What are all the special magic numbers for \(key)? List every one.",
                    answerPrefix: "The special magic numbers for \(key) are:", answers: vs, needles: needles.map(\.label))
            ]
        )
    }
    public static let info = ProbeInfo(
        NIAHMultivalueProbe(), summary: "one key, several numbers, all asked at once", paper: "RULER (Hsieh et al. 2024), multi-value NIAH")
}
