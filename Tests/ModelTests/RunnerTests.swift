import Foundation
import KVKitTestSupport
import Policies
import Probes
import Testing
@testable import Runs

/// `kvkit run`'s runner on the real model.
@Suite(.serialized) struct RunnerTests {
    static var gen: ProbeGenerator {
        get throws { let m = try Real.model; return ProbeGenerator(tokenizer: m.tokenizer, chat: m.chatTemplate, haystackSeed: 3) }
    }

    static func variant(_ text: String, _ budget: Budget) throws -> Variant {
        let spec = try PolicyRegistry.shared.parse(text)
        return Variant(spec: spec, policy: try PolicyRegistry.shared.make(spec), budget: budget)
    }

    /// Timings differ run to run; everything else must not.
    static func untimed(_ r: [VariantResult]) -> [VariantResult] {
        r.map {
            var x = $0; x.prefillSeconds = 0; x.compressSeconds = 0; x.decodeSeconds = 0; return x
        }
    }

    @Test func needleTokenSpansAreExact() throws {
        let c = try Self.gen.make(NIAHMultikeyProbe(), length: 400, depth: 0.5, sample: 0, seed: 1)
        #expect(abs(c.context.count - 400) < 40, "context \(c.context.count) tokens")
        for n in c.needles {
            #expect(try Real.model.tokenizer.decode(Array(c.context[n.range])) == n.text)
        }
        #expect(c.needles.count == 4 && Set(c.needles.map(\.label)).count == 4)
    }

    /// Every chain probe in every wording: exact spans, a hop label per link in chain order, answers
    /// that are the next link's key, and a distractor chain beside it.
    @Test(arguments: MultihopWording.allCases)
    func chainProbesAreWellFormed(wording: MultihopWording) throws {
        for hops in 1...4 {
            var g = try Self.gen
            g.hops = hops; g.wording = wording
            for kind in [MultihopProbe() as any Probe, MultihopDirectProbe(), VariableTrackingProbe()] {
                let c = g.make(kind, length: 512, depth: 0.5, sample: 1, seed: 3)
                for n in c.needles { #expect(try Real.model.tokenizer.decode(Array(c.context[n.range])) == n.text) }
                let hopNeedles = (1...hops).map { h in c.needles.first { $0.label == "hop\(h)" } }
                #expect(
                    hopNeedles.allSatisfy { $0 != nil } && c.needles.filter { $0.label.hasPrefix("distractor") }.count >= hops,
                    "\(kind.name) k=\(hops): \(c.needles.map(\.label))")
                #expect(c.probe == (hops == 2 ? kind.name : "\(kind.name):k=\(hops)"))
                switch kind.name {
                case "multihop":
                    #expect(c.turns.count == hops)
                    // Link h states the answer of turn h; the next turn asks about it.
                    for h in 0..<hops {
                        #expect(hopNeedles[h]!.text.contains(c.turns[h].answers[0]))
                        if h + 1 < hops { #expect(hopNeedles[h + 1]!.text.contains(c.turns[h].answers[0]) && c.turns[h + 1].question.contains("{previous}")) }
                    }
                    #expect(c.turns.last!.answers[0].allSatisfy { $0.isNumber }, "the chain ends at a number")
                case "multihop-direct":
                    #expect(c.turns.count == 1 && hopNeedles.last!!.text.contains(c.turns[0].answers[0]))
                default:
                    // Variable tracking: every variable of the chain is an answer, assigned in order.
                    #expect(c.turns.count == 1 && c.turns[0].answers.count == hops + 1)
                    let order = c.turns[0].answers.map { v in c.needles.firstIndex { $0.text.contains("VAR \(v) =") }! }
                    #expect(order == order.sorted(), "assignments keep chain order")
                }
            }
        }
    }

    @Test func hopAnswersAreReadInTheExpectedShape() {
        #expect(ProbeAnswers.first(in: " 4821933. Then 7719204", like: "7719204") == "4821933")
        #expect(ProbeAnswers.first(in: " 48219 only", like: "7719204") == nil)
        #expect(ProbeAnswers.first(in: " The next key is amber-owl.", like: "silver-fox") == "amber-owl")
        #expect(ProbeAnswers.first(in: " none", like: "silver-fox") == nil)
    }

    @Test func streamingLosesAMidContextNeedleAndKeepsOneInItsRecentWindow() throws {
        let runner = Runner(model: try Real.model)
        let v = try Self.variant("streaming", .tokens(64))
        let mid = try runner.run(try Self.gen.make(NIAHProbe(), length: 512, depth: 0.5, sample: 0, seed: 5), variants: [v])
        let end = try runner.run(try Self.gen.make(NIAHProbe(), length: 512, depth: 1.0, sample: 0, seed: 5), variants: [v])
        #expect(mid[0].score == 1 && end[0].score == 1, "the full cache answers both: \(mid[0].answers) \(end[0].answers)")
        #expect(mid[1].needleSurvival == 0 && mid[1].score == 0, "mid needle evicted: \(mid[1].answers)")
        #expect(end[1].needleSurvival == 1 && end[1].score == 1, "recent needle kept: \(end[1].answers)")
        #expect(mid[1].survivalByLayer.allSatisfy { $0 == 0 } && end[1].survivalByLayer.allSatisfy { $0 == 1 })
        #expect(mid[1].compressionRatio > 7, "64 of ~520 tokens kept: ratio \(mid[1].compressionRatio)")
        #expect(
            mid[1].attentionCosineByLayer.count == 30 && mid[1].attentionCosineByLayer.contains { $0 < 0.99 },
            "evicting 88% of the context changes attention somewhere: \(mid[1].attentionCosineByLayer.prefix(5))")
    }

