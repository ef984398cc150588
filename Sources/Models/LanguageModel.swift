import KVCache
import ModelFile

/// Sees each layer's attention output (before the output projection): `[T][heads·headDim]` floats.
public typealias AttentionTap = (_ layer: Int, _ output: UnsafePointer<Float>, _ rows: Int, _ width: Int) -> Void

/// Sees every row's logits of a forward pass, one prefill chunk at a time: the chunk's tokens, the
/// position of its first token, and `[tokens.count][vocab]` logits (Selective Context's self-information
/// is read from them).
public typealias LogitsTap = (_ tokens: ArraySlice<Int32>, _ firstPosition: Int, _ logits: UnsafeBufferPointer<Float>) -> Void

/// What runs, probes, generation and benchmarks need from a model, whatever its family: its sizes, its
/// tokenizer and prompt format, a cache shaped for it, and forward passes over paged caches (one
/// sequence, or several forks at once). `DecoderModel` is the implementation for every registered
/// family (`Architecture.registry`); nothing outside this module names one.
public protocol LanguageModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    var tokenizer: Tokenizer { get }
    var chatTemplate: ChatTemplate { get }
    /// The GGUF file the weights are read from (its bytes identify the model in every run).
    var file: GGUFFile { get }
    var architecture: Architecture { get }
    var storage: WeightStorage { get }
    /// How runs record the weights' arithmetic (nil: the Float32 reference).
    var weightsRecord: String? { get }
    /// The rotary embedding, for policies that rotate query statistics.
    var rope: RoPEInfo { get }
    /// Bytes of weights kept resident, and read by one decode step.
    var weightBytes: Int { get }
    var decodeWeightBytes: Int { get }
    /// Layer `layer`'s attention output projection, `[dim][heads · headDim]` row-major Float32 (dequantized).
    func outputProjection(layer: Int) -> [Float]
    /// Tokens per forward chunk during prefill.
    var prefillChunk: Int { get set }
    /// A fresh paged cache shaped for the model (with its layers' sliding windows).
    func makeCache(pageSize: Int) -> PagedKVCache
    /// `forward` with every argument given (what a conforming type implements).
    func run(
        _ tokens: [Int32], cache: PagedKVCache, reads: (any PageSelector)?, allLogits: Bool,
        attentionTap: AttentionTap?, logitsTap: LogitsTap?
    ) throws -> [Float]
    /// `forwardBatch` with every argument given.
    func runBatch(_ inputs: [[Int32]], caches: [PagedKVCache], reads: [(any PageSelector)?]?, attentionTaps: [AttentionTap?]?) throws -> [[Float]]
}

extension LanguageModel {
    /// A cache with pages of 16 tokens.
    public func makeCache() -> PagedKVCache { makeCache(pageSize: 16) }

    /// Runs `tokens` through the model, appending their K/V to `cache` at positions starting from
    /// `cache.nextPosition`, and returns the logits of the last token (`[vocab]`), or of every token
    /// (`[T][vocab]`) when `allLogits`. `reads` limits the pages each attention block reads (Quest's
    /// selector, owned by the caller beside the cache); `logitsTap` sees every row's logits.
    @discardableResult
    public func forward(
        _ tokens: [Int32], cache: PagedKVCache, reads: (any PageSelector)? = nil, allLogits: Bool = false,
        attentionTap: AttentionTap? = nil, logitsTap: LogitsTap? = nil
    ) throws -> [Float] {
        try run(tokens, cache: cache, reads: reads, allLogits: allLogits, attentionTap: attentionTap, logitsTap: logitsTap)
    }

    /// One forward pass over several sequences at once, each with its own cache (the forks of one
    /// prefilled context): weight products once over every row, attention per sequence on its own cache.
    /// Returns each sequence's last-token logits.
    public func forwardBatch(
        _ inputs: [[Int32]], caches: [PagedKVCache], reads: [(any PageSelector)?]? = nil,
        attentionTaps: [AttentionTap?]? = nil
    ) throws -> [[Float]] {
        try runBatch(inputs, caches: caches, reads: reads, attentionTaps: attentionTaps)
    }
}
