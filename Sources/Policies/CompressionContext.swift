import Foundation
import KVCache

/// What a policy may need from the prefill besides the cache's K/V and attention statistics: the text
/// of a token (policies that keep whole sentences) and each token's self-information (Selective
/// Context). The runner builds it beside each cache — the cache itself holds storage and attention
/// statistics only.
public struct CompressionContext: Sendable {
    /// The text of a token id as the model's tokenizer writes it (nil: no tokenizer; spans then fall
    /// back to their length limit).
    public var tokenText: (@Sendable (Int32) -> String)?
    /// Indexed by position: −log p(token | tokens before it) in nats under the model (nil: not measured).
    public var selfInformation: [Float]?
    /// The results of the policies' own passes (`EvictionPolicy.passes`), by pass key (a pass that could
    /// not run on this prompt is absent: its policies report n/a).
    public var prepared: [String: any Sendable]

    public init(tokenText: (@Sendable (Int32) -> String)? = nil, selfInformation: [Float]? = nil, prepared: [String: any Sendable] = [:]) {
        self.tokenText = tokenText; self.selfInformation = selfInformation; self.prepared = prepared
    }
}

/// Collects each token's self-information from the model's logits as the prompt runs: pass `record`
/// as the forward pass's logits tap. The row before a call's first token is carried over between calls
/// (prefill chunks), so only position 0, which has no row before it, reads 0.
public final class SelfInformation: @unchecked Sendable {
    /// Indexed by position, in nats.
    public private(set) var values: [Float] = []
    private var previous: [Float]?
    private var previousPosition = -1
    public init() {}

    /// Records the rows of one forward pass: `logits` is `[tokens.count][vocab]`, the first row at `firstPosition`.
    public func record(_ tokens: ArraySlice<Int32>, _ firstPosition: Int, _ logits: UnsafeBufferPointer<Float>) {
        let n = tokens.count
        guard n > 0, logits.count % n == 0 else { return }
        let V = logits.count / n
        if values.count < firstPosition + n { values += repeatElement(0, count: firstPosition + n - values.count) }
        let base = logits.baseAddress!
        for (r, token) in tokens.enumerated() {
            if r > 0 {
                values[firstPosition + r] = Self.surprise(base + (r - 1) * V, V, Int(token))
            } else if let p = previous, previousPosition == firstPosition - 1 {
                values[firstPosition] = p.withUnsafeBufferPointer { Self.surprise($0.baseAddress!, V, Int(token)) }
            }
        }
        previous = Array(logits[((n - 1) * V)..<(n * V)])
        previousPosition = firstPosition + n - 1
    }

    /// −log softmax(row)[token], in nats.
    static func surprise(_ row: UnsafePointer<Float>, _ n: Int, _ token: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, row[i]) }
        var sum = 0.0
        for i in 0..<n { sum += Foundation.exp(Double(row[i] - m)) }
        return Float(Double(m) + Foundation.log(sum) - Double(row[token]))
    }
}

/// What one compression did and left behind: its figures, and the page selector later attention passes
/// must read through (Quest; nil: every page). The caller keeps the selector beside the cache.
public struct Compression: Sendable {
    public var stats: CompressionStats
    public var reads: (any PageSelector)?
}
