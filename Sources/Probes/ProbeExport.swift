import Foundation
import ModelFile

/// Writes cases as probe-file lines (`ProbeFile`'s format), so the very cases of a generated grid can be
/// run by another tool (kvpress, RULER's scripts) or by `kvkit run --probe-file`, which reads them back
/// token for token: the context is the text after the chat template's opening, needles are character
/// spans with their labels, and each turn keeps its question, answer prefix and answers.
public enum ProbeExport {
    /// One JSON line (no newline) for `c`.
    public static func line(_ c: ProbeCase, tokenizer: Tokenizer, chat: ChatTemplate) throws -> String {
        let openingTokens = tokenizer.encode(chat.openingOfFirstUserTurn(), addBOS: true), opening = openingTokens.count
        guard c.context.count >= opening, Array(c.context.prefix(opening)) == openingTokens else {
            throw ExportError(reason: "case \(c.id) does not open with the model's chat template")
        }
        let body = Array(c.context[opening...])
        let text = tokenizer.decode(body)
        // Character offsets of each needle: the decoded text before it (decoding is lossless byte-level BPE).
        var needles: [[Int]] = []
        for n in c.needles {
            let start = tokenizer.decode(Array(c.context[opening..<n.start])).unicodeScalars.count
            let end = tokenizer.decode(Array(c.context[opening..<n.end])).unicodeScalars.count
            needles.append([start, end])
        }
        var object: [String: Any] = [
            "id": c.id, "probe": c.probe, "length": c.length, "depth": c.depth, "sample": c.sample,
            "context": text, "needles": needles, "needle_labels": c.needles.map(\.label),
        ]
        func turn(_ t: Turn) -> [String: Any] {
            var o: [String: Any] = ["question": t.question, "answer_prefix": t.answerPrefix, "answers": t.answers, "needles": t.needles]
            if let m = t.maxNewTokens { o["max_new_tokens"] = m }
            return o
        }
        if c.turns.count == 1 {
            for (k, v) in turn(c.turns[0]) where k != "needles" { object[k] = v }
        } else {
            object["turns"] = c.turns.map(turn)
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    public struct ExportError: Error, CustomStringConvertible { public let reason: String; public var description: String { reason } }
}
