import Foundation
import ModelFile
import Yams

/// A study: one or more `kvkit run` jobs with shared and per-job options, read from JSON or YAML, every
/// job checked into a `RunPlan` before anything runs.
///
/// ```json
/// {"study": "needle-vs-budget", "results": "results",
///  "common": {"probe": "niah", "lengths": [1024, 2048], "budget": [0.1, 0.25], "samples": 2},
///  "jobs": [{"name": "agnostic", "options": {"policy": "snapkv,h2o"}},
///           {"name": "aware", "options": {"policy": "snapkv,h2o", "query-aware": true}}]}
/// ```
/// Option names are `kvkit run`'s flags without `--`; lists are joined with commas; `true` sets a flag.
/// Job `NAME` writes to `<results>/NAME` (relative to the config's folder), shard I of N to
/// `<results>/NAME/shard-I-of-N`, merged back into `<results>/NAME`.
public struct Study {
    public var name: String
    /// The config file, and the folder the jobs' results go under.
    public var configPath: String
    public var resultsRoot: String
    public var jobs: [Job]

    public struct Job {
        public var name: String
        public var plan: RunPlan
    }

    /// A config as read: keys checked, values as the command line writes them.
    struct File {
        var study: String
        var results: String?
        var common: [(String, RunPlan.Value)]
        var jobs: [(name: String, options: [(String, RunPlan.Value)])]
    }

    /// The most a config may hold before it is parsed (a study's config is a few KB).
    static let maxBytes = 1 << 20
    /// The deepest nesting a config may have (a study's is 4 levels).
    static let maxDepth = 32

