import ArgumentParser
import Foundation
import KVCache
import Models
import Policies
import Runs
import TensorMath

struct BenchPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-policies",
        abstract: "Time each policy's selection and compaction after one prefill, and the cost of a fork, beside the prefill.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length in tokens.")
    var length: Int = 2048

    @Option(help: "Budget per stream.")
    var budget: String = "0.25"

    @Option(help: "Policies, comma-separated (default: every registered policy, and chunkkv with layer-wise index reuse over 2 and 3 layers).")
    var policy: String?

    @Option(help: "Repetitions per policy (the median is printed).")
    var repeats: Int = 5

    @Option(help: "Also decode this many tokens after each policy's compression and print tokens/s (0: skip).")
    var decodeTokens: Int = 16

    @Option(help: "With --decode-tokens: also decode with pages beyond this many per stream in the LZ4 cold tier (0: skip).")
    var hotPages: Int = 0

    func run() throws {
        let b: Budget
        do { b = try Budget(parsing: budget) } catch let e as PolicyError { throw fail(e.description, code: ExitCodes.usage) }
        let model = try modelOptions.load()
        let ids = PolicyBench.prompt(model, tokens: length)
        let names = policy.map { $0.split(separator: ",").map(String.init) } ?? PolicyRegistry.shared.names + ["chunkkv:reuse=2", "chunkkv:reuse=3"]
        let policies: [(String, any EvictionPolicy)]
        do { policies = try names.map { ($0, try PolicyRegistry.shared.make($0)) } } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
        var bench = PolicyBench(model: model)
        bench.pageSize = modelOptions.pageSize
        bench.repeats = repeats; bench.decodeTokens = decodeTokens; bench.hotPages = hotPages
        let r = try bench.measure(prompt: ids, policies: policies, budget: b)
        for (label, seconds) in r.passes {
            switch label {
            case "reconstruction":
                print(
                    String(
                        format: "kvzip's reconstruction pass (the prompt re-read in chunks of %d on a fork): %.3f s, %.2f× the prefill", KVzipPolicy.chunk,
                        seconds, seconds / max(r.prefillSeconds, 1e-9)))
            case "re-read":
                print(
                    String(format: "kvcompose's re-read of the prompt (on a fork): %.3f s, %.2f× the prefill", seconds, seconds / max(r.prefillSeconds, 1e-9)))
            default: print(String(format: "%@ (measured once per model file, then read from $KVKIT_HOME): %.3f s", label, seconds))
            }
        }
        for reason in r.unavailable { print("n/a: \(reason)") }
        print("prompt \(r.promptTokens) tokens, budget \(b), threads \(modelOptions.threads)")
        print(
            String(
                format: "prefill %.3f s without observations, %.3f s with every policy's (H2O's attention totals, %d-query window)",
                r.plainPrefillSeconds, r.prefillSeconds, r.window))
        print(String(format: "fork of the whole cache (%@ in %d pages): %.3f ms", formatBytes(r.cacheBytes), r.cachePages, r.forkSeconds * 1000))
        print("policy           select+compact_ms  of_prefill  kept_slots  live_after  decode_tok/s  pages_read" + (hotPages > 0 ? "  with_lz4_tok/s" : ""))
        for row in r.rows {
            let name = row.name.padding(toLength: 16, withPad: " ", startingAt: 0)
            guard let t = row.compressSeconds, let kept = row.keptSlots, let live = row.liveBytesAfter else {
                print(name + " n/a (its own pass could not run on this prompt)"); continue
            }
            var decode = ""
            if let rate = row.decodeTokensPerSecond { decode = String(format: "  %12.1f  %9.0f%%", rate, (row.readFraction ?? 1) * 100) }
            if let cold = row.coldDecodeTokensPerSecond { decode += String(format: "  %14.1f", cold) }
            print(
                name + String(format: " %17.2f  %9.2f%%  %10d  ", t * 1000, 100 * t / r.plainPrefillSeconds, kept)
                    + formatBytes(live).padding(toLength: 10, withPad: " ", startingAt: 0) + decode)
        }
    }
}
