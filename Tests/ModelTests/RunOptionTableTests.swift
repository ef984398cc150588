import Testing
@testable import KVKitCLI
@testable import Runs

/// `kvkit run`'s flags and `RunPlan.options` (the table a sweep config's keys, parsing and help come from)
/// are one list: swift-argument-parser needs one property per flag, so this keeps the properties and the
/// table in step — a flag the command declares but never hands to the plan would be silently ignored.
@Suite struct RunOptionTableTests {
    @Test func everyTableOptionIsAFlagOfRunAndReachesThePlan() throws {
        var args: [String] = []
        for o in RunPlan.options { args += o.isFlag ? ["--\(o.name)"] : ["--\(o.name)", "1"] }
        let run = try Run.parse(args)
        let handed = run.given.map(\.name)
        #expect(Set(handed) == Set(RunPlan.options.map(\.name)), "flags not handed to the plan: \(Set(RunPlan.options.map(\.name)).subtracting(handed))")
        #expect(handed.count == Set(handed).count, "a flag handed twice")
        let help = Run.helpMessage(columns: 1000)
        for o in RunPlan.options { #expect(help.contains("--\(o.name)") && help.contains(o.help.prefix(30)), "--\(o.name) help") }
    }
}
