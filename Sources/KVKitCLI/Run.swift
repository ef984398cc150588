import ArgumentParser
import Foundation
import Models
import Runs

/// `kvkit run`: the flags become a `RunPlan` (through the same option table a sweep config uses), the
/// library runs it into a run folder; this prints progress and the summary.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run needle and multi-hop probes against policies: what each keeps, and what it answers.")

    @Option(help: ArgumentHelp(RunPlan.help("policy"))) var policy: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("budget"))) var budget: String?
    @Option(help: ArgumentHelp(RunPlan.help("quant"))) var quant: String?
    @OptionGroup var grid: GridOptions
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("max-answer-tokens"))) var maxAnswerTokens: String?
    @Flag(help: ArgumentHelp(RunPlan.help("query-aware"))) var queryAware = false
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("compress-every"))) var compressEvery: String?
    @Flag(help: ArgumentHelp(RunPlan.help("compress-between-turns"))) var compressBetweenTurns = false
    @Option(help: ArgumentHelp(RunPlan.help("out"))) var out: String?
    @Flag(help: ArgumentHelp(RunPlan.help("no-share-prefill"))) var noSharePrefill = false
    @Option(help: ArgumentHelp(RunPlan.help("probe-file"))) var probeFile: String?
    @Flag(help: ArgumentHelp(RunPlan.help("skip-bad-lines"))) var skipBadLines = false
    @Flag(help: ArgumentHelp(RunPlan.help("drop-bad-rows"))) var dropBadRows = false
    @Option(help: ArgumentHelp(RunPlan.help("shard"))) var shard: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("threads"))) var threads: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("page-size"))) var pageSize: String?
    @Option(help: ArgumentHelp(RunPlan.help("weights"))) var weights: String?
    @Option(help: ArgumentHelp(RunPlan.help("offload"))) var offload: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("hot-pages"))) var hotPages: String?
    @Option(help: ArgumentHelp(RunPlan.help("offload-dir"))) var offloadDir: String?
    @Flag(help: "No progress line on stderr.") var noProgress = false

    /// The options given, by their plan names.
    var given: [(name: String, value: RunPlan.Value)] {
        let texts: [(String, String?)] = [
            ("policy", policy), ("budget", budget), ("quant", quant), ("max-answer-tokens", maxAnswerTokens), ("compress-every", compressEvery), ("out", out),
            ("probe-file", probeFile), ("shard", shard), ("threads", threads), ("page-size", pageSize), ("weights", weights),
            ("offload", offload), ("hot-pages", hotPages), ("offload-dir", offloadDir),
        ]
        let flags: [(String, Bool)] = [
            ("query-aware", queryAware), ("compress-between-turns", compressBetweenTurns), ("no-share-prefill", noSharePrefill),
            ("skip-bad-lines", skipBadLines), ("drop-bad-rows", dropBadRows),
        ]
        return grid.given + texts.compactMap { n, v in v.map { (n, .text($0)) } } + flags.filter(\.1).map { ($0.0, .flag(true)) }
    }

    func run() throws {
        try runReporting {
            let plan = try RunPlan(options: given)
            let model = try ModelLoader.load(plan)
            try Self.execute(plan, model: model, showProgress: !noProgress, printSummary: true)
        }
    }

    /// Runs a plan with a progress line; shared with `kvkit sweep`.
    static func execute(_ plan: RunPlan, model: any LanguageModel, showProgress: Bool, printSummary: Bool) throws {
        let session = RunSession(plan: plan, model: model)
        var progress: Progress?
        let outcome = try session.execute(out: plan.out ?? plan.defaultOut()) { done, total, elapsed, label in
            if progress == nil { progress = Progress(total: total, enabled: showProgress) }
            progress!.update(done: done, elapsed: elapsed, label: label)
        }
        progress?.finish()
        for n in outcome.notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
        if printSummary {
            print(Summary.text(outcome.rows))
            let suite = SuiteSummary.rows(outcome.rows)
            if !suite.rows.isEmpty { print(SuiteSummary.text(tasks: suite.tasks, rows: suite.rows)) }
        }
        print("results: \(outcome.resultsPath)\(outcome.resumed > 0 ? " (\(outcome.resumed) case(s) resumed from an earlier run)" : "")")
    }
}

/// The case grid's options, shared by `kvkit run` and `kvkit probes export` (their help from `RunPlan`).
struct GridOptions: ParsableArguments {
    @Option(help: ArgumentHelp(RunPlan.help("probe"))) var probe: String?
    @Option(help: ArgumentHelp(RunPlan.help("suite"))) var suite: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("lengths"))) var lengths: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("depths"))) var depths: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("hops"))) var hops: String?
    @Option(help: ArgumentHelp(RunPlan.help("wording"))) var wording: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("samples"))) var samples: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("seed"))) var seed: String?
    @Option(help: ArgumentHelp(RunPlan.help("haystack"))) var haystack: String?
    @Option(help: ArgumentHelp(RunPlan.help("model"))) var model: String?
    @Option(help: ArgumentHelp(RunPlan.help("format"))) var format: String?

    /// The options given, by their plan names.
    var given: [(name: String, value: RunPlan.Value)] {
        let texts: [(String, String?)] = [
            ("probe", probe), ("suite", suite), ("lengths", lengths), ("depths", depths), ("hops", hops), ("wording", wording),
            ("samples", samples), ("seed", seed), ("haystack", haystack), ("model", model), ("format", format),
        ]
        return texts.compactMap { n, v in v.map { (n, .text($0)) } }
    }
}
