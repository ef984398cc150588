/// `niah-multiquery` — k independent needles asked one by one on the same compressed cache; the case
/// scores 1 only when all k are found (RULER MQ-NIAH, asked as turns).
public struct NIAHMultiqueryProbe: Probe {
    public let name = "niah-multiquery"
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let vs = (0..<d.needleCount).map { _ in d.number() }
        var needles = (0..<d.needleCount).map { (text: d.fact(d.keys[$0], vs[$0]), label: d.keys[$0]) }
        let turns = (0..<d.needleCount).map { d.ask(d.keys[$0], [vs[$0]], needles: [d.keys[$0]]) }
        needles.shuffle(using: &d.rng)
        return (needles, turns)
    }
    public static let info = ProbeInfo(
        NIAHMultiqueryProbe(), summary: "k needles asked one per turn on the same cache (all k found)", paper: "RULER (Hsieh et al. 2024), multi-query NIAH")
}
