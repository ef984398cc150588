import Foundation
import KVCache
import KVKitTestSupport
import ModelFile
import TensorMath
import Testing
import Runs
@testable import Models

/// A second Llama shape, written by the test as a small random-weight GGUF, checked against a plain
/// dense forward pass written here independently of the model code (loops, Double accumulation).
struct TinyLlama {
    let dim = 48, layers = 2, heads = 6, kvHeads = 2, headDim = 8, ffn = 80
    let ropeBase = 10_000.0, eps: Float = 1e-5
    var vocab: [String] = []
    var weights: [String: [Float]] = [:]
    var shapes: [String: [Int]] = [:]

    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        // Vocabulary: the 256 byte symbols of byte-level BPE, two merges, and ChatML specials.
        var byteChars: [String] = []
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            byteChars.append(printable ? String(Character(Unicode.Scalar(UInt8(b)))) : "")
        }
        var next = 256
        for b in 0..<256 where byteChars[b].isEmpty { byteChars[b] = String(Character(Unicode.Scalar(UInt32(next))!)); next += 1 }
        vocab = ["<|im_start|>", "<|im_end|>"] + byteChars + ["Ġt", "he"]
        func add(_ name: String, _ shape: [Int], scale: Float) {
            shapes[name] = shape
            weights[name] = (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &rng) }
        }
        let q = heads * headDim, kv = kvHeads * headDim
        add("token_embd.weight", [dim, vocab.count], scale: 1)
        add("output.weight", [dim, vocab.count], scale: 0.3)
        add("output_norm.weight", [dim], scale: 1)
        for l in 0..<layers {
            add("blk.\(l).attn_norm.weight", [dim], scale: 1)
            add("blk.\(l).attn_q.weight", [dim, q], scale: 0.4)
            add("blk.\(l).attn_k.weight", [dim, kv], scale: 0.4)
            add("blk.\(l).attn_v.weight", [dim, kv], scale: 0.4)
            add("blk.\(l).attn_output.weight", [q, dim], scale: 0.2)
            add("blk.\(l).ffn_norm.weight", [dim], scale: 1)
            add("blk.\(l).ffn_gate.weight", [dim, ffn], scale: 0.3)
            add("blk.\(l).ffn_up.weight", [dim, ffn], scale: 0.3)
            add("blk.\(l).ffn_down.weight", [ffn, dim], scale: 0.2)
        }
    }

    func write(to path: String, edit: (inout GGUFWriter) -> Void = { _ in }) throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.embedding_length", .uint32(UInt32(dim)))
        w.set("llama.block_count", .uint32(UInt32(layers)))
        w.set("llama.attention.head_count", .uint32(UInt32(heads)))
        w.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.set("llama.feed_forward_length", .uint32(UInt32(ffn)))
        w.set("llama.context_length", .uint32(64))
        w.set("llama.rope.freq_base", .float32(Float(ropeBase)))
        w.set("llama.attention.layer_norm_rms_epsilon", .float32(eps))
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("default"))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, vocab.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(elementType: 5, vocab.indices.map { .int32($0 < 2 ? 3 : 1) }))
        w.set("tokenizer.ggml.merges", .array(elementType: 8, [.string("Ġ t"), .string("h e")]))
        w.set("tokenizer.ggml.eos_token_id", .uint32(1))
        for name in weights.keys.sorted() {
            // Norms stay F32; matrices go in as F16 so a second tensor type runs through the loader.
            if shapes[name]!.count == 1 {
                w.addTensor(name, shape: shapes[name]!, floats: weights[name]!)
            } else {
                let bytes = weights[name]!.flatMap { f -> [UInt8] in
                    let b = Float16(f).bitPattern; return [UInt8(b & 0xFF), UInt8(b >> 8)]
                }
                w.addTensor(name, shape: shapes[name]!, type: .f16, data: bytes)
            }
        }
        edit(&w)
        try w.write(to: path)
    }

    /// The weights as the file stores them (rounded to F16 where written as F16).
    func stored(_ name: String) -> [Float] {
        shapes[name]!.count == 1 ? weights[name]! : weights[name]!.map { Float(Float16($0)) }
    }

    /// Plain forward pass over all tokens; returns `[T][vocab]` logits.
    func referenceLogits(_ tokens: [Int32]) -> [[Float]] {
        let T = tokens.count, V = vocab.count
        func matvec(_ w: [Float], _ x: [Float], out: Int, inDim: Int) -> [Float] {
            (0..<out).map { o in Float((0..<inDim).reduce(0.0) { $0 + Double(w[o * inDim + $1]) * Double(x[$1]) }) }
        }
        func rms(_ x: [Float], _ w: [Float]) -> [Float] {
            let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
            let s = Float(1 / (ms + Double(eps)).squareRoot())
            return x.indices.map { x[$0] * s * w[$0] }
        }
        func rope(_ v: inout [Float], pos: Int) {
            for h in 0..<(v.count / headDim) {
                for i in 0..<(headDim / 2) {
                    let a = Double(pos) * pow(ropeBase, -2.0 * Double(i) / Double(headDim))
                    let x0 = Double(v[h * headDim + 2 * i]), x1 = Double(v[h * headDim + 2 * i + 1])
                    v[h * headDim + 2 * i] = Float(x0 * cos(a) - x1 * sin(a))
                    v[h * headDim + 2 * i + 1] = Float(x0 * sin(a) + x1 * cos(a))
                }
            }
        }
        let emb = stored("token_embd.weight")
        var x = tokens.map { Array(emb[(Int($0) * dim)..<(Int($0) * dim + dim)]) }
        for l in 0..<layers {
            let p = "blk.\(l)."
            var ks: [[Float]] = [], vs: [[Float]] = []
            var attnOut: [[Float]] = []
            for t in 0..<T {
                let xb = rms(x[t], stored(p + "attn_norm.weight"))
                var q = matvec(stored(p + "attn_q.weight"), xb, out: heads * headDim, inDim: dim)
                var k = matvec(stored(p + "attn_k.weight"), xb, out: kvHeads * headDim, inDim: dim)
                let v = matvec(stored(p + "attn_v.weight"), xb, out: kvHeads * headDim, inDim: dim)
                rope(&q, pos: t); rope(&k, pos: t)
                ks.append(k); vs.append(v)
                var o = [Float](repeating: 0, count: heads * headDim)
                for h in 0..<heads {
                    let kh = h / (heads / kvHeads)
                    let scores = (0...t).map { j in
                        (0..<headDim).reduce(0.0) { $0 + Double(q[h * headDim + $1]) * Double(ks[j][kh * headDim + $1]) } / Double(headDim).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }, z = e.reduce(0, +)
                    for d in 0..<headDim {
                        o[h * headDim + d] = Float((0...t).reduce(0.0) { $0 + e[$1] / z * Double(vs[$1][kh * headDim + d]) })
                    }
                }
                attnOut.append(o)
            }
            for t in 0..<T {
                let a = matvec(stored(p + "attn_output.weight"), attnOut[t], out: dim, inDim: heads * headDim)
                for i in 0..<dim { x[t][i] += a[i] }
                let xb = rms(x[t], stored(p + "ffn_norm.weight"))
                let g = matvec(stored(p + "ffn_gate.weight"), xb, out: ffn, inDim: dim)
                let u = matvec(stored(p + "ffn_up.weight"), xb, out: ffn, inDim: dim)
                let hidden = (0..<ffn).map { g[$0] / (1 + exp(-g[$0])) * u[$0] }
                let d = matvec(stored(p + "ffn_down.weight"), hidden, out: dim, inDim: ffn)
                for i in 0..<dim { x[t][i] += d[i] }
            }
        }
        return x.map { matvec(stored("output.weight"), rms($0, stored("output_norm.weight")), out: V, inDim: dim) }
    }
}

