import Foundation
import KVKitTestSupport
import Policies
import PolicyConformance
import Probes
import Testing

/// Every registered probe passes the probe conformance kit on the real model's tokenizer, and the README's
/// tables are exactly what the registries print.
@Suite struct ProbeRegistryTests {
    @Test(arguments: ProbeRegistry.shared.names)
    func everyProbeConforms(name: String) throws {
        let m = try Real.model, probe = try #require(ProbeRegistry.shared.probe(name))
        let failures = ProbeConformance.check(probe, tokenizer: m.tokenizer, chat: m.chatTemplate)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// The kit catches a broken probe: one whose answer is not in the context.
    @Test func theKitCatchesAnAnswerThatIsNotInTheContext() throws {
        struct Broken: Probe {
            let name = "broken"
            func draw(_ d: inout ProbeDraw) -> (needles: [(text: String, label: String)], turns: [Turn]) {
                let v = d.number()
                return ([(d.fact(d.keys[0], v), d.keys[0])], [d.ask(d.keys[0], [v + "9"], needles: [d.keys[0]])])
            }
        }
        let m = try Real.model
        let failures = ProbeConformance.check(Broken(), tokenizer: m.tokenizer, chat: m.chatTemplate, lengths: [256], seeds: [1])
        #expect(failures.contains { $0.contains("is not in the context") }, "\(failures)")
    }

    @Test func readmeTablesMatchTheRegistries() throws {
        // The tables live in docs/ (policies.md, probes-and-runs.md, storage.md); the README links them.
        let root = TestSupport.repositoryRoot()
        let pages =
            ["README.md"]
            + ((try? FileManager.default.contentsOfDirectory(atPath: root + "/docs")) ?? []).filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        let readme = try pages.map { try String(contentsOfFile: root + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
        for (what, table) in [
            ("policies", PolicyRegistry.shared.markdown(header: "| policy | what it keeps | parameters (defaults) | paper |")),
            ("codecs", CodecRegistry.shared.markdown(header: "| codec (`--quant`) | how pages are stored | parameters (defaults) | paper |")),
            ("probes", ProbeRegistry.shared.markdown(header: "| probe (`--probe`) | what it asks | parameters (defaults) | after |")),
        ] {
            #expect(
                readme.contains(table),
                "the docs' \(what) table differs from the registry; paste `kvkit \(what == "probes" ? "probes" : "policies") --markdown`")
        }
    }
}
