import Crypto
import Foundation
import Models
import Probes
import TensorMath

/// Everything needed to rerun a `kvkit run`: written to `config.json` before the first case.
public struct RunConfig: Codable, Equatable, Sendable {
    public var policies: [String]
    public var budgets: [String]
    public var probes: [String]
    public var lengths: [Int]
    public var depths: [Double]
    /// Chain lengths of the multi-hop probes, and the wording of their links.
    public var hops: [Int]
    public var wording: String
    public var samples: Int
    public var seed: UInt64
    public var queryAware: Bool
    /// The run's answer cap; nil: by the turn (room for the values after a prefix, 48 tokens without one).
    public var maxAnswerTokens: Int?
    public var pageSize: Int
    /// Codecs swept (`fp32`: not quantized) and the cold tier (`none` or `lz4:hot-pages=N`).
    public var quants: [String]
    public var offload: String
    public var threads: Int
    public var haystack: String
    public var model: ModelIdentity
    /// The KVKit commit that ran (git), "unknown" outside a checkout; not compared when resuming.
    public var codeVersion: String
    /// `I/N` when this run holds one shard of the grid's cases (nil: all of them).
    public var shard: String?
    /// The weights' storage when not the Float32 reference (`native`, the default since 2026-12-05); nil: f32
    /// (runs made before then, when f32 was the default, and `--weights f32` runs).
    public var weights: String?
    /// Compression while answering (`--compress-every`, `--compress-between-turns`); nil: only after the prompt.
    public var compressEvery: Int?
    public var compressBetweenTurns: Bool?
    /// The kernels of the binary that ran (`KernelBuild.name`: "avx2" for the host build; nil: portable,
    /// as every run before 2026-12-06). Compared when resuming: the builds differ in the last bits.
    public var kernels: String?
    /// The SHA-256 of every input the run read, by name: `cases` (every case's content, in order: what a
    /// probe file, seed or haystack became), `probe-file` (its bytes), `haystack` (the essays' or a file's
    /// bytes). Compared when resuming: an input edited in place is a different experiment. nil: runs
    /// before 2026-12-06, which cannot be resumed into by this version.
    public var inputs: [String: String]?
    /// The CPU that ran (its model name, family, model and vector extensions; not compared when resuming:
    /// `kernels` and `blas` are what change results).
    public var cpu: String? = KernelBuild.cpu
    /// Kernels chosen at run time by CPUID (`KernelBuild.runtime`: "avx512-vnni"); not compared when resuming:
    /// the K-quant VNNI kernels give bitwise what `kernels` gives (tested), and the VNNI prefill of the other
    /// block types, which does not, is in `weights` (`-vnni`).
    public var runtimeKernels: String? = KernelBuild.runtime
    /// OpenBLAS's kernel set (`BLAS.coreName`): the prefill's Float32 products sum in its order. Compared
    /// when resuming if both runs recorded it (nil: runs before 2026-12-07).
    public var blas: String? = BLAS.coreName
    /// The prefill attention's many-row products (`PagedAttention.record`): "avx512" for the AVX-512 F kernels
    /// chosen at run time, nil for OpenBLAS sgemm (and every run before 2026-12-07, evening). They sum in
    /// another order, so compared when resuming (`KVKIT_KERNELS=avx2` gives sgemm's).
    public var attention: String?

    public init(
        policies: [String], budgets: [String], probes: [String], lengths: [Int], depths: [Double], hops: [Int], wording: String, samples: Int,
        seed: UInt64, queryAware: Bool, maxAnswerTokens: Int?, pageSize: Int, quants: [String] = ["fp32"], offload: String = "none", threads: Int,
        haystack: String,
        model: ModelIdentity, codeVersion: String, shard: String? = nil, weights: String? = nil,
        compressEvery: Int? = nil, compressBetweenTurns: Bool? = nil, kernels: String? = KernelBuild.name
    ) {
        self.kernels = kernels
        self.weights = weights; self.compressEvery = compressEvery; self.compressBetweenTurns = compressBetweenTurns
        self.policies = policies; self.budgets = budgets; self.probes = probes; self.lengths = lengths; self.depths = depths
        self.hops = hops; self.wording = wording
        self.samples = samples; self.seed = seed; self.queryAware = queryAware; self.maxAnswerTokens = maxAnswerTokens
        self.pageSize = pageSize; self.quants = quants; self.offload = offload; self.threads = threads; self.haystack = haystack; self.model = model;
        self.codeVersion = codeVersion; self.shard = shard
    }

    /// Whether results of `other` may be mixed with this run's (everything but the code version and threads).
    public func sameExperiment(as other: RunConfig) -> Bool { differences(from: other).isEmpty }

