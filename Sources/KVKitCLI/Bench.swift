import ArgumentParser
import Foundation
import KVCache
import Models
import Probes
import Runs
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

    @Option(
        help:
            "Page codec of the cache: fp32 (the default) or any codec 'kvkit policies' lists; fp16 stores K/V as llama.cpp's default cache does (half the bytes attention reads)."
    )
    var quant: String = "fp32"

    @Flag(
        help:
            "Instead: time the many-row (prefill) product on each distinct matrix type and shape of the model, panels + sgemm against the integer kernel, alternating calls."
    )
    var kernels = false

    @Option(help: "Input rows per call with --kernels (a prefill chunk).")
    var kernelRows = 512

    @Option(help: "Alternating rounds with --kernels (medians are printed).")
    var kernelRounds = 5

    @Option(help: "Also write the prompt's token ids (JSON array, the longest length) to this file, so other engines run the same tokens.")
    var savePrompt: String?

    func run() throws {
        guard (9...65_536).contains(kernelRows), (1...1_000).contains(kernelRounds) else {
            throw fail("--kernel-rows must be 9–65536 and --kernel-rounds 1–1000 (got \(kernelRows), \(kernelRounds))", code: ExitCodes.usage)
        }
        let codecs = try StorageOptions.parse(["--quant", quant]).codecs()
        guard codecs.count == 1 else { throw fail("bench takes one --quant codec (got \(codecs.count))", code: ExitCodes.usage) }
        let model = try modelOptions.load()
        let ids = PolicyBench.prompt(model, tokens: lengths.max() ?? 512)
        if let path = savePrompt {
            do { try JSONEncoder().encode(ids).write(to: URL(fileURLWithPath: path)) } catch {
                throw fail("cannot write --save-prompt \(path): \(error.localizedDescription); choose a writable path", code: ExitCodes.cantCreate)
            }
        }
        print("model: \(modelOptions.modelPath) (weights \(model.storage.rawValue), \(formatBytes(model.weightBytes)) resident)")
        print("cpu: \(KernelBuild.cpu); kernels: \(KernelBuild.description); OpenBLAS: \(BLAS.coreName)")
        if let note = BLAS.coreNote() { print(note) }
        if kernels {
            try benchKernels(model)
            return
        }
        let perToken = model.decodeWeightBytes
        print("weight bytes read per decode token: \(formatBytes(perToken)) (every layer matrix and the output head); K/V pages: \(codecs[0]?.name ?? "fp32")")
        // Untimed warm-up, as bench-engines gives llama.cpp and OpenVINO: the first pass faults the mapped
        // weight pages in (otherwise charged to the first prefill timed).
        let pageSize = modelOptions.pageSize(for: codecs)
        _ = try model.generate(prompt: Array(ids.prefix(8)), cache: model.makeCache(pageSize: pageSize), maxTokens: 2, stopAtEOS: false)
        print("threads  prefill_len  prefill_tok_s  decode_tok_s(at len)  weights_GB_s")
        for th in threadCounts {
            Threads.set(th)
            for n in lengths {
                guard n + decodeSteps <= model.config.contextLength else { continue }
                let cache = model.makeCache(pageSize: pageSize)
                try cache.quantize(codecs[0])
                let g = try model.generate(prompt: Array(ids.prefix(n)), cache: cache, maxTokens: decodeSteps + 1, stopAtEOS: false)
                print(
                    String(
                        format: "%7d  %11d  %13.1f  %20.1f  %12.2f", th, n, g.prefillTokensPerSecond, g.decodeTokensPerSecond,
                        g.decodeTokensPerSecond * Double(perToken) / 1e9))
            }
        }
    }
}

extension Bench {
    func benchKernels(_ model: any LanguageModel) throws {
        guard let decoder = model as? DecoderModel else { throw fail("--kernels needs a GGUF model", code: ExitCodes.usage) }
        Threads.set(threadCounts.max() ?? 2)
        print("many-row product, \(kernelRows) rows, \(Threads.count) threads, \(kernelRounds) alternating rounds (medians; GMAC/s)")
        print("matrix                type        out × in    sgemm   integer   int/sgemm   max rel. diff")
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        for t in decoder.benchManyRows(rows: kernelRows, rounds: kernelRounds) {
            let s = t.macsPerSecond(t.sgemmSeconds) / 1e9
            let i = t.integerSeconds.map { t.macsPerSecond($0) / 1e9 }
            print(
                pad(t.matrix, 20) + "  " + pad(t.type, 6) + "  " + left("\(t.out) × \(t.inDim)", 13) + "  " + left(String(format: "%.1f", s), 7) + "  "
                    + left(i.map { String(format: "%.1f", $0) } ?? "n/a", 8) + "  " + left(i.map { String(format: "%.2fx", $0 / s) } ?? "n/a", 10) + "  "
                    + left(t.maxRelativeDifference.map { String(format: "%.1e", $0) } ?? "n/a", 14))
        }
        // The whole prefill both ways, alternating.
        let ids = PolicyBench.prompt(model, tokens: kernelRows)
        var rates: [Bool: [Double]] = [true: [], false: []]
        for r in 0...kernelRounds {
            for integer in r % 2 == 0 ? [false, true] : [true, false] {
                decoder.useIntegerManyRows(integer)
                let g = try model.generate(prompt: ids, cache: model.makeCache(pageSize: 16), maxTokens: 1, stopAtEOS: false)
                if r > 0 { rates[integer]!.append(g.prefillTokensPerSecond) }
            }
        }
        decoder.useIntegerManyRows(true)
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let (s, i) = (median(rates[false]!), median(rates[true]!))
        print(String(format: "prefill of %d tokens, tok/s (medians): sgemm %.1f, integer %.1f (%.2fx)", kernelRows, s, i, i / s))
    }
}
