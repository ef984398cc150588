import Foundation
import ModelFile
import TensorMath

/// The probe kinds KVKit generates.
public enum ProbeKind: String, CaseIterable, Codable, Sendable {
    /// One needle "The special magic number for <key> is <7 digits>." at a depth; one question.
    case niah
    /// The same with needles of other keys as distractors.
    case niahMultikey = "niah-multikey"
    /// One key with several numbers; all must be returned (score = fraction found).
    case niahMultivalue = "niah-multivalue"
    /// k independent needles asked one by one on the same compressed cache; score "all k found".
    case niahMultiquery = "niah-multiquery"
    /// A chain of k links (each link's answer is the next link's key), asked hop by hop (chained).
    case multihop
    /// The same chain asked in one question that needs every hop.
    case multihopDirect = "multihop-direct"
}

/// Generates seeded, deterministic probe cases measured in the model's own tokens.
public struct ProbeGenerator: Sendable {
    public let tokenizer: Tokenizer
    public let chat: ChatTemplate
    public var haystackSeed: UInt64
    /// Needles, distractors, values and chain hops.
    public var needleCount = 4
    public var hops = 2
    /// A user-supplied haystack (sentences cycled in order) instead of the generator.
    public var haystackText: String?

    public init(tokenizer: Tokenizer, chat: ChatTemplate, haystackSeed: UInt64 = 0) {
        self.tokenizer = tokenizer; self.chat = chat; self.haystackSeed = haystackSeed
    }

    static let keys = ["silver-fox", "amber-owl", "quiet-river", "copper-hill", "northern-pine", "velvet-moth", "iron-gate",
                       "scarlet-reed", "hollow-oak", "winter-lark", "golden-eel", "misty-fern", "stone-crow", "linen-sail"]

    static let instruction = "Below is a long text. Some sentences in it state special magic numbers. Read it carefully; you will be asked about them.\n"

    /// A case of `kind` with a context of about `length` tokens and the needle(s) around `depth`.
    public func make(_ kind: ProbeKind, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9 &+ UInt64(length) &* 31 &+ UInt64(depth * 1000) &* 7 &+ UInt64(sample))
        func number() -> String { String(1_000_000 + Int(rng.next() % 9_000_000)) }
        var keys = Self.keys
        for i in stride(from: keys.count - 1, to: 0, by: -1) { keys.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        func fact(_ key: String, _ value: String) -> String { " The special magic number for \(key) is: \(value)." }

        // Needles (text, label) in the order they appear, and the turns.
        var needles: [(String, String)] = []
        var turns: [Turn] = []
        func ask(_ key: String, _ answers: [String], needles: [String]) -> Turn {
            Turn(question: "What is the special magic number for \(key)?", answerPrefix: "The special magic number for \(key) is:",
                 answers: answers, needles: needles)
        }
        switch kind {
        case .niah:
            let v = number()
            needles = [(fact(keys[0], v), keys[0])]
            turns = [ask(keys[0], [v], needles: [keys[0]])]
        case .niahMultikey:
            let v = number()
            needles = [(fact(keys[0], v), keys[0])] + (1..<needleCount).map { (fact(keys[$0], number()), keys[$0]) }
            needles.shuffle(using: &rng)
            turns = [ask(keys[0], [v], needles: [keys[0]])]
        case .niahMultivalue:
            let vs = (0..<needleCount).map { _ in number() }
            needles = vs.enumerated().map { (fact(keys[0], $0.element), "\(keys[0])#\($0.offset)") }
            turns = [Turn(question: "What are all the special magic numbers for \(keys[0])? List every one.",
                          answerPrefix: "The special magic numbers for \(keys[0]) are:", answers: vs, needles: needles.map(\.1))]
        case .niahMultiquery:
            let vs = (0..<needleCount).map { _ in number() }
            needles = (0..<needleCount).map { (fact(keys[$0], vs[$0]), keys[$0]) }
            turns = (0..<needleCount).map { ask(keys[$0], [vs[$0]], needles: [keys[$0]]) }
            needles.shuffle(using: &rng)
        case .multihop, .multihopDirect:
            // Chain: key0 → v1 → v2 … (each value is the next link's key), plus a distractor chain.
            var chain = [keys[0]]
            for _ in 0..<hops { chain.append(number()) }
            var distractor = [keys[1]]
            for _ in 0..<hops { distractor.append(number()) }
            let links = (0..<hops).map { (fact(chain[$0], chain[$0 + 1]), "hop\($0 + 1)") }
            let dlinks = (0..<hops).map { (fact(distractor[$0], distractor[$0 + 1]), "distractor\($0 + 1)") }
            needles = (links + dlinks).shuffled(using: &rng)
            if kind == .multihop {
                turns = (0..<hops).map { h in
                    let key = h == 0 ? chain[0] : "{previous}"
                    return Turn(question: "What is the special magic number for \(key)?", answerPrefix: "The special magic number for \(key) is:",
                                answers: [chain[h + 1]], needles: ["hop\(h + 1)"])
                }
            } else {
                turns = [Turn(question: "Start from the special magic number for \(chain[0]). Then find the special magic number for that number, and so on, \(hops) times in all. What is the last number?",
                              answerPrefix: "The last number is:", answers: [chain[hops]], needles: links.map(\.1))]
            }
        }
        return build(kind: kind, length: length, depth: depth, sample: sample, needles: needles, turns: turns)
    }

    /// Lays the needles out in a haystack: a single needle at `depth`; several spread evenly from
    /// `depth` to the end (depth 0) or across the context.
    private func build(kind: ProbeKind, length: Int, depth: Double, sample: Int, needles: [(String, String)], turns: [Turn]) -> ProbeCase {
        var b = ContextBuilder(tokenizer: tokenizer)
        let header = chat.render([ChatTemplate.Message(role: "user", content: "")], addGenerationPrompt: false)
        // The user turn is left open: the context ends inside it, the question follows.
        b.append(String(header.dropLast("<|im_end|>\n".count)) + Self.instruction)
        let needleTokens = needles.reduce(0) { $0 + tokenizer.encode($1.0).count }
        let fillerBudget = max(0, length - b.tokens.count - needleTokens)
        // Filler sentences, tokenized one by one until the budget is reached.
        var filler: [String] = []
        var fillerTokens = 0
        var i = 0
        let userSentences = haystackText.map(Self.split) ?? []
        while fillerTokens < fillerBudget {
            let s = userSentences.isEmpty ? " " + HaystackGenerator(seed: haystackSeed &+ UInt64(sample)).sentences(from: i, count: 1)[0]
                                          : " " + userSentences[i % userSentences.count]
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
        let id = "\(kind.rawValue)/len\(length)/depth\(depth)/s\(sample)"
        return ProbeCase(id: id, probe: kind.rawValue, length: length, depth: depth, sample: sample,
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
