import ArgumentParser
import Policies

struct ListPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policies", abstract: "List every compression policy with its parameters, defaults and paper.")

    @Flag(help: "Print a Markdown table (the README's).")
    var markdown = false

    func run() {
        if markdown {
            print("| policy | what it keeps | parameters (defaults) | paper |")
            print("|---|---|---|---|")
            for p in PolicyRegistry.shared.all {
                let params = p.parameters.map { "`\($0.name)=\($0.defaultValue)`" }.joined(separator: ", ")
                print("| `\(p.name)` | \(p.summary) | \(params.isEmpty ? "-" : params) | \(p.paper) |")
            }
            return
        }
        for p in PolicyRegistry.shared.all {
            print("\(p.name) — \(p.summary)")
            print("    paper: \(p.paper)")
            for s in p.parameters {
                print("    \(s.name)=\(s.defaultValue)  (\(s.expected)) \(s.help)")
            }
        }
    }
}
