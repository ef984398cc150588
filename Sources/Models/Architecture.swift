import Foundation
import ModelFile

/// What a model family's decoder does differently from the Llama block, read by the one forward pass in
/// `DecoderModel`: the shared pieces (attention block over the paged cache, RMS norms, gated MLPs, RoPE
/// variants) are switched on here, so a family is one file declaring its `Architecture` plus one line in
/// `Architecture.registry`. Everything else (sizes, RoPE bases, windows) is read from the GGUF metadata.
public struct Architecture: Sendable {
    /// Which elements RoPE rotates together: GGML's "normal" mode (adjacent pairs x[2i], x[2i+1]: Llama,
    /// SmolLM2) or NEOX mode (halves x[i], x[i + d/2]: Gemma, Qwen).
    public enum RoPEPairs: String, Codable, Sendable { case adjacent, halves }
    /// The gated MLP's activation: SwiGLU (silu) or GeGLU (tanh GELU).
    public enum Activation: String, Codable, Sendable { case silu, geluTanh = "gelu-tanh" }

    /// `general.architecture` values this family reads.
    public var names: [String]
    public var ropePairs: RoPEPairs = .adjacent
    public var activation: Activation = .silu
    /// Token embeddings are multiplied by √dim (Gemma).
    public var scalesEmbedding = false
    /// Per-head RMS norm of Q and K before RoPE (`attn_q_norm`, `attn_k_norm`: Gemma 3, Qwen 3).
    public var qkNorm = false
    /// RMS norms after attention and after the MLP, before each residual add (Gemma's "sandwich" norms).
    public var postNorms = false
    /// Q, K and V projections have biases (`attn_q.bias` …: Qwen 2).
    public var qkvBias = false
    /// Which layers attend through the sliding window `{arch}.attention.sliding_window` (nil: none, or
    /// every layer when the metadata gives a window). Gemma 3 is 5 local layers to 1 global; the pattern is
    /// not in its metadata (llama.cpp sets it in code, `set_swa_pattern(6)`).
    public var slidingLayer: (@Sendable (_ layer: Int) -> Bool)?
    /// The RoPE base of the windowed layers when it differs from `rope.freq_base` (Gemma 3: 10,000).
    public var localRopeBase: Double?

    /// Chat formats and pre-tokenizers the family's files use that KVKit does not already know: registered
    /// with the family (`register`), so a plug-in family brings its prompt format and word splitting along.
    public var chatFormats: [ChatFormat] = []
    public var preTokenizers: [Tokenizer.PreTokenizer] = []

    public init(names: [String]) { self.names = names }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var families: [String: Architecture] = {
        var r: [String: Architecture] = [:]
        // One line per family file in `Families/`.
        for a in [Architecture.llama, .gemma3, .qwen2, .qwen3, .phi3] { for n in a.names { r[n] = a } }
        return r
    }()

    /// Families by `general.architecture`: the built-in ones and every one registered since.
    public static var registry: [String: Architecture] { lock.withLock { families } }

    /// Adds a family under each of its names (replacing one of the same name), with its chat formats and
    /// pre-tokenizers: a plug-in package's family is one file declaring its `Architecture` plus this line in
    /// its `main`, before a model is loaded.
    public static func register(_ a: Architecture) {
        lock.withLock { for n in a.names { families[n] = a } }
        for f in a.chatFormats { ChatFormat.register(f) }
        for p in a.preTokenizers { Tokenizer.PreTokenizer.register(p) }
    }

    /// The family of `gguf`, or a one-line error naming the architecture and the supported ones.
    public static func of(_ gguf: GGUFFile) throws -> Architecture {
        let arch = try gguf.string("general.architecture")
        guard let a = registry[arch] else {
            throw GGUFError.badMetadata(
                key: "general.architecture", reason: "'\(arch)' is not a supported model family (supported: \(registry.keys.sorted().joined(separator: ", ")))")
        }
        return a
    }
}
