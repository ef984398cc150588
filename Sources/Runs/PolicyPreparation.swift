import Foundation
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
    /// Results of the passes that run before the prompt, by key (kept across `begin` calls: per model).
    private let early = EarlyResults()

    /// For every policy that will compress one prefill (the union of their needs, each pass once).
    public init(policies: [any EvictionPolicy]) {
        needs = policies.reduce(ObservationNeeds.none) { $0.union($1.needs) }
        passes = policies.flatMap(\.passes).uniqued()
        selfInformation = needs.selfInformation ? SelfInformation() : nil
    }

    /// Turns on the statistics `needs` asks for over a prompt whose last token is at `promptEnd − 1` (its last
    /// `question` tokens the question, in query-aware runs), and runs the passes that come before the prompt
    /// (once per key), installing the taps among their results.
    public func begin(_ cache: PagedKVCache, model: any LanguageModel, promptEnd: Int, question: Int? = nil) throws {
        Compressor.prepare(cache, needs: needs, promptEnd: promptEnd, rope: model.rope, question: question)
        for pass in passes where pass.stage == .beforePrompt {
            let result: any Sendable
            if let r = early.results[pass.key] {
                result = r
            } else {
                do { result = try pass.run(LanguageModelPass(model), cache, nil) } catch let e as PolicyError { throw RunError.usage(e.description) }
                early.results[pass.key] = result
            }
            if let tap = result as? any LayerInputTap {
                if cache.observations == nil {
                    cache.observations = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: cache.group, windowStart: nil)
                }
                cache.observations!.inputTaps.install(tap)
            }
        }
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
        for pass in passes where pass.stage == .beforePrompt {
            // A tap as it stands now (it has seen the prompt); any other result as `begin` computed it.
            context.prepared[pass.key] = cache.observations?.inputTaps[pass.key] ?? early.results[pass.key]
        }
        for pass in passes where pass.stage == .afterPrompt {
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

/// Before-prompt results, shared by the copies of one preparation (the hooks' closures hold one).
private final class EarlyResults: @unchecked Sendable {
    private let lock = NSLock()
    private var store: [String: any Sendable] = [:]
    var results: [String: any Sendable] {
        get { lock.lock(); defer { lock.unlock() }; return store }
        set { lock.lock(); defer { lock.unlock() }; store = newValue }
    }
}

/// A loaded model as policies' own passes see it (`ModelPass`): its forward pass, tokenizer and chat turn
/// strings, a synthetic needle case from KVKit's generated haystack, and `$KVKIT_HOME` for per-model results.
public final class LanguageModelPass: ModelPass, @unchecked Sendable {
    public let model: any LanguageModel
    private let report: (@Sendable (Int, Int, String) -> Void)?
    /// `progress` receives a long pass's progress (`kvkit calibrate` draws it).
    public init(_ model: any LanguageModel, progress: (@Sendable (Int, Int, String) -> Void)? = nil) { self.model = model; self.report = progress }
    public func progress(done: Int, total: Int, label: String) { report?(done, total, label) }

    public var layers: Int { model.config.layers }
    public var kvHeads: Int { model.config.kvHeads }
    public var heads: Int { model.config.heads }
    public var contextLength: Int { model.config.contextLength }
    public var hidden: Int { model.config.dim }
    public var headDim: Int { model.config.headDim }
    public var rope: RoPEInfo { model.rope }
    public func outputProjection(layer: Int) -> [Float] { model.outputProjection(layer: layer) }
    /// The file's SHA-256 (hashed once per loaded file, `ModelIdentity.sha256(of:)`) and its arithmetic:
    /// the weight storage and the kernel build.
    public lazy var identity: (file: String, arithmetic: String) = (
        ModelIdentity.sha256(of: model),
        (model.weightsRecord.map { "-" + $0 } ?? "-f32") + (KernelBuild.name.map { "-" + $0 } ?? "")
            + (PagedAttention.record(headDim: model.config.headDim).map { "-attn-" + $0 } ?? "")
    )
    public var home: String? { ModelLocation.kvkitHome }
    public func encode(_ text: String, addBOS: Bool) -> [Int32] { model.tokenizer.encode(text, addBOS: addBOS) }
    public var opening: String { model.chatTemplate.openingOfFirstUserTurn() }
    public var userToAssistant: String { model.chatTemplate.userToAssistant }
    public func makeCache() -> PagedKVCache { model.makeCache(pageSize: 16) }
    public func forward(_ tokens: [Int32], cache: PagedKVCache) throws { try model.forward(tokens, cache: cache) }

    /// Essay text from `$KVKIT_HOME/PaulGrahamEssays`, the essays' sentences from the last backwards, cut
    /// into pieces of `tokens` tokens (nil without the essays, or past their end).
    public func calibrationText(tokens: Int, sample: Int) -> [Int32]? {
        guard let files = try? EssayHaystack.files(in: ModelLocation.kvkitHome + "/" + EssayHaystack.folderName), !files.isEmpty
        else { return nil }
        var out: [Int32] = [], skipped = 0
        for sentence in EssayHaystack.sentences(files).reversed() {
            out += model.tokenizer.encode(" " + sentence)
            if out.count >= tokens {
                if skipped == sample { return Array(out.prefix(tokens)) }
                skipped += 1; out = []
            }
        }
        return nil
    }

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

extension PolicyPreparation {
    /// Runs the per-model passes of `policies` (those before the prompt: DuoAttention's head scores,
    /// KVzap's predictor) now, so they are kept in `$KVKIT_HOME` before a study needs them: `kvkit
    /// calibrate`. Returns each pass's key and seconds; `progress` gets a long pass's progress.
    public static func calibrate(
        _ policies: [any EvictionPolicy], model: any LanguageModel, progress: (@Sendable (Int, Int, String) -> Void)? = nil
    ) throws -> [(key: String, seconds: Double, summary: String?)] {
        let passes = policies.flatMap(\.passes).uniqued().filter { $0.stage == .beforePrompt }
        guard !passes.isEmpty else {
            let calibrated = PolicyRegistry.shared.names.filter { n in
                !PolicyName.wrappers.contains(n) && (try? PolicyRegistry.shared.make(n))?.passes.contains { $0.stage == .beforePrompt } ?? false
            }
            throw RunError.usage(
                "\(policies.map(\.name).joined(separator: ", ")) has nothing to calibrate; the policies that do: \(calibrated.joined(separator: ", "))")
        }
        let clock = ContinuousClock(), view = LanguageModelPass(model, progress: progress)
        return try passes.map { pass in
            let t = clock.now
            let result: any Sendable
            do { result = try pass.run(view, model.makeCache(pageSize: 16), nil) } catch let e as PolicyError { throw RunError.usage(e.description) }
            return (pass.key, (clock.now - t).seconds, (result as? any PassSummary)?.summary)
        }
    }
}
