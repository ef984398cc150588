import ArgumentParser
import Foundation
import KVCache
import Models
import ModelFile
import Runs
import TensorMath

/// Flags every model-running command takes.
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp(RunPlan.help("model")))
    var model: String?

    @Option(help: ArgumentHelp(RunPlan.help("format")))
    var format: String?

    @Option(parsing: .unconditional, help: ArgumentHelp(RunPlan.help("threads", default: false)))  // the parser shows the default
    var threads: Int = 2

    @Option(name: .customLong("page-size"), parsing: .unconditional, help: ArgumentHelp(RunPlan.help("page-size")))
    var pageSizeOption: Int?

    @Option(
        help:
            "How weight matrices are held: native (the default: their GGUF blocks, memory-mapped, 5.6× less memory than f32; decode with integer dot products on 16-bit activation codes, 8-bit for K-quant layers as llama.cpp), exact (GGUF blocks, Float32 activations) or f32 (dequantized at load: the reference path)."
    )
    var weights: WeightStorage = .native

    var pageSize: Int { pageSizeOption ?? 16 }

    /// The page size for caches that use these codecs: the one given, else the key group a codec asks for
    /// (KIVI quantizes keys per channel over one page), else 16.
    func pageSize(for codecs: [CacheCodec?]) -> Int {
        pageSizeOption ?? codecs.compactMap { $0?.preferredPageSize }.max() ?? 16
    }

    var modelPath: String { ModelLocation.path(model) }

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256 (got \(threads))") }
        if let pageSize = pageSizeOption, !(1...4096).contains(pageSize) {
            throw ValidationError("--page-size must be between 1 and 4096 tokens (got \(pageSize))")
        }
    }

    /// Loads the model, turning file problems into one-line errors with the right exit code.
    func load() throws -> any LanguageModel {
        do { return try ModelLoader.load(path: modelPath, threads: threads, storage: weights, format: format.map(RunPlan.chatFormat)) } catch let e as RunError
        {
            throw fail(e.description, code: e.exitCode)
        }
    }
}

/// Formats a byte count as KiB / MiB.
func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 20 { return String(format: "%.2f MiB", d / 1_048_576) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}

extension WeightStorage: ExpressibleByArgument {}