@Suite struct SecondShapeTests {
    static func load(seed: UInt64) throws -> (TinyLlama, DecoderModel) {
        let tiny = TinyLlama(seed: seed)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-tiny-\(UUID().uuidString).gguf").path
        try tiny.write(to: path)
        return (tiny, try DecoderModel(path: path))
    }

    /// A chat template KVKit does not render stops the load with one line naming `--format` (65), never a
    /// silent switch to plain text; with a format given the model loads, and runs record which was used.
    @Test func anUnknownChatTemplateNeedsAFormat() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-tiny-\(UUID().uuidString).gguf").path
        try TinyLlama(seed: 3).write(to: path) {
            $0.set("tokenizer.chat_template", .string("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"))
        }
        do { _ = try ModelLoader.load(path: path, threads: 1); Issue.record("loaded without a format") } catch let e as RunError {
            #expect(e.exitCode == 65 && e.description.contains("pass --format chatml|llama3|gemma|plain") && !e.description.contains("\n"), "\(e)")
        }
        let model = try ModelLoader.load(path: path, threads: 1, format: .chatml)
        #expect(model.chatTemplate.format == .chatml && ModelIdentity(model: model).chatFormat == "chatml (--format)")
        #expect(throws: RunError.self) { try RunPlan(options: [("policy", .text("full")), ("format", .text("mistral"))]) }
        #expect(try RunPlan(options: [("policy", .text("full")), ("format", .text("plain"))]).format == .plain)
    }

    @Test func readsEverySizeFromMetadata() throws {
        let (tiny, model) = try Self.load(seed: 1)
        let c = model.config
        let got: [Int] = [c.dim, c.layers, c.heads, c.kvHeads, c.headDim, c.ffnDim, c.vocabSize, c.contextLength]
        let want: [Int] = [tiny.dim, tiny.layers, tiny.heads, tiny.kvHeads, tiny.headDim, tiny.ffn, tiny.vocab.count, 64]
        #expect(got == want)
        #expect(model.tokenizer.encode("<|im_start|>the") == [0, 2 + 116, 2 + 256 + 1])  // "t", then merged "he"
    }

    @Test(arguments: [1, 3, 64])
    func forwardMatchesThePlainReference(pageSize: Int) throws {
        let (tiny, model) = try Self.load(seed: 7)
        let tokens: [Int32] = [0, 5, 77, 200, 13, 257, 258, 40, 41, 42, 99, 3, 150, 180, 7, 8, 9, 1, 64, 30, 31]
        let ref = tiny.referenceLogits(tokens)
        let V = tiny.vocab.count
        // All at once, all logits.
        let all = try model.forward(tokens, cache: model.makeCache(pageSize: pageSize), allLogits: true)
        var worst: Float = 0
        for t in tokens.indices { for i in 0..<V { worst = max(worst, abs(all[t * V + i] - ref[t][i])) } }
        #expect(worst < 2e-4, "prefill max abs err \(worst)")
        // Prefill 13 in chunks of 4, then decode one token at a time.
        model.prefillChunk = 4
        let cache = model.makeCache(pageSize: pageSize)
        var last = try model.forward(Array(tokens.prefix(13)), cache: cache)
        var stepWorst: Float = 0
        for t in 13..<tokens.count {
            for i in 0..<V { stepWorst = max(stepWorst, abs(last[i] - ref[t - 1][i])) }
            last = try model.forward([tokens[t]], cache: cache)
        }
        for i in 0..<V { stepWorst = max(stepWorst, abs(last[i] - ref[tokens.count - 1][i])) }
        #expect(stepWorst < 2e-4, "chunked prefill + decode max abs err \(stepWorst)")
        #expect(cache.nextPosition == tokens.count)
    }

    @Test func contextOverflowAndBadTokensAreErrors() throws {
        let (_, model) = try Self.load(seed: 2)
        let cache = model.makeCache()
        #expect(throws: ModelError.contextOverflow(needed: 65, limit: 64)) { try model.forward([Int32](repeating: 3, count: 65), cache: cache) }
        #expect(throws: ModelError.badToken(9999, vocab: model.config.vocabSize)) { try model.forward([9999], cache: cache) }
        #expect(throws: ModelError.emptyInput) { try model.forward([], cache: cache) }
        #expect(cache.totalSlots == 0, "a rejected call leaves the cache untouched")
    }
}
