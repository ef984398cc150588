import ArgumentParser
import Foundation
import ModelFile
import Runs

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a GGUF file's architecture, hyper-parameters, metadata and tensor table.")

    @Argument(help: "The GGUF file (default: the model `make setup` fetched).")
    var file: String?

    @Flag(help: "Print every metadata key, not only the model's hyper-parameters.")
    var allMetadata = false

    func run() throws {
        let path = ModelLocation.path(file)
        let gguf: GGUFFile
        do {
            try ModelLoader.checkReadable(path)
            gguf = try GGUFFile(path: path)
        } catch let e as RunError {
            throw fail(e.description, code: e.exitCode)
        } catch let e as GGUFError {
            if case .cannotOpen = e { throw fail(e.description, code: ExitCodes.noInput) }
            throw fail(e.description, code: ExitCodes.dataError)
        }
        let arch = gguf.metadata["general.architecture"]?.string ?? "?"
        print("file: \(path)")
        print(
            "GGUF v\(gguf.version), \(gguf.file.size) bytes, alignment \(gguf.alignment), \(gguf.metadataKeys.count) metadata keys, \(gguf.tensors.count) tensors"
        )
        print("architecture: \(arch)")
        if let name = gguf.metadata["general.name"]?.string { print("name: \(name)") }
        print("")
        print("hyper-parameters:")
        for key in gguf.metadataKeys
        where allMetadata || key.hasPrefix("\(arch).")
            || key.hasPrefix("tokenizer.ggml.") && !["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"].contains(key)
        {
            print("  \(GGUFError.escape(key)) = \(gguf.metadata[key]!.summary)")
        }
        if !allMetadata {
            for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
                if let n = gguf.metadata[key]?.array?.count { print("  \(key) = [\(n) entries]") }
            }
        }
        print("")
        let w = max(4, gguf.tensors.map(\.name.count).max() ?? 4)
        print("name".padding(toLength: w, withPad: " ", startingAt: 0) + "  type   shape                 bytes")
        var total = 0
        for t in gguf.tensors {
            let shape = t.shape.map(String.init).joined(separator: " × ")
            print(
                t.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  "
                    + "\(t.type)".padding(toLength: 6, withPad: " ", startingAt: 0) + " "
                    + shape.padding(toLength: 21, withPad: " ", startingAt: 0) + " \(t.byteCount)")
            total += t.byteCount
        }
        print("total tensor bytes: \(total)")
        // Matrices stay in their blocks (memory-mapped pages); vectors are held in Float32 either way.
        let elements = gguf.tensors.reduce(0) { $0 + $1.elementCount }
        let vectors = gguf.tensors.filter { $0.shape.count == 1 }
        let native = total - vectors.reduce(0) { $0 + $1.byteCount } + vectors.reduce(0) { $0 + 4 * $1.elementCount }
        print("expected resident weights: \(formatBytes(native)) with --weights native (the default), \(formatBytes(elements * 4)) with --weights f32")
    }
}
