import ArgumentParser
import Policies
import Probes

/// The Markdown headers of the README's tables, one per registry.
enum RegistryTables {
    static let policies = "| policy | what it keeps | parameters (defaults) | paper |"
    static let codecs = "| codec (`--quant`) | how pages are stored | parameters (defaults) | paper |"
    static let probes = "| probe (`--probe`) | what it asks | parameters (defaults) | after |"
}

struct ListPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policies", abstract: "List every compression policy (eviction, retention: --policy) and page codec (quantization: --quant) with parameters, defaults and paper.")

    @Flag(help: "Print Markdown tables (the README's).")
    var markdown = false

    func run() {
        if markdown {
            print(PolicyRegistry.shared.markdown(header: RegistryTables.policies))
            print(CodecRegistry.shared.markdown(header: RegistryTables.codecs), terminator: "")
        } else {
            print(PolicyRegistry.shared.listing(title: "Policies (--policy NAME[:param=value,...]): eviction and semantic retention"))
            print(CodecRegistry.shared.listing(title: "Quantization (--quant NAME[:param=value,...] or KEYS/VALUES; 'run' sweeps a comma-separated list)"), terminator: "")
        }
    }
}

struct ListProbes: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probes", abstract: "List every probe (--probe) with what it asks and where it comes from.")

    @Flag(help: "Print a Markdown table (the README's).")
    var markdown = false

    func run() {
        if markdown {
            print(ProbeRegistry.shared.markdown(header: RegistryTables.probes), terminator: "")
        } else {
            print(ProbeRegistry.shared.listing(title: "Probes (--probe NAME; chains take --hops and --wording; --probe-file runs your own cases)"), terminator: "")
        }
    }
}
