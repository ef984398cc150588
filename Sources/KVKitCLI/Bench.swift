import ArgumentParser
import Foundation
import KVCache
import LlamaModel
import TensorMath

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode tokens/s at several lengths and thread counts.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Prompt lengths in tokens (decode is timed right after each prefill).")
    var lengths: [Int] = [16, 512, 2048]

    @Option(parsing: .upToNextOption, help: "Thread counts to compare.")
    var threadCounts: [Int] = [1, 2]

    @Option(help: "Decode steps timed after each prefill.")
    var decodeSteps: Int = 32

    func run() throws {
        let model = try modelOptions.load()
        // Natural-ish text of the right length: repeat a paragraph and cut at the token count.
        let para = "The committee met on a grey morning to review the harbour accounts, and the clerk read each entry aloud while the fishermen listened. "
        var ids: [Int32] = []
        while ids.count < (lengths.max() ?? 512) { ids += model.tokenizer.encode(para) }
        print("model: \(modelOptions.modelPath)")
        print("threads  prefill_len  prefill_tok_s  decode_tok_s(at len)")
        for th in threadCounts {
            Threads.set(th)
            for n in lengths {
                guard n + decodeSteps <= model.config.contextLength else { continue }
                let cache = model.makeCache(pageSize: modelOptions.pageSize)
                let g = try model.generate(prompt: Array(ids.prefix(n)), cache: cache, maxTokens: decodeSteps + 1, stopAtEOS: false)
                print(String(format: "%7d  %11d  %13.1f  %12.1f", th, n, g.prefillTokensPerSecond, g.decodeTokensPerSecond))
            }
        }
    }
}