    /// The settings and inputs in which `other` differs from this run (`inputs.probe-file`, `seed`, …;
    /// the code version and threads are not compared), for messages that name what changed.
    public func differences(from other: RunConfig) -> [String] {
        var a = self, b = other
        a.codeVersion = ""; b.codeVersion = ""; a.threads = 0; b.threads = 0; a.cpu = nil; b.cpu = nil; a.runtimeKernels = nil; b.runtimeKernels = nil
        if a.blas == nil || b.blas == nil { a.blas = nil; b.blas = nil }
        // A run from before formats were recorded took the file's, as a run without --format still does.
        if (a.model.chatFormat == nil) != (b.model.chatFormat == nil), !(a.model.chatFormat ?? b.model.chatFormat!).hasSuffix("(--format)") {
            a.model.chatFormat = nil; b.model.chatFormat = nil
        }
        guard a != b else { return [] }
        let enc = JSONEncoder()
        guard let da = try? JSONSerialization.jsonObject(with: enc.encode(a)) as? [String: Any],
            let db = try? JSONSerialization.jsonObject(with: enc.encode(b)) as? [String: Any]
        else { return ["config"] }
        var out: [String] = []
        for key in Set(da.keys).union(db.keys).sorted() {
            let x = da[key], y = db[key]
            if key == "inputs" {
                let ix = x as? [String: String], iy = y as? [String: String]
                if (ix == nil) != (iy == nil) { out.append("inputs (one of the runs was made before inputs were recorded)"); continue }
                let a = ix ?? [:], b = iy ?? [:]
                out += Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }.map { "inputs.\($0)" }
                continue
            }
            if !Self.same(x, y) { out.append(key) }
        }
        return out.isEmpty ? ["config"] : out
    }

    private static func same(_ x: Any?, _ y: Any?) -> Bool {
        switch (x, y) {
        case (nil, nil): return true
        case let (x?, y?):
            let o: JSONSerialization.WritingOptions = [.sortedKeys, .fragmentsAllowed]
            return (try? JSONSerialization.data(withJSONObject: [x], options: o)) == (try? JSONSerialization.data(withJSONObject: [y], options: o))
        default: return false
        }
    }
}

/// SHA-256 in lower-case hex.
func sha256Hex<D: DataProtocol>(_ data: D) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

extension ProbeCase {
    /// The SHA-256 of what makes the case what it is for a run: its id, context tokens, needle spans, and
    /// per turn the question, answer prefix, answers and answer cap (JSON with sorted keys). Labels that do
    /// not change what runs or how it is scored (probe name, length, depth, sample, each turn's needle
    /// labels) are left out, so a grid and its exported probe file have the same cases. Two runs' rows with
    /// the same id pair only when this agrees.
    public var contentSHA256: String {
        struct Content: Encodable {
            struct T: Encodable { let question: String, answerPrefix: String, answers: [String], maxNewTokens: Int? }
            let id: String, context: [Int32], needles: [NeedleSpan], turns: [T]
        }
        let c = Content(
            id: id, context: context, needles: needles,
            turns: turns.map { .init(question: $0.question, answerPrefix: $0.answerPrefix, answers: $0.answers, maxNewTokens: $0.maxNewTokens) })
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return sha256Hex((try? e.encode(c)) ?? Data())
    }
}

/// Which model ran: its file name, SHA-256 and hyper-parameters.
public struct ModelIdentity: Codable, Equatable, Sendable {
    public var file: String
    public var sha256: String
    public var config: ModelConfig
    /// How prompts were written: the chat format (`chatml`, …; "… (--format)" when the user chose it).
    /// nil: runs before 2026-12-06e, which took it from the file, as an unchosen format still is.
    public var chatFormat: String?

    public init(model: any LanguageModel) {
        file = (model.file.path as NSString).lastPathComponent
        sha256 = Self.sha256(of: model)
        config = model.config
        chatFormat = model.chatTemplate.recorded
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var hashes: [String: String] = [:]
    /// The SHA-256 of the model's file, hashed once per mapping of it: every case and pass of a run asks
    /// (duo's and kvzap's per-model files are keyed by it), and hashing a 1.1 GB file takes seconds.
    public static func sha256(of model: any LanguageModel) -> String {
        let f = model.file.file
        let key = "\(model.file.path)@\(UInt(bitPattern: f.base))#\(f.size)"
        lock.lock(); defer { lock.unlock() }
        if let h = hashes[key] { return h }
        let bytes = UnsafeRawBufferPointer(start: f.base, count: f.size)
        let h = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        hashes[key] = h
        return h
    }
}

/// The git commit of the working directory's checkout (with "-dirty" for uncommitted changes), if any.
public func codeVersion() -> String {
    func git(_ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }
    guard let head = git(["rev-parse", "HEAD"]) else { return "unknown" }
    // "-dirty": tracked code or configs differ from the commit (a study's own results folder does not count).
    let dirty = (git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":(glob,exclude)Experiments/*/results/**"]) ?? "").isEmpty ? "" : "-dirty"
    return head + dirty
}
