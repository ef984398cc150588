import ArgumentParser
import Foundation
import Runs

/// `kvkit compare RUN_DIR A B`: the paired outcome table of two variants on the cases both ran, and an
/// exact McNemar p-value, so "A beats B" is a tested claim.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two variants of a run on the same cases: paired outcomes, accuracies with 95% intervals, exact McNemar p-value.",
        discussion:
            "A and B are POLICY[:param=value,...][@BUDGET], e.g. 'kvkit compare runs/x snapkv@0.25 h2o@0.25' or 'full' for the baseline; --b-run DIR reads B from another run of the same cases ('kvkit compare results/agnostic sentencekv@0.25 sentencekv@0.25 --b-run results/aware')."
    )

    @Argument(help: "The run folder (holding results.jsonl).") var runDir: String
    @Argument(help: "Variant A: POLICY[@BUDGET].") var a: String
    @Argument(help: "Variant B: POLICY[@BUDGET].") var b: String
    @Option(help: "Only cases of this probe (default: every probe).") var probe: String?
    @Option(help: "The codec both variants ran with.") var quant = "fp32"
    @Option(help: "Read B from this run folder instead (another run of the same cases, e.g. a study's query-aware job); cases pair by id.") var bRun: String?
    @Flag(help: ArgumentHelp(RunDirectory.dropBadRowsHelp)) var dropBadRows = false

    func run() throws {
        try runReporting {
            let c = try PairedComparison.load(dir: runDir, a: a, b: b, bDir: bRun, quant: quant, probe: probe, badRows: dropBadRows ? .drop : .refuse)
            for n in c.notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
            print(c.text, terminator: "")
        }
    }
}
