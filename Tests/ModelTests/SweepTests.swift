import Foundation
import KVKitTestSupport
import Testing
@testable import Runs

/// Runs, resumes, sweeps and merges as a library, in-process on the real model.
@Suite(.serialized) struct SweepTests {
    static func untimed(_ rs: [VariantResult]) -> [VariantResult] {
        rs.map {
            var r = $0; r.prefillSeconds = 0; r.compressSeconds = 0; r.decodeSeconds = 0; return r
        }
    }

    static func tempDir(_ name: String) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    /// Two niah cases at 256 tokens, streaming and snapkv at 0.5.
    static func tinyPlan(_ extra: [(name: String, value: RunPlan.Value)] = []) throws -> RunPlan {
        try RunPlan(
            options: [
                ("policy", .text("streaming,snapkv")), ("probe", .text("niah")), ("lengths", .list(["256"])),
                ("depths", .list(["0.2", "0.8"])), ("budget", .list(["0.5"])), ("seed", .text("4")), ("samples", .text("1")),
            ] + extra)
    }

    static func writeStudy(_ root: String, _ name: String, _ json: String) throws -> String {
        let path = root + "/\(name).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let tinyStudy = """
        {"study": "tiny", "results": "RESULTS",
         "common": {"probe": "niah", "lengths": [256], "depths": [0.2, 0.8], "budget": [0.5], "seed": 4, "samples": 1},
         "jobs": [{"name": "two-policies", "options": {"policy": "streaming,snapkv"}}]}
        """

    /// The whole study, then shards 1/2 and 2/2 merged, give the same results in the same order
    /// (timings aside) and the same summary.csv; merging before every shard is there names the missing one.
    @Test func shardedAndMergedEqualsTheWholeSweep() throws {
        let root = try Self.tempDir("sweep"), model = try Real.model
        let whole = try Study(path: try Self.writeStudy(root, "whole", Self.tinyStudy.replacingOccurrences(of: "RESULTS", with: "whole")))
        let sharded = try Study(path: try Self.writeStudy(root, "sharded", Self.tinyStudy.replacingOccurrences(of: "RESULTS", with: "sharded")))
        let job = whole.jobs[0]
        _ = try RunSession(plan: whole.plan(job, shard: nil), model: model).execute(out: whole.folder(job))
        let s1 = RunPlan.Shard(index: 1, count: 2), s2 = RunPlan.Shard(index: 2, count: 2)
        _ = try RunSession(plan: sharded.plan(job, shard: s1), model: model).execute(out: sharded.folder(job, shard: s1))
        #expect(throws: RunError.usage("job two-policies: shard-2-of-2 is missing in \(sharded.folder(job)); run that shard (it resumes) before merging")) {
            try sharded.merge(job, expected: 2)
        }
        #expect(throws: RunError.self) { _ = try RunDirectory.merge([sharded.folder(job, shard: s1)], into: root + "/early") }
        _ = try RunSession(plan: sharded.plan(job, shard: s2), model: model).execute(out: sharded.folder(job, shard: s2))
        let first = try RunDirectory.readResults(in: sharded.folder(job, shard: s1)).results
        let second = try RunDirectory.readResults(in: sharded.folder(job, shard: s2)).results
        #expect(first.count == 3 && second.count == 3, "one case each, full + 2 policies")
        #expect(Set(first.map(\.caseId)).isDisjoint(with: second.map(\.caseId)))
        try sharded.merge(job, expected: 2)
        let a = try RunDirectory.readResults(in: whole.folder(job)).results, b = try RunDirectory.readResults(in: sharded.folder(job)).results
        #expect(a.count == 6)
        #expect(Self.untimed(a) == Self.untimed(b), "merged shards differ from the whole run")
        #expect(
            try String(contentsOfFile: whole.folder(job) + "/summary.csv", encoding: .utf8)
                == String(contentsOfFile: sharded.folder(job) + "/summary.csv", encoding: .utf8))

        // A shard given twice (also through a symlink), and --out into a shard folder, are refused.
        let d1 = sharded.folder(job, shard: s1), d2 = sharded.folder(job, shard: s2)
        let link = root + "/link-to-shard-1"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: d1)
        for (shards, out, needle) in [
            ([d1, d1, d2], root + "/m1", "given twice"), ([d1, link, d2], root + "/m2", "given twice"),
            ([d1, d2], d1, "would overwrite that shard"),
        ] {
            do { _ = try RunDirectory.merge(shards, into: out); Issue.record("merge \(shards) into \(out) was accepted") } catch let e as RunError {
                #expect(e.exitCode == 64 && e.description.contains(needle), "\(e)")
            }
        }
        #expect(try RunDirectory.readResults(in: d1).results.count == 3, "the shard is intact")
        // Two shard folders that hold the same shard.
        let copy = root + "/copy-of-1"
        try FileManager.default.copyItem(atPath: d1, toPath: copy)
        do { _ = try RunDirectory.merge([d1, copy, d2], into: root + "/m3"); Issue.record("the same shard twice was merged") } catch let e as RunError {
            #expect(e.description.contains("both hold shard 1/2"), "\(e)")
        }
    }

    /// A results file cut mid-line (a killed or disk-full run) resumes by removing the cut line and the
    /// lines of the case it belonged to, says so, reruns that case, and ends with the same results.
    @Test func resumeRepairsACutOffLineAndRerunsIncompleteCases() throws {
        let root = try Self.tempDir("resume"), model = try Real.model
        let out = root + "/run"
        let first = try RunSession(plan: try Self.tinyPlan(), model: model).execute(out: out)
        #expect(first.ran == 2 && first.resumed == 0 && first.notes.isEmpty)
        let complete = try RunDirectory.readResults(in: out).results
        let summary = try String(contentsOfFile: out + "/summary.csv", encoding: .utf8)
        let bytes = try #require(FileManager.default.contents(atPath: out + "/results.jsonl"))
        try bytes.prefix(bytes.count - 40).write(to: URL(fileURLWithPath: out + "/results.jsonl"))
        let again = try RunSession(plan: try Self.tinyPlan(), model: model).execute(out: out)
        #expect(again.ran == 1 && again.resumed == 1, "the cut case reruns, the other is kept")
        #expect(
            again.notes.contains { $0.contains("cut-off last line") } && again.notes.contains { $0.contains("only some of their 3 results") }, "\(again.notes)")
        #expect(Self.untimed(try RunDirectory.readResults(in: out).results) == Self.untimed(complete))
        #expect(try String(contentsOfFile: out + "/summary.csv", encoding: .utf8) == summary)
        // A damaged line in the middle is an error naming it, not a silent skip.
        var text = try String(contentsOfFile: out + "/results.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        text[1] = "{\"not\": \"a result\"}"
        try (text.joined(separator: "\n") + "\n").write(toFile: out + "/results.jsonl", atomically: true, encoding: .utf8)
        #expect(
            throws: RunError.data("\(out)/results.jsonl line 2 is not a result; the file was edited or damaged: delete that line (its case reruns on resume)")
        ) {
            _ = try RunSession(plan: try Self.tinyPlan(), model: model).execute(out: out)
        }
    }

    /// A second run into a folder in use is refused at once with a one-line error; the first is unharmed.
    @Test func aRunFolderInUseIsRefused() throws {
        let root = try Self.tempDir("lock"), model = try Real.model
        var holder: RunDirectory? = try RunDirectory(path: root + "/run")
        do { _ = try RunSession(plan: try Self.tinyPlan(), model: model).execute(out: root + "/run"); Issue.record("two runs shared a folder") } catch let e
            as RunError
        {
            #expect(e.exitCode == 73 && e.description.contains("in use by another kvkit run"), "\(e)")
        }
        #expect(holder != nil)
        holder = nil
        _ = try RunSession(plan: try Self.tinyPlan(), model: model).execute(out: root + "/run")  // free again
    }

    /// `--policy full` alone is a run of the baseline.
    @Test func fullAloneRunsTheBaseline() throws {
        let root = try Self.tempDir("full"), model = try Real.model
        var plan = try Self.tinyPlan()
        plan.policies = ["full"]
        let o = try RunSession(plan: plan, model: model).execute(out: root + "/run")
        #expect(o.rows.count == 1 && o.rows[0].policy == "full" && o.rows[0].cases == 2)
    }

    /// Config mistakes are found before any job runs, each a one-line error naming the fix.
    @Test func sweepConfigMistakesAreCaughtBeforeAnythingRuns() throws {
        let root = try Self.tempDir("config")
        let cases: [(String, String)] = [
            ("{\"study\": 1}", "'study' must be text"),
            ("{\"study\": \"x\", \"jobs\": []}", "has no jobs"),
            ("{\"study\": \"x\", \"jobs\": [{\"name\": \"j\", \"options\": {\"policy\": \"h2o\", \"lenghts\": 5}}]}", "'lenghts' is not a kvkit run option"),
            ("{\"study\": \"x\", \"jobs\": [{\"name\": \"j\", \"options\": {\"policy\": \"h2o\", \"samples\": false}}]}", "'samples' takes a value"),
            ("{\"study\": \"x\", \"jobs\": [{\"name\": \"../../x\", \"options\": {\"policy\": \"h2o\"}}]}", "plain folder name"),
            (
                "{\"study\": \"x\", \"jobs\": [{\"name\": \"a\", \"options\": {\"policy\": \"h2o\"}}, {\"name\": \"b\", \"options\": {\"policy\": \"nope\"}}]}",
                "job b: unknown policy"
            ),
            ("{\"study\": \"x\", \"jobs\": [{\"name\": \"a\", \"options\": {\"policy\": \"h2o\", \"lengths\": [512, 512]}}]}", "lists '512' twice"),
            ("{\"study\": \"x\", \"jobs\": [{\"name\": \"a\", \"options\": {\"policy\": \"h2o\", \"out\": \"y\"}}]}", "'out' is set by kvkit sweep"),
        ]
        for (i, (json, needle)) in cases.enumerated() {
            let path = try Self.writeStudy(root, "c\(i)", json)
            do { _ = try Study(path: path); Issue.record("accepted: \(json)") } catch let e as RunError {
                #expect(e.description.contains(needle) && !e.description.contains("\n"), "\(json): \(e)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/results"), "no job ran")
        let yaml = root + "/study.yaml"
        try "study: y\ncommon:\n  probe: niah\n  lengths: [256]\njobs:\n  - name: one\n    options:\n      policy: streaming\n      query-aware: true\n"
            .write(toFile: yaml, atomically: true, encoding: .utf8)
        let s = try Study(path: yaml)
        #expect(s.jobs.count == 1 && s.jobs[0].plan.queryAware && s.jobs[0].plan.lengths == [256] && s.jobs[0].plan.policies == ["streaming"])
    }

    /// Lists with an empty item or a value twice, out-of-range numbers and oversized grids are refused.
    @Test func planValuesAreChecked() throws {
        let bad: [(String, String, String)] = [
            ("lengths", "512,,512", "empty item"), ("depths", "0.5,0.5", "twice"), ("probe", "niah,,niah", "empty item"),
            ("lengths", "9223372036854775807", "invalid"), ("samples", "100000000000", "from 1 to 100000"),
            ("budget", "-1", "budget"), ("policy", "h2o,h2o", "twice"), ("shard", "3/2", "1 ≤ I ≤ N"),
        ]
        for (name, value, needle) in bad {
            do { _ = try RunPlan(options: [("policy", .text("h2o")), (name, .text(value))]); Issue.record("accepted --\(name) \(value)") } catch let e
                as RunError
            {
                #expect(e.exitCode == 64 && e.description.contains(needle), "--\(name) \(value): \(e)")
            }
        }
        do {
            _ = try RunPlan(options: [
                ("policy", .text("h2o")), ("samples", .text("100000")), ("lengths", .text("512,1024,2048")), ("depths", .text("0.1,0.2,0.3,0.4")),
            ])
            Issue.record("a 1.2-million-case grid was accepted")
        } catch let e as RunError { #expect(e.description.contains("more than 1,000,000 cases")) }
    }

    /// `--slurm` writes an array script (one task per shard, each `kvkit sweep --shard $SLURM_ARRAY_TASK_ID/N`)
    /// and a merge script; with no sbatch on the PATH it says how to submit them, and `--submit` exits 69.
    @Test func slurmScriptsWithoutSbatch() throws {
        let root = try Self.tempDir("slurm")
        let config = try Self.writeStudy(root, "s", Self.tinyStudy.replacingOccurrences(of: "RESULTS", with: "res"))
        let env = ["PATH": "/nonexistent"]
        let w = try runKVKit(["sweep", config, "--slurm", "--shards", "3", "--partition", "cpu", "--time", "1:00:00", "--cpus", "4"], env: env)
        #expect(w.status == 0 && w.stdout.contains("sbatch --parsable") && w.stdout.contains("not on this machine's PATH"), "\(w.stdout) \(w.stderr)")
        let array = try String(contentsOfFile: root + "/res/slurm/tiny-array.sbatch", encoding: .utf8)
        for needle in [
            "#SBATCH --array=1-3", "#SBATCH --partition=cpu", "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=4",
            "--shard \"${SLURM_ARRAY_TASK_ID}/3\"", "export KVKIT_HOME=", "shard-%a-of-3.out",
        ] {
            #expect(array.contains(needle), "array script lacks \(needle)")
        }
        let merge = try String(contentsOfFile: root + "/res/slurm/tiny-merge.sbatch", encoding: .utf8)
        #expect(merge.contains("--merge --shards 3"))
        let s = try runKVKit(["sweep", config, "--slurm", "--submit"], env: env)
        #expect(s.status == 69 && s.stderr.contains("sbatch is not on the PATH") && s.stderr.split(separator: "\n").count == 1, "\(s.stderr)")
        let bad = try runKVKit(["sweep", config, "--slurm", "--time", "soon"], env: env)
        #expect(bad.status == 64 && bad.stderr.contains("--time 'soon'"), "\(bad.stderr)")
        // --drop-bad-rows reaches every task and the merge.
        _ = try runKVKit(["sweep", config, "--slurm", "--shards", "2", "--drop-bad-rows"], env: env)
        for script in ["array", "merge"] {
            #expect(try String(contentsOfFile: root + "/res/slurm/tiny-\(script).sbatch", encoding: .utf8).contains("--drop-bad-rows"), "\(script)")
        }
    }
}
