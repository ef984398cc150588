import Foundation
import KVKitTestSupport
import Policies
import Probes
import TensorMath
import Testing
@testable import Runs

/// Numbers a paper can use: answers that finish, survival only where measured, intervals, paired tests,
/// and exported cases that run exactly as the grid they came from.
@Suite(.serialized) struct ResearchNumbersTests {
    static func tempDir(_ tag: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-\(tag)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Six RULER-style cases (context, question, answers; no answer prefix, as RULER and kvpress write
    /// them): the answer must be allowed to finish its sentence before the number.
    static func rulerFile(in dir: String) throws -> String {
        let keys = ["gentle-willow", "brave-otter", "silent-meadow", "crimson-kite", "patient-heron", "hidden-brook"]
        var rng = SplitMix64(seed: 11)
        var lines: [String] = []
        for (i, k) in keys.enumerated() {
            let value = String(1_000_000 + Int(rng.next() % 9_000_000))
            let filler = HaystackGenerator(seed: UInt64(i)).sentences(from: 0, count: 24)
            let at = filler.count * (i + 1) / 7
            let context =
                "Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n"
                + (filler[..<at] + ["One of the special magic numbers for \(k) is: \(value)."] + filler[at...]).joined(separator: " ")
            let object: [String: Any] = [
                "id": k, "context": context, "answers": [value],
                "question": "What is the special magic number for \(k) mentioned in the provided text?",
            ]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        let path = dir + "/ruler.jsonl"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theFullCacheAnswersUnprefixedCasesInFullAndRunsAlone() throws {
        let dir = try Self.tempDir("ruler")
        let file = try Self.rulerFile(in: dir)
        let r = try runKVKit(["run", "--policy", "full", "--probe-file", file, "--out", dir + "/run", "--no-progress"])
        #expect(r.status == 0, "\(r.stderr)")
        let results = try RunDirectory.readResults(in: dir + "/run").results
        #expect(results.count == 6 && results.allSatisfy { $0.policy == "full" })
        for x in results { #expect(x.score == 1, "\(x.caseId): \(x.answers)") }
        // No needle spans: survival was not measured, and says so everywhere.
        #expect(results.allSatisfy { $0.needleSurvival == nil && $0.survivalByLayerHead.isEmpty })
        let line = try String(contentsOfFile: dir + "/run/results.jsonl", encoding: .utf8).split(separator: "\n")[0]
        #expect(line.contains("\"needleSurvival\":null"))
        let csv = try String(contentsOfFile: dir + "/run/summary.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv[0].hasPrefix("probe,policy,budget,quant,n,correct,accuracy,ci_low,ci_high,needle_survival,"))
        #expect(csv[1].hasPrefix("file,\"full\",1.0,\"fp32\",6,6,1.0000,0.6097,1.0000,,"), "\(csv[1])")
        #expect(r.stdout.contains("n/a") && r.stdout.contains("61–100%"), "\(r.stdout)")
    }

    @Test func probeFileFieldsOfTheWrongKindAreOneLineErrors() throws {
        let dir = try Self.tempDir("pfields")
        for (extra, needle) in [
            (#""answer_prefix": 7"#, "answer_prefix must be a string"),
            (#""max_new_tokens": -3"#, "max_new_tokens must be a whole number from 1 to 4096"),
            (#""needles": [[0, 3]], "needle_labels": ["a", "b"]"#, "needle_labels has 2 labels for 1 needles"),
        ] {
            let file = dir + "/f.jsonl"
            try #"{"context": "The code is 4417.", "question": "What is the code?", "answers": ["4417"], \#(extra)}"#
                .write(toFile: file, atomically: true, encoding: .utf8)
            let r = try runKVKit(["run", "--policy", "full", "--probe-file", file, "--out", dir + "/\(UUID().uuidString)"])
            #expect(r.status == 65 && r.stderr.contains(needle) && r.stderr.contains("line 1"), "\(extra): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    @Test func aMissingEssaysFolderNamesMakeSetup() throws {
        let home = try Self.tempDir("home")
        let r = try runKVKit(
            [
                "run", "--policy", "h2o", "--probe", "niah", "--lengths", "256", "--model", TestSupport.modelPath,
                "--out", home + "/run",
            ], env: ["KVKIT_HOME": home])
        #expect(r.status == 66 && r.stderr.contains("make setup") && r.stderr.contains("--haystack grammar"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home + "/run/results.jsonl"))
    }

    /// `kvkit probes export` writes the grid as a probe file; running that file gives the grid's results.
    @Test func anExportedGridRunsExactlyAsTheGrid() throws {
        let dir = try Self.tempDir("export")
        let model = try Real.model
        var options: [(name: String, value: RunPlan.Value)] = [
            ("policy", .text("snapkv,streaming")), ("budget", .text("0.5")), ("probe", .text("niah,niah-multikey,multihop")),
            ("lengths", .text("300")), ("depths", .text("0.2,0.8")), ("samples", .text("2")), ("seed", .text("5")), ("haystack", .text("essays")),
        ]
        let grid = RunSession(plan: try RunPlan(options: options + [("out", .text(dir + "/grid"))]), model: model)
        let n = try grid.export(to: dir + "/cases.jsonl")
        let generated = try grid.cases().cases
        #expect(n == generated.count && n == 2 * 2 + 2 + 2, "niah over 2 depths × 2 samples; niah-multikey and multihop spread their needles: 2 samples each")
        options.removeAll { ["probe", "lengths", "depths", "samples", "haystack"].contains($0.name) }
        let file = RunSession(plan: try RunPlan(options: options + [("probe-file", .text(dir + "/cases.jsonl"))]), model: model)
        let loaded = try file.cases().cases
        // The same tokens, needle spans, questions and answers, case by case.
        #expect(loaded.map(\.id) == generated.map(\.id))
        for (a, b) in zip(loaded, generated) {
            #expect(a.context == b.context && a.needles == b.needles && a.probe == b.probe && a.depth == b.depth, "\(a.id)")
            #expect(
                a.turns.map(\.question) == b.turns.map(\.question) && a.turns.map(\.answers) == b.turns.map(\.answers)
                    && a.turns.map(\.answerPrefix) == b.turns.map(\.answerPrefix), "\(a.id)")
        }
        let fromGrid = try grid.execute(out: dir + "/grid").rows, fromFile = try file.execute(out: dir + "/file").rows
        let ra = try RunDirectory.readResults(in: dir + "/grid").results, rb = try RunDirectory.readResults(in: dir + "/file").results
        #expect(ra.count == rb.count)
        for (x, y) in zip(ra, rb) {
            #expect(
                x.caseId == y.caseId && x.policy == y.policy && x.score == y.score && x.answers == y.answers
                    && x.needleSurvival == y.needleSurvival && x.firstTokenKL == y.firstTokenKL, "\(x.caseId) \(x.policy)")
        }
        #expect(fromGrid.map(\.accuracy) == fromFile.map(\.accuracy))

        // kvkit compare on that run: the paired table and an exact McNemar p-value.
        let c = try runKVKit(["compare", dir + "/grid", "snapkv@0.5", "streaming@0.5"])
        #expect(c.status == 0 && c.stdout.contains("McNemar") && c.stdout.contains("p = "), "\(c.stdout) \(c.stderr)")
        let pc = try PairedComparison.load(dir: dir + "/grid", a: "snapkv@0.5", b: "streaming@0.5")
        #expect(pc.n == generated.count && pc.both + pc.onlyA + pc.onlyB + pc.neither == pc.n)
        // Across two runs of the same cases (here the grid and its exported file: identical answers).
        let across = try PairedComparison.load(dir: dir + "/grid", a: "snapkv@0.5", b: "snapkv@0.5", bDir: dir + "/file")
        #expect(across.n == generated.count && across.onlyA == 0 && across.onlyB == 0 && across.pValue == 1)
        let bad = try runKVKit(["compare", dir + "/grid", "h2o@0.5", "snapkv@0.5"])
        #expect(bad.status == 64 && bad.stderr.contains("did not run") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
    }

    /// `kvkit kept` writes what each (layer, KV head) keeps; it must agree with the run's own survival
    /// figures (two code paths over the same compression) and with what the policies promise.
    @Test func keptPositionsAgreeWithTheRunsSurvival() throws {
        let dir = try Self.tempDir("kept")
        let options: [(name: String, value: RunPlan.Value)] = [
            ("policy", .text("streaming,snapkv")), ("budget", .text("0.25")), ("probe", .text("niah")), ("lengths", .text("300")),
            ("depths", .text("0.3,0.7")), ("samples", .text("1")), ("seed", .text("2")),
        ]
        let session = RunSession(plan: try RunPlan(options: options), model: try Real.model)
        #expect(try session.exportKept(to: dir + "/kept.jsonl") == 4)
        _ = try session.execute(out: dir + "/run")
        let results = try RunDirectory.readResults(in: dir + "/run").results
        let cases = Dictionary(uniqueKeysWithValues: try session.cases().cases.map { ($0.id, $0) })
        struct Line: Decodable { let id: String; let policy: String; let budget: String; let prompt_tokens: Int; let kept: [[[Int]]] }
        for text in try String(contentsOfFile: dir + "/kept.jsonl", encoding: .utf8).split(separator: "\n") {
            let line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
            let c = try #require(cases[line.id])
            let needle = Set(c.needles.flatMap { Array($0.range) })
            let perStream = line.kept.joined().map { kept in Double(needle.intersection(kept).count) / Double(needle.count) }
            let survival = perStream.reduce(0, +) / Double(perStream.count)
            let r = try #require(results.first { $0.caseId == line.id && $0.policy == line.policy && $0.budget == line.budget })
            #expect(abs(survival - (r.needleSurvival ?? -1)) < 1e-12, "\(line.id) \(line.policy): \(survival) vs \(String(describing: r.needleSurvival))")
            let n = line.prompt_tokens, b = Int((Double(n) * 0.25).rounded(.up))
            for kept in line.kept.joined() {
                #expect(kept.count <= b + 1 && kept == kept.sorted())
                if line.policy.hasPrefix("streaming") {
                    #expect(kept == Array(0..<4) + Array((n - kept.count + 4)..<n))
                } else {
                    #expect(Array(kept.suffix(32)) == Array((n - 32)..<n), "snapkv keeps its observation window")
                }
            }
        }
    }

    /// kvpress 0.5.5's kept positions for one 512-token case (layers 0, 15, 29; written by
    /// `Experiments/kvpress-crosscheck/kept_kvpress.py`): KVKit's matched policies keep the same tokens.
    /// All of them compress forks of one shared prefill, as `kvkit run` does, and each keeps what it keeps
    /// alone (a policy reads its own observation window, TOVA's last query beside SnapKV's 64).
    @Test func keptSetsAgreeWithKvpressFixture() throws {
        struct Fixture: Decodable {
            struct Case: Decodable { let policy: String; let budget: String; let tokens: [Int32]; let kept: [String: [[Int]]] }
            let layers: [Int]; let cases: [Case]
        }
        let path = TestSupport.repositoryRoot() + "/Tests/Fixtures/kvpress-kept.json"
        let data = try #require(FileManager.default.contents(atPath: path), "missing fixture \(path)")
        let fixture = try JSONDecoder().decode(Fixture.self, from: data)
        #expect(fixture.cases.count == 7 && Set(fixture.cases.map(\.tokens)).count == 1)
        let runner = Runner(model: try Real.model)
        let tokens = fixture.cases[0].tokens
        let json =
            #"{"id":"fx","probe":"file","length":\#(tokens.count),"depth":0,"sample":0,"context":\#(tokens),"needles":[],"turns":[{"question":"q","answerPrefix":"","answers":["1"],"needles":[]}]}"#
        let probe = try JSONDecoder().decode(ProbeCase.self, from: Data(json.utf8))
        let variants = try fixture.cases.map { c in
            let spec = try PolicyRegistry.shared.parse(c.policy)
            return Variant(spec: spec, policy: try PolicyRegistry.shared.make(spec), budget: try Budget(parsing: c.budget))
        }
        let shared = try runner.keptPositions(probe, variants: variants)
        for (i, c) in fixture.cases.enumerated() {
            if c.policy.hasPrefix("tova") { #expect(shared[i] == (try runner.keptPositions(probe, variant: variants[i])), "tova alone and beside snapkv") }
            var jaccards: [Double] = []
            for layer in fixture.layers {
                for (head, theirs) in try #require(c.kept[String(layer)]).enumerated() {
                    let ours = Set(shared[i][layer][head].map(Int.init)), other = Set(theirs)
                    jaccards.append(Double(ours.intersection(other).count) / Double(ours.union(other).count))
                }
            }
            let mean = jaccards.reduce(0, +) / Double(jaccards.count)
            #expect(mean >= 0.98 && jaccards.min()! >= 0.95, "\(c.policy) @ \(c.budget): mean Jaccard \(mean), min \(jaccards.min()!)")
        }
    }

    @Test func intervalsAndPairedTestsMatchKnownValues() {
        // Wilson 95 % intervals (Newcombe 1998, table I: 0/10, 5/10, 10/10).
        let zero = Statistics.wilson(0, 10)!, half = Statistics.wilson(5, 10)!, all = Statistics.wilson(10, 10)!
        #expect(abs(zero.low) < 1e-12 && abs(zero.high - 0.2775) < 1e-4)
        #expect(abs(half.low - 0.2366) < 1e-4 && abs(half.high - 0.7634) < 1e-4)
        #expect(abs(all.low - 0.7225) < 1e-4 && abs(all.high - 1) < 1e-12)
        #expect(Statistics.wilson(0, 0) == nil)
        // Exact McNemar: 2·P(X ≤ min(b, c)), X ~ Bin(b + c, ½).
        #expect(Statistics.mcnemarExact(0, 0) == 1 && Statistics.mcnemarExact(0, 2) == 0.5)
        #expect(abs(Statistics.mcnemarExact(10, 0) - 2.0 / 1024) < 1e-15)
        #expect(abs(Statistics.mcnemarExact(3, 9) - 2.0 * 299 / 4096) < 1e-12)
        #expect(abs(Statistics.mcnemarExact(600, 640) - Statistics.mcnemarExact(640, 600)) < 1e-15)
        #expect(Statistics.mcnemarExact(600, 640) > 0.2 && Statistics.mcnemarExact(600, 640) < 0.3)
    }
}
