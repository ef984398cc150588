import Foundation
import ModelFile
import Probes

/// The conformance kit for probes (KVKit runs it over every registered probe; a plugin's tests call it
/// on theirs): on the model's own tokenizer and prompt format, for several lengths, depths, chain lengths
/// and seeds, a probe's cases
/// - are deterministic for a seed (the same case twice, a different one for another sample),
/// - have exact needle spans (the tokens of a span decode to the needle's text) that do not overlap,
/// - hold every expected answer in the context (a chained turn's answer is the next link's key),
/// - name only needles that exist in each turn, and end near the asked length.
/// Returns a list of failures (empty = conformant).
public enum ProbeConformance {
    public static func check(
        _ probe: any Probe, tokenizer: Tokenizer, chat: ChatTemplate, lengths: [Int] = [256, 700],
        hops: [Int] = [1, 3], seeds: [UInt64] = [0, 9]
    ) -> [String] {
        var failures: [String] = []
        for k in (probe.usesHops ? hops : [ProbeGenerator.defaultHops]) {
            for length in Array(Set(lengths.map { max($0, probe.shortestLength) })).sorted() {
                for depth in (probe.usesDepth ? [0.0, 0.5, 1.0] : [0.5]) {
                    for seed in seeds {
                        var gen = ProbeGenerator(tokenizer: tokenizer, chat: chat, haystackSeed: seed)
                        gen.hops = k
                        let c = gen.make(probe, length: length, depth: depth, sample: 0, seed: seed)
                        let tag = "\(probe.name) k=\(k) length \(length) depth \(depth) seed \(seed)"
                        if c != gen.make(probe, length: length, depth: depth, sample: 0, seed: seed) { failures.append("\(tag): not deterministic") }
                        if c == gen.make(probe, length: length, depth: depth, sample: 1, seed: seed) {
                            failures.append("\(tag): sample 1 is the same case as sample 0")
                        }
                        if c.turns.isEmpty { failures.append("\(tag): no turn") }
                        // With `lengthIncludesTurn` (RULER) the first question and its answer room count too, and never pass it.
                        let turn =
                            probe.lengthIncludesTurn
                            ? c.turns.first.map {
                                tokenizer.encode("\n\n" + $0.question + chat.userToAssistant + $0.answerPrefix).count + ($0.maxNewTokens ?? 0)
                            } ?? 0
                            : 0
                        if abs(c.context.count + turn - length) > length / 4 + 64 {
                            failures.append("\(tag): context of \(c.context.count) tokens for \(length) asked")
                        }
                        if probe.lengthIncludesTurn && c.context.count + turn > length {
                            failures.append("\(tag): \(c.context.count + turn) tokens with the question and answer room pass the length \(length)")
                        }
                        let spans = c.needles.sorted { $0.start < $1.start }
                        for (a, b) in zip(spans, spans.dropFirst()) where a.end > b.start {
                            failures.append("\(tag): needles \(a.label) and \(b.label) overlap")
                        }
                        for n in c.needles {
                            guard n.start >= 0, n.end <= c.context.count, n.start < n.end else {
                                failures.append("\(tag): needle \(n.label) out of range"); continue
                            }
                            let text = tokenizer.decode(Array(c.context[n.range]))
                            if text != n.text {
                                failures.append("\(tag): needle \(n.label) decodes to \(text.debugDescription), not \(n.text.debugDescription)")
                            }
                        }
                        let context = tokenizer.decode(c.context)
                        let labels = Set(c.needles.map(\.label))
                        for (t, turn) in c.turns.enumerated() {
                            for a in turn.answers where !context.contains(a) { failures.append("\(tag): turn \(t + 1)'s answer \(a) is not in the context") }
                            for n in turn.needles where !labels.contains(n) {
                                failures.append("\(tag): turn \(t + 1) names needle \(n), which is not in the case")
                            }
                        }
                    }
                }
            }
        }
        return failures
    }
}
