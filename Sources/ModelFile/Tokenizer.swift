import Foundation

/// The tokenizer of a GGUF file's `tokenizer.ggml.*` metadata, in one of llama.cpp's two BPE kinds:
/// - `gpt2` (byte-level BPE, llama.cpp's `llm_tokenizer_bpe`: SmolLM2, Llama 3, Qwen): special tokens are
///   matched atomically first, the rest is pre-tokenized with the model's pre-tokenizer, mapped
///   byte→unicode, and merged by rank;
/// - `llama` (SentencePiece-style BPE, `llm_tokenizer_spm`: Gemma, Llama 2, Mistral): spaces become "▁",
///   adjacent symbols merge while their concatenation is a token, highest score first (ties: leftmost), and
///   what no token covers falls back to byte tokens `<0xNN>`.
public final class Tokenizer: @unchecked Sendable {
    /// Which of llama.cpp's tokenizer algorithms the file asks for (`tokenizer.ggml.model`).
    public enum Kind: String, Sendable { case gpt2, sentencePiece = "llama" }
    public let kind: Kind
    public let tokens: [String]
    public let tokenTypes: [Int32]
    public let preTokenizer: PreTokenizer
    public let eosId: Int32
    public let bosId: Int32?
    public let addBOS: Bool
    /// Token ids that end a turn: EOS plus `<|im_end|>` / `<|eot_id|>` / `<|endoftext|>` where present.
    public let stopIds: Set<Int32>
    public var vocabularySize: Int { tokens.count }

    private let tokenToId: [String: Int32]
    private let mergeRanks: [String: Int]  // "left right" → rank
    private let scores: [Float]  // SentencePiece merge priority per token
    private let byteTokens: [Int32]  // SentencePiece byte fallback: `<0xNN>` per byte (-1: none)
    /// Whether SentencePiece text gets a leading "▁" (`tokenizer.ggml.add_space_prefix`).
    public let addSpacePrefix: Bool
    private let specialTokens: [(text: [UInt8], id: Int32)]  // longest first
    private let byteToScalar: [Unicode.Scalar]  // GPT-2 bytes_to_unicode
    private let scalarToByte: [UInt32: UInt8]
    private var wordCache: [String: [Int32]] = [:]
    private let cacheLock = Lock()

    /// How text is cut into words before BPE (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_*`), chosen by the file's
    /// `tokenizer.ggml.pre`. Pre-tokenizers live in an open registry (`PreTokenizer.register`), so a plug-in
    /// family whose files name a new one adds it in one line, from the rules below or its own split.
    public struct PreTokenizer: Sendable, Equatable, CustomStringConvertible {
        /// The regex a piece of text is split by.
        public enum Rule: Sendable {
            /// GPT-2's regex: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`.
            case gpt2
            /// Llama 3's: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}|
            /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
            case llama3(maxDigits: Int)
            /// A plug-in's own split of `scalars[piece]` into consecutive ranges covering it.
            case custom(@Sendable (_ scalars: [Unicode.Scalar], _ piece: Range<Int>) -> [Range<Int>])
        }
        /// The name a run reports.
        public let name: String
        /// The `tokenizer.ggml.pre` values that select it.
        public let ggufNames: [String]
        /// Every `\p{N}` is split off alone before the regex (llama.cpp's first `\p{N}` expression).
        public let isolatesDigits: Bool
        public let rule: Rule
        /// A word that is itself a token is taken whole before any merge (llama.cpp's `ignore_merges`).
        public let ignoresMerges: Bool

        public init(name: String, ggufNames: [String], isolatesDigits: Bool = false, rule: Rule, ignoresMerges: Bool = false) {
            self.name = name; self.ggufNames = ggufNames; self.isolatesDigits = isolatesDigits; self.rule = rule; self.ignoresMerges = ignoresMerges
        }
        public static func == (a: PreTokenizer, b: PreTokenizer) -> Bool { a.name == b.name }
        public var description: String { name }

