import KVCache
import Models
import Policies

/// The one step that turns policies' `needs` into what their compression reads, shared by `kvkit run`
/// (`Runner`), `kept`, `generate` and the benches, so no command assembles it on its own: before the
/// prompt runs, the kernel's statistics are turned on (`Compressor.prepare`) and, when a policy reads
/// self-information, a logits tap collects it; after the prompt, `context` runs the passes the needs ask
/// for — KVzip's reconstruction on throw-away forks (counted as prefill), DuoAttention's head scores
/// (measured once per model file, then cached) — and returns the `CompressionContext`.
public struct PolicyPreparation {
    public let needs: ObservationNeeds
    private let selfInformation: SelfInformation?

    /// For every policy that will compress one prefill (their needs' union).
    public init(needs: ObservationNeeds) {
        self.needs = needs
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
    /// `timed` receives the seconds of each extra pass ("reconstruction", "calibration"). With `unavailable`,
    /// a pass that cannot run on this prompt (no room to re-read it) is reported there and left out (its
    /// policies then read nil and report n/a) instead of stopping every policy.
    public func context(_ cache: PagedKVCache, model: any LanguageModel, prompt: [Int32]? = nil,
                        timed: ((String, Double) -> Void)? = nil, unavailable: ((RunError) -> Void)? = nil) throws -> CompressionContext {
        var context = CompressionContext(tokenizer: model.tokenizer, selfInformation: selfInformation)
        let clock = ContinuousClock()
        if needs.reconstruction {
            let t = clock.now
            do {
                context.reconstruction = try prompt.map { try Reconstruction.scores(model: model, cache: cache, prompt: $0) }
                    ?? Reconstruction.scores(model: model, cache: cache)
                timed?("reconstruction", (clock.now - t).seconds)
            } catch let e as RunError {
                guard let unavailable else { throw e }
                unavailable(e)
            }
        }
        if needs.headCalibration {
            let t = clock.now
            context.headScores = try HeadCalibration.scores(model: model)
            timed?("calibration", (clock.now - t).seconds)
        }
        return context
    }
}
