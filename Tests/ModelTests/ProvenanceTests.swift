import Foundation
import KVKitTestSupport
import TensorMath
import Testing
@testable import Runs

/// Results tied to the content they came from: a probe file edited in place is a different experiment
/// (resume refuses it, naming what changed), and `kvkit compare --b-run` refuses to pair cases that share
/// an id but not their content (another seed).
@Suite(.serialized) struct ProvenanceTests {
    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "kvkit-provenance-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func line(_ id: String, answer: String) -> String {
        #"{"id": "\#(id)", "context": "The harbour opens at dawn. The magic number is \#(answer). Boats leave at noon.", "question": "What is the magic number?", "answers": ["\#(answer)"], "answer_prefix": "The magic number is"}"#
    }

    @Test func anEditedProbeFileIsNotResumed() throws {
        let dir = Self.tempDir(), file = dir + "/cases.jsonl"
        try (Self.line("a", answer: "4417") + "\n" + Self.line("b", answer: "9902") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let args = ["run", "--probe-file", file, "--policy", "streaming", "--budget", "0.5", "--out", dir + "/run"]
        let first = try runKVKit(args)
        #expect(first.status == 0, "\(first.stderr)")
        let config = try #require(try RunDirectory.config(in: dir + "/run"))
        #expect(config.inputs?["probe-file"]?.count == 64 && config.inputs?["cases"]?.count == 64)
        // OpenBLAS's kernel set is recorded and compared (its Float32 sums differ in the last bits); a run from
        // before it was recorded still resumes. The CPU is named with its family and vector extensions.
        #expect(config.blas == BLAS.coreName && !BLAS.coreName.isEmpty)
        #expect(config.cpu?.contains("family") == true || config.cpu == "unknown", "\(config.cpu ?? "nil")")
        var other = config
        other.blas = "AnotherCore"
        #expect(config.differences(from: other) == ["blas"])
        other.blas = nil
        #expect(config.differences(from: other).isEmpty)
        // Kernels chosen at run time (AVX-512 VNNI) are recorded, and not compared: their results are AVX2's, bitwise.
        #expect(config.runtimeKernels == KernelBuild.runtime)
        other.runtimeKernels = config.runtimeKernels == nil ? "avx512-vnni" : nil
        #expect(config.differences(from: other).isEmpty)
        // The prefill attention's products (AVX-512 or sgemm) are compared, and the refusal says which setting
        // repeats the old arithmetic, or that none does.
        var sgemm = config, wide = config
        sgemm.attention = nil; wide.attention = "avx512"
        sgemm.weights = "native-q16"; wide.weights = "native-q16-vnni"  // the AVX2 kernels alone; the AVX-512 ones
        #expect(wide.differences(from: sgemm) == ["attention", "weights"] && RunDirectory.kernelHint(old: wide, new: wide).isEmpty)
        #expect(RunDirectory.kernelHint(old: sgemm, new: wide).contains("KVKIT_KERNELS=avx2"))
        #expect(RunDirectory.kernelHint(old: wide, new: sgemm).contains("without KVKIT_KERNELS=avx2"))
        var mixed = sgemm
        mixed.weights = "native-q16-vnni"
        #expect(RunDirectory.kernelHint(old: mixed, new: wide).contains("no setting of this version"))
        // kvkit bench says when OpenBLAS's AVX2 kernels run on an AVX-512 CPU, and only then.
        #expect(BLAS.coreNote(core: "Haswell", cpu: "AMD EPYC (family 26, model 2; avx2 avx512f avx512_vnni)")?.contains("Haswell") == true)
        #expect(BLAS.coreNote(core: "SkylakeX", cpu: "AMD EPYC (family 26, model 2; avx2 avx512f)") == nil)
        #expect(BLAS.coreNote(core: "Haswell", cpu: "AMD EPYC (family 25, model 1; avx2)") == nil)
        let rows = try RunDirectory.readResults(in: dir + "/run").results
        #expect(rows.allSatisfy { $0.caseSHA256?.count == 64 })
        // The same file again resumes (nothing reruns); edited in place, it is refused with what changed.
        #expect(try runKVKit(args).status == 0)
        try (Self.line("a", answer: "1234") + "\n" + Self.line("b", answer: "9902") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let edited = try runKVKit(args)
        #expect(edited.status == 64, "\(edited.stderr)")
        #expect(edited.stderr.contains("inputs.cases") && edited.stderr.contains("inputs.probe-file"), "\(edited.stderr)")
        #expect(edited.stderr.split(separator: "\n").count == 1, "one line: \(edited.stderr)")
        #expect(try RunDirectory.readResults(in: dir + "/run").results == rows, "the finished results are kept as they were")
    }

    @Test func compareRefusesCasesThatShareOnlyTheirIds() throws {
        let dir = Self.tempDir()
        let grid = ["--probe", "niah", "--lengths", "256", "--depths", "0.5", "--samples", "2", "--policy", "streaming", "--budget", "0.5"]
        #expect(try runKVKit(["run"] + grid + ["--out", dir + "/s0"]).status == 0)
        #expect(try runKVKit(["run"] + grid + ["--seed", "1", "--out", dir + "/s1"]).status == 0)
        #expect(try runKVKit(["run"] + grid + ["--out", dir + "/s0b"]).status == 0)
        let same = try runKVKit(["compare", dir + "/s0", "streaming@0.5", "streaming@0.5", "--b-run", dir + "/s0b"])
        #expect(same.status == 0, "\(same.stderr)")
        let other = try runKVKit(["compare", dir + "/s0", "streaming@0.5", "streaming@0.5", "--b-run", dir + "/s1"])
        #expect(other.status == 65 && other.stderr.contains("not the same case"), "\(other.status): \(other.stderr)")
    }
}