    @Test func budgetOneScoresExactlyAsTheFullCache() throws {
        let c = try Self.gen.make(NIAHMultiqueryProbe(), length: 384, depth: 0.5, sample: 0, seed: 2)
        let variants = try PolicyRegistry.shared.names.filter { $0 != "full" }.map { try Self.variant($0, .fraction(1)) }
        let r = try Runner(model: try Real.model).run(c, variants: variants)
        for x in r.dropFirst() {
            #expect(x.answers == r[0].answers && x.score == r[0].score, "\(x.policy)")
            // The forks run in one batched product whose rounding may depend on a row's place in the batch
            // (seen on AMD EPYC with OpenBLAS's Haswell kernels: KL ~1e-13), and native weights round the
            // activations to 16-bit codes, where a last-bit difference can land a value on the neighbouring
            // code (a step of 1/32767 of its block's largest): measured KL ≤ 5e-9, so "equal" is to 1e-7 nats.
            #expect(x.needleSurvival == 1 && x.firstTokenKL < 1e-7, "\(x.policy) KL \(x.firstTokenKL)")
            #expect(x.attentionCosineByLayer.count == 30 && x.attentionCosineByLayer.allSatisfy { abs($0 - 1) < 1e-6 }, "\(x.policy)")
        }
    }

    @Test func forkedAndNonForkedRunsAreIdentical() throws {
        let c = try Self.gen.make(NIAHProbe(), length: 384, depth: 0.3, sample: 0, seed: 9)
        let variants = [try Self.variant("snapkv", .fraction(0.25)), try Self.variant("h2o", .fraction(0.25)), try Self.variant("knorm", .tokens(100))]
        var runner = Runner(model: try Real.model)
        let forked = try runner.run(c, variants: variants)
        runner.sharePrefill = false
        let plain = try runner.run(c, variants: variants)
        #expect(Self.untimed(forked) == Self.untimed(plain))
        #expect(Self.untimed(forked) == Self.untimed(try Runner(model: try Real.model).run(c, variants: variants)), "deterministic")
    }

