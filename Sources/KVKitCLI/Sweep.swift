import ArgumentParser
import Foundation
import Models
import Runs

/// `kvkit merge`: the folders of a sharded run into one, with its summary and figures.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the --out folders of a sharded run (kvkit run/sweep --shard I/N) into one, with its summary and figures.")

    @Option(help: "The merged folder (created; not one of the shards).")
    var out: String

    @Argument(help: "The shards' --out folders, every shard of the run once.")
    var shards: [String]

    @Flag(help: ArgumentHelp(RunDirectory.dropBadRowsHelp)) var dropBadRows = false

    func run() throws {
        try runReporting {
            let m = try RunDirectory.merge(shards, into: out, badRows: dropBadRows ? .drop : .refuse)
            for n in m.notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
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

    @Option(
        parsing: .unconditional,
        help: "The number of shards N: with --merge, every shard 1…N must be there (a missing one is named); with --slurm, the array's tasks (default 4).")
    var shards: Int?

    @Option(parsing: .unconditional, help: "Threads per run for every job (overrides the config; Slurm tasks pass their --cpus).")
    var threads: Int?

    @Flag(help: "Write an sbatch job array (one task per shard) and a merge job that depends on it, under RESULTS/slurm/.")
    var slurm = false

    @Flag(help: "With --slurm: submit both with sbatch and print the job ids and how to watch them.")
    var submit = false

    @Option(help: "With --slurm: the partition to run in (default: the cluster's).")
    var partition: String?

    @Option(help: "With --slurm: wall-time limit per task (minutes, H:MM:SS or D-HH:MM:SS).")
    var time: String?

    @Option(parsing: .unconditional, help: "With --slurm: CPUs per task, also the threads each run uses.")
    var cpus: Int = 2

    @Option(help: "Run (or merge) only these jobs, comma-separated.")
    var only: String?

    @Flag(
        help:
            "Check every job as the run would (model, probe file, haystack, cases, output folders, results already there) and print what would run, without running or writing anything."
    )
    var dryRun = false

    @Flag(help: "No progress line on stderr.")
    var noProgress = false

    @Flag(help: ArgumentHelp("Every job, and its --merge, as with the job option drop-bad-rows: " + RunDirectory.dropBadRowsHelp))
    var dropBadRows = false

    func run() throws {
        try runReporting {
            var study = try Study(path: config)
            if let t = threads {
                guard (1...256).contains(t) else { throw RunError.usage("--threads must be from 1 to 256 (got \(t))") }
                for i in study.jobs.indices { study.jobs[i].plan.threads = t }
            }
            if dropBadRows { for i in study.jobs.indices { study.jobs[i].plan.dropBadRows = true } }
            let shardSpec = try shard.map { try RunPlan.Shard(parsing: $0) }
            let onlyList = only.map { $0.split(separator: ",").map(String.init) }
            let jobs = try study.select(onlyList)
            if slurm {
                try writeSlurm(study, only: onlyList)
                return
            }
            if submit { throw RunError.usage("--submit goes with --slurm") }
            if merge {
                for job in jobs {
                    let m = try study.merge(job, expected: shards, badRows: job.plan.dropBadRows ? .drop : .refuse)
                    for n in m.notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
                    print("[\(study.name)] \(job.name): merged \(m.shards) shard(s), \(m.cases) cases into \(study.folder(job))")
                }
                return
            }
            // One model for every job that names the same file (loaded on first use).
            var models: [String: any LanguageModel] = [:]
            for (k, job) in jobs.enumerated() {
                let plan = study.plan(job, shard: shardSpec)
                print("[\(study.name)] job \(k + 1)/\(jobs.count) \(job.name): \(plan.out!)")
                let key = [ModelLocation.path(plan.model), plan.weights.rawValue, plan.format?.name ?? "file"].joined(separator: "|")
                if models[key] == nil { models[key] = try ModelLoader.load(plan) }
                if dryRun {
                    // Everything the run does before its first case, writing nothing.
                    let (cases, finished) = try RunSession(plan: plan, model: models[key]!).check(out: plan.out!)
                    print("  ok: \(cases) case(s)\(finished > 0 ? ", \(finished) already finished there" : ""); \(plan.policies.joined(separator: ","))")
                    continue
                }
                try Run.execute(plan, model: models[key]!, showProgress: !noProgress, printSummary: false)
            }
        }
    }

    /// `--slurm`: writes the array and merge scripts; with `--submit`, submits them.
    func writeSlurm(_ study: Study, only: [String]?) throws {
        guard shard == nil, !merge else { throw RunError.usage("--slurm writes the shards' jobs itself; drop --shard and --merge") }
        let binary = Bundle.main.executablePath ?? CommandLine.arguments[0]
        var plan = try SlurmPlan(
            study: study, shards: shards ?? 4, partition: partition, time: time, cpus: cpus, only: only,
            binary: binary, kvkitHome: ModelLocation.kvkitHome)
        plan.dropBadRows = dropBadRows
        let sbatch = SlurmPlan.which("sbatch")
        if submit && sbatch == nil {
            throw RunError.unavailable("sbatch is not on the PATH: --submit needs a Slurm client; run without --submit to only write the scripts")
        }
        try plan.write()
        print("wrote \(plan.arrayScript) (\(plan.shards) tasks) and \(plan.mergeScript); logs go to \(plan.logs)")
        guard submit, let sbatch else {
            print("submit them with:\n  jid=$(sbatch --parsable \(plan.arrayScript)) && sbatch --dependency=afterok:$jid \(plan.mergeScript)")
            if sbatch == nil { print("(sbatch is not on this machine's PATH: submit from a Slurm login node)") }
            return
        }
        let ids = try plan.submit(sbatch: sbatch)
        print("submitted array job \(ids.array) (\(plan.shards) tasks) and merge job \(ids.merge) (runs after every task succeeded)")
        print("watch: squeue -j \(ids.array),\(ids.merge)    accounting, where the cluster keeps it: sacct -j \(ids.array),\(ids.merge)")
        print("a failed task K resumes alone: sbatch --array=K \(plan.arrayScript), then sbatch \(plan.mergeScript)")
        print("array=\(ids.array) merge=\(ids.merge)")
    }
}
