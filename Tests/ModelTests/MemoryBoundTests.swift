import Foundation
import KVKitTestSupport
import Testing
import ModelFile

/// An 8,192-token prefill (the model's whole context) on the real model, in a separate `kvkit` process
/// so its peak RSS is its own. The stated bound:
///   peak RSS ≤ model file (mapped) + Float32 weights + K/V pool + activations of one prefill chunk
///              + scratch + 96 MiB for the runtime,
/// where activations = chunk × (4·dim + 2·kvDim + 2·ffn) floats + vocab logits. One 8,192 × 8,192 Float32
/// score matrix alone would be 256 MiB, so a kernel that built one for even a single head fails this test.
@Suite(.serialized) struct MemoryBoundTests {
    struct Report: Decodable {
        let promptTokens: Int, kvPoolAllocatedBytes: Int, weightBytes: Int, modelFileBytes: Int
        let prefillChunk: Int, peakResidentBytes: Int?, kvLiveTokenBytes: Int
    }

    @Test func prefillOf8192TokensStaysWithinTheStatedBound() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-mem-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Varied text, cut to 8,191 tokens with --raw so that prompt + 1 generated token = 8,192.
        let sentences = [
            "The harbour master counted the boats at dawn.", "Rain fell on the old stone bridge all week.",
            "A clerk copied the ledger into a new book.", "Children ran along the river path after school.",
            "The baker opened early because of the market.",
        ]
        var text = "", i = 0
        while text.utf8.count < 60_000 { text += sentences[i % sentences.count] + " \(i) "; i += 1 }
        let promptPath = dir.appendingPathComponent("prompt.txt").path
        let reportPath = dir.appendingPathComponent("report.json").path
        try text.write(toFile: promptPath, atomically: true, encoding: .utf8)
        let r = try runKVKit([
            "generate", "--raw", "--prompt-file", promptPath, "--max-tokens", "1", "--report", reportPath,
            "--truncate-prompt", "8191",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let rep = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        #expect(rep.promptTokens == 8191)
        let dim = 576, kvDim = 192, ffn = 1536, vocab = 49152
        let activations = 4 * (rep.prefillChunk * (4 * dim + 2 * kvDim + 2 * ffn) + vocab)
        let slack = 96 << 20
        let bound = rep.modelFileBytes + rep.weightBytes + rep.kvPoolAllocatedBytes + activations + slack
        let peak = try #require(rep.peakResidentBytes)
        print(
            "8,192-token prefill: peak RSS \(peak >> 20) MiB, bound \(bound >> 20) MiB (file \(rep.modelFileBytes >> 20), weights \(rep.weightBytes >> 20), KV pool \(rep.kvPoolAllocatedBytes >> 20), activations \(activations >> 20), runtime \(slack >> 20))"
        )
        #expect(peak <= bound)
        #expect(
            bound - rep.modelFileBytes - rep.weightBytes - rep.kvPoolAllocatedBytes < 8192 * 8192 * 4,
            "the bound leaves no room for an n×n score matrix")
        #expect(rep.kvLiveTokenBytes == 8191 * 30 * 3 * (2 * 64 * 4 + 8), "the prompt's K/V, every layer and KV head")
    }

