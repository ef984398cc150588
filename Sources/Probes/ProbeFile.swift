import Foundation
import ModelFile

/// Bring-your-own probe cases from a JSONL file, one case per line:
/// `{"context": "...", "question": "...", "answers": ["..."], "needles": [[start, end], ...], "id": "optional"}`
/// where needles are character spans (Unicode scalar offsets, end exclusive) in `context`.
public enum ProbeFile {
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case unreadable(String)
        case notUTF8(String)
        case malformed(line: Int, reason: String)
        case empty(String)
        public var description: String {
            switch self {
            case let .unreadable(p): return "cannot read probe file \(p); check the path"
            case let .notUTF8(p): return "probe file \(p) is not UTF-8 text; save it as UTF-8 (one JSON object per line)"
            case let .malformed(l, r): return "probe file line \(l): \(r); fix it, or pass --skip-bad-lines to skip such lines"
            case let .empty(p): return "probe file \(p) holds no valid case"
            }
        }
    }

    struct Line: Decodable {
        let context: String
        let question: String
        let answers: [String]
        let needles: [[Int]]?
        let id: String?
    }

    /// The cases of a file; malformed lines are collected (with line numbers) and skipped when
    /// `skipBadLines`, otherwise the first one is thrown.
    public static func load(_ path: String, tokenizer: Tokenizer, chat: ChatTemplate, skipBadLines: Bool)
        throws -> (cases: [ProbeCase], skipped: [Error]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw Error.unreadable(path) }
        guard let text = String(data: data, encoding: .utf8) else { throw Error.notUTF8(path) }
        var cases: [ProbeCase] = [], skipped: [Error] = []
        // "\r\n" is one Character in Swift: split on both so Windows line endings read as lines.
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let lineNo = i + 1
            if raw.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            do {
                let l: Line
                do { l = try JSONDecoder().decode(Line.self, from: Data(raw.utf8)) } catch {
                    throw Error.malformed(line: lineNo, reason: "not a JSON object with context, question and answers")
                }
                guard !l.context.isEmpty, !l.question.isEmpty, !l.answers.isEmpty else {
                    throw Error.malformed(line: lineNo, reason: "context, question and answers must not be empty")
                }
                let n = l.context.unicodeScalars.count
                var spans: [Range<Int>] = []
                for s in l.needles ?? [] {
                    guard s.count == 2, s[0] >= 0, s[0] < s[1], s[1] <= n else {
                        throw Error.malformed(line: lineNo, reason: "needle span \(s) is not [start, end) within the context's \(n) characters")
                    }
                    spans.append(s[0]..<s[1])
                }
                spans.sort { $0.lowerBound < $1.lowerBound }
                if zip(spans, spans.dropFirst()).contains(where: { $0.upperBound > $1.lowerBound }) {
                    throw Error.malformed(line: lineNo, reason: "needle spans overlap")
                }
                cases.append(build(l, spans: spans, lineNo: lineNo, tokenizer: tokenizer, chat: chat))
            } catch let e as Error {
                if !skipBadLines { throw e }
                skipped.append(e)
            }
        }
        guard !cases.isEmpty else { throw Error.empty(path) }
        return (cases, skipped)
    }

    /// Tokenizes the context in pieces split at needle boundaries, so needle token spans are exact.
    static func build(_ l: Line, spans: [Range<Int>], lineNo: Int, tokenizer: Tokenizer, chat: ChatTemplate) -> ProbeCase {
        var b = ContextBuilder(tokenizer: tokenizer)
        b.append(chat.openingOfFirstUserTurn())
        let scalars = Array(l.context.unicodeScalars)
        func text(_ r: Range<Int>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[r]); return String(v) }
        var at = 0
        for (k, s) in spans.enumerated() {
            if s.lowerBound > at { b.append(text(at..<s.lowerBound)) }
            b.appendNeedle(text(s), label: "needle\(k + 1)")
            at = s.upperBound
        }
        if at < scalars.count { b.append(text(at..<scalars.count)) }
        let turn = Turn(question: l.question, answerPrefix: "", answers: l.answers, needles: b.needles.map(\.label))
        return ProbeCase(id: l.id ?? "file/line\(lineNo)", probe: "file", length: b.tokens.count, depth: 0, sample: 0,
                         context: b.tokens, needles: b.needles, turns: [turn])
    }
}
