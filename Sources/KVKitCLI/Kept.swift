import ArgumentParser
import Foundation
import Runs

/// `kvkit kept`: which positions every (layer, KV head) keeps after each policy × budget compresses each
/// case, as JSON lines: what survived where, and the input of a kept-set comparison with another tool.
struct Kept: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the positions each (layer, KV head) keeps after compression, per case × policy × budget (JSONL).",
        discussion:
            "Cases come from the grid options or --probe-file, as for 'kvkit run'. Each line: id, policy, budget, prompt_tokens, opening_tokens (the chat template's), kept[layer][head] = positions."
    )

    @OptionGroup var grid: GridOptions
    @Option(help: ArgumentHelp(RunPlan.help("policy"))) var policy: String
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("budget"))) var budget: String?
    @Option(help: ArgumentHelp(RunPlan.help("probe-file"))) var probeFile: String?
    @Flag(help: ArgumentHelp(RunPlan.help("query-aware"))) var queryAware = false
    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("threads"))) var threads: String?
    @Option(help: "The JSONL file to write.") var out: String

    func run() throws {
        try runReporting {
            let texts: [(String, String?)] = [("policy", policy), ("budget", budget), ("probe-file", probeFile), ("threads", threads)]
            let plan = try RunPlan(
                options: grid.given + texts.compactMap { n, v in v.map { (n, .text($0)) } }
                    + (queryAware ? [("query-aware", .flag(true))] : []))
            let model = try ModelLoader.load(plan)
            let n = try RunSession(plan: plan, model: model).exportKept(to: out)
            print("wrote \(n) kept sets to \(out)")
        }
    }
}
