import KVCache

/// The narrow view of the model that a policy's own pass runs on (KVzip's reconstruction, DuoAttention's
/// calibration): the forward pass onto a cache, the tokenizer and chat turn strings, a synthetic needle
/// case, and where per-model results may be kept. It sits below Policies so that a method with a pass of
/// its own lives in its policy file, as in kvpress; Runs makes every loaded model conform
/// (`LanguageModelPass`), and the conformance kit has a small random one (`PolicyConformance.RandomModel`).
public protocol ModelPass: Sendable {
    var layers: Int { get }
    var kvHeads: Int { get }
    /// Query heads (a multiple of `kvHeads`).
    var heads: Int { get }
    var contextLength: Int { get }
    /// Width of the residual stream (the output projection's rows).
    var hidden: Int { get }
    /// Per head, the width of a query, key and value row.
    var headDim: Int { get }
    /// The rotary embedding the cached keys carry (a policy scoring keys before RoPE undoes it: `RoPEInfo.unrotate`).
    var rope: RoPEInfo { get }
    /// The model file's SHA-256 and the arithmetic results depend on (weight storage, kernel build, e.g.
    /// "-native-q16-avx2"): what a per-model result is keyed by.
    var identity: (file: String, arithmetic: String) { get }
    /// Where per-model results may be kept between runs (`$KVKIT_HOME`); nil: never kept.
    var home: String? { get }
    /// Token ids of `text` (with the model's BOS first when `addBOS`).
    func encode(_ text: String, addBOS: Bool) -> [Int32]
    /// The chat template's text before the first user message (BOS aside).
    var opening: String { get }
    /// The chat template's text between a user message and the assistant's answer.
    var userToAssistant: String { get }
    /// A fresh, empty cache for this model.
    func makeCache() -> PagedKVCache
    /// Runs `tokens` onto `cache` (appending their K/V; the cache's observations are tapped as usual).
    func forward(_ tokens: [Int32], cache: PagedKVCache) throws
    /// Layer `layer`'s attention output projection W_o, `[hidden][heads · headDim]` row-major Float32
    /// (dequantized from the file): head h's output is its columns h·headDim ..< (h+1)·headDim times its value mix.
    func outputProjection(layer: Int) -> [Float]
    /// A synthetic one-needle retrieval case of about `length` tokens with the needle at `depth`: the
    /// prompt ending in its question (the last `question` tokens) and the needle's positions. nil when the
    /// model cannot make one.
    func needleCase(length: Int, depth: Double, sample: Int) -> (prompt: [Int32], question: Int, needle: Range<Int32>)?
    /// About `tokens` tokens of plain text for a per-model calibration (no chat template, no BOS), the
    /// `sample`-th such piece: the Paul Graham essays read from their last file backwards (so the pieces
    /// lie away from the haystacks probes take from the first essays). nil when there is no more text.
    func calibrationText(tokens: Int, sample: Int) -> [Int32]?
    /// Tells the user how far a long pass has got (`kvkit calibrate` draws it as a progress bar).
    func progress(done: Int, total: Int, label: String)
}

extension ModelPass {
    public func progress(done: Int, total: Int, label: String) {}
    /// No calibration text (a pass that needs some reports itself unavailable).
    public func calibrationText(tokens: Int, sample: Int) -> [Int32]? { nil }
}

/// A pass a policy runs once the prompt is in the cache and before it compresses (KVzip re-reads the
/// prompt, DuoAttention measures its heads). Variants whose passes share a `key` share one run of it; its
/// result reaches the policy as `StreamView.prepared[key]`. Declared in the policy's own file.
public struct PolicyPass: Sendable {
    /// When a pass runs.
    public enum Stage: Sendable {
        /// Once the prompt is in the cache, before compressing (KVzip's reconstruction).
        case afterPrompt
        /// Before the prompt runs, on the empty cache, with no prompt (`prompt` is nil): per-model results
        /// (DuoAttention's head scores, KVzap's predictor; what `kvkit calibrate` runs ahead of time). A
        /// result that is a `LayerInputTap` is installed on the cache and collects its rows while the prompt
        /// runs; the policy then reads the tap as it stands at compression time under the pass's key.
        case beforePrompt
    }
    /// Names the result (and the settings it depends on: two passes with one key must compute the same).
    public let key: String
    /// What timings call it ("reconstruction", "calibration").
    public let label: String
    public let stage: Stage
    /// The pass: the model, the cache holding the prompt (left unchanged: work on forks), and the prompt's
    /// tokens (nil: the cache holds exactly the prompt, read it back). Throws `PolicyError.passUnavailable`
    /// when it cannot run on this prompt (the policy's variants then report n/a).
    public let run: @Sendable (_ model: any ModelPass, _ cache: PagedKVCache, _ prompt: [Int32]?) throws -> any Sendable

    public init(
        key: String, label: String, stage: Stage = .afterPrompt,
        run: @escaping @Sendable (_ model: any ModelPass, _ cache: PagedKVCache, _ prompt: [Int32]?) throws -> any Sendable
    ) {
        self.key = key; self.label = label; self.stage = stage; self.run = run
    }
}

/// A pass result that can say in one line what it found (`kvkit calibrate` prints it).
public protocol PassSummary {
    var summary: String { get }
}

extension PolicyPass {
    /// The model's rotary embedding (`ModelPass.rope`), for policies that read keys before RoPE; costs nothing.
    public static let rope = PolicyPass(key: "model.rope", label: "rope") { model, _, _ in model.rope }
}

extension Array where Element == PolicyPass {
    /// One pass per key, in first-seen order (variants sharing a prefill run each pass once).
    public func uniqued() -> [PolicyPass] {
        var seen = Set<String>()
        return filter { seen.insert($0.key).inserted }
    }
}
