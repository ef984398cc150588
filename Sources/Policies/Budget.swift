import Foundation

/// How much of each stream a policy keeps: a fraction of its tokens or a token count.
/// A value with a decimal point is a fraction in (0, 1]; a whole number is a token count ≥ 1.
public enum Budget: Sendable, Equatable, Codable, CustomStringConvertible {
    case fraction(Double)
    case tokens(Int)

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.contains(".") || t.contains("e") {
            guard let f = Double(t), f.isFinite, f > 0, f <= 1 else {
                throw PolicyError.badBudget(text)
            }
            self = .fraction(f)
        } else {
            guard let n = Int(t), n >= 1 else { throw PolicyError.badBudget(text) }
            self = .tokens(n)
        }
    }

    /// Tokens kept from a stream of `count` (at least one while the stream is not empty).
    public func tokens(for count: Int) -> Int {
        switch self {
        case let .fraction(f): return count == 0 ? 0 : min(count, max(1, Int((f * Double(count)).rounded())))
        case let .tokens(n): return min(n, count)
        }
    }

    /// The budget a compression while decoding keeps: this budget resolved against the prompt's `count`
    /// tokens, fixed in tokens per stream (R-KV's fixed cache size), so compressing again does not shrink
    /// the cache further as a fraction of what it holds would.
    public func fixed(atPrompt count: Int) -> Budget { .tokens(tokens(for: count)) }

    public var isFull: Bool { if case let .fraction(f) = self { return f >= 1 } else { return false } }

    public var description: String {
        switch self {
        case let .fraction(f): return "\(f)"
        case let .tokens(n): return "\(n)"
        }
    }
}
