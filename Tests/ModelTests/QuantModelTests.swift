import Foundation
import KVCache
import KVKitTestSupport
import Models
import Policies
import Testing
@testable import Runs

/// Codecs and the cold tier on the real model.
@Suite(.serialized) struct QuantModelTests {
    /// Greedy tokens on a reference prompt with pages stored by `quant` after the prompt ran (KIVI's order).
    static func greedy(_ name: String, quant: String?, offload: OffloadConfig? = nil, pageSize: Int = 16) throws -> [Int32] {
        let ids = try #require(try ReferenceTests.llama[name]?.token_ids)
        let cache = try Real.model.makeCache(pageSize: pageSize)
        let codec = try quant.flatMap { try CodecRegistry.shared.make($0) }
        let hooks = CompressionHooks(
            compress: { _ in nil },
            store: { c in
                try c.quantize(codec)
                if let offload { try c.setOffload(offload) }
            })
        return try Real.model.generate(prompt: ids, cache: cache, maxTokens: 16, stopAtEOS: false, hooks: hooks).tokens
    }

    /// The acceptance check: `fp16` pages give the same greedy answers as fp32 on every reference prompt;
    /// the LZ4 cold tier (lossless) gives exactly the fp32 tokens. Lower precisions are printed.
    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func fp16AndTheColdTierKeepTheGreedyAnswers(prompt: String) throws {
        let fp32 = try Self.greedy(prompt, quant: nil)
        #expect(try Self.greedy(prompt, quant: "fp16") == fp32, "\(prompt): fp16 changed the greedy answer")
        #expect(try Self.greedy(prompt, quant: nil, offload: OffloadConfig(hotPages: 2)) == fp32, "\(prompt): the cold tier changed the answer")
        for q in ["int8", "int4", "kivi4", "kivi2"] {
            let t = try Self.greedy(prompt, quant: q, pageSize: q.hasPrefix("kivi") ? 32 : 16)
            let same = zip(t, fp32).prefix { $0 == $1 }.count
            let text = try Real.model.tokenizer.decode(t)
            print("\(prompt) \(q): first \(same) of 16 greedy tokens as fp32: \(text.debugDescription)")
        }
    }

    /// `kvkit run` sweeps codecs like policies: one row per policy × codec, measured bytes (KIVI's residual
    /// counted), ratios against fp16, and the results line names its codec; mistakes are one-line usage errors.
    @Test func runSweepsCodecsWithMeasuredBytes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-quant-\(UUID().uuidString)").path
        let r = try runKVKit([
            "run", "--policy", "full,snapkv", "--budget", "0.5", "--quant", "fp16,int4,kivi2", "--probe", "niah",
            "--lengths", "512", "--depths", "0.5", "--samples", "1", "--out", dir, "--no-progress", "--offload", "lz4", "--hot-pages", "4",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: dir + "/results.jsonl", encoding: .utf8).split(separator: "\n")
        let results = try lines.map { try JSONDecoder().decode(VariantResult.self, from: Data($0.utf8)) }
        // full (fp32 reference) + full × 3 codecs + snapkv × 3 codecs.
        #expect(results.count == 7)
        #expect(
            Set(results.map { "\($0.policy.prefix(6))+\($0.quant)" }) == [
                "full+fp32", "full+fp16", "full+int4", "full+kivi2", "snapkv+fp16", "snapkv+int4", "snapkv+kivi2",
            ])
        let full = results.first { $0.policy == "full" && $0.quant == "fp32" }!
        #expect(abs(full.ratioVsFP16 - 0.5) < 0.01, "Float32 pages are twice fp16: \(full.ratioVsFP16)")
        #expect(full.coldBytes == 0, "the reference stays hot")
        func row(_ p: String, _ q: String) -> VariantResult { results.first { $0.policy.hasPrefix(p) && $0.quant == q }! }
        // fp16: exactly half of Float32 on packed pages; the partial last page of each stream stays Float32.
        #expect(row("full", "fp16").ratioVsFP16 > 0.95 && row("full", "fp16").ratioVsFP16 < 1.0)
        #expect(row("full", "int4").ratioVsFP16 > 2.5 && row("full", "int4").ratioVsFP16 < 3.2)
        // kivi2 keeps 128–159 tokens per stream in Float32: at 512 tokens far below its nominal 5.33×.
        #expect(row("full", "kivi2").ratioVsFP16 > 1.2 && row("full", "kivi2").ratioVsFP16 < 2)
        #expect(row("snapkv", "kivi2").kvDataBytes < row("full", "kivi2").kvDataBytes)
        for x in results where x.quant != "fp32" {
            #expect(x.coldBytes > 0 && x.hotBytes + x.coldBytes == x.kvDataBytes, "\(x.policy)+\(x.quant)")
            #expect(x.attentionCosineByLayer.allSatisfy { $0 > 0.5 }, "\(x.policy)+\(x.quant)")
        }
        #expect(row("full", "fp16").score == full.score)
        let csv = try String(contentsOfFile: dir + "/summary.csv", encoding: .utf8)
        #expect(csv.contains(",\"kivi2\",") && csv.contains("ratio_vs_fp16") && csv.contains("lz4_ratio"))
        #expect(r.stdout.contains("snapkv") && r.stdout.contains("+kivi2"))

        for (args, needle) in [
            (["--quant", "int3"], "unknown codec 'int3'"), (["--quant", "kivi2:group=0"], "expected an integer"),
            (["--offload", "zip"], "supports: lz4"), (["--offload", "lz4", "--hot-pages", "0"], "--hot-pages"),
            (["--offload-dir", "/tmp/x"], "needs --offload"),
        ] {
            let e = try runKVKit(["run", "--policy", "snapkv", "--out", dir + "-bad"] + args)
            #expect(e.status == 64, "\(args): \(e.status) \(e.stderr)")
            #expect(e.stderr.contains(needle) && e.stderr.split(separator: "\n").count == 1, "\(args): \(e.stderr)")
        }
    }
}
