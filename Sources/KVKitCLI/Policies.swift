import ArgumentParser
import Policies

struct ListPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policies", abstract: "List every compression policy with its parameters, defaults and paper.")

    func run() {
        for p in PolicyRegistry.shared.all {
            print("\(p.name) — \(p.summary)")
            print("    paper: \(p.paper)")
            for s in p.parameters {
                print("    \(s.name)=\(s.defaultValue)  (\(s.expected)) \(s.help)")
            }
        }
    }
}
