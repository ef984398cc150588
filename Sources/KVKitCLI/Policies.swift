import ArgumentParser
import Runs
import Policies
import Probes

/// The Markdown headers of the documentation's tables (docs/policies.md, docs/probes-and-runs.md), one per registry.
enum RegistryTables {
    static let policies = "| policy | what it keeps | parameters (defaults) | paper |"
    static let codecs = "| codec (`--quant`) | how pages are stored | parameters (defaults) | paper |"
    static let probes = "| probe (`--probe`) | what it asks | parameters (defaults) | after |"
}

struct ListPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policies",
        abstract: "List every compression policy (eviction, retention: --policy) and page codec (quantization: --quant) with parameters, defaults and paper.")

    @Flag(help: "Print Markdown tables (docs/policies.md's).")
    var markdown = false

    func run() {
        if markdown {
            print(PolicyRegistry.shared.markdown(header: RegistryTables.policies))
            print(CodecRegistry.shared.markdown(header: RegistryTables.codecs), terminator: "")
        } else {
            print(PolicyRegistry.shared.listing(title: "Policies (--policy NAME[:param=value,...]): eviction and semantic retention"))
            print(
                CodecRegistry.shared.listing(title: "Quantization (--quant NAME[:param=value,...] or KEYS/VALUES; 'run' sweeps a comma-separated list)"),
                terminator: "")
        }
    }
}

/// `kvkit probes`: the probe registry (the default: `list`) and `export`, which writes a case grid as a probe file.
struct Probes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probes", abstract: "List the probes (default), or export a case grid as a probe file.",
        subcommands: [ListProbes.self, ExportProbes.self], defaultSubcommand: ListProbes.self)
}

struct ListProbes: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List every probe (--probe) with what it asks and where it comes from.")

    @Flag(help: "Print a Markdown table (docs/probes-and-runs.md's).")
    var markdown = false

    func run() {
        if markdown {
            print(ProbeRegistry.shared.markdown(header: RegistryTables.probes), terminator: "")
        } else {
            print(
                ProbeRegistry.shared.listing(title: "Probes (--probe NAME; chains take --hops and --wording; --probe-file runs your own cases)"), terminator: ""
            )
        }
    }
}

/// `kvkit probes export`: any generated grid as a probe file (JSONL with needle spans and answer
/// prefixes), so the very same cases can be run by another tool or read back with `--probe-file`.
struct ExportProbes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a generated case grid as a probe file (JSONL): the same cases for another tool.")

    @OptionGroup var grid: GridOptions
    @Option(help: "The probe file to write (JSONL, one case per line).") var out: String

    func run() throws {
        try runReporting {
            let plan = try RunPlan(options: [("policy", .text("full"))] + grid.given)
            let model = try ModelLoader.load(plan)
            let n = try RunSession(plan: plan, model: model).export(to: out)
            print("wrote \(n) cases to \(out)")
        }
    }
}
