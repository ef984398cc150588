/// `variable-tracking` — RULER's variable tracking: "VAR ABCDE = 12345." then "VAR FGHIJ = VAR ABCDE." …
/// (a chain of `--hops` copies) beside a distractor chain from another value; the question names the
/// value, and every variable of the chain is an answer (score = fraction named).
public struct VariableTrackingProbe: Probe {
    public let name = "variable-tracking"
    public var usesHops: Bool { true }
    public var instruction: String { "Memorize and track the chain of variable assignments hidden in the following text.\n" }
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
        func name() -> String { String((0..<5).map { _ in Character(UnicodeScalar(65 + UInt8(d.rng.next() % 26))) }) }
        var used = Set<String>()
        func fresh() -> String { var n = name(); while used.contains(n) { n = name() }; used.insert(n); return n }
        let value = String(10_000 + Int(d.rng.next() % 90_000)), other = String(10_000 + Int(d.rng.next() % 90_000))
        let vars = (0...d.hops).map { _ in fresh() }, dvars = (0...d.hops).map { _ in fresh() }
        func assignments(_ vs: [String], _ v: String, _ label: String) -> [(text: String, label: String)] {
            vs.indices.map { i in (i == 0 ? " VAR \(vs[0]) = \(v)." : " VAR \(vs[i]) = VAR \(vs[i - 1]).", "\(label)\(i + 1)") }
        }
        // Chains keep their order (a variable is assigned before it is copied).
        let a = assignments(vars, value, "hop"), b = assignments(dvars, other, "distractor")
        var needles: [(text: String, label: String)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j >= b.count || (i < a.count && d.rng.next() % 2 == 0) { needles.append(a[i]); i += 1 } else { needles.append(b[j]); j += 1 }
        }
        return (
            needles,
            [
                Turn(
                    question: "Find all variables that are assigned the value \(value) in the text above.",
                    answerPrefix:
                        "According to the chain of variable assignments in the text above, \(vars.count) variables are assigned the value \(value), they are:",
                    answers: vars, needles: a.map(\.label))
            ]
        )
    }
    public static let info = ProbeInfo(
        VariableTrackingProbe(), summary: "a chain of variable copies; name every variable holding the value",
        paper: "RULER (Hsieh et al. 2024), variable tracking")
}
