import Foundation
import KVCache
import KVKitTestSupport
import ModelFile
import TensorMath
import Testing
@testable import Models

/// The real model, loaded once for the whole suite.
enum Real {
    /// The weights stay in their GGUF blocks (the quantized path); `float32StorageAgreesWithNativeBlocks`
    /// checks the Float32 reference path against it.
    private static let loaded = TestSupport.loadOnce {
        Threads.set(2); return try DecoderModel(path: TestSupport.modelPath, storage: .native)
    }
    /// Throws (failing the test that asks, with the fix) when the model file is missing or broken.
    static var model: DecoderModel { get throws { try loaded.get() } }
}

/// Agreement with llama.cpp and with a plain float32 forward pass, on the reference prompts
/// (tolerances from shared/reference/README.md).
@Suite(.serialized) struct ReferenceTests {
    private static let llamaAnchors = Result { try TestSupport.anchors("llamacpp_anchors.json") }
    private static let numpyAnchors = Result { try TestSupport.anchors("numpy_anchors.json") }
    static var llama: [String: TestSupport.Anchor] { get throws { try llamaAnchors.get() } }
    static var numpy: [String: TestSupport.Anchor] { get throws { try numpyAnchors.get() } }
    static let dir = TestSupport.referenceDirectory()

    /// Last-position logits, and the "step 16" logits: those after the 16 greedy tokens have been fed
    /// back (the reference files' argmax there is the 17th greedy token).
    static func ourLogits(_ name: String) throws -> (last: [Float], step16: [Float], greedy: [Int32]) {
        let a = try #require(try llama[name], "no prompt \(name) in llamacpp_anchors.json")
        let cache = try Real.model.makeCache()
        let g = try Real.model.generate(prompt: a.token_ids!, cache: cache, maxTokens: 17, stopAtEOS: false, keepLogits: true)
        return (g.stepLogits[0], g.stepLogits[16], Array(g.tokens.prefix(16)))
    }

    private static let computed = Result { () throws -> [String: (last: [Float], step16: [Float], greedy: [Int32])] in
        var r: [String: (last: [Float], step16: [Float], greedy: [Int32])] = [:]
        for name in ["short", "passkey300", "passkey1000"] { r[name] = try ourLogits(name) }
        return r
    }
    static var results: [String: (last: [Float], step16: [Float], greedy: [Int32])] { get throws { try computed.get() } }

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func logitsAgreeWithLlamaCpp(prompt: String) throws {
        let ours = try #require(try Self.results[prompt])
        for (which, mine, file) in [
            ("last", ours.last, try #require(try Self.llama[prompt]).last_logits_file!),
            ("step16", ours.step16, try #require(try Self.llama[prompt]).step16_logits_file!),
        ] {
            let ref = try TestSupport.readNpyFloat32(Self.dir + "/" + file)
            let vocab = try Real.model.config.vocabSize
            #expect(ref.count == vocab)
            let (cos, maxAbs) = TestSupport.compare(mine, ref)
            let top10 = Set(TestSupport.topK(mine, 10)).intersection(TestSupport.topK(ref, 10)).count
            print(
                "llama.cpp \(prompt) \(which): cosine \(String(format: "%.6f", cos)), max abs diff \(String(format: "%.4f", maxAbs)), top-10 overlap \(top10)")
            #expect(TestSupport.topK(mine, 1) == TestSupport.topK(ref, 1), "\(prompt) \(which) top-1")
            #expect(top10 >= 8, "\(prompt) \(which) top-10 overlap \(top10)")
            #expect(cos >= 0.995, "\(prompt) \(which) cosine \(cos)")
        }
    }

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func logitsAgreeWithFloat32Reference(prompt: String) throws {
        let ours = try #require(try Self.results[prompt])
        let np = try #require(try Self.numpy[prompt])
        for (which, mine, file) in [
            ("last", ours.last, np.last_logits_file ?? "numpy_\(prompt)_last_logits.f32.npy"),
            ("step16", ours.step16, np.step16_logits_file ?? "numpy_\(prompt)_step16_logits.f32.npy"),
        ] {
            let ref = try TestSupport.readNpyFloat32(Self.dir + "/" + file)
            let (cos, maxAbs) = TestSupport.compare(mine, ref)
            print("float32 ref \(prompt) \(which): cosine \(String(format: "%.7f", cos)), max abs diff \(String(format: "%.4f", maxAbs))")
            #expect(cos >= 0.99999, "\(prompt) \(which) cosine \(cos)")
            #expect(maxAbs <= 0.05, "\(prompt) \(which) max abs \(maxAbs)")
        }
    }

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func greedyContinuationsEqualLlamaCpp(prompt: String) throws {
        let ours = try #require(try Self.results[prompt]).greedy
        let ref = try #require(try Self.llama[prompt]), text = try Real.model.tokenizer.decode(ours)
        #expect(ours == ref.greedy16_ids, "ours: \(text.debugDescription)")
        #expect(text == ref.greedy16_text)
    }

    /// The Float32 storage (`--weights f32`, weights dequantized at load) stays selectable and agrees with
    /// the native blocks: same greedy tokens, logits equal up to summation order; and it holds ~5.8× the bytes.
    @Test func float32StorageAgreesWithNativeBlocks() throws {
        let native = try Real.model
        let dense = try DecoderModel(path: TestSupport.modelPath, storage: .f32)
        #expect(native.storage == .native)
        // SmolLM2 (Q4_1, a Q8_0 head) has no K-quant matrix: its runs record the 16-bit coding alone, and the
        // AVX-512 VNNI prefill where the CPU takes it (its sums run in another order than sgemm's).
        #expect(native.weightsRecord == "native-q16" + (IntKernels.vnniPanels ? "-vnni" : "") && dense.weightsRecord == nil)
        let a = try #require(try Self.llama["passkey300"]).token_ids!
        let gn = try native.generate(prompt: a, cache: native.makeCache(), maxTokens: 8, stopAtEOS: false, keepLogits: true)
        let gd = try dense.generate(prompt: a, cache: dense.makeCache(), maxTokens: 8, stopAtEOS: false, keepLogits: true)
        #expect(gn.tokens == gd.tokens)
        for (x, y) in zip(gn.stepLogits, gd.stepLogits) {
            let (cos, maxAbs) = TestSupport.compare(x, y)
            #expect(cos >= 0.999999 && maxAbs <= 0.01, "cosine \(cos), max abs \(maxAbs)")
        }
        print("weights resident: native \(native.weightBytes) B, f32 \(dense.weightBytes) B")
        #expect(native.storage == .native && dense.storage == .f32)
        #expect(Double(dense.weightBytes) > 5 * Double(native.weightBytes))
    }
}
