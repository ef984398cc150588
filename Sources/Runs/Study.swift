import Foundation
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

    struct File: Decodable {
        var study: String
        var results: String?
        var common: [String: RunPlan.Value]?
        var jobs: [FileJob]
        struct FileJob: Decodable { var name: String; var options: [String: RunPlan.Value]? }
    }

    /// Reads and checks a study config (`.yaml` / `.yml` as YAML, anything else as JSON).
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RunError.noInput("cannot read sweep config \(path); check the path")
        }
        let file: File
        do {
            if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
                file = try YAMLDecoder().decode(File.self, from: String(decoding: data, as: UTF8.self))
            } else {
                file = try JSONDecoder().decode(File.self, from: data)
            }
        } catch {
            throw RunError.data("sweep config \(path) is malformed (\(Self.describe(error))); see 'kvkit sweep --help' for the format")
        }
        try self.init(file, path: path)
    }

    init(_ file: File, path: String) throws {
        name = file.study
        configPath = path
        let results = file.results ?? "results"
        guard !results.isEmpty else { throw RunError.usage("sweep config \(path): 'results' is empty; name a folder") }
        resultsRoot = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(results)
        guard !file.jobs.isEmpty else { throw RunError.usage("sweep config \(path) has no jobs; add at least one under \"jobs\"") }
        var names = Set<String>()
        jobs = []
        for job in file.jobs {
            // A job's name is a folder under the results: one plain name, never a path.
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
            guard !job.name.isEmpty, job.name.unicodeScalars.allSatisfy(allowed.contains), job.name != ".", job.name != "..", !job.name.hasPrefix("shard-") else {
                throw RunError.usage("job name '\(job.name)' in \(path) must be a plain folder name (letters, digits, - _ .), not a path")
            }
            guard names.insert(job.name).inserted else { throw RunError.usage("job '\(job.name)' appears twice in \(path); give each job its own name") }
            var options = file.common ?? [:]
            for (k, v) in job.options ?? [:] { options[k] = v }
            for reserved in ["out", "shard"] where options[reserved] != nil {
                throw RunError.usage("job \(job.name): '\(reserved)' is set by kvkit sweep; remove it from the config")
            }
            let plan = try RunPlan(options: options.keys.sorted().map { ($0, options[$0]!) }, context: "job \(job.name)")
            jobs.append(Job(name: job.name, plan: plan))
        }
    }

    /// The jobs named in `only` (all when nil); an unknown name is a usage error.
    public func select(_ only: [String]?) throws -> [Job] {
        guard let only else { return jobs }
        if let bad = only.first(where: { n in !jobs.contains { $0.name == n } }) {
            throw RunError.usage("--only: no job '\(bad)' in \(configPath); jobs: \(jobs.map(\.name).joined(separator: ", "))")
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
    public func merge(_ job: Job, expected: Int? = nil) throws -> RunDirectory.MergeOutcome {
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
        return try RunDirectory.merge(shards.map { (dir as NSString).appendingPathComponent($0) }, into: dir)
    }

    static func describe(_ e: Error) -> String {
        switch e {
        case let DecodingError.keyNotFound(k, _): return "missing '\(k.stringValue)'"
        case let DecodingError.typeMismatch(_, c), let DecodingError.dataCorrupted(c), let DecodingError.valueNotFound(_, c):
            let at = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (at.isEmpty ? "" : at + ": ") + c.debugDescription
        default: return String("\(e)".prefix(200))
        }
    }
}
