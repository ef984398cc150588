import Foundation
import ModelFile
import TensorMath

/// Generates seeded, deterministic probe cases measured in the model's own tokens.
public struct ProbeGenerator: Sendable {
    public let tokenizer: Tokenizer
    public let chat: ChatTemplate
    public var haystackSeed: UInt64
    /// Needles, distractors, values and chain hops.
    public var needleCount = 4
    public var hops = ProbeGenerator.defaultHops
    /// Links per chain when none are asked for (and the placeholder of probes without chains): the one place it is stated.
    public static let defaultHops = 2
    /// Wording of multi-hop links (multihop, multihop-direct).
    public var wording = MultihopWording.magic
    /// Sentences of a given text (the essays, a file) instead of the generated English: each case reads
    /// them in order from a start drawn from its seed and sample, wrapping around at the end.
    public var haystackSentences: [String]?

    public init(tokenizer: Tokenizer, chat: ChatTemplate, haystackSeed: UInt64 = 0) {
        self.tokenizer = tokenizer; self.chat = chat; self.haystackSeed = haystackSeed
    }

    static let keys = [
        "silver-fox", "amber-owl", "quiet-river", "copper-hill", "northern-pine", "velvet-moth", "iron-gate",
        "scarlet-reed", "hollow-oak", "winter-lark", "golden-eel", "misty-fern", "stone-crow", "linen-sail",
    ]

    /// The instruction that opens a needle probe's context (a probe may give its own).
    public static let instruction = "Below is a long text. Some sentences in it state special magic numbers. Read it carefully; you will be asked about them.\n"

    /// A case of `probe` with a context of about `length` tokens and the needle(s) around `depth`.
    public func make(_ probe: any Probe, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase {
        if let own = probe.layout(self, length: length, depth: depth, sample: sample, seed: seed) { return own }
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9 &+ UInt64(length) &* 31 &+ UInt64(depth * 1000) &* 7 &+ UInt64(sample))
        var keys = Self.keys
        for i in stride(from: keys.count - 1, to: 0, by: -1) { keys.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var draw = ProbeDraw(rng: rng, keys: keys, hops: hops, wording: wording, needleCount: needleCount)
        let (needles, turns) = probe.draw(&draw)
        return build(probe, length: length, depth: depth, sample: sample, needles: needles, turns: turns)
    }

    /// A case of the registered probe `name`.
    public func make(_ name: String, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase? {
        ProbeRegistry.shared.probe(name).map { make($0, length: length, depth: depth, sample: sample, seed: seed) }
    }

    /// Lays the needles out in a haystack: a single needle at `depth`; several spread evenly from
    /// `depth` to the end (depth 0) or across the context.
    private func build(_ probe: any Probe, length: Int, depth: Double, sample: Int, needles: [(text: String, label: String)], turns: [Turn]) -> ProbeCase {
        var b = ContextBuilder(tokenizer: tokenizer)
        // The user turn is left open: the context ends inside it, the question follows.
        b.append(chat.openingOfFirstUserTurn() + probe.instruction)
        let needleTokens = needles.reduce(0) { $0 + tokenizer.encode($1.text).count }
        let fillerBudget = max(0, length - b.tokens.count - needleTokens)
        // Filler sentences, tokenized one by one until the budget is reached.
        var filler: [String] = []
        var fillerTokens = 0
        var i = 0
        let given = haystackSentences ?? []
        var startRNG = SplitMix64(seed: haystackSeed &* 0x2545_F491_4F6C_DD1D &+ UInt64(sample) &+ 1)
        let start = given.isEmpty ? 0 : Int(startRNG.next() % UInt64(given.count))
        while fillerTokens < fillerBudget {
            let s =
                given.isEmpty
                ? " " + HaystackGenerator(seed: haystackSeed &+ UInt64(sample)).sentences(from: i, count: 1)[0]
                : " " + given[(start + i) % given.count]
            let n = tokenizer.encode(s).count
            if fillerTokens + n > fillerBudget && !filler.isEmpty { break }
            filler.append(s); fillerTokens += n; i += 1
        }
        // Insertion points (sentence boundaries) for each needle.
        let slots: [Int]
        if needles.count == 1 {
            slots = [Int((depth * Double(filler.count)).rounded())]
        } else {
            slots = (0..<needles.count).map { k in Int((Double(k) + 0.5) / Double(needles.count) * Double(filler.count)) }
        }
        var next = 0
        for (si, s) in filler.enumerated() {
            while next < needles.count && slots[next] == si { b.appendNeedle(needles[next].0, label: needles[next].1); next += 1 }
            b.append(s)
        }
        while next < needles.count { b.appendNeedle(needles[next].0, label: needles[next].1); next += 1 }
        // Chains of another length are another probe (rows of their own in every summary).
        let label = probe.usesHops && hops != Self.defaultHops ? "\(probe.name):k=\(hops)" : probe.name
        let id = "\(label)/len\(length)/depth\(depth)/s\(sample)"
        return ProbeCase(
            id: id, probe: label, length: length, depth: depth, sample: sample,
            context: b.tokens, needles: b.needles, turns: turns)
    }

    /// Sentences of a text (split at . ! ? and newlines).
    public static func split(_ text: String) -> [String] {
        var out: [String] = [], cur = ""
        for ch in text {
            if ch == "\n" { if !cur.trimmingCharacters(in: .whitespaces).isEmpty { out.append(cur.trimmingCharacters(in: .whitespaces)) }; cur = ""; continue }
            cur.append(ch)
            if ch == "." || ch == "!" || ch == "?" { out.append(cur.trimmingCharacters(in: .whitespaces)); cur = "" }
        }
        if !cur.trimmingCharacters(in: .whitespaces).isEmpty { out.append(cur.trimmingCharacters(in: .whitespaces)) }
        return out.filter { !$0.isEmpty }
    }
}
