import Foundation
import KVCache
import KVKitTestSupport
import ModelFile
import Runs
import TensorMath
import Testing
@testable import Models

/// Families without a model file here (Qwen 2, Qwen 3, Llama 3 with its tokenizer, Phi-3 with its fused Q/K/V
/// and gate/up matrices), as small random-weight
/// GGUFs written by this test, against llama.cpp's tokenization and logits on the very same files
/// (`Tests/Fixtures/families/llamacpp.json`, made by `make_families.py` with llama-cpp-python 0.3.36 from
/// files this test wrote with KVKIT_WRITE_FAMILY_GGUFS=DIR; the SHA-256 of each file is checked, so the
/// fixture and the file cannot drift apart).
struct FamilyFile {
    let family: String, pre: String
    let dim = 64, layers = 2, heads = 4, kvHeads = 2, headDim = 16, ffn = 96

    /// Byte-level vocabulary: the 256 GPT-2 byte symbols, merges chosen so that pre-tokenizer boundaries
    /// show (digit runs, contractions, spaces, newlines, letters after punctuation), then specials.
    static let merges = [
        "Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "1 2", "12 3", "3 4", "4 5", "Ġ Ġ",
        "ĠĠ Ġ", "Ċ Ċ", "' s", "' t", "' re", "' ll", "a n", "an d", "Ġ and", ". Ġ", ", Ġ", "ä ¸", "Ġ 1", "Ġ1 2",
        "o u", "Ġ y", "Ġy ou", "ĉ ĉ", "Ġ Ċ", "- -", "!! !",
    ]
    static var byteSymbols: [String] {
        var symbols = [String](repeating: "", count: 256), next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { symbols[b] = String(Character(Unicode.Scalar(UInt8(b)))) } else { symbols[b] = String(Character(Unicode.Scalar(next)!)); next += 1 }
        }
        return symbols
    }
    var vocab: [String] {
        var v = Self.byteSymbols
        for m in Self.merges { let t = m.replacingOccurrences(of: " ", with: ""); if !v.contains(t) { v.append(t) } }
        // One more merge result used by "!! !" needs "!!" itself.
        if !v.contains("!!") { v.append("!!") }
        return v + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    }

    /// Deterministic values in [-scale, scale) from the seed's bits (no library random algorithm involved).
    static func values(_ n: Int, _ rng: inout SplitMix64, scale: Float) -> [Float] {
        (0..<n).map { _ in (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    }

    func write(to path: String) throws {
        var rng = SplitMix64(seed: UInt64(family.utf8.reduce(7) { $0 &* 31 &+ Int($1) }))
        let v = vocab, q = heads * headDim, kv = kvHeads * headDim, a = family
        var w = GGUFWriter()
        w.set("general.architecture", .string(a))
        for (k, x) in [
            ("embedding_length", dim), ("block_count", layers), ("attention.head_count", heads), ("attention.head_count_kv", kvHeads),
            ("feed_forward_length", ffn), ("context_length", 256),
        ] { w.set("\(a).\(k)", .uint32(UInt32(x))) }
        w.set("\(a).rope.freq_base", .float32(a == "llama" ? 500_000 : a == "phi3" ? 10_000 : 1_000_000))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(1e-6))
        if a == "qwen3" { w.set("\(a).attention.key_length", .uint32(UInt32(headDim))); w.set("\(a).attention.value_length", .uint32(UInt32(headDim))) }
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string(pre))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, v.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(elementType: 5, v.indices.map { .int32($0 >= v.count - 3 ? 3 : 1) }))
        w.set("tokenizer.ggml.merges", .array(elementType: 8, (Self.merges + ["! !"]).map { .string($0) }))
        w.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(v.count - 3)))
        w.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(v.count - 3)))
        w.set("tokenizer.ggml.add_bos_token", .bool(false))
        func add(_ name: String, _ shape: [Int], scale: Float) { w.addTensor(name, shape: shape, floats: Self.values(shape.reduce(1, *), &rng, scale: scale)) }
        func norm(_ name: String, _ n: Int) { w.addTensor(name, shape: [n], floats: Self.values(n, &rng, scale: 0.2).map { 1 + $0 }) }
        add("token_embd.weight", [dim, v.count], scale: 1)
        norm("output_norm.weight", dim)
        if a == "llama" {
            add("output.weight", [dim, v.count], scale: 0.5)  // untied head
            w.addTensor("rope_freqs.weight", shape: [headDim / 2], floats: (0..<(headDim / 2)).map { i in i < headDim / 4 ? 1 : Float(1 + i) })
        }
        for l in 0..<layers {
            let p = "blk.\(l)."
            norm(p + "attn_norm.weight", dim); norm(p + "ffn_norm.weight", dim)
            if a == "phi3" {
                // Fused, as Phi-3's files hold them: Q, K and V in one matrix; the gate's rows, then up's.
                add(p + "attn_qkv.weight", [dim, q + 2 * kv], scale: 0.3)
                add(p + "attn_output.weight", [q, dim], scale: 0.2)
                add(p + "ffn_up.weight", [dim, 2 * ffn], scale: 0.3); add(p + "ffn_down.weight", [ffn, dim], scale: 0.2)
                continue
            }
            add(p + "attn_q.weight", [dim, q], scale: 0.3); add(p + "attn_k.weight", [dim, kv], scale: 0.3); add(p + "attn_v.weight", [dim, kv], scale: 0.3)
            add(p + "attn_output.weight", [q, dim], scale: 0.2)
            add(p + "ffn_gate.weight", [dim, ffn], scale: 0.3); add(p + "ffn_up.weight", [dim, ffn], scale: 0.3);
            add(p + "ffn_down.weight", [ffn, dim], scale: 0.2)
            if a == "qwen2" { add(p + "attn_q.bias", [q], scale: 0.5); add(p + "attn_k.bias", [kv], scale: 0.5); add(p + "attn_v.bias", [kv], scale: 0.5) }
            if a == "qwen3" { norm(p + "attn_q_norm.weight", headDim); norm(p + "attn_k_norm.weight", headDim) }
        }
        try w.write(to: path)
    }

    static let all = [
        FamilyFile(family: "qwen2", pre: "qwen2"), FamilyFile(family: "qwen3", pre: "qwen2"), FamilyFile(family: "llama", pre: "llama-bpe"),
        FamilyFile(family: "phi3", pre: "llama-bpe"),
    ]
    /// Strings whose pre-tokenization differs between families: digit runs, contractions in both cases,
    /// whitespace runs, newlines, tabs, CJK, emoji, punctuation before letters.
    static let tricky = [
        "12345 and 678", "It's THEY'RE we'll I'D", "  two  spaces   three", "line\n\nbreak \r\n crlf",
        "\ttab\t\tand", "中文字符 and 123", "emoji 🙂👍 done", "x+y=z; (a,b)... !!!word", "--flag=1234567", "you you you",
    ]
    static let prompt: [Int32] = [259, 261, 40, 77, 281, 12, 280, 88, 263, 271, 33, 290]
}

