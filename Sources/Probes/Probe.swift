import Foundation
import PluginRegistry
import TensorMath

/// A probe: generates seeded cases (needles in a haystack and the turns that ask about them) and says how
/// a turn's answer is read and scored. One file per probe plus one line in `ProbeRegistry`'s built-ins;
/// a plugin package registers its own with `ProbeRegistry.shared.register(MyProbe.info)`.
public protocol Probe: Sendable {
    /// The registry name (`--probe NAME`).
    var name: String { get }
    /// Whether cases vary with the needle depth (single-needle probes) and with the chain length (`--hops`).
    var usesDepth: Bool { get }
    var usesHops: Bool { get }
    /// The sentence that opens the context, before the haystack.
    var instruction: String { get }
    /// The needles (text, label) in context order and the turns, drawn from the case's seeded stream.
    func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn])
    /// The score of an answer to a turn in [0, 1].
    func score(_ answer: String, turn: Turn) -> Double
    /// The value a chained next turn asks with (`{previous}`), read from this turn's answer.
    func previousValue(_ answer: String, turn: Turn) -> String?
    /// Whether decoding can stop: more tokens could not change the score.
    func isSettled(_ answer: String, turn: Turn) -> Bool
    /// A case laid out by the probe itself (RULER's templates and haystacks), or nil for the generator's
    /// layout of `draw`'s needles in the run's haystack (the default).
    func layout(_ generator: ProbeGenerator, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase?
    /// Whether `length` counts the first turn and its answer room too (RULER's `max_seq_length`), not only the context.
    var lengthIncludesTurn: Bool { get }
    /// The shortest length the probe's cases can be laid out at (a run refuses shorter `--lengths`).
    var shortestLength: Int { get }
}

extension Probe {
    public func layout(_ generator: ProbeGenerator, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase? { nil }
    public var lengthIncludesTurn: Bool { false }
    public var shortestLength: Int { 64 }
    public var usesDepth: Bool { false }
    public var usesHops: Bool { false }
    public var instruction: String { ProbeGenerator.instruction }
    /// The fraction of expected values found in the answer (all of them for exact match).
    public func score(_ answer: String, turn: Turn) -> Double {
        turn.answers.isEmpty ? 0 : Double(turn.answers.filter { answer.contains($0) }.count) / Double(turn.answers.count)
    }
    public func previousValue(_ answer: String, turn: Turn) -> String? {
        turn.answers.first.flatMap { ProbeAnswers.first(in: answer, like: $0) }
    }
    /// Every expected value is in the answer and the last one is complete (not followed by a digit yet).
    public func isSettled(_ answer: String, turn: Turn) -> Bool {
        !turn.answers.isEmpty && (answer.last.map { !$0.isNumber } ?? false) && turn.answers.allSatisfy { answer.contains($0) }
    }
}

/// The seeded material a probe draws a case from: a shuffled list of keys, 7-digit numbers, the chain
/// settings. The same (seed, length, depth, sample) always gives the same stream.
public struct ProbeDraw {
    public var rng: SplitMix64
    /// Distinct word keys ("silver-fox", …) in a seeded order.
    public let keys: [String]
    public let hops: Int
    public let wording: MultihopWording
    /// Needles, distractors or values for the multi-needle probes.
    public let needleCount: Int

    /// A 7-digit number.
    public mutating func number() -> String { String(1_000_000 + Int(rng.next() % 9_000_000)) }
    /// " The special magic number for KEY is: VALUE."
    public func fact(_ key: String, _ value: String) -> String { " The special magic number for \(key) is: \(value)." }
    /// The question for one key's number.
    public func ask(_ key: String, _ answers: [String], needles: [String]) -> Turn {
        Turn(
            question: "What is the special magic number for \(key)?", answerPrefix: "The special magic number for \(key) is:",
            answers: answers, needles: needles)
    }
}

/// Reading answers by the shape of the expected value.
public enum ProbeAnswers {
    /// The model's answer, shaped like the expected one: the first run of 7 or more digits for a number,
    /// the first hyphenated lowercase word (such as "amber-owl") for a word key.
    public static func first(in s: String, like expected: String) -> String? {
        if expected.allSatisfy(\.isNumber) {
            var cur = ""
            for ch in s {
                if ch.isASCII && ch.isNumber { cur.append(ch) } else { if cur.count >= 7 { return cur }; cur = "" }
            }
            return cur.count >= 7 ? cur : nil
        }
        let words = s.split { !($0.isASCII && ($0.isLowercase || $0 == "-")) }
        return words.first { $0.contains("-") && !$0.hasPrefix("-") && !$0.hasSuffix("-") }.map(String.init)
    }
}

/// A registered probe: name, summary, where it comes from, and the probe itself.
public struct ProbeInfo: RegistryEntry {
    public let name: String
    public let summary: String
    public let paper: String
    public let parameters: [ParameterSpec]
    public let probe: any Probe

    public init(_ probe: any Probe, summary: String, paper: String, parameters: [ParameterSpec] = []) {
        name = probe.name; self.summary = summary; self.paper = paper; self.parameters = parameters; self.probe = probe
    }
}

/// The probes: `Registry<ProbeInfo>`, read by `--probe`, `kvkit probes`, the conformance tests and the README.
public typealias ProbeRegistry = Registry<ProbeInfo>

private let sharedProbes = ProbeRegistry(
    [
        NIAHProbe.info, NIAHMultikeyProbe.info, NIAHMultivalueProbe.info, NIAHMultiqueryProbe.info,
        MultihopProbe.info, MultihopDirectProbe.info, MultihopRecallProbe.info, VariableTrackingProbe.info,
    ] + RulerProbe.all)

extension Registry where Entry == ProbeInfo {
    public static var shared: ProbeRegistry { sharedProbes }

    /// The probe a `--probe` item or a case's probe label (`multihop:k=3`) names.
    public func probe(_ label: String) -> (any Probe)? {
        entry(String(label.split(separator: ":", maxSplits: 1).first ?? ""))?.probe
    }
}

/// The probe of bring-your-own cases (`--probe-file`): default reading and scoring.
public struct FileProbe: Probe {
    public let name = "file"
    public init() {}
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) { ([], []) }
}