    /// Compressing while answering: between turns the cache goes back to the prompt's budget after every
    /// later question (exactly B slots per stream), and only then can the model's own earlier answers be
    /// evicted; compressed once after the prompt, every one of their tokens stays. `multihop-recall`'s later
    /// questions point at those answers.
    @Test func compressingBetweenTurnsHoldsTheBudgetAndCanEvictTheModelsOwnAnswers() throws {
        var g = try RunnerTests.gen
        g.hops = 3
        let c = g.make(MultihopRecallProbe(), length: 512, depth: 0.5, sample: 0, seed: 1)
        #expect(c.turns.count == 3 && c.turns[1].question.contains("your last answer") && !c.turns[1].question.contains("{previous}"))
        let model = try Real.model
        var r = Runner(model: model)
        let v = try RunnerTests.variant("rkv", .fraction(0.1))
        let once = try r.run(c, variants: [v])
        #expect(once[1].recompressions == nil && once[1].recompressedSlots == nil)
        #expect(once[1].ownAnswerSurvival == 1, "compressed only after the prompt, the model's answers all stay")
        r.compressBetweenTurns = true
        let between = try r.run(c, variants: [v])
        #expect(between[0].recompressions == nil && between[0].ownAnswerSurvival == 1, "the full cache is never compressed")
        #expect(between[1].recompressions == 2, "after the questions of turns 2 and 3")
        let b = Budget.fraction(0.1).tokens(for: c.context.count)
        #expect(between[1].recompressedSlots == b * model.config.layers * model.config.kvHeads)
        #expect((between[1].ownAnswerSurvival ?? 1) < 1, "a budget of \(b) tokens per stream evicts some of the model's own answers")
        #expect(between[1].keptSlots == once[1].keptSlots, "the first compression, after the prompt, is the same")
        // summary.csv carries both figures per row (empty where nothing was measured).
        let rows = Summary.rows(between), csv = Summary.csv(rows).split(separator: "\n")
        #expect(rows.first { $0.policy.hasPrefix("rkv") }?.recompressions == 2 && rows.first { $0.policy == "full" }?.recompressions == nil)
        #expect(csv[0].hasSuffix(",own_answer_survival,recompressions") && csv.contains { $0.hasPrefix("multihop-recall:k=3,\"rkv") && $0.hasSuffix(",2.00") })
        // Every 4 tokens appended (R-KV's schedule): many more compressions, the same budget after each.
        r.compressBetweenTurns = false
        r.compressEvery = 4
        // H2O's totals, turned on again over the kept slots, stay aligned with them through every compression.
        let every = try r.run(c, variants: [v, try RunnerTests.variant("h2o", .fraction(0.1))])
        for e in every.dropFirst() {
            #expect((e.recompressions ?? 0) > 2 && e.recompressedSlots == b * model.config.layers * model.config.kvHeads, "\(e.policy)")
        }
    }
}

