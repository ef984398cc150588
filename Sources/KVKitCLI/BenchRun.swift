import ArgumentParser
import Foundation
import Models
import Policies
import Probes
import Runs

struct BenchRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-run",
        abstract: "Wall time of a probe sweep with one shared prefill per case (forks) against a prefill per policy × budget.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Policies, comma-separated (default: every registered policy except full).")
    var policy: String?

    @Option(help: "Budgets, comma-separated.")
    var budget: String = "0.1,0.25,0.5"

    @Option(help: "Context lengths, comma-separated.")
    var lengths: String = "512,1024"

    @Option(help: "niah cases per length (depths spread over 0.1–0.9).")
    var cases: Int = 1

    func run() throws {
        let names = policy.map { $0.split(separator: ",").map(String.init) } ?? PolicyRegistry.shared.names.filter { $0 != "full" }
        let variants: [Variant]
        do {
            variants = try Variant.grid(policies: names, budgets: budget.split(separator: ",").map(String.init)).variants
        } catch let e as PolicyError { throw fail(e.description, code: ExitCodes.usage) }
        let lens = lengths.split(separator: ",").compactMap { Int($0) }
        guard !lens.isEmpty, cases >= 1 else { throw fail("--lengths and --cases must be positive", code: ExitCodes.usage) }
        let model = try modelOptions.load()
        let gen = ProbeGenerator(tokenizer: model.tokenizer, chat: model.chatTemplate, haystackSeed: 0)
        let probeCases = lens.flatMap { l in
            (0..<cases).map { i in
                gen.make(NIAHProbe(), length: l, depth: 0.1 + 0.8 * Double(i) / Double(max(cases - 1, 1)), sample: i, seed: 0)
            }
        }
        print(
            "\(probeCases.count) niah cases (lengths \(lens.map(String.init).joined(separator: ", "))), \(names.count) policies × \(variants.count / max(names.count, 1)) budgets = \(variants.count) variants + full cache, threads \(modelOptions.threads)"
        )
        print("length  shared_prefill_s  prefill_per_variant_s  speed-up")
        let clock = ContinuousClock()
        var totals = (0.0, 0.0)
        for c in probeCases {
            var runner = Runner(model: model)
            runner.pageSize = modelOptions.pageSize
            let shared = try clock.measure { _ = try runner.run(c, variants: variants) }.seconds
            runner.sharePrefill = false
            let plain = try clock.measure { _ = try runner.run(c, variants: variants) }.seconds
            totals.0 += shared; totals.1 += plain
            print(String(format: "%6d  %16.1f  %21.1f  %7.2f×", c.length, shared, plain, plain / shared))
        }
        print(String(format: "total   %16.1f  %21.1f  %7.2f×", totals.0, totals.1, totals.1 / totals.0))
        print(
            String(
                format: "per case and variant: %.2f s shared, %.2f s with its own prefill", totals.0 / Double(probeCases.count * (variants.count + 1)),
                totals.1 / Double(probeCases.count * (variants.count + 1))))
    }
}
