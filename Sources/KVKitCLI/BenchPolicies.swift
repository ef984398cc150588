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
        let ids = benchPrompt(model, tokens: length)
        let names = policy.map { $0.split(separator: ",").map(String.init) } ?? PolicyRegistry.shared.names + ["chunkkv:reuse=2", "chunkkv:reuse=3"]
        let policies: [(String, any EvictionPolicy)]
        do { policies = try names.map { ($0, try PolicyRegistry.shared.make($0)) } } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
        let clock = ContinuousClock()
        let cache = model.makeCache(pageSize: modelOptions.pageSize)
        let preparation = PolicyPreparation(policies: policies.map(\.1))
        let needs = preparation.needs
        try preparation.begin(cache, model: model, promptEnd: ids.count)
        var promptLogits: [Float] = []
        let prefill = try clock.measure { promptLogits = try model.forward(ids, cache: cache, logitsTap: preparation.logitsTap) }.seconds
        func report(_ pass: String, _ seconds: Double) {
            switch pass {
            case "reconstruction":
                print(
                    String(
                        format: "kvzip's reconstruction pass (the prompt re-read in chunks of %d on a fork): %.3f s, %.2f× the prefill", KVzipPolicy.chunk,
                        seconds, seconds / max(prefill, 1e-9)))
            default: print(String(format: "duo's head calibration (measured once per model file, then read from $KVKIT_HOME): %.3f s", seconds))
            }
        }
        // No room to re-read the prompt: kvzip reports n/a, every other policy still runs.
        let context = try preparation.context(cache, model: model, prompt: ids, timed: report, unavailable: { print("n/a: \($0.description)") })
        let plain = model.makeCache(pageSize: modelOptions.pageSize)
        let prefillPlain = try clock.measure { try model.forward(ids, cache: plain) }.seconds
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        let forkTimes = (0..<repeats).map { _ in clock.measure { _ = cache.fork() }.seconds }
        print("prompt \(ids.count) tokens, budget \(b), threads \(modelOptions.threads)")
        print(
            String(
                format: "prefill %.3f s without observations, %.3f s with every policy's (H2O's accumulated attention, %d-query window)", prefillPlain, prefill,
                needs.window))
        print(String(format: "fork of the whole cache (%@ in %d pages): %.3f ms", formatBytes(cache.pageBytes), cache.uniquePages, median(forkTimes) * 1000))
        print("policy           select+compact_ms  of_prefill  kept_slots  live_after  decode_tok/s  pages_read" + (hotPages > 0 ? "  with_lz4_tok/s" : ""))
        for (name, policy) in policies {
            if policy.passes.contains(where: { context.prepared[$0.key] == nil }) {
                print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + " n/a (its own pass could not run on this prompt)"); continue
            }
            var times: [Double] = []
            var last = CompressionStats.init()
            for _ in 0..<repeats {
                let f = cache.fork()
                last = try Compressor.compress(f, policy: policy, budget: b, context: context).stats
                times.append(last.seconds)
            }
            let t = median(times)
            var decode = ""
            if decodeTokens > 0 {
                let f = cache.fork()
                let reads = try Compressor.compress(f, policy: policy, budget: b, context: context).reads
                f.observations = nil
                decode = String(
                    format: "  %12.1f  %9.0f%%", try greedyDecodeRate(model, cache: f, reads: reads, from: promptLogits, tokens: decodeTokens),
                    (reads?.readFraction ?? 1) * 100)
                if hotPages > 0 {
                    let g = cache.fork()
                    let reads = try Compressor.compress(g, policy: policy, budget: b, context: context).reads
                    g.observations = nil
                    try g.setOffload(OffloadConfig(hotPages: hotPages))
                    decode += String(format: "  %14.1f", try greedyDecodeRate(model, cache: g, reads: reads, from: promptLogits, tokens: decodeTokens))
                }
            }
            print(
                name.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + String(format: " %17.2f  %9.2f%%  %10d  ", t * 1000, 100 * t / prefillPlain, last.slotsAfter)
                    + formatBytes(last.liveBytesAfter).padding(toLength: 10, withPad: " ", startingAt: 0) + decode)
        }
    }
}
