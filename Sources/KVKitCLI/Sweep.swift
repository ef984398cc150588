import ArgumentParser
import Foundation
import LlamaModel
import Runs

/// `kvkit merge`: the folders of a sharded run into one, with its summary and figures.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the --out folders of a sharded run (kvkit run/sweep --shard I/N) into one, with its summary and figures.")

    @Option(help: "The merged folder (created; not one of the shards).")
    var out: String

    @Argument(help: "The shards' --out folders, every shard of the run once.")
    var shards: [String]

    func run() throws {
        try runReporting {
            let m = try RunDirectory.merge(shards, into: out)
            print(Summary.text(m.rows))
            print("merged \(m.shards) shard(s), \(m.cases) cases, \(m.results.count) results: \(out)/results.jsonl")
        }
    }
}

/// `kvkit sweep CONFIG`: a whole study (see `Study` for the format), each job resumable, shardable over
/// machines (`--shard I/N`) and mergeable (`--merge`).
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a study from a JSON or YAML config of kvkit run jobs: resumable, shardable (--shard I/N), mergeable (--merge).",
        discussion: """
        Config: {"study": NAME, "results": FOLDER, "common": {OPTIONS}, "jobs": [{"name": JOB, "options": {OPTIONS}}]}
        where OPTIONS are kvkit run's flags without '--' (lists as arrays, flags as true). Job JOB writes to
        FOLDER/JOB next to the config; shard I of N to FOLDER/JOB/shard-I-of-N.
        """)

    @Argument(help: "The study's config (.json, .yaml or .yml).")
    var config: String

    @Option(help: "Run only shard I of N of every job's cases (for a Slurm array or GNU parallel); merge with --merge.")
    var shard: String?

    @Flag(help: "Merge every job's shard folders into the job's folder instead of running.")
    var merge = false

    @Option(help: "With --merge: the number of shards N; a missing shard folder is an error naming it.")
    var shards: Int?

    @Option(help: "Run (or merge) only these jobs, comma-separated.")
    var only: String?

    @Flag(help: "Print each job's plan instead of running it.")
    var dryRun = false

    @Flag(help: "No progress line on stderr.")
    var noProgress = false

    func run() throws {
        try runReporting {
            let study = try Study(path: config)
            let shardSpec = try shard.map { try RunPlan.Shard(parsing: $0) }
            let jobs = try study.select(only.map { $0.split(separator: ",").map(String.init) })
            if merge {
                for job in jobs {
                    let m = try study.merge(job, expected: shards)
                    print("[\(study.name)] \(job.name): merged \(m.shards) shard(s), \(m.cases) cases into \(study.folder(job))")
                }
                return
            }
            // One model for every job that names the same file (loaded on first use).
            var models: [String: LlamaModel] = [:]
            for (k, job) in jobs.enumerated() {
                let plan = study.plan(job, shard: shardSpec)
                print("[\(study.name)] job \(k + 1)/\(jobs.count) \(job.name): \(plan.out!)")
                if dryRun { continue }
                let path = ModelLocation.path(plan.model)
                if models[path] == nil { models[path] = try ModelLoader.load(path: path, threads: plan.threads) }
                try Run.execute(plan, model: models[path]!, showProgress: !noProgress, printSummary: false)
            }
        }
    }
}
