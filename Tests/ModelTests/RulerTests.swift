import Foundation
import KVKitTestSupport
import Probes
import Testing
@testable import Runs

/// RULER's tasks as `--suite ruler` lays them out, on the real model's tokenizer and the essays.
@Suite struct RulerTests {
    static func generator() throws -> ProbeGenerator {
        let m = try Real.model
        var g = ProbeGenerator(tokenizer: m.tokenizer, chat: m.chatTemplate, haystackSeed: 0)
        g.haystackSentences = try RunSession.haystack("essays", seed: 0).sentences
        return g
    }

    /// Every task at 1,024 and 4,096 tokens: the prompt with its question and answer budget fits RULER's
    /// `max_seq_length` and fills at least 85 % of it; every expected string is in the context; NIAH needles
    /// decode to RULER's needle sentence; the tasks ask what RULER asks (1 value, 4 keys with one asked, 4
    /// values, 4 queries, 5 variables, 10 words, 3 words).
    @Test func casesFitTheLengthAndHoldTheirAnswers() throws {
        let g = try Self.generator(), m = try Real.model
        let expected: [String: Int] = [
            "ruler-niah-single-1": 1, "ruler-niah-single-2": 1, "ruler-niah-single-3": 1, "ruler-niah-multikey-1": 1, "ruler-niah-multikey-2": 1,
            "ruler-niah-multikey-3": 1, "ruler-niah-multivalue": 4, "ruler-niah-multiquery": 4, "ruler-vt": 5, "ruler-cwe": 10, "ruler-fwe": 3,
        ]
        #expect(Set(RulerProbe.suite) == Set(expected.keys))
        for name in RulerProbe.suite {
            let probe = try #require(ProbeRegistry.shared.probe(name))
            for length in [1024, 4096] {
                let c = g.make(probe, length: length, depth: 0.5, sample: 3, seed: 0)
                let turn = try #require(c.turns.first)
                let used =
                    c.context.count + m.tokenizer.encode("\n\n" + turn.question + m.chatTemplate.userToAssistant + turn.answerPrefix).count
                    + (turn.maxNewTokens ?? 0)
                #expect(used <= length && used >= length * 85 / 100, "\(name) at \(length): \(used) tokens")
                #expect(turn.answers.count == expected[name], "\(name): \(turn.answers)")
                let text = m.tokenizer.decode(c.context)
                for a in turn.answers { #expect(text.contains(a), "\(name): \(a) not in the context") }
                if name.contains("niah") {
                    #expect(c.needles.count == (name.hasSuffix("multikey-1") || name.hasSuffix("multivalue") || name.hasSuffix("multiquery") ? 4 : 1))
                    for n in c.needles { #expect(n.text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("One of the special magic")) }
                    let plural = turn.answers.count > 1
                    #expect(turn.answerPrefix.hasSuffix(plural ? "mentioned in the provided text are" : "mentioned in the provided text is"))
                }
            }
        }
    }

    /// Common words: in the list after the in-context example, each of the 10 answers appears 30 times
    /// and every other word 3 times. Frequent words: the 3 answers are the most frequent coded words
    /// after the "..." noise, in order.
    @Test func aggregationTasksCountAsRULERDoes() throws {
        let g = try Self.generator(), m = try Real.model
        let cwe = g.make(try #require(ProbeRegistry.shared.probe("ruler-cwe")), length: 4096, depth: 0.5, sample: 0, seed: 0)
        let text = m.tokenizer.decode(cwe.context)
        let head = "Memorize the ones that appear most often.\n"
        let main = try #require(text.components(separatedBy: head).last)
        var counts: [String: Int] = [:]
        for item in main.split(separator: " ") where item.last != "." { counts[String(item), default: 0] += 1 }
        let answers = cwe.turns[0].answers
        #expect(answers.allSatisfy { counts[$0] == 30 }, "\(answers.map { counts[$0] ?? 0 })")
        #expect(counts.filter { !answers.contains($0.key) }.values.allSatisfy { $0 == 3 })
        let fwe = g.make(try #require(ProbeRegistry.shared.probe("ruler-fwe")), length: 4096, depth: 0.5, sample: 0, seed: 0)
        var f: [String: Int] = [:]
        for w in m.tokenizer.decode(fwe.context).split(separator: " ") where w.count == 6 && w.allSatisfy(\.isLowercase) { f[String(w), default: 0] += 1 }
        let top = f.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.prefix(3).map(\.key)
        #expect(top == fwe.turns[0].answers, "\(top) vs \(fwe.turns[0].answers)")
    }

    /// RULER's `string_match_all`: the share of expected strings in the answer, case ignored.
    @Test func scoringIsStringMatchAll() throws {
        let p = RulerProbe(.niahMultivalue)
        let turn = Turn(question: "q", answerPrefix: "", answers: ["2342315", "8862092", "9699027", "1191567"], needles: [])
        #expect(p.score("They are 2342315 and 8862092.", turn: turn) == 0.5)
        let uuid = Turn(question: "q", answerPrefix: "", answers: ["d5c2ea92-6eb6-4d26-9595-6cde5ec17ec4"], needles: [])
        #expect(p.score("D5C2EA92-6EB6-4D26-9595-6CDE5EC17EC4", turn: uuid) == 1)
        #expect(!p.isSettled("They are 2342315", turn: turn) && p.isSettled("2342315 8862092 9699027 1191567", turn: turn))
    }

    /// The leaderboard view: per variant, the tasks' scores, their mean, and an interval whose variance is
    /// the tasks' (Wilson half-width / 1.96, squared) summed over the tasks squared; the ratio is 1 − budget.
    @Test func suiteRowsAverageTheTasks() throws {
        func row(_ probe: String, _ policy: String, _ budget: String, _ acc: Double, _ lo: Double, _ hi: Double) -> Summary.Row {
            Summary.Row(
                probe: probe, policy: policy, budget: budget, quant: "fp32", cases: 25, correct: acc * 25, accuracy: acc, ciLow: lo, ciHigh: hi, survival: nil,
                kl: 0, liveBytes: 0, ratio: 0, kvDataBytes: 0, ratioVsFP16: 0, hotBytes: 0, coldBytes: 0, lz4Ratio: nil, readFraction: 1,
                attentionCosine: 1, attentionRelativeError: 0, turnSurvival: [], turnAccuracy: [])
        }
        let rows = [
            row("ruler-niah-single-1", "kvzap", "0.25", 0.8, 0.6, 1.0), row("ruler-vt", "kvzap", "0.25", 0.4, 0.2, 0.6),
            row("ruler-niah-single-1", "full", "1.0", 1, 1, 1), row("niah", "kvzap", "0.25", 0.1, 0, 0.2),
        ]
        let s = SuiteSummary.rows(rows)
        #expect(s.tasks == ["ruler-niah-single-1", "ruler-vt"])
        let zap = try #require(s.rows.first { $0.label == "kvzap" })
        let half = 1.96 * ((pow(0.2 / 1.96, 2) + pow(0.2 / 1.96, 2)) / 4).squareRoot()
        #expect(abs(zap.average - 0.6) < 1e-9 && abs(zap.ciLow - (0.6 - half)) < 1e-9 && zap.compressionRatio == 0.75 && zap.cases == 50)
        let full = try #require(s.rows.first { $0.label == "full" })
        #expect(full.tasks[1] == nil && full.average == 1 && full.compressionRatio == 0)
        #expect(SuiteSummary.text(tasks: s.tasks, rows: s.rows).contains("n/a"))
        #expect(
            SuiteSummary.csv(tasks: s.tasks, rows: s.rows).hasPrefix(
                "policy,budget,compression_ratio,ruler-niah-single-1,ruler-vt,average,ci_low,ci_high,cases\n"))
    }
}
