import Foundation
import KVKitTestSupport
import Testing

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
        let sentences = ["The harbour master counted the boats at dawn.", "Rain fell on the old stone bridge all week.",
                         "A clerk copied the ledger into a new book.", "Children ran along the river path after school.",
                         "The baker opened early because of the market."]
        var text = "", i = 0
        while text.utf8.count < 60_000 { text += sentences[i % sentences.count] + " \(i) "; i += 1 }
        let promptPath = dir.appendingPathComponent("prompt.txt").path
        let reportPath = dir.appendingPathComponent("report.json").path
        try text.write(toFile: promptPath, atomically: true, encoding: .utf8)
        let r = try runKVKit(["generate", "--raw", "--prompt-file", promptPath, "--max-tokens", "1", "--report", reportPath,
                              "--truncate-prompt", "8191"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let rep = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: reportPath)))
        #expect(rep.promptTokens == 8191)
        let dim = 576, kvDim = 192, ffn = 1536, vocab = 49152
        let activations = 4 * (rep.prefillChunk * (4 * dim + 2 * kvDim + 2 * ffn) + vocab)
        let slack = 96 << 20
        let bound = rep.modelFileBytes + rep.weightBytes + rep.kvPoolAllocatedBytes + activations + slack
        let peak = try #require(rep.peakResidentBytes)
        print("8,192-token prefill: peak RSS \(peak >> 20) MiB, bound \(bound >> 20) MiB (file \(rep.modelFileBytes >> 20), weights \(rep.weightBytes >> 20), KV pool \(rep.kvPoolAllocatedBytes >> 20), activations \(activations >> 20), runtime \(slack >> 20))")
        #expect(peak <= bound)
        #expect(bound - rep.modelFileBytes - rep.weightBytes - rep.kvPoolAllocatedBytes < 8192 * 8192 * 4,
                "the bound leaves no room for an n×n score matrix")
        #expect(rep.kvLiveTokenBytes == 8191 * 30 * 3 * (2 * 64 * 4 + 8), "the prompt's K/V, every layer and KV head")
    }
}