@Suite(.serialized) struct RunCommandTests {
    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            // Blank the timing fields; everything else must repeat byte for byte.
            var obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            for k in ["prefillSeconds", "compressSeconds", "decodeSeconds"] { obj[k] = 0 }
            return String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    @Test func recordsItsConfigRepeatsExactlyAndResumes() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-run-\(UUID().uuidString)").path
        let args = [
            "run", "--policy", "streaming,knorm", "--budget", "0.5", "--probe", "niah", "--lengths", "256", "--samples", "1", "--depths", "0.5,1", "--seed",
            "4",
        ]
        let a = try runKVKit(args + ["--out", base + "/a"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("niah") && a.stdout.contains("streaming:sinks=4"))
        let b = try runKVKit(args + ["--out", base + "/b"])
        #expect(b.status == 0)
        let la = try Self.lines(base + "/a/results.jsonl"), lb = try Self.lines(base + "/b/results.jsonl")
        #expect(la.count == 2 * 3 && la == lb, "same command, same results apart from timings")

        struct Config: Decodable {
            let model: Model; let codeVersion: String; let seed: UInt64; let policies: [String]
            struct Model: Decodable { let sha256: String }
        }
        let cfg = try JSONDecoder().decode(Config.self, from: Data(contentsOf: URL(fileURLWithPath: base + "/a/config.json")))
        #expect(cfg.model.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        #expect(cfg.seed == 4 && cfg.policies == ["full", "streaming:sinks=4", "knorm"])
        #expect(!cfg.codeVersion.isEmpty)

        // Figures: SVG heatmaps with the drawn numbers in CSV beside them, matching results.jsonl.
        let figs = try FileManager.default.contentsOfDirectory(atPath: base + "/a/figures")
        #expect(figs.contains("niah_streaming_sinks_4_0.5_accuracy.svg") && figs.contains("niah_knorm_0.5_survival.svg"), "\(figs.sorted())")
        let csv = try String(contentsOfFile: base + "/a/figures/niah_streaming_sinks_4_0.5_accuracy.csv", encoding: .utf8)
        let results = try String(contentsOfFile: base + "/a/results.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(VariantResult.self, from: Data($0.utf8)) }.filter { $0.policy == "streaming:sinks=4" }
        for r in results {
            let row = csv.split(separator: "\n").first { $0.hasPrefix(String(format: "%.2f,", r.depth)) }!
            #expect(row.hasSuffix(String(format: "%.4f", r.score)), "\(row) vs \(r.score)")
        }

        // Re-running into the same folder skips finished cases; a different run there is refused.
        let again = try runKVKit(args + ["--out", base + "/a"])
        #expect(again.status == 0 && !again.stderr.contains("[1/2]"), "\(again.stderr)")
        #expect(try Self.lines(base + "/a/results.jsonl") == la)
        let other = try runKVKit(["run", "--policy", "h2o", "--probe", "niah", "--lengths", "256", "--samples", "1", "--out", base + "/a"])
        #expect(other.status == 64 && other.stderr.contains("different run"), "\(other.stderr)")
    }

    @Test func badRunInputsAreUsageErrors() throws {
        for (args, needle) in [
            (["--policy", "nope"], "unknown policy"), (["--policy", "h2o", "--probe", "haystack"], "--probe"),
            (["--policy", "h2o", "--lengths", "9000"], "context"), (["--policy", "h2o", "--depths", "1.5"], "--depths"),
            (["--policy", "h2o", "--budget", "2.0"], "budget"), (["--policy", "h2o", "--hops", "5"], "--hops"),
            (["--policy", "h2o", "--wording", "poetic"], "--wording"), (["--policy", "rkv", "--compress-every", "0"], "--compress-every"),
        ] {
            let r = try runKVKit(
                ["run"] + args + ["--out", FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-bad-\(UUID().uuidString)").path])
            #expect(r.status == 64 && r.stderr.contains(needle), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }
}

@Suite(.serialized) struct ProbeFileTests {
    @Test func malformedLinesAreReportedByNumberAndSkippedOrRejected() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-pf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let context = "The harbour was quiet. The secret code of the lighthouse is 4417. Gulls slept on the pier."
        let start = context.unicodeScalars.count - "4417. Gulls slept on the pier.".unicodeScalars.count
        let good =
            #"{"id": "code", "context": "\#(context)", "question": "What is the secret code of the lighthouse?", "answers": ["4417"], "needles": [[\#(start - 37), \#(start + 5)]]}"#
        let file = dir.appendingPathComponent("cases.jsonl").path
        try [good, #"{"context": "x", "question": }"#, #"{"context": "abc", "question": "q", "answers": ["a"], "needles": [[1, 9]]}"#]
            .joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let rejected = try runKVKit(["run", "--policy", "streaming", "--budget", "0.5", "--probe-file", file, "--out", dir.path + "/a"])
        #expect(rejected.status == 65 && rejected.stderr.contains("line 2") && rejected.stderr.contains("--skip-bad-lines"), "\(rejected.stderr)")
        let skipped = try runKVKit(["run", "--policy", "streaming", "--budget", "0.5", "--probe-file", file, "--skip-bad-lines", "--out", dir.path + "/b"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("line 2") && skipped.stderr.contains("line 3"))
        let lines = try String(contentsOfFile: dir.path + "/b/results.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "full + streaming for the one good case")
        let full = try JSONDecoder().decode(VariantResult.self, from: Data(lines[0].utf8))
        #expect(full.caseId == "code" && full.needleSurvival == 1 && full.survivalByNeedle.keys.sorted() == ["needle1"])
        let missing = try runKVKit(["run", "--policy", "h2o", "--probe-file", dir.path + "/nope.jsonl", "--out", dir.path + "/c"])
        #expect(missing.status == 66 && missing.stderr.contains("cannot read probe file"))
    }
}

/// FINCH in a query-aware run on the real model: the window it reads is the question's turn (the prompt
/// minus the context), so every stream keeps the whole question and the answer is read from the kept cache.
@Suite struct FinchRunTests {
    @Test func aQueryAwareRunKeepsTheWholeQuestion() throws {
        var runner = Runner(model: try Real.model)
        runner.queryAware = true
        let c = try RunnerTests.gen.make(NIAHProbe(), length: 512, depth: 0.5, sample: 0, seed: 3)
        let question = runner.prompt(c).count - c.context.count
        #expect(question > 8)
        let kept = try runner.keptPositions(c, variant: try RunnerTests.variant("finch", .fraction(0.25)))
        let end = Int32(runner.prompt(c).count)
        for (l, layer) in kept.enumerated() {
            for (h, positions) in layer.enumerated() {
                #expect(Set(((end - Int32(question))..<end)).isSubset(of: Set(positions)), "layer \(l) head \(h) keeps the question")
            }
        }
    }
}
