/// Errors in policy specifications given by the user. Each message is one line listing what is accepted.
public enum PolicyError: Error, CustomStringConvertible, Equatable {
    case unknownPolicy(String, accepted: [String])
    case unknownParameter(policy: String, name: String, accepted: [String])
    case badValue(policy: String, name: String, value: String, expected: String)
    case badSpec(String)
    /// One parameter set twice (`snapkv:window=32,window=64`).
    case repeatedParameter(spec: String, name: String)
    case badBudget(String)
    /// A `--quant` mistake, with its full one-line message.
    case badQuant(String)
    /// A policy's own pass cannot run on this input (KVzip: no room after the prompt to re-read it); the
    /// message names the fix.
    case passUnavailable(policy: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownPolicy(n, acc):
            return "unknown policy '\(n)'; accepted: \(acc.joined(separator: ", ")) (see 'kvkit policies')"
        case let .unknownParameter(p, n, acc):
            return "policy '\(p)' has no parameter '\(n)'; accepted: \(acc.isEmpty ? "none" : acc.joined(separator: ", "))"
        case let .badValue(p, n, v, e):
            return "policy '\(p)': \(n)=\(v) is invalid; expected \(e)"
        case let .badSpec(s):
            return "cannot parse policy '\(s)'; write NAME or NAME:param=value,param=value"
        case let .repeatedParameter(spec, n):
            return "'\(spec)' sets \(n) twice; give each parameter once"
        case let .badBudget(b):
            return "budget '\(b)' is invalid; give a fraction in (0, 1] such as 0.25, or a token count ≥ 1 such as 256"
        case let .badQuant(m):
            return m
        case let .passUnavailable(p, r):
            return "\(p): \(r)"
        }
    }
}
