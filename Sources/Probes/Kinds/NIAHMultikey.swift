/// `niah-multikey` — the needle among needles of other keys (distractors); one question (RULER MK-NIAH).
public struct NIAHMultikeyProbe: Probe {
    public let name = "niah-multikey"
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let v = d.number()
        var needles = [(text: d.fact(d.keys[0], v), label: d.keys[0])]
        for i in 1..<d.needleCount { needles.append((d.fact(d.keys[i], d.number()), d.keys[i])) }
        needles.shuffle(using: &d.rng)
        return (needles, [d.ask(d.keys[0], [v], needles: [d.keys[0]])])
    }
    public static let info = ProbeInfo(
        NIAHMultikeyProbe(), summary: "the needle among distractor needles of other keys", paper: "RULER (Hsieh et al. 2024), multi-key NIAH")
}
