import ExaoneFamily
import Foundation
import KVCache
import ModelFile
import Models
import TensorMath
import Testing

/// A family from a plug-in package: a random-weight EXAONE file (split Q/K/V, EXAONE's chat template) is
/// refused before the family is registered, loads after, renders prompts in the family's own format, stops at
/// its end-of-turn token, and computes exactly what KVKit's built-in Phi-3 (checked against llama.cpp in
/// KVKit's tests) computes on the same weights written fused: the Llama block with RoPE on halves.
@Suite struct ExaoneTests {
    static let dim = 32, layers = 2, heads = 4, kvHeads = 2, headDim = 8, ffn = 48
    static let specials = ["[|endofturn|]", "[|system|]", "[|user|]", "[|assistant|]"]
    static let template =
        "{% for m in messages %}{% if m.role == 'system' %}[|system|]{{ m.content }}[|endofturn|]\n{% elif m.role == 'user' %}[|user|]{{ m.content }}\n"
        + "{% else %}[|assistant|]{{ m.content }}[|endofturn|]\n{% endif %}{% endfor %}{% if add_generation_prompt %}[|assistant|]{% endif %}"

    /// GPT-2 byte symbols, then the specials.
    static var vocab: [String] {
        var symbols = [String](repeating: "", count: 256), next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { symbols[b] = String(Character(Unicode.Scalar(UInt8(b)))) } else { symbols[b] = String(Character(Unicode.Scalar(next)!)); next += 1 }
        }
        return symbols + specials
    }

    /// Writes the same random weights as `arch` ("exaone": split matrices; "phi3": Q/K/V and gate/up fused).
    static func write(_ arch: String, to path: String) throws {
        var rng = SplitMix64(seed: 2024)
        func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale } }
        let v = vocab, q = heads * headDim, kv = kvHeads * headDim
        var w = GGUFWriter()
        w.set("general.architecture", .string(arch))
        for (k, x) in [
            ("embedding_length", dim), ("block_count", layers), ("attention.head_count", heads), ("attention.head_count_kv", kvHeads),
            ("feed_forward_length", ffn), ("context_length", 128),
        ] { w.set("\(arch).\(k)", .uint32(UInt32(x))) }
        w.set("\(arch).rope.freq_base", .float32(10_000))
        w.set("\(arch).attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("exaone"))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, v.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(elementType: 5, v.indices.map { .int32($0 >= 256 ? 3 : 1) }))
        w.set("tokenizer.ggml.merges", .array(elementType: 8, [.string("Ġ t")]))
        w.set("tokenizer.ggml.eos_token_id", .uint32(256))
        w.set("tokenizer.chat_template", .string(template))
        w.addTensor("token_embd.weight", shape: [dim, v.count], floats: values(dim * v.count, 1))
        w.addTensor("output_norm.weight", shape: [dim], floats: values(dim, 0.2).map { 1 + $0 })
        for l in 0..<layers {
            let p = "blk.\(l)."
            w.addTensor(p + "attn_norm.weight", shape: [dim], floats: values(dim, 0.2).map { 1 + $0 })
            w.addTensor(p + "ffn_norm.weight", shape: [dim], floats: values(dim, 0.2).map { 1 + $0 })
            let wq = values(dim * q, 0.4), wk = values(dim * kv, 0.4), wv = values(dim * kv, 0.4)
            let wo = values(q * dim, 0.3), gate = values(dim * ffn, 0.4), up = values(dim * ffn, 0.4), down = values(ffn * dim, 0.3)
            if arch == "phi3" {
                // Rows are contiguous (`inDim` values each), so a fused matrix is its parts one after another.
                w.addTensor(p + "attn_qkv.weight", shape: [dim, q + 2 * kv], floats: wq + wk + wv)
                w.addTensor(p + "ffn_up.weight", shape: [dim, 2 * ffn], floats: gate + up)
            } else {
                w.addTensor(p + "attn_q.weight", shape: [dim, q], floats: wq)
                w.addTensor(p + "attn_k.weight", shape: [dim, kv], floats: wk)
                w.addTensor(p + "attn_v.weight", shape: [dim, kv], floats: wv)
                w.addTensor(p + "ffn_gate.weight", shape: [dim, ffn], floats: gate)
                w.addTensor(p + "ffn_up.weight", shape: [dim, ffn], floats: up)
            }
            w.addTensor(p + "attn_output.weight", shape: [q, dim], floats: wo)
            w.addTensor(p + "ffn_down.weight", shape: [ffn, dim], floats: down)
        }
        try w.write(to: path)
    }

    @Test func aFamilyFromAPlugInLoadsRendersAndComputesTheLlamaBlock() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("exaone-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exaone = dir + "/exaone.gguf", phi3 = dir + "/phi3.gguf"
        try Self.write("exaone", to: exaone); try Self.write("phi3", to: phi3)

        // Before registration: the one-line error that names the family and the supported ones.
        #expect(Architecture.registry["exaone"] == nil)
        do {
            _ = try DecoderModel(path: exaone)
            Issue.record("an unregistered family loaded")
        } catch {
            #expect("\(error)".contains("'exaone' is not a supported model family"))
        }

        Architecture.register(.exaone)
        let model = try DecoderModel(path: exaone)
        #expect(model.config.architecture == "exaone" && model.chatTemplate.format == .exaone3 && !model.chatTemplate.given)
        #expect(model.chatTemplate.prompt(user: "Hi", system: "Be brief.") == "[|system|]Be brief.[|endofturn|]\n[|user|]Hi\n[|assistant|]")
        #expect(model.chatTemplate.userToAssistant == "\n[|assistant|]")
        #expect(model.tokenizer.stopIds.contains(256))  // [|endofturn|], from the family's format
        #expect(model.tokenizer.encode("[|user|]Hi") == [258, 72, 105])  // the special whole, then the bytes "H", "i"

        // The same weights through the built-in Phi-3 (fused matrices, RoPE on halves): the same logits.
        let reference = try DecoderModel(path: phi3)
        let ids = model.tokenizer.encode(model.chatTemplate.prompt(user: "Tell me 123 things."), addBOS: true)
        let a = try model.forward(ids, cache: model.makeCache(pageSize: 16))
        let b = try reference.forward(ids, cache: reference.makeCache(pageSize: 16))
        var worst: Float = 0
        for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
        #expect(a.count == b.count && a.allSatisfy(\.isFinite) && worst <= 1e-4, "largest logit difference \(worst)")
        // And generation stops at the family's end of turn when the model emits it (greedy on random weights: any tokens).
        let g = try model.generate(prompt: ids, cache: model.makeCache(pageSize: 16), maxTokens: 6)
        #expect(!g.tokens.isEmpty && g.tokens.count <= 6)
    }
}