    /// Reads and checks a study config (`.yaml` / `.yml` as YAML, anything else as JSON): at most 1 MiB
    /// and 32 levels deep, checked before parsing (a YAML parser recurses); UTF-8 (a leading BOM is
    /// skipped in both); a key given twice, an unknown key or a value of the wrong kind refused with its
    /// place; numbers kept as written (`budget: 2.0` is the fraction 2.0, refused, not 2 tokens).
    public init(path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw RunError.noInput("sweep config \(path) is a folder; give the config file (.json, .yaml or .yml)")
        }
        guard var data = FileManager.default.contents(atPath: path) else {
            throw RunError.noInput("cannot read sweep config \(path); check the path")
        }
        guard data.count <= Self.maxBytes else {
            throw RunError.data("sweep config \(path) is \(data.count) bytes; a config is at most \(Self.maxBytes) bytes (list the jobs, not the cases)")
        }
        if data.starts(with: [0xEF, 0xBB, 0xBF]) { data.removeFirst(3) }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw RunError.data("sweep config \(path) is not UTF-8 text; save it as UTF-8")
        }
        let tree: StrictJSON.Value
        do {
            tree =
                path.hasSuffix(".yaml") || path.hasSuffix(".yml")
                ? try ConfigYAML.tree(text, maxDepth: Self.maxDepth)
                : try StrictJSON.parse(data, maxDepth: Self.maxDepth)
        } catch let e as StrictJSON.Error {
            throw RunError.data("sweep config \(path) is malformed (\(e.description)); see 'kvkit sweep --help' for the format")
        } catch let e as ConfigYAML.Error {
            throw RunError.data("sweep config \(path) is malformed (\(e.description)); see 'kvkit sweep --help' for the format")
        }
        do { try self.init(File(tree), path: path) } catch let e as ConfigYAML.Error {
            throw RunError.usage("sweep config \(path): \(e.description)")
        }
    }

    init(_ file: File, path: String) throws {
        let here = (path as NSString).deletingLastPathComponent
        try Self.checkName(file.study, what: "study name", path: path)
        name = file.study
        configPath = path
        let results = file.results ?? "results"
        guard !results.isEmpty else { throw RunError.usage("sweep config \(path): 'results' is empty; name a folder") }
        // Relative to the config's folder, so a study runs the same from any directory; absolute as given.
        resultsRoot = Self.resolve(results, from: here)
        guard !file.jobs.isEmpty else { throw RunError.usage("sweep config \(path) has no jobs; add at least one under \"jobs\"") }
        var names = Set<String>()
        jobs = []
        for job in file.jobs {
            try Self.checkName(job.name, what: "job name", path: path)
            guard !job.name.hasPrefix("shard-") else {
                throw RunError.usage("job name '\(job.name)' in \(path) starts with 'shard-', which names shard folders; choose another")
            }
            guard names.insert(job.name).inserted else { throw RunError.usage("job '\(job.name)' appears twice in \(path); give each job its own name") }
            var options: [String: RunPlan.Value] = [:]
            for (k, v) in file.common + job.options { options[k] = v }
            for reserved in ["out", "shard"] where options[reserved] != nil {
                throw RunError.usage("job \(job.name): '\(reserved)' is set by kvkit sweep; remove it from the config")
            }
            // Paths in a config are relative to the config's folder (a bare model name is looked up in
            // $KVKIT_HOME, as on the command line).
            for key in ["probe-file", "offload-dir"] { if case let .text(t)? = options[key], !t.isEmpty { options[key] = .text(Self.resolve(t, from: here)) } }
            if case let .text(t)? = options["haystack"], !["essays", "grammar", ""].contains(t) { options["haystack"] = .text(Self.resolve(t, from: here)) }
            if case let .text(t)? = options["model"], t.contains("/") { options["model"] = .text(Self.resolve(t, from: here)) }
            let plan = try RunPlan(options: options.keys.sorted().map { ($0, options[$0]!) }, context: "job \(job.name)")
            jobs.append(Job(name: job.name, plan: plan))
        }
    }

    /// `path` as given when absolute, else under `folder`.
    static func resolve(_ path: String, from folder: String) -> String {
        path.hasPrefix("/") ? path : (folder as NSString).appendingPathComponent(path)
    }

    /// A study or job name names a folder or a script: one plain name of at most 100 characters.
    static func checkName(_ name: String, what: String, path: String) throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard !name.isEmpty, name.count <= 100, name.unicodeScalars.allSatisfy(allowed.contains), name != ".", name != ".." else {
            throw RunError.usage(
                "\(what) '\(RunDirectory.shown(name))' in \(path) must be a plain folder name of at most 100 characters (letters, digits, - _ .), not a path")
        }
    }

    /// The jobs named in `only` (all when nil); an unknown name is a usage error.
    public func select(_ only: [String]?) throws -> [Job] {
        guard let only else { return jobs }
        if let bad = only.first(where: { n in !jobs.contains { $0.name == n } }) {
            throw RunError.usage("--only: no job '\(RunDirectory.shown(bad))' in \(configPath); jobs: \(jobs.map(\.name).joined(separator: ", "))")
        }
        return jobs.filter { only.contains($0.name) }
    }

    /// Where a job's results go (a shard's in a folder of its own under it).
    public func folder(_ job: Job, shard: RunPlan.Shard? = nil) -> String {
        let dir = (resultsRoot as NSString).appendingPathComponent(job.name)
        guard let s = shard else { return dir }
        return (dir as NSString).appendingPathComponent("shard-\(s.index)-of-\(s.count)")
    }

    /// The plan of a job as run (its folder and shard filled in).
    public func plan(_ job: Job, shard: RunPlan.Shard?) -> RunPlan {
        var p = job.plan
        p.shard = shard
        p.out = folder(job, shard: shard)
        return p
    }

    /// Merges a job's shard folders into its folder. With `expected` (N), every shard 1…N must be
    /// there: a missing folder is named.
    @discardableResult
    public func merge(_ job: Job, expected: Int? = nil, badRows: RunDirectory.BadRows = .refuse) throws -> RunDirectory.MergeOutcome {
        let dir = folder(job)
        var shards = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("shard-") }.sorted()
        if let n = expected {
            let want = (1...n).map { "shard-\($0)-of-\(n)" }
            if let missing = want.first(where: { !shards.contains($0) }) {
                throw RunError.usage("job \(job.name): \(missing) is missing in \(dir); run that shard (it resumes) before merging")
            }
            shards = want
        }
        guard !shards.isEmpty else { throw RunError.usage("job \(job.name): no shard folders in \(dir) to merge") }
        return try RunDirectory.merge(shards.map { (dir as NSString).appendingPathComponent($0) }, into: dir, badRows: badRows)
    }
}
