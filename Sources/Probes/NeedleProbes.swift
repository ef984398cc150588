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
    /// RULER's variable tracking: "VAR ABCDE = 12345." then "VAR FGHIJ = VAR ABCDE." … ; the question asks
    /// for every variable that holds the value (score = fraction of the chain's variables named).
    case variableTracking = "variable-tracking"

    /// Kinds built from a chain of `hops` links.
    public var isChain: Bool { self == .multihop || self == .multihopDirect || self == .variableTracking }
}

/// How a multi-hop link is worded. Each was measured with the full cache (README); `magic` is the default.
public enum MultihopWording: String, CaseIterable, Codable, Sendable {
    /// "The special magic number for 4821933 is: 7719204." (every hop after the first keyed by a number)
    case magic
    /// "In the code book, 4821933 maps to 7719204." (the same number-keyed chain, another phrasing)
    case codebook
    /// Word keys until the last hop: "The next key after silver-fox is: amber-owl." … "The special magic
    /// number for amber-owl is: 7719204." (each link's answer is the next link's key, as a word)
    case words
}

/// Generates seeded, deterministic probe cases measured in the model's own tokens.
public struct ProbeGenerator: Sendable {
    public let tokenizer: Tokenizer
    public let chat: ChatTemplate
    public var haystackSeed: UInt64
    /// Needles, distractors, values and chain hops.
    public var needleCount = 4
    public var hops = 2
    /// Wording of multi-hop links (multihop, multihop-direct).
    public var wording = MultihopWording.magic
    /// A user-supplied haystack (sentences cycled in order) instead of the generator.
    public var haystackText: String?

    public init(tokenizer: Tokenizer, chat: ChatTemplate, haystackSeed: UInt64 = 0) {
        self.tokenizer = tokenizer; self.chat = chat; self.haystackSeed = haystackSeed
    }

    static let keys = ["silver-fox", "amber-owl", "quiet-river", "copper-hill", "northern-pine", "velvet-moth", "iron-gate",
                       "scarlet-reed", "hollow-oak", "winter-lark", "golden-eel", "misty-fern", "stone-crow", "linen-sail"]

    static let instruction = "Below is a long text. Some sentences in it state special magic numbers. Read it carefully; you will be asked about them.\n"
    static let trackingInstruction = "Memorize and track the chain of variable assignments hidden in the following text.\n"

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
            // Chain: key0 → k1 → k2 … (each answer is the next link's key), plus a distractor chain.
            // Number keys (magic, codebook) or word keys with a number at the end (words).
            let wordKeys = wording == .words
            func chainKeys(_ first: Int) -> [String] {
                (0...hops).map { h in h == 0 ? keys[first] : (wordKeys && h < hops ? keys[first + 2 * h] : number()) }
            }
            let chain = chainKeys(0), distractor = chainKeys(1)
            func link(_ from: String, _ to: String, last: Bool) -> String {
                switch wording {
                case .magic: return fact(from, to)
                case .codebook: return " In the code book, \(from) maps to \(to)."
                case .words: return last ? fact(from, to) : " The next key after \(from) is: \(to)."
                }
            }
            func question(_ key: String, hop h: Int) -> (String, String) {
                switch wording {
                case .magic: return ("What is the special magic number for \(key)?", "The special magic number for \(key) is:")
                case .codebook: return ("In the code book, what does \(key) map to?", "In the code book, \(key) maps to")
                case .words:
                    return h == hops - 1 ? ("What is the special magic number for \(key)?", "The special magic number for \(key) is:")
                                         : ("What is the next key after \(key)?", "The next key after \(key) is:")
                }
            }
            let links = (0..<hops).map { (link(chain[$0], chain[$0 + 1], last: $0 == hops - 1), "hop\($0 + 1)") }
            let dlinks = (0..<hops).map { (link(distractor[$0], distractor[$0 + 1], last: $0 == hops - 1), "distractor\($0 + 1)") }
            needles = (links + dlinks).shuffled(using: &rng)
            if kind == .multihop {
                turns = (0..<hops).map { h in
                    let (q, prefix) = question(h == 0 ? chain[0] : "{previous}", hop: h)
                    return Turn(question: q, answerPrefix: prefix, answers: [chain[h + 1]], needles: ["hop\(h + 1)"])
                }
            } else {
                let q: String
                switch wording {
                case .magic: q = "Start from the special magic number for \(chain[0]). Then find the special magic number for that number, and so on, \(hops) times in all. What is the last number?"
                case .codebook: q = "In the code book, look up \(chain[0]), then look up what it maps to, and so on, \(hops) times in all. What is the last number?"
                case .words: q = "Start from \(chain[0]) and follow the next keys \(hops - 1) times; what is the special magic number for the key you reach?"
                }
                turns = [Turn(question: q, answerPrefix: "The last number is:", answers: [chain[hops]], needles: links.map(\.1))]
            }
        case .variableTracking:
            // RULER (Hsieh et al. 2024) variable tracking: a chain of assignments from one value, and a
            // distractor chain from another; the question names the value, every chain variable is an answer.
            func name() -> String { String((0..<5).map { _ in Character(UnicodeScalar(65 + UInt8(rng.next() % 26))) }) }
            var used = Set<String>()
            func fresh() -> String { var n = name(); while used.contains(n) { n = name() }; used.insert(n); return n }
            let value = String(10_000 + Int(rng.next() % 90_000)), other = String(10_000 + Int(rng.next() % 90_000))
            let vars = (0...hops).map { _ in fresh() }, dvars = (0...hops).map { _ in fresh() }
            func assignments(_ vs: [String], _ v: String, _ label: String) -> [(String, String)] {
                vs.indices.map { i in (i == 0 ? " VAR \(vs[0]) = \(v)." : " VAR \(vs[i]) = VAR \(vs[i - 1]).", "\(label)\(i + 1)") }
            }
            // Chains keep their order (a variable is assigned before it is copied).
            let a = assignments(vars, value, "hop"), d = assignments(dvars, other, "distractor")
            needles = []
            var i = 0, j = 0
            while i < a.count || j < d.count {
                if j >= d.count || (i < a.count && rng.next() % 2 == 0) { needles.append(a[i]); i += 1 } else { needles.append(d[j]); j += 1 }
            }
            turns = [Turn(question: "Find all variables that are assigned the value \(value) in the text above.",
                          answerPrefix: "According to the chain of variable assignments in the text above, \(vars.count) variables are assigned the value \(value), they are:",
                          answers: vars, needles: a.map(\.1))]
        }
        return build(kind: kind, length: length, depth: depth, sample: sample, needles: needles, turns: turns)
    }

    /// Lays the needles out in a haystack: a single needle at `depth`; several spread evenly from
    /// `depth` to the end (depth 0) or across the context.
    private func build(kind: ProbeKind, length: Int, depth: Double, sample: Int, needles: [(String, String)], turns: [Turn]) -> ProbeCase {
        var b = ContextBuilder(tokenizer: tokenizer)
        // The user turn is left open: the context ends inside it, the question follows.
        b.append(chat.openingOfFirstUserTurn() + (kind == .variableTracking ? Self.trackingInstruction : Self.instruction))
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
        // Chains of another length are another probe (rows of their own in every summary).
        let probe = kind.isChain && hops != 2 ? "\(kind.rawValue):k=\(hops)" : kind.rawValue
        let id = "\(probe)/len\(length)/depth\(depth)/s\(sample)"
        return ProbeCase(id: id, probe: probe, length: length, depth: depth, sample: sample,
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
