import KVCache
import Models
import Policies
import Probes
import TensorMath

/// The one step that turns policies' `needs` and `passes` into what their compression reads, shared by
/// `kvkit run` (`Runner`), `kept`, `generate` and the benches, so no command assembles it on its own:
/// before the prompt runs, the kernel's statistics are turned on (`Compressor.prepare`) and, when a policy
/// reads self-information, a logits tap collects it; after the prompt, `context` runs each policy's own
/// passes once per key (KVzip's reconstruction on throw-away forks, counted as prefill; DuoAttention's head
/// scores, measured once per model file) and returns the `CompressionContext`.
public struct PolicyPreparation {
    public let needs: ObservationNeeds
    public let passes: [PolicyPass]
    private let selfInformation: SelfInformation?

    /// For every policy that will compress one prefill (the union of their needs, each pass once).
    public init(policies: [any EvictionPolicy]) {
        needs = policies.reduce(ObservationNeeds.none) { $0.union($1.needs) }
        passes = policies.flatMap(\.passes).uniqued()
        selfInformation = needs.selfInformation ? SelfInformation() : nil
    }

    /// Turns on the statistics `needs` asks for over a prompt whose last token is at `promptEnd − 1`.
    public func begin(_ cache: PagedKVCache, model: any LanguageModel, promptEnd: Int) {
        Compressor.prepare(cache, needs: needs, promptEnd: promptEnd, rope: model.rope)
    }

    /// The forward pass's logits tap while the prompt runs (nil: no policy reads self-information).
    public var logitsTap: LogitsTap? { selfInformation?.record }

    /// What the policies read besides the cache, once the prompt has run into `cache`. `prompt` is the
    /// prompt's tokens (nil: read back from the cache, which must then hold exactly the prompt).
    /// `timed` receives the seconds of each pass by its label ("reconstruction", "calibration"). With
    /// `unavailable`, a pass that cannot run on this prompt (no room to re-read it) is reported there and
    /// left out (its policies then report n/a) instead of stopping every policy.
    public func context(
        _ cache: PagedKVCache, model: any LanguageModel, prompt: [Int32]? = nil,
        timed: ((String, Double) -> Void)? = nil, unavailable: ((RunError) -> Void)? = nil
    ) throws -> CompressionContext {
        var context = CompressionContext(tokenizer: model.tokenizer, selfInformation: selfInformation)
        let clock = ContinuousClock(), view = LanguageModelPass(model)
        for pass in passes {
            let t = clock.now
            do {
                context.prepared[pass.key] = try pass.run(view, cache, prompt)
                timed?(pass.label, (clock.now - t).seconds)
            } catch let e as PolicyError {
                guard let unavailable else { throw RunError.usage(e.description) }
                unavailable(RunError.usage(e.description))
            }
        }
        return context
    }
}

/// A loaded model as policies' own passes see it (`ModelPass`): its forward pass, tokenizer and chat turn
/// strings, a synthetic needle case from KVKit's generated haystack, and `$KVKIT_HOME` for per-model results.
public final class LanguageModelPass: ModelPass, @unchecked Sendable {
    public let model: any LanguageModel
    public init(_ model: any LanguageModel) { self.model = model }

    public var layers: Int { model.config.layers }
    public var kvHeads: Int { model.config.kvHeads }
    public var heads: Int { model.config.heads }
    public var contextLength: Int { model.config.contextLength }
    public var hidden: Int { model.config.dim }
    public var headDim: Int { model.config.headDim }
    public var rope: RoPEInfo { model.rope }
    public func outputProjection(layer: Int) -> [Float] { model.outputProjection(layer: layer) }
    /// The file's SHA-256 (hashed on first use) and its arithmetic: the weight storage and the kernel build.
    public lazy var identity: (file: String, arithmetic: String) = (
        ModelIdentity(model: model).sha256,
        (model.weightsRecord.map { "-" + $0 } ?? "-f32") + (KernelBuild.name.map { "-" + $0 } ?? "")
    )
    public var home: String? { ModelLocation.kvkitHome }
    public func encode(_ text: String, addBOS: Bool) -> [Int32] { model.tokenizer.encode(text, addBOS: addBOS) }
    public var opening: String { model.chatTemplate.openingOfFirstUserTurn() }
    public var userToAssistant: String { model.chatTemplate.userToAssistant }
    public func makeCache() -> PagedKVCache { model.makeCache(pageSize: 16) }
    public func forward(_ tokens: [Int32], cache: PagedKVCache) throws { try model.forward(tokens, cache: cache) }

    /// A `niah` case on KVKit's generated haystack (seed 7), its question and the answer's opening after it.
    public func needleCase(length: Int, depth: Double, sample: Int) -> (prompt: [Int32], question: Int, needle: Range<Int32>)? {
        let generator = ProbeGenerator(tokenizer: model.tokenizer, chat: model.chatTemplate, haystackSeed: 7)
        guard let c = generator.make("niah", length: length, depth: depth, sample: sample, seed: 7), let turn = c.turns.first,
            let needle = c.needles.first
        else { return nil }
        let q = model.tokenizer.encode("\n\n" + turn.question + model.chatTemplate.userToAssistant + turn.answerPrefix)
        return (c.context + q, q.count, Int32(needle.start)..<Int32(needle.end))
    }
}