    /// The bound for the default (native) weights: generating on a 2,048-token prompt peaks at no
    /// more than the model file + the KV cache + 150 MiB.
    @Test func generateOn2048TokensStaysWithinFilePlusCachePlus150MiB() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-mem2k-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var text = "", i = 0
        while text.utf8.count < 16_000 { text += "The clerk copied line \(i) of the harbour ledger into a new book. "; i += 1 }
        let promptPath = dir.appendingPathComponent("prompt.txt").path, reportPath = dir.appendingPathComponent("report.json").path
        try text.write(toFile: promptPath, atomically: true, encoding: .utf8)
        let r = try runKVKit(["generate", "--raw", "--prompt-file", promptPath, "--max-tokens", "16", "--report", reportPath, "--truncate-prompt", "2048"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let rep = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        let peak = try #require(rep.peakResidentBytes), bound = rep.modelFileBytes + rep.kvPoolAllocatedBytes + (150 << 20)
        print(
            "2,048-token generate (native weights): peak RSS \(peak >> 20) MiB, bound \(bound >> 20) MiB (file \(rep.modelFileBytes >> 20), KV pool \(rep.kvPoolAllocatedBytes >> 20), 150)"
        )
        #expect(rep.promptTokens == 2048 && peak <= bound)
    }
}

/// A 1B-class Llama (TinyLlama 1.1B's shapes: width 2,048, FFN 5,632, 32 query / 4 KV heads, 32,000
/// tokens; 2 of its 22 layers) written with random Q4_K weights: the weights stay in their blocks, so what
/// is resident is the file's tensor bytes (within 5 %), not the 4 bytes per weight of Float32.
@Suite(.serialized) struct QuantizedResidencyTests {
    static func writeQ4KModel(to path: String) throws -> (tensorBytes: Int, elements: Int) {
        let dim = 2048, ffn = 5632, heads = 32, kvHeads = 4, hd = 64, vocab = 32000, layers = 2
        var rng = SplitMix64(seed: 11)
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        for (k, v) in [
            ("embedding_length", dim), ("block_count", layers), ("attention.head_count", heads),
            ("attention.head_count_kv", kvHeads), ("feed_forward_length", ffn), ("context_length", 2048),
        ] {
            w.set("llama.\(k)", .uint32(UInt32(v)))
        }
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        let tokens = ["<s>", "</s>"] + (0..<256).map { String(format: "<0x%02X>", $0) } + (258..<vocab).map { "▁t\($0)" }
        w.set("tokenizer.ggml.model", .string("llama"))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, tokens.map { .string($0) }))
        w.set("tokenizer.ggml.scores", .array(elementType: 6, tokens.indices.map { .float32(-Float($0)) }))
        w.set("tokenizer.ggml.token_type", .array(elementType: 5, tokens.indices.map { .int32($0 < 2 ? 3 : $0 < 258 ? 6 : 1) }))
        w.set("tokenizer.ggml.eos_token_id", .uint32(1))
        var tensorBytes = 0, elements = 0
        func q4k(_ name: String, _ shape: [Int]) {
            let n = shape.reduce(1, *), blocks = n / 256
            var data = [UInt8](repeating: 0, count: blocks * 144)
            for b in 0..<blocks {
                let o = b * 144
                for k in stride(from: 4, to: 144, by: 8) { withUnsafeBytes(of: rng.next()) { for j in 0..<8 where k + j < 144 { data[o + k + j] = $0[j] } } }
                for (off, v) in [(0, Float16(0.002)), (2, Float16(0.001))] {
                    data[o + off] = UInt8(v.bitPattern & 0xFF); data[o + off + 1] = UInt8(v.bitPattern >> 8)
                }
            }
            w.addTensor(name, shape: shape, type: .q4_K, data: data)
            tensorBytes += data.count; elements += n
        }
        func norm(_ name: String) { w.addTensor(name, shape: [dim], floats: [Float](repeating: 1, count: dim)); tensorBytes += 4 * dim; elements += dim }
        q4k("token_embd.weight", [dim, vocab]); norm("output_norm.weight")
        for l in 0..<layers {
            let p = "blk.\(l)."
            norm(p + "attn_norm.weight"); norm(p + "ffn_norm.weight")
            q4k(p + "attn_q.weight", [dim, heads * hd]); q4k(p + "attn_k.weight", [dim, kvHeads * hd]); q4k(p + "attn_v.weight", [dim, kvHeads * hd])
            q4k(p + "attn_output.weight", [heads * hd, dim])
            q4k(p + "ffn_gate.weight", [dim, ffn]); q4k(p + "ffn_up.weight", [dim, ffn]); q4k(p + "ffn_down.weight", [ffn, dim])
        }
        try w.write(to: path)
        return (tensorBytes, elements)
    }

    struct Report: Decodable { let weightBytes: Int, modelFileBytes: Int, peakResidentBytes: Int?, kvPoolAllocatedBytes: Int }

    @Test func oneBillionShapeQ4KWeightsStayInTheirBlocks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-1b-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("llama-1b-shape-q4k.gguf").path, reportPath = dir.appendingPathComponent("r.json").path
        let (tensorBytes, elements) = try Self.writeQ4KModel(to: path)
        let r = try runKVKit(["generate", "--model", path, "--raw", "--prompt", "t300 t301 t302", "--max-tokens", "4", "--report", reportPath])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let rep = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        let peak = try #require(rep.peakResidentBytes)
        print(
            "1B-shape Q4_K (2 layers): tensor bytes \(tensorBytes >> 20) MiB, resident weights \(rep.weightBytes >> 20) MiB, peak RSS \(peak >> 20) MiB; Float32 would hold \((elements * 4) >> 20) MiB"
        )
        #expect(rep.weightBytes >= tensorBytes && Double(rep.weightBytes) <= 1.05 * Double(tensorBytes))
        // The process: the mapped weights (at most the file), the KV pool, a decode step's activations
        // (the 32,000-row head's logits and one dequantized panel per thread), and 96 MiB of runtime.
        #expect(peak <= rep.modelFileBytes + rep.kvPoolAllocatedBytes + (96 << 20), "peak \(peak >> 20) MiB")
        #expect(peak < elements * 4 / 2, "peak RSS must be far below the Float32 weights")
    }
}
