import Foundation
import ModelFile

/// Bring-your-own probe cases from a JSONL file, one case per line (RULER's and kvpress's shape, with
/// optional extras):
///
/// ```
/// {"context": "...", "question": "...", "answers": ["..."],            required
///  "answer_prefix": "The number is", "max_new_tokens": 40,             optional: how the answer starts, its cap
///  "needles": [[start, end], ...], "needle_labels": ["k1", ...],       optional: character spans in context
///  "id": "...", "probe": "niah", "length": 1024, "depth": 0.5, "sample": 0,
///  "turns": [{"question": "...", "answers": [...], "answer_prefix": "...", "needles": ["k1"]}, ...]}
/// ```
///
/// Needle spans are Unicode scalar offsets, end exclusive. `probe` names a registered probe whose reading
/// and scoring the case uses (default `file`: the first number or phrase in the answer; another name is a
/// label for the summary's rows, scored as `file`); `turns` replaces
/// `question`/`answers` for cases asked in several turns (`kvkit probes export` writes both kinds).
/// Unknown keys are ignored, so a dataset's extra fields do no harm.
public enum ProbeFile {
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case unreadable(String)
        case notUTF8(String)
        case malformed(line: Int, reason: String)
        case empty(String)
        public var description: String { text.withoutLineBreaks }
        private var text: String {
            switch self {
            case let .unreadable(p): return "cannot read probe file \(p); check the path"
            case let .notUTF8(p): return "probe file \(p) is not UTF-8 text; save it as UTF-8 (one JSON object per line)"
            case let .malformed(l, r): return "probe file line \(l): \(r); fix it, or pass --skip-bad-lines to skip such lines"
            case let .empty(p):
                return "probe file \(p) holds no valid case; write one JSON object per line with context, question and answers (see 'kvkit run --help')"
            }
        }

