import Foundation
import KVKitTestSupport
import TensorMath
import Testing

/// The faults found by trying bad input as a new user would, each a one-line error with the right exit
/// code: never a trap (132/134), never exit 0 over a lost result.
@Suite(.serialized) struct CommandFaultTests {
    static func temp(_ name: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-fault-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// The last line of stderr (ArgumentParser adds usage lines after its own errors).
    static func errorLine(_ s: String) -> String { String(s.split(separator: "\n").first ?? "") }

    @Test func aFullStandardOutputIsAnError() throws {
        for args in [["inspect"], ["generate", "--prompt", "hi", "--max-tokens", "3"], ["policies"]] {
            let r = try runKVKit(args, stdout: try #require(FileHandle(forWritingAtPath: "/dev/full")))
            #expect(r.status == 74 && r.stderr.contains("No space left"), "\(args): \(r.status) \(r.stderr)")
        }
    }

    @Test func hugeAndNegativeNumbersAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["generate", "--prompt", "hi", "--max-tokens", "9223372036854775807"], "--max-tokens must be from 1"),
            (["run", "--policy", "h2o", "--lengths", "9223372036854775807"], "--lengths"),
            (["run", "--policy", "h2o", "--samples", "100000000000"], "--samples must be"),
            (["generate", "--prompt", "hi", "--budget", "-1"], "budget '-1' is invalid"),
            (["run", "--policy", "h2o", "--budget", "-1"], "budget '-1' is invalid"),
            (["run", "--policy", "h2o", "--lengths", "512,,512"], "empty item"),
            (["run", "--policy", "h2o", "--depths", "0.5,0.5"], "twice"),
            (["run", "--policy", "h2o", "--probe", "niah,,niah"], "empty item"),
            (["run", "--policy", "h2o", "--suite", "ruler", "--probe", "niah"], "give --probe or --suite, not both"),
            (["run", "--policy", "h2o", "--suite", "rulers"], "--suite: unknown suite 'rulers'; accepted: ruler"),
            (["run", "--policy", "h2o", "--suite", "ruler", "--lengths", "512"], "--lengths 512: ruler-niah-single-1 needs at least 1024 tokens"),
            (["calibrate", "--policy", "snapkv"], "snapkv has nothing to calibrate; the policies that do: qfilter, kvzap, fastkvzip, duo"),
            (["calibrate", "--policy", "kvzap:samples=0"], "samples"),
            (["bench", "--kernels", "--kernel-rows", "3"], "--kernel-rows must be 9–65536"),
            (["bench", "--kernels", "--kernel-rounds", "0"], "--kernel-rounds 1–1000"),
        ]
        for (args, needle) in cases {
            let r = try runKVKit(args)
            #expect(r.status == 64 && r.stderr.contains(needle), "\(args): \(r.status) \(r.stderr)")
        }
    }

    @Test func modelPathsThatAreNotFilesAreMissingInput() throws {
        let dir = try Self.temp("model")
        let fifo = dir + "/fifo.gguf"
        #expect(mkfifo(fifo, 0o644) == 0)
        for model in [dir, fifo] {
            for args in [["generate", "--prompt", "hi", "--model", model], ["inspect", model], ["run", "--policy", "h2o", "--model", model]] {
                let r = try runKVKit(args)  // a FIFO used to block here forever
                #expect(r.status == 66 && r.stderr.contains("not a regular file") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            }
        }
    }

    @Test func unwritableOutputsFailBeforeTheWork() throws {
        let dir = try Self.temp("out")
        let file = dir + "/plain-file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let report = try runKVKit(["generate", "--prompt", "hi", "--max-tokens", "2", "--report", file + "/r.json"])
        #expect(report.status == 73 && report.stderr.contains("cannot write --report"), "\(report.stderr)")
        let out = try runKVKit(["run", "--policy", "h2o", "--probe", "niah", "--lengths", "256", "--samples", "1", "--out", file + "/run"])
        #expect(out.status == 73 && out.stderr.contains("cannot create the run folder") && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
    }

    /// CRLF line endings are read; a file that is not UTF-8 is bad data (not a missing path); a case whose
    /// question does not fit the context is named, and skipped with --skip-bad-lines; repeated ids are refused.
    @Test func probeFileFaults() throws {
        let dir = try Self.temp("probes")
        func line(_ id: String, _ context: String, _ question: String = "What is the special magic number for amber-owl?") -> String {
            let obj: [String: Any] = ["id": id, "context": context, "question": question, "answers": ["4821933"]]
            return String(decoding: try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
        }
        let ctx = "The grass is green. The special magic number for amber-owl is: 4821933. The sky is blue."
        let crlf = dir + "/crlf.jsonl"
        try (line("a", ctx) + "\r\n" + line("b", ctx) + "\r\n").write(toFile: crlf, atomically: true, encoding: .utf8)
        let ok = try runKVKit(["run", "--policy", "streaming", "--budget", "0.5", "--probe-file", crlf, "--out", dir + "/crlf-run", "--no-progress"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let latin = dir + "/latin1.jsonl"
        try Data(line("a", ctx).utf8.map { $0 } + [0xE9, 0x0A]).write(to: URL(fileURLWithPath: latin))
        let bad = try runKVKit(["run", "--policy", "streaming", "--probe-file", latin, "--out", dir + "/latin-run"])
        #expect(bad.status == 65 && bad.stderr.contains("not UTF-8"), "\(bad.stderr)")
        let long = dir + "/long.jsonl"
        let huge = String(repeating: "Why is the sky blue and the grass so very green today? ", count: 700)
        try (line("fits", ctx) + "\n" + line("too-long", ctx, huge) + "\n").write(toFile: long, atomically: true, encoding: .utf8)
        let stop = try runKVKit(["run", "--policy", "streaming", "--probe-file", long, "--out", dir + "/long-run"])
        #expect(stop.status == 65 && stop.stderr.contains("case too-long needs") && stop.stderr.contains("--skip-bad-lines"), "\(stop.stderr)")
        let skip = try runKVKit(["run", "--policy", "streaming", "--probe-file", long, "--skip-bad-lines", "--out", dir + "/long-run", "--no-progress"])
        #expect(skip.status == 0 && skip.stderr.contains("case too-long needs"), "\(skip.stderr)")
        let dup = dir + "/dup.jsonl"
        try (line("same", ctx) + "\n" + line("same", ctx) + "\n").write(toFile: dup, atomically: true, encoding: .utf8)
        let twice = try runKVKit(["run", "--policy", "streaming", "--probe-file", dup, "--out", dir + "/dup-run"])
        #expect(twice.status == 65 && twice.stderr.contains("'same' twice"), "\(twice.stderr)")
    }

    /// A full --offload-dir (a 12 MiB tmpfs): generate and run stop with exit 74 and one line, the cold file
    /// is removed, and the run keeps the case that finished before the disk filled.
    @Test func aFullOffloadFolderStopsCleanly() throws {
        let dir = try Self.temp("tmpfs")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=12m", "tmpfs", dir]
        mount.standardError = FileHandle.nullDevice
        try mount.run(); mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            print("skipped: cannot mount a small tmpfs here (needs root); the /dev/full cold-store test covers the cache")
            return
        }
        defer {
            let u = Process(); u.executableURL = URL(fileURLWithPath: "/bin/umount"); u.arguments = [dir]
            try? u.run(); u.waitUntilExit()
        }
        let g = try runKVKit([
            "generate", "--prompt", String(repeating: "Tell me about the sea. ", count: 60), "--max-tokens", "4",
            "--offload", "lz4", "--hot-pages", "1", "--offload-dir", dir,
        ])
        #expect(g.status == 74 && g.stderr.contains("No space left") && g.stderr.split(separator: "\n").count == 1, "\(g.stderr)")
        let out = try Self.temp("tmpfs-run")
        let r = try runKVKit([
            "run", "--policy", "streaming", "--budget", "0.5", "--probe", "niah", "--lengths", "256,1500", "--depths", "0.5", "--samples", "1",
            "--offload", "lz4", "--hot-pages", "1", "--offload-dir", dir, "--out", out, "--no-progress",
        ])
        #expect(r.status == 74 && r.stderr.contains("No space left") && r.stderr.contains("finished cases are in"), "\(r.stderr)")
        let lines = (try? String(contentsOfFile: out + "/results.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("len256") }, "the 256-token case is kept: \(lines.count) lines")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "no cold file left behind")
    }
}

/// A host build (AVX2 kernels) started on a CPU without AVX2/FMA/F16C stops before any Swift code runs,
/// with one line naming the fix and exit 69, never SIGILL mid-run (`KVKIT_FAKE_NO_AVX2` makes the load-time
/// check in `CPUCheck` see such a CPU); the portable build has no such check and runs. Runs name the CPU.
@Suite(.serialized) struct CPUCheckTests {
    @Test func aHostBuildOnACPUWithoutAVX2SaysSoAndExits69() throws {
        let r = try runKVKit(["policies"], env: ["KVKIT_FAKE_NO_AVX2": "1"])
        if TensorMath.KernelBuild.name == "avx2" {
            #expect(r.status == 69 && r.stderr.contains("AVX2") && r.stderr.contains("KVKIT_PORTABLE=1 make build"), "\(r.status): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stdout.isEmpty)
        } else {
            #expect(r.status == 0, "the portable build runs anywhere: \(r.stderr)")
        }
        #expect(!TensorMath.KernelBuild.cpu.isEmpty && TensorMath.KernelBuild.cpu != "unknown")
    }
}
