/// `niah` — one needle "The special magic number for KEY is: NUMBER." at a depth; one question
/// (Kamradt's needle in a haystack; RULER's single NIAH).
public struct NIAHProbe: Probe {
    public let name = "niah"
    public var usesDepth: Bool { true }
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        let v = d.number(), key = d.keys[0]
        return ([(d.fact(key, v), key)], [d.ask(key, [v], needles: [key])])
    }
    public static let info = ProbeInfo(
        NIAHProbe(), summary: "one needle at a depth, one question", paper: "Kamradt 2023, needle in a haystack; RULER (Hsieh et al. 2024)")
}
