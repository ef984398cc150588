import Foundation
import KVCache
import KVKitTestSupport
import ModelFile
import TensorMath
import Testing
@testable import LlamaModel

/// The real model, loaded once for the whole suite.
enum Real {
    static let model: LlamaModel = {
        Threads.set(2)
        do { return try LlamaModel(path: TestSupport.modelPath) }
        catch { fatalError("real model missing at \(TestSupport.modelPath): run 'make setup' (\(error))") }
    }()
}

/// Agreement with llama.cpp and with a plain float32 forward pass, on the reference prompts
/// (tolerances from shared/reference/README.md).
@Suite(.serialized) struct ReferenceTests {
    static let llama = try! TestSupport.anchors("llamacpp_anchors.json")
    static let numpy = try! TestSupport.anchors("numpy_anchors.json")
    static let dir = TestSupport.referenceDirectory()

    /// Last-position logits, and the "step 16" logits: those after the 16 greedy tokens have been fed
    /// back (the reference files' argmax there is the 17th greedy token).
    static func ourLogits(_ name: String) throws -> (last: [Float], step16: [Float], greedy: [Int32]) {
        let a = llama[name]!
        let cache = Real.model.makeCache()
        let g = try Real.model.generate(prompt: a.token_ids!, cache: cache, maxTokens: 17, stopAtEOS: false, keepLogits: true)
        return (g.stepLogits[0], g.stepLogits[16], Array(g.tokens.prefix(16)))
    }

    static let results: [String: (last: [Float], step16: [Float], greedy: [Int32])] = {
        var r: [String: (last: [Float], step16: [Float], greedy: [Int32])] = [:]
        for name in ["short", "passkey300", "passkey1000"] { r[name] = try! ourLogits(name) }
        return r
    }()

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func logitsAgreeWithLlamaCpp(prompt: String) throws {
        let ours = Self.results[prompt]!
        for (which, mine, file) in [("last", ours.last, Self.llama[prompt]!.last_logits_file!),
                                    ("step16", ours.step16, Self.llama[prompt]!.step16_logits_file!)] {
            let ref = try TestSupport.readNpyFloat32(Self.dir + "/" + file)
            #expect(ref.count == Real.model.config.vocabSize)
            let (cos, maxAbs) = TestSupport.compare(mine, ref)
            let top10 = Set(TestSupport.topK(mine, 10)).intersection(TestSupport.topK(ref, 10)).count
            print("llama.cpp \(prompt) \(which): cosine \(String(format: "%.6f", cos)), max abs diff \(String(format: "%.4f", maxAbs)), top-10 overlap \(top10)")
            #expect(TestSupport.topK(mine, 1) == TestSupport.topK(ref, 1), "\(prompt) \(which) top-1")
            #expect(top10 >= 8, "\(prompt) \(which) top-10 overlap \(top10)")
            #expect(cos >= 0.995, "\(prompt) \(which) cosine \(cos)")
        }
    }

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func logitsAgreeWithFloat32Reference(prompt: String) throws {
        let ours = Self.results[prompt]!
        let np = Self.numpy[prompt]!
        for (which, mine, file) in [("last", ours.last, np.last_logits_file ?? "numpy_\(prompt)_last_logits.f32.npy"),
                                    ("step16", ours.step16, np.step16_logits_file ?? "numpy_\(prompt)_step16_logits.f32.npy")] {
            let ref = try TestSupport.readNpyFloat32(Self.dir + "/" + file)
            let (cos, maxAbs) = TestSupport.compare(mine, ref)
            print("float32 ref \(prompt) \(which): cosine \(String(format: "%.7f", cos)), max abs diff \(String(format: "%.4f", maxAbs))")
            #expect(cos >= 0.99999, "\(prompt) \(which) cosine \(cos)")
            #expect(maxAbs <= 0.05, "\(prompt) \(which) max abs \(maxAbs)")
        }
    }

    @Test(arguments: ["short", "passkey300", "passkey1000"])
    func greedyContinuationsEqualLlamaCpp(prompt: String) {
        let ours = Self.results[prompt]!.greedy
        #expect(ours == Self.llama[prompt]!.greedy16_ids!, "ours: \(Real.model.tokenizer.decode(ours).debugDescription)")
        #expect(Real.model.tokenizer.decode(ours) == Self.llama[prompt]!.greedy16_text!)
    }
}
