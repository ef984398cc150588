import Foundation

/// A study as Slurm jobs: an sbatch job array with one task per shard (`kvkit sweep CONFIG --shard
/// $SLURM_ARRAY_TASK_ID/N`) and a merge job that runs after every task succeeded
/// (`--dependency=afterok:ARRAY`). The scheduler does the scheduling; KVKit only writes and submits.
public struct SlurmPlan {
    public var study: Study
    public var shards: Int
    public var partition: String?
    /// Wall-time limit per task in Slurm's format (`2:00:00`, `1-00:00:00`).
    public var time: String?
    public var cpus: Int
    /// Jobs to run (nil: all), as `--only` gives them.
    public var only: [String]?
    /// Passed on to every task and the merge (`--drop-bad-rows`).
    public var dropBadRows = false
    /// Absolute paths: the kvkit binary every node runs, the config, and $KVKIT_HOME (the model).
    public var binary: String
    public var kvkitHome: String

    public init(
        study: Study, shards: Int, partition: String? = nil, time: String? = nil, cpus: Int = 2, only: [String]? = nil,
        binary: String, kvkitHome: String
    ) throws {
        guard (1...100_000).contains(shards) else { throw RunError.usage("--shards must be from 1 to 100000 (got \(shards))") }
        guard (1...256).contains(cpus) else { throw RunError.usage("--cpus must be from 1 to 256 (got \(cpus))") }
        if let t = time, t.isEmpty || !t.allSatisfy({ $0.isNumber || $0 == ":" || $0 == "-" }) {
            throw RunError.usage("--time '\(t)' is not a Slurm time limit; write minutes, H:MM:SS or D-HH:MM:SS")
        }
        if let p = partition, p.isEmpty || !p.allSatisfy({ $0.isLetter || $0.isNumber || "-_.,".contains($0) }) {
            throw RunError.usage("--partition '\(p)' is not a partition name")
        }
        self.study = study; self.shards = shards; self.partition = partition; self.time = time; self.cpus = cpus
        self.only = only; self.binary = binary; self.kvkitHome = kvkitHome
    }

    /// Where the scripts and the tasks' logs go: `<results>/slurm/`.
    public var folder: String { (study.resultsRoot as NSString).appendingPathComponent("slurm") }
    public var arrayScript: String { folder + "/\(study.name)-array.sbatch" }
    public var mergeScript: String { folder + "/\(study.name)-merge.sbatch" }
    public var logs: String { folder + "/logs" }

    static func absolute(_ p: String) -> String {
        URL(fileURLWithPath: p, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)).standardizedFileURL.path
    }

    /// Single-quoted for bash.
    static func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    private func header(name: String, output: String, extra: [String]) -> String {
        var lines = [
            "#!/bin/bash", "# Written by kvkit sweep --slurm for study \(study.name); edit freely, then submit (see docs/probes-and-runs.md).",
            "#SBATCH --job-name=\(name)", "#SBATCH --output=\(output)", "#SBATCH --cpus-per-task=\(cpus)", "#SBATCH --ntasks=1",
        ]
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        lines += extra
        lines += ["set -euo pipefail", "export KVKIT_HOME=\(Self.q(kvkitHome))"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The sweep options every script passes on (`--only`, `--drop-bad-rows`).
    private var passedArgs: String { (only.map { " --only " + Self.q($0.joined(separator: ",")) } ?? "") + (dropBadRows ? " --drop-bad-rows" : "") }

    /// The job array: task i runs shard i/N of every job (resumable: a resubmitted task continues).
    public func arrayText() -> String {
        header(name: "kvkit-\(study.name)", output: logs + "/shard-%a-of-\(shards).out", extra: ["#SBATCH --array=1-\(shards)"])
            + "exec \(Self.q(Self.absolute(binary))) sweep \(Self.q(Self.absolute(study.configPath))) --shard \"${SLURM_ARRAY_TASK_ID}/\(shards)\""
            + " --threads \"${SLURM_CPUS_PER_TASK:-\(cpus)}\" --no-progress\(passedArgs)\n"
    }

    /// The merge: every job's N shard folders into the job's folder (refuses, naming it, if one is missing).
    public func mergeText() -> String {
        header(name: "kvkit-\(study.name)-merge", output: logs + "/merge.out", extra: [])
            + "exec \(Self.q(Self.absolute(binary))) sweep \(Self.q(Self.absolute(study.configPath))) --merge --shards \(shards)\(passedArgs)\n"
    }

    /// Writes both scripts (executable) and the log folder.
    public func write() throws {
        do {
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            for (path, text) in [(arrayScript, arrayText()), (mergeScript, mergeText())] {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            }
        } catch {
            throw RunError.cantCreate("cannot write the Slurm scripts in \(folder) (\(RunDirectory.reason(error))); the results folder must be writable")
        }
    }

    /// `name` on the PATH, or nil.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for dir in (path ?? "").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Submits the array, then the merge after it; returns both job ids.
    public func submit(sbatch: String) throws -> (array: String, merge: String) {
        let array = try Self.sbatch(sbatch, ["--parsable", arrayScript])
        let merge = try Self.sbatch(sbatch, ["--parsable", "--dependency=afterok:\(array)", "--kill-on-invalid-dep=yes", mergeScript])
        return (array, merge)
    }

    static func sbatch(_ exe: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { throw RunError.unavailable("cannot start \(exe): \(RunDirectory.reason(error))") }
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // --parsable prints "ID" or "ID;CLUSTER".
        let id = o.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard p.terminationStatus == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            let why = e.split(separator: "\n").first.map(String.init) ?? "exit \(p.terminationStatus)"
            throw RunError.unavailable("sbatch \(args.last ?? "") failed: \(why)")
        }
        return id
    }
}