@Suite struct FamilyFixtureTests {
    struct Fixture: Decodable {
        let sha256: String
        let tokens: [String: [Int32]]
        let prompt: [Int32]
        let logits: [[Float]]  // [position][vocab]
    }
    static let fixtures = Result { () throws -> [String: Fixture] in
        let path = TestSupport.repositoryRoot() + "/Tests/Fixtures/families/llamacpp.json"
        return try JSONDecoder().decode([String: Fixture].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func load(_ f: FamilyFile) throws -> DecoderModel {
        let dir =
            ProcessInfo.processInfo.environment["KVKIT_WRITE_FAMILY_GGUFS"].flatMap { $0.isEmpty ? nil : $0 } ?? FileManager.default.temporaryDirectory.path
        let path = dir + "/family-\(f.family).gguf"
        try f.write(to: path)
        return try DecoderModel(path: path, storage: .native)
    }

    @Test(arguments: FamilyFile.all.map(\.family))
    func agreesWithLlamaCpp(family: String) throws {
        let f = FamilyFile.all.first { $0.family == family }!
        let m = try Self.load(f)
        let fx = try #require(try Self.fixtures.get()[family])
        #expect(ModelIdentity(model: m).sha256 == fx.sha256, "the file this test writes differs from the one llama.cpp read")
        for s in FamilyFile.tricky {
            let ours = m.tokenizer.encode(s, parseSpecial: false)
            #expect(ours == fx.tokens[s], "\(family) \(s.debugDescription): ours \(ours), llama.cpp \(fx.tokens[s] ?? [])")
            #expect(m.tokenizer.decode(ours) == s)
        }
        let logits = try m.forward(fx.prompt, cache: m.makeCache(), allLogits: true)
        let V = m.config.vocabSize
        var worstCos = 1.0
        for (t, ref) in fx.logits.enumerated() {
            let mine = Array(logits[(t * V)..<((t + 1) * V)])
            let (cos, _) = TestSupport.compare(mine, ref)
            worstCos = min(worstCos, cos)
            #expect(TestSupport.topK(mine, 1) == TestSupport.topK(ref, 1), "\(family) position \(t) top-1")
            #expect(Set(TestSupport.topK(mine, 10)).intersection(TestSupport.topK(ref, 10)).count >= 8, "\(family) position \(t) top-10")
        }
        print("\(family): \(fx.logits.count) positions, worst cosine with llama.cpp \(String(format: "%.6f", worstCos))")
        #expect(worstCos >= 0.995)
    }
}
