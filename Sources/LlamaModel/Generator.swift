import KVCache
import TensorMath

/// Greedy decoding over a paged cache, with timings.
public struct Generation: Sendable {
    public var tokens: [Int32] = []
    public var promptTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var stoppedAtEOS = false
    /// Logits that chose each generated token (kept only when asked).
    public var stepLogits: [[Float]] = []

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Decode rate over the forward passes after the first generated token.
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(tokens.count - 1, 0)) / decodeSeconds : 0 }
}

extension LlamaModel {
    /// Prefills `prompt` into `cache`, then greedily generates up to `maxTokens` tokens (argmax of raw
    /// logits), stopping at an end-of-turn token unless `stopAtEOS` is false. `onToken` sees each token.
    public func generate(prompt: [Int32], cache: PagedKVCache, maxTokens: Int, stopAtEOS: Bool = true,
                         keepLogits: Bool = false, onToken: (Int32) -> Void = { _ in }) throws -> Generation {
        var g = Generation()
        g.promptTokens = prompt.count
        let clock = ContinuousClock()
        var logits: [Float] = []
        g.prefillSeconds = try clock.measure { logits = try forward(prompt, cache: cache) }.seconds
        let t0 = clock.now
        for step in 0..<maxTokens {
            let next = Int32(logits.withUnsafeBufferPointer { Vector.argmax($0) })
            if keepLogits { g.stepLogits.append(logits) }
            g.tokens.append(next)
            onToken(next)
            if stopAtEOS && tokenizer.stopIds.contains(next) { g.stoppedAtEOS = true; break }
            if step == maxTokens - 1 { break }
            logits = try forward([next], cache: cache)
        }
        g.decodeSeconds = (clock.now - t0).seconds
        return g
    }
}

extension Duration {
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