        /// GPT-2's regex ("gpt2", "default").
        public static let gpt2 = PreTokenizer(name: "gpt2", ggufNames: ["gpt2", "default", "gpt-2"], rule: .gpt2)
        /// Every digit alone, then GPT-2's regex: "smollm", and the files llama.cpp reads the same way
        /// (starcoder, refact, command-r, codeshell, exaone).
        public static let smollm = PreTokenizer(
            name: "smollm", ggufNames: ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone"], isolatesDigits: true, rule: .gpt2)
        /// "llama-bpe" (Llama 3): digits in runs of up to 3, whole-word tokens before merges.
        public static let llama3 = PreTokenizer(
            name: "llama3", ggufNames: ["llama-bpe", "llama3", "llama-v3"], rule: .llama3(maxDigits: 3), ignoresMerges: true)
        /// "qwen2": Llama 3's regex with single digits (`\p{N}` for `\p{N}{1,3}`).
        public static let qwen2 = PreTokenizer(name: "qwen2", ggufNames: ["qwen2"], rule: .llama3(maxDigits: 1))

        private static let lock = Lock()
        nonisolated(unsafe) private static var all: [PreTokenizer] = [.gpt2, .smollm, .llama3, .qwen2]
        /// Every registered pre-tokenizer, built-in first.
        public static var registered: [PreTokenizer] { lock.withLock { all } }
        /// Adds (or replaces, by name) a pre-tokenizer: one line in a plug-in's `main`.
        public static func register(_ p: PreTokenizer) {
            lock.withLock { if let i = all.firstIndex(of: p) { all[i] = p } else { all.append(p) } }
        }
        /// The pre-tokenizer a file's `tokenizer.ggml.pre` value selects (the last registered wins), or nil.
        public static func selected(by ggufName: String) -> PreTokenizer? { registered.last { $0.ggufNames.contains(ggufName) } }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case unsupportedModel(String), unsupportedPre(String), missing(String), invalid(key: String, reason: String)
        public var description: String {
            switch self {
            case let .unsupportedModel(m): return "tokenizer model '\(m)' is not supported (KVKit reads 'gpt2', byte-level BPE, and 'llama', SentencePiece BPE)"
            case let .unsupportedPre(p):
                return "pre-tokenizer '\(p)' is not supported (supported: \(PreTokenizer.registered.flatMap(\.ggufNames).joined(separator: ", ")))"
            case let .missing(k): return "model file lacks tokenizer metadata '\(k)'"
            case let .invalid(k, r): return "tokenizer metadata '\(k)' is invalid: \(r); the file is corrupt"
            }
        }
    }

    public convenience init(gguf: GGUFFile) throws {
        let model = (try? gguf.string("tokenizer.ggml.model")) ?? "gpt2"
        guard let kind = Kind(rawValue: model) else { throw Error.unsupportedModel(model) }
        func strings(_ key: String) throws -> [String] {
            guard let items = gguf.metadata[key]?.array else { throw Error.missing(key) }
            let s = items.compactMap(\.string)
            guard s.count == items.count else { throw Error.invalid(key: key, reason: "holds values that are not strings") }
            guard !s.isEmpty else { throw Error.invalid(key: key, reason: "is empty") }
            return s
        }
        let toks = try strings("tokenizer.ggml.tokens")
        let merges = kind == .gpt2 ? try strings("tokenizer.ggml.merges") : []
        var scores: [Float] = []
        if kind == .sentencePiece {
            guard let raw = gguf.metadata["tokenizer.ggml.scores"]?.array else { throw Error.missing("tokenizer.ggml.scores") }
            scores = try raw.map { v in
                guard let f = v.double, f.isFinite else { throw Error.invalid(key: "tokenizer.ggml.scores", reason: "\(v.summary) is not a finite number") }
                return Float(f)
            }
            guard scores.count == toks.count else {
                throw Error.invalid(key: "tokenizer.ggml.scores", reason: "\(scores.count) scores for \(toks.count) tokens")
            }
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = gguf.metadata[key] else { return nil }
            guard let i = v.int, i >= 0, i < toks.count else { throw Error.invalid(key: key, reason: "\(v.summary) is not a token id below \(toks.count)") }
            return Int32(i)
        }
        var types: [Int32] = Array(repeating: 1, count: toks.count)
        if let raw = gguf.metadata["tokenizer.ggml.token_type"]?.array {
            guard raw.count == toks.count else {
                throw Error.invalid(key: "tokenizer.ggml.token_type", reason: "\(raw.count) entries for \(toks.count) tokens")
            }
            types = try raw.map { v in
                guard let t = v.int.flatMap({ Int32(exactly: $0) }) else {
                    throw Error.invalid(key: "tokenizer.ggml.token_type", reason: "\(v.summary) is not a token type")
                }
                return t
            }
        }
        let preName = (try? gguf.string("tokenizer.ggml.pre")) ?? "default"
        guard let pre = PreTokenizer.selected(by: kind == .sentencePiece ? "default" : preName) else { throw Error.unsupportedPre(preName) }
        let eos = try id("tokenizer.ggml.eos_token_id") ?? 2
        let bos = try id("tokenizer.ggml.bos_token_id")
        let addBOS = (gguf.metadata["tokenizer.ggml.add_bos_token"]?.int ?? 0) == 1
        let spacePrefix = (gguf.metadata["tokenizer.ggml.add_space_prefix"]?.int ?? (kind == .sentencePiece ? 1 : 0)) == 1
        // End of turn and end of message where the file names them (Llama 3's <|eot_id|>, <|eom_id|>).
        let ends = try ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"].compactMap { try id($0) }
        self.init(
            kind: kind, tokens: toks, types: types, merges: merges, scores: scores, pre: pre, eos: eos, bos: bos,
            addBOS: addBOS, addSpacePrefix: spacePrefix, endOfGeneration: ends)
    }

