import Foundation
import KVKitTestSupport
import ModelFile
import Testing
@testable import Runs

/// Model files that are well-formed GGUF but wrong, each refused at load with one line and exit 65
/// (found by trying bad input: they used to run with garbage, a silent default, or a trap).
@Suite struct BadModelFileTests {
    static func load(_ edit: (inout GGUFWriter) -> Void) throws -> RunError? {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-bad-\(UUID().uuidString).gguf").path
        try TinyLlama(seed: 3).write(to: path, edit: edit)
        defer { try? FileManager.default.removeItem(atPath: path) }
        // 2 threads: the thread count is global, and the suites running beside this one use 2.
        do { _ = try ModelLoader.load(path: path, threads: 2); return nil } catch let e as RunError { return e }
    }

    @Test func theUneditedFileLoads() throws {
        #expect(try Self.load { _ in } == nil)
    }

    @Test(arguments: [
        ("a duplicate metadata key", "appears twice"),
        ("a duplicate tensor name", "appears twice"),
        ("an empty token list", "vocab_size' is invalid: 0 is outside"),
        ("empty merges", "tokenizer.ggml.merges' is invalid: is empty"),
        ("a NaN RMS epsilon", "layer_norm_rms_epsilon' is invalid"),
        ("a RoPE base given as a string", "rope.freq_base' is invalid: expected a finite number"),
        ("a context length of 2^62", "context_length' is invalid"),
        ("an EOS id of 0xFFFFFFFF", "eos_token_id' is invalid"),
        ("a BOS id of 2^40", "bos_token_id' is invalid"),
        ("a huge token type", "token_type' is invalid"),
        ("an unknown architecture", "'mamba' is not a supported model family (supported: gemma3, llama, mistral, phi3, qwen2, qwen3)"),
        ("a missing block count", "llama.block_count"),
        ("LongRoPE factor tensors", "LongRoPE factors (Phi-3 128k variants) are not supported; use a 4k-context file"),
    ])
    func isRefused(fault: String, needle: String) throws {
        let e = try Self.load { w in
            switch fault {
            case "a duplicate metadata key": w.set("llama.block_count", .uint32(2))
            case "a duplicate tensor name": w.addTensor("output_norm.weight", shape: [48], floats: [Float](repeating: 1, count: 48))
            case "an empty token list": w.update("tokenizer.ggml.tokens", .array(elementType: 8, []))
            case "empty merges": w.update("tokenizer.ggml.merges", .array(elementType: 8, []))
            case "a NaN RMS epsilon": w.update("llama.attention.layer_norm_rms_epsilon", .float32(.nan))
            case "a RoPE base given as a string": w.update("llama.rope.freq_base", .string("10000"))
            case "a context length of 2^62": w.update("llama.context_length", .uint64(1 << 62))
            case "an EOS id of 0xFFFFFFFF": w.update("tokenizer.ggml.eos_token_id", .uint32(0xFFFF_FFFF))
            case "a BOS id of 2^40": w.update("tokenizer.ggml.bos_token_id", .uint64(1 << 40))
            case "a huge token type":
                w.update("tokenizer.ggml.token_type", .array(elementType: 11, TinyLlama(seed: 3).vocab.indices.map { .int64($0 == 5 ? 1 << 40 : 1) }))
            case "an unknown architecture": w.update("general.architecture", .string("mamba"))
            case "a missing block count": w.update("llama.block_count", nil)
            case "LongRoPE factor tensors": w.addTensor("rope_factors_long.weight", shape: [4], floats: [1, 1, 1, 1])
            default: Issue.record("no edit for \(fault)")
            }
        }
        let err = try #require(e, "\(fault) was accepted")
        #expect(err.exitCode == 65, "\(fault): \(err)")
        #expect(err.description.contains(needle) && !err.description.contains("\n"), "\(fault): \(err)")
    }

    /// A corrupt 100,000-character key full of control bytes is quoted escaped and capped, not dumped.
    @Test func aCorruptKeyIsQuotedShort() throws {
        let key = String(repeating: "\u{1}\u{7}x", count: 33_334)
        let e = try #require(
            try Self.load { w in
                w.update("llama.rope.freq_base", nil); w.set(key, .string("oops")); w.set(key, .string("twice"))
            })
        #expect(e.description.count < 400 && e.description.contains("\\u{01}") && e.description.contains("100002 characters"), "\(e.description.prefix(500))")
    }
}