        /// How a skipped line is reported under `--skip-bad-lines` (without advising the flag already given).
        public var skipNote: String {
            if case let .malformed(l, r) = self { return "skipped probe file line \(l): \(r)".withoutLineBreaks }
            return description
        }
    }

    /// A field of the wrong kind or out of range, in words.
    struct FieldError: Swift.Error { let reason: String }

    /// One turn as a line gives it.
    struct LineTurn: Decodable {
        let question: String
        let answers: [String]
        let answerPrefix: String?
        let maxNewTokens: Int?
        let needles: [String]?

        enum CodingKeys: String, CodingKey { case question, answers, answer_prefix, max_new_tokens, needles }

        init(from d: Decoder) throws {
            let c = try d.container(keyedBy: CodingKeys.self)
            question = try field(c, .question, String.self, "a string") ?? ""
            answers = try field(c, .answers, [String].self, "a list of strings") ?? []
            answerPrefix = try field(c, .answer_prefix, String.self, "a string")
            maxNewTokens = try field(c, .max_new_tokens, Int.self, "a whole number from 1 to 4096")
            if let n = maxNewTokens, !(1...4096).contains(n) { throw FieldError(reason: "max_new_tokens must be a whole number from 1 to 4096 (got \(n))") }
            needles = try field(c, .needles, [String].self, "a list of needle labels")
        }

        init(question: String, answers: [String], answerPrefix: String?, maxNewTokens: Int?, needles: [String]?) {
            self.question = question; self.answers = answers; self.answerPrefix = answerPrefix; self.maxNewTokens = maxNewTokens; self.needles = needles
        }
    }

    struct Line: Decodable {
        let context: String
        let turns: [LineTurn]
        let needles: [[Int]]
        let needleLabels: [String]?
        let id: String?
        let probe: String?
        let length: Int?, depth: Double?, sample: Int?

        enum CodingKeys: String, CodingKey {
            case context, question, answers, answer_prefix, max_new_tokens, needles, needle_labels, id, probe, length, depth, sample, turns
        }

        init(from d: Decoder) throws {
            let c = try d.container(keyedBy: CodingKeys.self)
            context = try field(c, .context, String.self, "a string") ?? ""
            if let t = try field(c, .turns, [LineTurn].self, "a list of {question, answers} objects") {
                turns = t
            } else {
                // One turn at the top level; there `needles` are the context's spans, not labels.
                let maxNewTokens = try field(c, .max_new_tokens, Int.self, "a whole number from 1 to 4096")
                if let n = maxNewTokens, !(1...4096).contains(n) { throw FieldError(reason: "max_new_tokens must be a whole number from 1 to 4096 (got \(n))") }
                turns = [
                    LineTurn(
                        question: try field(c, .question, String.self, "a string") ?? "",
                        answers: try field(c, .answers, [String].self, "a list of strings") ?? [],
                        answerPrefix: try field(c, .answer_prefix, String.self, "a string"),
                        maxNewTokens: maxNewTokens, needles: nil)
                ]
            }
            needles = try field(c, .needles, [[Int]].self, "a list of [start, end] character spans") ?? []
            needleLabels = try field(c, .needle_labels, [String].self, "a list of strings")
            id = try field(c, .id, String.self, "a string")
            probe = try field(c, .probe, String.self, "a string")
            length = try field(c, .length, Int.self, "a whole number")
            depth = try field(c, .depth, Double.self, "a number")
            sample = try field(c, .sample, Int.self, "a whole number")
        }
    }

    /// A present field decoded as `T`, nil when absent or null; a value of another kind is a `FieldError`
    /// that names the field and what it must be.
    static func field<K: CodingKey, T: Decodable>(_ c: KeyedDecodingContainer<K>, _ key: K, _ type: T.Type, _ expected: String) throws -> T? {
        do { return try c.decodeIfPresent(type, forKey: key) } catch let e as FieldError { throw e } catch {
            throw FieldError(reason: "\(key.stringValue) must be \(expected)")
        }
    }

    /// The cases of a file; malformed lines are collected (with line numbers) and skipped when
    /// `skipBadLines`, otherwise the first one is thrown.
    public static func load(_ path: String, tokenizer: Tokenizer, chat: ChatTemplate, skipBadLines: Bool)
        throws -> (cases: [ProbeCase], skipped: [Error])
    {
        guard let data = FileManager.default.contents(atPath: path) else { throw Error.unreadable(path) }
        // A leading byte-order mark is skipped (as in sweep configs); other invalid UTF-8 is refused.
        guard let text = String(validating: data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data[...], as: UTF8.self) else {
            throw Error.notUTF8(path)
        }
        var cases: [ProbeCase] = [], skipped: [Error] = []
        // "\r\n" is one Character in Swift: split on both so Windows line endings read as lines.
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let lineNo = i + 1
            if raw.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            do {
                cases.append(try parse(String(raw), lineNo: lineNo, tokenizer: tokenizer, chat: chat))
            } catch let e as Error {
                if !skipBadLines { throw e }
                skipped.append(e)
            }
        }
        guard !cases.isEmpty else { throw Error.empty(path) }
        return (cases, skipped)
    }

    static func parse(_ raw: String, lineNo: Int, tokenizer: Tokenizer, chat: ChatTemplate) throws -> ProbeCase {
        // Strict JSON first: a syntax error, a raw control character or a key given twice is named with its
        // column (Foundation's reader keeps one of two equal keys and reports a NUL as a wrong type).
        let tree: StrictJSON.Value
        do { tree = try StrictJSON.parse(raw, maxDepth: 16) } catch let e as StrictJSON.Error {
            throw Error.malformed(line: lineNo, reason: "column \(e.column): \(e.message)")
        }
        guard tree.members != nil else { throw Error.malformed(line: lineNo, reason: "\(tree.kind), not a JSON object with context, question and answers") }
        let l: Line
        do { l = try JSONDecoder().decode(Line.self, from: Data(raw.utf8)) } catch let e as FieldError {
            throw Error.malformed(line: lineNo, reason: e.reason)
        } catch {
            throw Error.malformed(line: lineNo, reason: "not a JSON object with context, question and answers")
        }
        guard !l.context.isEmpty, !l.turns.isEmpty, l.turns.allSatisfy({ !$0.question.isEmpty && !$0.answers.isEmpty }) else {
            throw Error.malformed(line: lineNo, reason: "context, question and answers must not be empty")
        }
        let n = l.context.unicodeScalars.count
        if let labels = l.needleLabels, labels.count != l.needles.count {
            throw Error.malformed(line: lineNo, reason: "needle_labels has \(labels.count) labels for \(l.needles.count) needles; give one per needle")
        }
        var spans: [(Range<Int>, String)] = []
        for (k, s) in l.needles.enumerated() {
            guard s.count == 2, s[0] >= 0, s[0] < s[1], s[1] <= n else {
                throw Error.malformed(line: lineNo, reason: "needle span \(s) is not [start, end) within the context's \(n) characters")
            }
            spans.append((s[0]..<s[1], l.needleLabels?[k] ?? "needle\(k + 1)"))
        }
        spans.sort { $0.0.lowerBound < $1.0.lowerBound }
        if zip(spans, spans.dropFirst()).contains(where: { $0.0.upperBound > $1.0.lowerBound }) {
            throw Error.malformed(line: lineNo, reason: "needle spans overlap")
        }
        if Set(spans.map(\.1)).count != spans.count { throw Error.malformed(line: lineNo, reason: "needle_labels repeat a label; give each needle its own") }
        for t in l.turns {
            if let unknown = t.needles?.first(where: { label in !spans.contains { $0.1 == label } }) {
                throw Error.malformed(line: lineNo, reason: "a turn needs needle '\(unknown.shownOnOneLine())', which no needle_labels entry names")
            }
        }
        return build(l, spans: spans, lineNo: lineNo, tokenizer: tokenizer, chat: chat)
    }

    /// Tokenizes the context in pieces split at needle boundaries, so needle token spans are exact.
    static func build(_ l: Line, spans: [(Range<Int>, String)], lineNo: Int, tokenizer: Tokenizer, chat: ChatTemplate) -> ProbeCase {
        var b = ContextBuilder(tokenizer: tokenizer)
        b.append(chat.openingOfFirstUserTurn())
        let scalars = Array(l.context.unicodeScalars)
        func text(_ r: Range<Int>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[r]); return String(v) }
        var at = 0
        for (s, label) in spans {
            if s.lowerBound > at { b.append(text(at..<s.lowerBound)) }
            b.appendNeedle(text(s), label: label)
            at = s.upperBound
        }
        if at < scalars.count { b.append(text(at..<scalars.count)) }
        let turns = l.turns.map {
            Turn(
                question: $0.question, answerPrefix: $0.answerPrefix ?? "", answers: $0.answers,
                needles: $0.needles ?? b.needles.map(\.label), maxNewTokens: $0.maxNewTokens)
        }
        return ProbeCase(
            id: l.id ?? "file/line\(lineNo)", probe: l.probe ?? "file", length: l.length ?? b.tokens.count,
            depth: l.depth ?? 0, sample: l.sample ?? 0, context: b.tokens, needles: b.needles, turns: turns)
    }
}
