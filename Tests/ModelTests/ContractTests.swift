import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import KVKitTestSupport
import ModelFile
import Models
import Probes
import TensorMath
import Testing
@testable import Runs

/// The contract on damaged inputs and results (issue 27): one rule for a run's results file wherever it
/// is read (resume, merge, compare), configs checked before they run, one line and the README's exit code
/// for every error, and a seeded fuzz of all three kinds of file against it.
@Suite(.serialized) struct ContractTests {
    static func tempDir(_ tag: String) -> String {
        let d = NSTemporaryDirectory() + "kvkit-contract-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static let grid = ["--probe", "niah", "--lengths", "256", "--depths", "0.5", "--samples", "2", "--policy", "streaming", "--budget", "0.5", "--no-progress"]

    /// A finished two-case run (full + streaming@0.5 per case), made once.
    static let finished: Result<String, TestSupport.Failure> = TestSupport.loadOnce {
        let dir = tempDir("run") + "/run"
        let r = try runKVKit(["run"] + grid + ["--out", dir])
        guard r.status == 0 else { throw TestSupport.Failure("the base run failed: \(r.stderr)") }
        return dir
    }

    static func copy(_ dir: String, edit: (inout [String]) -> Void, tail: String = "") throws -> String {
        let to = tempDir("copy") + "/run"
        try FileManager.default.copyItem(atPath: dir, toPath: to)
        try? FileManager.default.removeItem(atPath: to + "/.lock")
        var lines = try String(contentsOfFile: dir + "/results.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        edit(&lines)
        try (lines.map { $0 + "\n" }.joined() + tail).write(toFile: to + "/results.jsonl", atomically: true, encoding: .utf8)
        return to
    }

    static func edited(_ line: String, _ change: (inout [String: Any]) -> Void) -> String {
        var o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        change(&o)
        return String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Foreign rows (a case id or a variant the run does not list) and conflicting duplicates are refused
    /// by resume, merge and compare alike (65, one line naming the line and the fix), and dropped with a
    /// note under --drop-bad-rows; an identical duplicate is dropped with a note; a cut-off last line is
    /// refused by merge and compare and repaired by the run's own resume; a folder in place of the file is
    /// 66; a folder a run is writing into is refused by compare (73).
    @Test func resultsFilesFollowOneRule() throws {
        let base = try Self.finished.get()
        let original = try String(contentsOfFile: base + "/results.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(original.count == 4)
        let damaged: [(String, (inout [String]) -> Void, String)] = [
            ("a foreign case", { $0.append(Self.edited($0[1]) { $0["caseId"] = "niah/len256/depth0.5/s7" }) }, "not one of the run's cases"),
            ("a foreign variant", { $0.append(Self.edited($0[1]) { $0["policy"] = "h2o:gqa=mean,recent=0.5" }) }, "is not one the run's config.json lists"),
            ("a conflicting duplicate", { $0.append(Self.edited($0[1]) { $0["score"] = 0.5 }) }, "different results"),
        ]
        for (what, edit, needle) in damaged {
            let dir = try Self.copy(base, edit: edit)
            let commands: [(String, [String])] = [
                ("compare", ["compare", dir, "full", "streaming@0.5"]),
                ("merge", ["merge", "--out", dir + "-merged", dir]),
                ("resume", ["run"] + Self.grid + ["--out", dir]),
            ]
            for (name, args) in commands {
                let r = try runKVKit(args)
                #expect(r.status == 65 && r.stderr.contains(needle) && r.stderr.contains("--drop-bad-rows"), "\(what), \(name): \(r.status) \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(what), \(name): \(r.stderr)")
            }
            #expect(try String(contentsOfFile: dir + "/results.jsonl", encoding: .utf8).split(separator: "\n").count == 5, "\(what): a refusal changes nothing")
            for (name, args) in commands {
                let r = try runKVKit(args + ["--drop-bad-rows"])
                if name == "merge" && what == "a conflicting duplicate" {
                    // Both lines of the conflict are dropped: that case is unfinished, which a merge refuses.
                    #expect(r.status == 64 && r.stderr.contains("drop-bad-rows dropped") && r.stderr.contains("no complete results"), "\(r.status) \(r.stderr)")
                    continue
                }
                #expect(r.status == 0 && r.stderr.contains("note: dropped"), "\(what), \(name) --drop-bad-rows: \(r.status) \(r.stderr)")
            }
            // Resume dropped the row(s) and reran what a conflict took away: two complete cases again.
            let after = try RunDirectory.checkedResults(in: dir).lines.map(\.result)
            #expect(after.count == 4 && Set(after.map(\.caseId)).count == 2, "\(what): \(after.map(\.caseId))")
        }

        // An identical duplicate says nothing new: dropped with a note everywhere.
        let dup = try Self.copy(base) { $0.append($0[1]) }
        let read = try RunDirectory.checkedResults(in: dup)
        #expect(read.lines.count == 4 && read.notes.contains { $0.contains("duplicate") })

        // A cut-off last line: merge and compare refuse it; the run's resume removes it and goes on.
        let cut = try Self.copy(base, edit: { _ in }, tail: #"{"caseId":"niah/le"#)
        for args in [["merge", "--out", cut + "-merged", cut], ["compare", cut, "full", "streaming@0.5"]] {
            let r = try runKVKit(args)
            #expect(r.status == 65 && r.stderr.contains("cut-off") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let resumed = try runKVKit(["run"] + Self.grid + ["--out", cut])
        #expect(resumed.status == 0 && resumed.stderr.contains("removed a cut-off last line"), "\(resumed.stderr)")

        // A folder where results.jsonl should be: missing input (66), one line, for every reader.
        let folder = try Self.copy(base) { _ in }
        try FileManager.default.removeItem(atPath: folder + "/results.jsonl")
        try FileManager.default.createDirectory(atPath: folder + "/results.jsonl", withIntermediateDirectories: false)
        for args in [["run"] + Self.grid + ["--out", folder], ["merge", "--out", folder + "-m", folder], ["compare", folder, "full", "streaming@0.5"]] {
            let r = try runKVKit(args)
            #expect(r.status == 66 && r.stderr.contains("is a folder") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.status) \(r.stderr)")
        }

        // A folder a run holds (its lock taken, as a running kvkit run does): compare and merge wait for it.
        let busy = try Self.copy(base) { _ in }
        let held = try RunDirectory(path: busy)
        for args in [["compare", busy, "full", "streaming@0.5"], ["merge", "--out", busy + "-m", busy]] {
            let r = try runKVKit(args)
            #expect(r.status == 73 && r.stderr.contains("in use") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.status) \(r.stderr)")
        }
        withExtendedLifetime(held) {}
    }

    static func writeConfig(_ text: String, _ name: String, in dir: String) throws -> String {
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func refusal(_ path: String) -> RunError? {
        do { _ = try Study(path: path); return nil } catch let e as RunError { return e } catch { Issue.record("not a RunError: \(error)"); return nil }
    }

    /// Configs: nesting bounded before parsing (5,000 levels of YAML used to crash the parser), a key
    /// given twice and an unknown key refused in both formats, numbers as written (`budget: 2.0` is
    /// refused, not read as 2 tokens), a BOM read and invalid UTF-8 refused in both, paths relative to
    /// the config's folder and absolute ones honoured, over-long job names refused.
    @Test func configsAreCheckedBeforeAnythingRuns() throws {
        let dir = Self.tempDir("cfg")
        let deepYAML = "study: s\njobs:\n" + (0..<1_000).map { String(repeating: " ", count: $0) + "a:\n" }.joined()
        let deepFlow = "study: s\njobs: " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "\n"
        let deepJSON = #"{"study": "s", "jobs": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        let refused: [(String, String, String)] = [
            (deepYAML, "deep.yaml", "nested deeper"), (deepFlow, "flow.yaml", "nested deeper"), (deepJSON, "deep.json", "nested deeper"),
            ("study: s\nstudy: t\njobs: [{name: a, options: {policy: h2o}}]\n", "dup.yaml", "appears twice"),
            (#"{"study": "s", "jobs": [{"name": "a", "options": {"policy": "h2o", "policy": "tova"}}]}"#, "dup.json", "appears twice"),
            ("study: s\njobs: [{name: a, options: {policy: h2o}}]\nresult: out\n", "unknown.yaml", "unknown key 'result'"),
            (#"{"study": "s", "jobs": [{"name": "a", "option": {"policy": "h2o"}}]}"#, "unknown.json", "unknown key 'option'"),
            ("study: s\njobs: [{name: a, options: {policy: h2o, budget: 2.0}}]\n", "budget.yaml", "budget '2.0' is invalid"),
            (#"{"study": "s", "jobs": [{"name": "a", "options": {"policy": "h2o", "budget": [0.5, 2.0]}}]}"#, "budget.json", "budget '2.0' is invalid"),
            ("study: s\njobs: [{name: \(String(repeating: "j", count: 300)), options: {policy: h2o}}]\n", "long.yaml", "at most 100 characters"),
            ("study: s\njobs: [{name: \"a\\nb\", options: {policy: h2o}}]\n", "newline.yaml", "must be a plain folder name"),
            ("study: s\nx: &a 1\njobs: [{name: a, options: {policy: h2o, samples: *a}}]\n", "alias.yaml", "anchors and aliases"),
        ]
        for (text, name, needle) in refused {
            let e = Self.refusal(try Self.writeConfig(text, name, in: dir))
            #expect(
                e != nil && e!.description.contains(needle) && !e!.description.contains("\n") && [64, 65].contains(e!.exitCode),
                "\(name): \(String(describing: e))")
        }
        // Invalid UTF-8 is refused in both formats; a BOM is read in both.
        for name in ["latin.json", "latin.yaml"] {
            let path = dir + "/" + name
            try Data(#"{"study": "caf"#.utf8 + [0xE9] + #"", "jobs": [{"name": "a", "options": {"policy": "h2o"}}]}"#.utf8).write(
                to: URL(fileURLWithPath: path))
            #expect(Self.refusal(path)?.description.contains("not UTF-8") == true, "\(name)")
        }
        let good =
            #"{"study": "s", "results": "/tmp/kvkit-abs-results", "jobs": [{"name": "a", "options": {"policy": "h2o", "probe-file": "cases/x.jsonl", "budget": [0.25, 1e-1]}}]}"#
        for name in ["bom.json", "bom.yaml"] {
            let path = dir + "/" + name
            try Data([0xEF, 0xBB, 0xBF] + Array(good.utf8)).write(to: URL(fileURLWithPath: path))
            let s = try Study(path: path)
            #expect(s.resultsRoot == "/tmp/kvkit-abs-results", "an absolute results folder is honoured")
            #expect(s.jobs[0].plan.probeFile == dir + "/cases/x.jsonl", "a probe file is found from the config's folder")
            #expect(s.jobs[0].plan.budgets == ["0.25", "1e-1"])
        }
        // --dry-run refuses what the real run refuses: a missing probe file, with the run's own message.
        let missing = try Self.writeConfig(
            #"{"study": "s", "jobs": [{"name": "a", "options": {"policy": "h2o", "probe-file": "nope.jsonl"}}]}"#, "missing.json", in: dir)
        let r = try runKVKit(["sweep", missing, "--dry-run"])
        #expect(r.status == 66 && r.stderr.contains("cannot read probe file") && r.stderr.split(separator: "\n").count == 1, "\(r.status) \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/results"), "a dry run writes nothing")
    }

    /// A probe-file line with a key given twice or a raw control character is refused with its line and
    /// column (Foundation's reader kept one of the keys, and called a NUL "context must be a string");
    /// a leading BOM is skipped.
    @Test func probeFileLinesAreReadStrictly() throws {
        let model = try DecoderModel(path: TestSupport.modelPath, storage: .native)
        let dir = Self.tempDir("lines"), path = dir + "/p.jsonl"
        let good = #"{"id": "a", "context": "The code is 4417.", "question": "What is the code?", "answers": ["4417"]}"#
        for (line, needle) in [
            (#"{"id": "a", "context": "x", "context": "The code is 4417.", "question": "q?", "answers": ["4417"]}"#, "\"context\" appears twice"),
            ("{\"id\": \"a\", \"context\": \"The code\u{0} is 4417.\", \"question\": \"q?\", \"answers\": [\"4417\"]}", "control character (U+0000)"),
        ] {
            try line.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try ProbeFile.load(path, tokenizer: model.tokenizer, chat: model.chatTemplate, skipBadLines: false); Issue.record("accepted: \(line)")
            } catch let e as ProbeFile.Error {
                #expect(e.description.contains(needle) && e.description.contains("line 1") && e.description.contains("column"), "\(e)")
            }
        }
        try Data([0xEF, 0xBB, 0xBF] + Array(good.utf8)).write(to: URL(fileURLWithPath: path))
        #expect(try ProbeFile.load(path, tokenizer: model.tokenizer, chat: model.chatTemplate, skipBadLines: false).cases.count == 1)
    }

    /// A disk that fills while the summary and figures are written (after every case finished) is an I/O
    /// error mid-run (74, not 73), and the results are kept.
    @Test func aDiskThatFillsWhileWritingFiguresIsAnIOError() throws {
        let dir = Self.tempDir("tiny")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=48k", "tmpfs", dir]
        mount.standardError = FileHandle.nullDevice
        try mount.run(); mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { print("skipped: cannot mount a small tmpfs here (needs root)"); return }
        defer { let u = Process(); u.executableURL = URL(fileURLWithPath: "/bin/umount"); u.arguments = [dir]; try? u.run(); u.waitUntilExit() }
        let r = try runKVKit([
            "run", "--probe", "niah", "--lengths", "256", "--depths", "0.5", "--samples", "1", "--policy", "streaming", "--budget", "0.5",
            "--out", dir + "/run", "--no-progress",
        ])
        #expect(r.status == 74 && r.stderr.contains("results are kept") && r.stderr.split(separator: "\n").count == 1, "\(r.status) \(r.stderr)")
        #expect(try RunDirectory.checkedResults(in: dir + "/run").lines.count == 2, "the finished case is kept")
    }

    /// Argument mistakes are one line naming the fix and exit 64, like every other error.
    @Test func argumentErrorsAreOneLine() throws {
        for args in [["run", "--polcy", "full"], ["run", "--policy"], ["sweep"], ["nonsense"], ["run", "--policy", "snapkv:window=32,window=64"]] {
            let r = try runKVKit(args)
            #expect(r.status == 64 && r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("error: "), "\(args): \(r.status) \(r.stderr)")
        }
    }

    // MARK: Fuzz

    /// Byte-level mutations of a text: flips, deletions, insertions of structural or control bytes,
    /// duplicated spans, truncation.
    static func mutate(_ text: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = text
        let pieces: [[UInt8]] = [
            [0], [0x0A], [0x0D, 0x0A], Array("\"".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8), Array("]".utf8),
            Array(",".utf8), Array(":".utf8), Array("\\".utf8), [0xE9], [0xEF, 0xBB, 0xBF], Array("-1".utf8), Array("1e999".utf8),
            Array(String(repeating: "[", count: 300).utf8), Array("\"answers\": [],".utf8), Array("  - ".utf8), Array("&x ".utf8),
        ]
        for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
            let at = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: b[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 1: b.remove(at: at)
            case 2: b.insert(contentsOf: pieces[Int.random(in: 0..<pieces.count, using: &rng)], at: at)
            case 3: let end = min(b.count, at + Int.random(in: 1...40, using: &rng)); b.insert(contentsOf: b[at..<end], at: at)
            case 4: b.removeSubrange(at...)
            default: b[at] = UInt8.random(in: 0...255, using: &rng)
            }
        }
        return b
    }

    static func oneLine(_ e: Error) -> Bool {
        "\(e)".split(separator: "\n", omittingEmptySubsequences: false).count == 1 && !"\(e)".isEmpty
    }

    /// Seeded mutations of probe files, sweep configs (JSON and YAML) and results files, 1,500 of each
    /// (~15 s on 2 cores): every one
    /// is read or refused with one line and an exit code the README lists; what is read obeys the rule
    /// (no case and variant twice, every case in cases.json). A crash fails the whole test run.
    @Test func fuzzedInputsKeepTheContract() throws {
        let model = try DecoderModel(path: TestSupport.modelPath, storage: .native)
        let dir = Self.tempDir("fuzz")
        var rng = SplitMix64(seed: 27)
        // A fixed number of mutations of each kind (the same inputs on every machine), with a time limit
        // only as a guard on a very slow one.
        let perKind = 1_500, deadline = ContinuousClock.now + .seconds(90)
        let codes: Set<Int32> = [64, 65, 66, 73, 74]

        let probeLine =
            #"{"id": "a", "context": "The harbour opens at dawn. The magic number is 4417. Boats leave at noon.", "question": "What is the magic number?", "answers": ["4417"], "answer_prefix": "The magic number is", "needles": [[27, 51]], "needle_labels": ["n"], "turns": [{"question": "And again?", "answers": ["4417"], "needles": ["n"]}]}"#
        let probeText = Array((probeLine + "\n" + probeLine.replacingOccurrences(of: "\"a\"", with: "\"b\"") + "\n").utf8)
        let configJSON = Array(
            #"{"study": "s", "results": "out", "common": {"probe": "niah", "lengths": [256], "budget": [0.25, 0.5], "samples": 2}, "jobs": [{"name": "a", "options": {"policy": "snapkv:window=8,h2o", "query-aware": true}}]}"#
                .utf8)
        let configYAML = Array(
            "study: s\nresults: out\ncommon:\n  probe: niah\n  lengths: [256]\n  budget: [0.25, 0.5]\njobs:\n  - name: a\n    options:\n      policy: snapkv:window=8,h2o\n      query-aware: true\n"
                .utf8)
        let base = try Self.finished.get()
        let results = Array(try Data(contentsOf: URL(fileURLWithPath: base + "/results.jsonl")))
        let known = Set(try RunDirectory.caseIds(in: base))
        var counts = [0, 0, 0], read = [0, 0, 0]

        while counts.min()! < perKind && ContinuousClock.now < deadline {
            switch counts.firstIndex(of: counts.min()!)! {
            case 0:
                let path = dir + "/p.jsonl"
                try Data(Self.mutate(probeText, &rng)).write(to: URL(fileURLWithPath: path))
                do {
                    let (cases, _) = try ProbeFile.load(path, tokenizer: model.tokenizer, chat: model.chatTemplate, skipBadLines: Bool.random(using: &rng))
                    #expect(!cases.isEmpty)
                    read[0] += 1
                } catch let e as ProbeFile.Error {
                    #expect(Self.oneLine(e), "probe file: \(e)")
                }
                counts[0] += 1
            case 1:
                let yaml = Bool.random(using: &rng)
                let path = dir + (yaml ? "/c.yaml" : "/c.json")
                try Data(Self.mutate(yaml ? configYAML : configJSON, &rng)).write(to: URL(fileURLWithPath: path))
                do { _ = try Study(path: path); read[1] += 1 } catch let e as RunError {
                    #expect(Self.oneLine(e) && codes.contains(e.exitCode), "config: \(e.exitCode) \(e)")
                }
                counts[1] += 1
            default:
                let run = dir + "/r\(counts[2] % 4)"
                try? FileManager.default.removeItem(atPath: run)
                try FileManager.default.copyItem(atPath: base, toPath: run)
                try? FileManager.default.removeItem(atPath: run + "/.lock")
                try Data(Self.mutate(results, &rng)).write(to: URL(fileURLWithPath: run + "/results.jsonl"))
                let drop = Bool.random(using: &rng)
                do {
                    let (lines, _) = try RunDirectory.checkedResults(in: run, badRows: drop ? .drop : .refuse)
                    let keys = lines.map { $0.result.caseId + "|" + RunDirectory.variantKey($0.result) }
                    #expect(Set(keys).count == keys.count && lines.allSatisfy { known.contains($0.result.caseId) }, "results read against the rule")
                    read[2] += 1
                } catch let e as RunError {
                    #expect(Self.oneLine(e) && codes.contains(e.exitCode), "results: \(e.exitCode) \(e)")
                }
                do { _ = try PairedComparison.load(dir: run, a: "full", b: "streaming@0.5", badRows: drop ? .drop : .refuse) } catch let e as RunError {
                    #expect(Self.oneLine(e) && codes.contains(e.exitCode), "compare: \(e.exitCode) \(e)")
                }
                counts[2] += 1
            }
        }
        print("fuzz: \(counts[0]) probe files (\(read[0]) read), \(counts[1]) configs (\(read[1]) read), \(counts[2]) results files (\(read[2]) read)")
        #expect(counts.allSatisfy { $0 >= 50 }, "the fuzz ran too few cases in 90 s: \(counts)")
        #expect(read.allSatisfy { $0 > 0 } && zip(read, counts).allSatisfy { $0 < $1 }, "both outcomes seen: \(read) of \(counts)")
    }
}