    public init(
        kind: Kind = .gpt2, tokens: [String], types: [Int32], merges: [String], scores: [Float] = [], pre: PreTokenizer,
        eos: Int32, bos: Int32?, addBOS: Bool, addSpacePrefix: Bool = false, endOfGeneration: [Int32] = []
    ) {
        self.kind = kind
        self.scores = scores
        self.addSpacePrefix = addSpacePrefix
        self.tokens = tokens
        self.tokenTypes = types
        self.preTokenizer = pre
        self.eosId = eos
        self.bosId = bos
        self.addBOS = addBOS
        var t2i: [String: Int32] = [:]
        t2i.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where t2i[t] == nil { t2i[t] = Int32(i) }
        tokenToId = t2i
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() where ranks[m] == nil { ranks[m] = i }
        mergeRanks = ranks
        var bytes = [Int32](repeating: -1, count: 256)
        if kind == .sentencePiece {
            for b in 0..<256 { bytes[b] = t2i[String(format: "<0x%02X>", b)] ?? -1 }
        }
        byteTokens = bytes
        // CONTROL (3) and USER_DEFINED (4) tokens are matched atomically, as llama.cpp does with parse_special.
        var specials: [(text: [UInt8], id: Int32)] = []
        for (i, t) in tokens.enumerated() where i < types.count && (types[i] == 3 || types[i] == 4) && !t.isEmpty {
            specials.append((Array(t.utf8), Int32(i)))
        }
        specialTokens = specials.sorted { $0.text.count > $1.text.count }
        // Generation stops at EOS, the file's end-of-turn and end-of-message ids, and, as llama.cpp's
        // `special_eog_ids` (the reference the tests compare with), the tokens whose text is an end of turn
        // in a known format: most files name no end-of-turn id (SmolLM2's, Qwen's, Gemma's do not). A
        // registered chat format's end-of-turn marker (a plug-in family's) counts as one too.
        var stops = Set([eos] + endOfGeneration)
        let known = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "</s>"]
        for name in known + ChatFormat.registered.map(\.endOfTurn) where !name.isEmpty {
            if let id = t2i[name] { stops.insert(id) }
        }
        stopIds = stops
        // GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
        var b2s = [Unicode.Scalar](repeating: " ", count: 256)
        var s2b: [UInt32: UInt8] = [:]
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            let scalar =
                printable
                ? UInt32(b)
                : {
                    defer { next += 1 }; return next
                }()
            b2s[b] = Unicode.Scalar(scalar)!
            s2b[scalar] = UInt8(b)
        }
        byteToScalar = b2s
        scalarToByte = s2b
    }

    // MARK: Encoding

    /// The tokens a sequence starts with: BOS when the file asks for it (`tokenizer.ggml.add_bos_token`).
    public var beginning: [Int32] { addBOS ? bosId.map { [$0] } ?? [] : [] }

    /// Token ids for `text`, with `beginning` first when `addBOS` (a whole prompt; pieces of a context are
    /// encoded without it). With `parseSpecial`, special-token text such as `<|im_start|>` becomes its id.
    public func encode(_ text: String, parseSpecial: Bool = true, addBOS: Bool = false) -> [Int32] {
        var out: [Int32] = addBOS ? beginning : []
        let bytes = Array(text.utf8)
        var start = 0, i = 0
        var previousSpecial = true  // SentencePiece: a space prefix goes before text that starts the input or follows a special token
        func flush(_ end: Int) {
            guard end > start else { return }
            if kind == .sentencePiece {
                encodeSentencePiece(bytes[start..<end], spacePrefix: addSpacePrefix && previousSpecial, into: &out)
            } else {
                encodeOrdinary(bytes[start..<end], into: &out)
            }
            previousSpecial = false
        }
        if parseSpecial && !specialTokens.isEmpty {
            while i < bytes.count {
                if let match = specialTokens.first(where: { sp in
                    sp.text.count <= bytes.count - i && sp.text[0] == bytes[i] && bytes[i..<(i + sp.text.count)].elementsEqual(sp.text)
                }) {
                    flush(i)
                    out.append(match.id)
                    previousSpecial = true
                    i += match.text.count
                    start = i
                } else {
                    i += 1
                }
            }
        }
        flush(bytes.count)
        return out
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into out: inout [Int32]) {
        let text = String(decoding: bytes, as: UTF8.self)
        for word in preTokenize(text) {
            if let cached = cacheLock.withLock({ wordCache[word] }) { out.append(contentsOf: cached); continue }
            let ids = bpe(word)
            cacheLock.withLock { if wordCache.count < 100_000 { wordCache[word] = ids } }
            out.append(contentsOf: ids)
        }
    }

    /// SentencePiece BPE (llama.cpp's `llm_tokenizer_spm`): UTF-8 characters as symbols, spaces as "▁";
    /// repeatedly merge the adjacent pair whose concatenation is the highest-scoring token (ties: the
    /// leftmost pair), then emit each symbol's token, or its bytes' `<0xNN>` tokens when it has none.
    private func encodeSentencePiece(_ bytes: ArraySlice<UInt8>, spacePrefix: Bool, into out: inout [Int32]) {
        var text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "\u{2581}")
        if spacePrefix { text = "\u{2581}" + text }
        if let cached = cacheLock.withLock({ wordCache[text] }) { out.append(contentsOf: cached); return }
        // Symbols: (text, prev, next) as a linked list over the characters; a merged-away symbol is empty.
        var sym: [String] = text.map { String($0) }
        let n = sym.count
        guard n > 0 else { return }
        var prev = Array(-1..<(n - 1)), next = Array(1...n)
        next[n - 1] = -1
        struct Bigram: Comparable {
            let score: Float, left: Int, right: Int, size: Int
            static func < (a: Bigram, b: Bigram) -> Bool { a.score != b.score ? a.score < b.score : a.left > b.left }
        }
        var heap: [Bigram] = []  // binary max-heap
        func push(_ b: Bigram) {
            heap.append(b); var i = heap.count - 1
            while i > 0, heap[(i - 1) / 2] < heap[i] { heap.swapAt(i, (i - 1) / 2); i = (i - 1) / 2 }
        }
        func pop() -> Bigram {
            let top = heap[0]; let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last; var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1; var m = i
                    if l < heap.count, heap[m] < heap[l] { m = l }
                    if r < heap.count, heap[m] < heap[r] { m = r }
                    if m == i { break }
                    heap.swapAt(i, m); i = m
                }
            }
            return top
        }
        func tryAdd(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let joined = sym[l] + sym[r]
            guard let id = tokenToId[joined], Int(id) < scores.count else { return }
            push(Bigram(score: scores[Int(id)], left: l, right: r, size: joined.utf8.count))
        }
        for i in 1..<n { tryAdd(i - 1, i) }
        while !heap.isEmpty {
            let b = pop()
            // Stale: one side was merged since this pair was queued.
            guard !sym[b.left].isEmpty, !sym[b.right].isEmpty, sym[b.left].utf8.count + sym[b.right].utf8.count == b.size,
                next[b.left] == b.right
            else { continue }
            sym[b.left] += sym[b.right]; sym[b.right] = ""
            next[b.left] = next[b.right]
            if next[b.right] >= 0 { prev[next[b.right]] = b.left }
            tryAdd(prev[b.left], b.left)
            tryAdd(b.left, next[b.left])
        }
        var ids: [Int32] = []
        var i = 0
        while i >= 0 {
            if let id = tokenToId[sym[i]] {
                ids.append(id)
            } else {
                for byte in sym[i].utf8 { ids.append(byteTokens[Int(byte)] >= 0 ? byteTokens[Int(byte)] : 0) }
            }
            i = next[i]
        }
        cacheLock.withLock { if wordCache.count < 100_000 { wordCache[text] = ids } }
        out.append(contentsOf: ids)
    }

    /// Byte-level BPE of one pre-tokenized word: merge the lowest-ranked adjacent pair until none applies.
    private func bpe(_ word: String) -> [Int32] {
        var symbols: [String] = word.utf8.map { String(Character(byteToScalar[Int($0)])) }
        // Llama 3's tokenizer takes a word that is itself a token whole, before any merge (llama.cpp's
        // `ignore_merges`): " and" is one token even where the merges would not build it.
        if preTokenizer.ignoresMerges, symbols.count > 1, let id = tokenToId[symbols.joined()] { return [id] }
        while symbols.count > 1 {
            var best = Int.max, bestAt = -1
            for j in 0..<(symbols.count - 1) {
                if let r = mergeRanks[symbols[j] + " " + symbols[j + 1]], r < best { best = r; bestAt = j }
            }
            if bestAt < 0 { break }
            let left = symbols[bestAt], right = symbols[bestAt + 1]
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var j = 0
            while j < symbols.count {
                if j + 1 < symbols.count && symbols[j] == left && symbols[j + 1] == right {
                    merged.append(left + right); j += 2
                } else {
                    merged.append(symbols[j]); j += 1
                }
            }
            symbols = merged
        }
        var ids: [Int32] = []
        for s in symbols {
            if let id = tokenToId[s] { ids.append(id); continue }
            // Not in the vocabulary: fall back to one token per byte, as llama.cpp does.
            for scalar in s.unicodeScalars {
                ids.append(tokenToId[String(Character(scalar))] ?? 0)
            }
        }
        return ids
    }

    /// Splits text into words as llama.cpp's pre-tokenizer does (see `PreTokenizer`).
    public func preTokenize(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [Range<Int>] = []
        if preTokenizer.isolatesDigits {
            var s = 0
            for (k, c) in scalars.enumerated() where CharClass(c) == .number {
                if k > s { pieces.append(s..<k) }
                pieces.append(k..<(k + 1))
                s = k + 1
            }
            if s < scalars.count { pieces.append(s..<scalars.count) }
        } else {
            pieces = [0..<scalars.count]
        }
        var words: [String] = []
        for piece in pieces {
            let ranges: [Range<Int>]
            switch preTokenizer.rule {
            case .gpt2: ranges = gpt2Split(scalars, piece)
            case let .llama3(maxDigits): ranges = llama3Split(scalars, piece, maxDigits: maxDigits)
            case let .custom(split): ranges = split(scalars, piece)
            }
            for r in ranges {
                var w = String.UnicodeScalarView()
                w.append(contentsOf: scalars[r])
                words.append(String(w))
            }
        }
        return words
    }

    /// GPT-2's pre-tokenizer regex, hand-written as llama.cpp's `unicode_regex_split_custom_gpt2`;
    /// the piece boundary acts as end of text for the lookahead.
    private func gpt2Split(_ cp: [Unicode.Scalar], _ piece: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let end = piece.upperBound
        func cls(_ i: Int) -> CharClass? { i < end ? CharClass(cp[i]) : nil }
        func ch(_ i: Int) -> UInt32? { i < end ? cp[i].value : nil }
        var pos = piece.lowerBound, prev = pos
        func add(_ e: Int) { if e > prev { out.append(prev..<e) }; prev = e }
        while pos < end {
            let c = cp[pos].value
            if c == 0x27, pos + 1 < end {  // 's 't 're 've 'm 'll 'd
                let n = cp[pos + 1].value
                if [0x73, 0x74, 0x6D, 0x64].contains(n) { pos += 2; add(pos); continue }  // s t m d
                if pos + 2 < end {
                    let nn = cp[pos + 2].value
                    if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) { pos += 3; add(pos); continue }
                }
            }
            let lead = c == 0x20 ? cls(pos + 1) : cls(pos)
            if lead == .letter || lead == .number {
                let k = lead!
                if c == 0x20 { pos += 1 }
                while cls(pos) == k { pos += 1 }
                add(pos); continue
            }
            if lead == .other {  // ?[^\s\p{L}\p{N}]+
                if c == 0x20 { pos += 1 }
                while cls(pos) == .other { pos += 1 }
                add(pos); continue
            }
            var ws = 0
            while cls(pos + ws) == .whitespace { ws += 1 }
            if ws > 1 && ch(pos + ws) != nil { pos += ws - 1; add(pos); continue }  // \s+(?!\S)
            if ws > 0 { pos += ws; add(pos); continue }  // \s+
            pos += 1; add(pos)  // unassigned code point
        }
        return out
    }

    /// Llama 3's pre-tokenizer regex (and Qwen 2's, with `maxDigits` 1), hand-written as llama.cpp's
    /// `unicode_regex_split_custom_llama3`; the piece boundary acts as end of text for the lookahead.
    private func llama3Split(_ cp: [Unicode.Scalar], _ piece: Range<Int>, maxDigits: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let end = piece.upperBound
        func cls(_ i: Int) -> CharClass? { i < end ? CharClass(cp[i]) : nil }
        func ch(_ i: Int) -> UInt32? { i < end ? cp[i].value : nil }
        func lower(_ v: UInt32?) -> UInt32? { v.map { (0x41...0x5A).contains($0) ? $0 + 32 : $0 } }
        var pos = piece.lowerBound, prev = pos
        func add(_ e: Int) { if e > prev { out.append(prev..<e) }; prev = e }
        let cr: UInt32 = 0x0D, lf: UInt32 = 0x0A
        while pos < end {
            let c = cp[pos].value, k = CharClass(cp[pos])
            if c == 0x27, pos + 1 < end {  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                let n = lower(ch(pos + 1))!
                if [0x73, 0x74, 0x6D, 0x64].contains(n) { pos += 2; add(pos); continue }
                if pos + 2 < end, let nn = lower(ch(pos + 2)),
                    (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C)
                {
                    pos += 3; add(pos); continue
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(c == cr || c == lf || k == .number), k == .letter || cls(pos + 1) == .letter {
                pos += 1
                while cls(pos) == .letter { pos += 1 }
                add(pos); continue
            }
            // \p{N}{1,maxDigits}
            if k == .number {
                var start = pos
                while cls(pos) == .number {
                    pos += 1
                    if pos - start >= maxDigits { add(pos); start = pos }
                }
                add(pos); continue
            }
            // ' '?[^\s\p{L}\p{N}]+[\r\n]*
            let k2 = c == 0x20 ? cls(pos + 1) : k
            if k2 == .other {
                if c == 0x20 { pos += 1 }
                while cls(pos) == .other { pos += 1 }
                while ch(pos) == cr || ch(pos) == lf { pos += 1 }
                add(pos); continue
            }
            var ws = 0, lastNewline = -1
            while cls(pos + ws) == .whitespace {
                if ch(pos + ws) == cr || ch(pos + ws) == lf { lastNewline = pos + ws + 1 }
                ws += 1
            }
            if lastNewline > 0 { pos = lastNewline; add(pos); continue }  // \s*[\r\n]+
            if ws > 1 && ch(pos + ws) != nil { pos += ws - 1; add(pos); continue }  // \s+(?!\S)
            if ws > 0 { pos += ws; add(pos); continue }  // \s+
            pos += 1; add(pos)  // unassigned code point
        }
        return out
    }

    // MARK: Decoding

    /// The bytes a token stands for (special tokens as their text).
    public func bytes(of id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        let t = tokens[Int(id)]
        if Int(id) < tokenTypes.count, tokenTypes[Int(id)] == 3 || tokenTypes[Int(id)] == 4 { return Array(t.utf8) }
        if kind == .sentencePiece {
            // Byte tokens stand for their byte; "▁" is a space.
            if Int(id) < tokenTypes.count, tokenTypes[Int(id)] == 6, t.count == 6, t.hasPrefix("<0x"), let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
                return [b]
            }
            return Array(t.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
        }
        var out: [UInt8] = []
        for s in t.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { out.append(contentsOf: Array(String(s).utf8)) }
        }
        return out
    }

    public func decode(_ ids: [Int32]) -> String {
        String(decoding: ids.flatMap { bytes(of: $0) }, as: UTF8.self)
    }
}

/// The character classes the GPT-2 regex distinguishes.
enum CharClass: Equatable {
    case letter, number, whitespace, other, unassigned
    init(_ s: Unicode.Scalar) {
        if s.properties.isWhitespace { self = .whitespace; return }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        case .unassigned: self = .unassigned
        default: self = .other
        }
    }
}
