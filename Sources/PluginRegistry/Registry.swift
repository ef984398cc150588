import Foundation

/// One typed parameter of a policy: its name, kind, default (the paper's) and meaning.
public struct ParameterSpec: Sendable {
    public enum Kind: Sendable {
        case int(ClosedRange<Int>)
        case double(ClosedRange<Double>)
        case choice([String])
        /// A name from a list read when the value is checked (a wrapper's part: the policies registered
        /// by then, plug-ins' included).
        case named(@Sendable () -> [String])
    }
    public let name: String
    public let kind: Kind
    public let defaultValue: String
    public let help: String
    /// A further condition on an integer (SnapKV's kernel is odd).
    public let rule: Rule?

    /// A named condition on an integer parameter; `text` reads as an adjective ("odd").
    public struct Rule: Sendable {
        public let text: String
        public let test: @Sendable (Int) -> Bool
        public init(_ text: String, _ test: @escaping @Sendable (Int) -> Bool) { self.text = text; self.test = test }
        public static let odd = Rule("odd") { $0 % 2 != 0 }
    }

    public init(_ name: String, _ kind: Kind, default d: String, _ help: String, rule: Rule? = nil) {
        self.name = name; self.kind = kind; defaultValue = d; self.help = help; self.rule = rule
    }

    public var expected: String {
        switch kind {
        case let .int(r): return "\(rule.map { "an \($0.text)" } ?? "an") integer in \(r.lowerBound)...\(r.upperBound)"
        case let .double(r): return "a number in \(r.lowerBound)...\(r.upperBound)"
        case let .choice(c): return "one of \(c.joined(separator: ", "))"
        case let .named(list): return "one of \(list().joined(separator: ", "))"
        }
    }

    public func accepts(_ value: String) -> Bool {
        switch kind {
        case let .int(r): return Int(value).map { r.contains($0) && rule?.test($0) != false } ?? false
        case let .double(r): return Double(value).map { $0.isFinite && r.contains($0) } ?? false
        case let .choice(c): return c.contains(value)
        case let .named(list): return list().contains(value)
        }
    }

    /// The values of `specs` given by `text` (`param=value,param=value`; nil or empty: none), defaults
    /// filled in. Mistakes are thrown as the caller words them (a policy's or a codec's errors).
    public static func resolve(
        _ text: String?, _ specs: [ParameterSpec], badSpec: () -> Error, unknown: (String) -> Error,
        badValue: (ParameterSpec, String) -> Error, repeated: ((String) -> Error)? = nil
    ) throws -> [String: String] {
        var values: [String: String] = [:], given = Set<String>()
        for p in specs { values[p.name] = p.defaultValue }
        guard let text, !text.isEmpty else { return values }
        for kv in text.split(separator: ",") {
            let pair = kv.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, !pair[0].isEmpty else { throw badSpec() }
            guard let spec = specs.first(where: { $0.name == pair[0] }) else { throw unknown(pair[0]) }
            guard spec.accepts(pair[1]) else { throw badValue(spec, pair[1]) }
            // `window=32,window=64` is a typo, not a choice: which one would a reader of the results think ran?
            guard given.insert(pair[0]).inserted else { throw repeated?(pair[0]) ?? badSpec() }
            values[pair[0]] = pair[1]
        }
        return values
    }
}

/// Validated parameter values of one instance (defaults filled in).
public struct PolicyParameters: Sendable, Equatable, Codable {
    public let values: [String: String]
    public init(values: [String: String]) { self.values = values }
    public func int(_ n: String) -> Int { Int(values[n]!)! }
    public func double(_ n: String) -> Double { Double(values[n]!)! }
    public func string(_ n: String) -> String { values[n]! }
}

/// What every registry entry (a policy, a codec, a probe) tells `kvkit policies` / `kvkit probes`, the
/// README tables and the tests: its name, a one-line summary, its paper and its typed parameters.
public protocol RegistryEntry: Sendable {
    var name: String { get }
    var summary: String { get }
    var paper: String { get }
    var parameters: [ParameterSpec] { get }
}

/// One registry for every kind of plug-in: entries by name in registration order. Built-ins are
/// listed once in their module; a plugin package adds its own with `register` before running KVKit's
/// command line, and every listing, parser and test matrix reads the same entries.
public final class Registry<Entry: RegistryEntry>: @unchecked Sendable {
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private let lock = NSLock()

    public init(_ entries: [Entry]) { for e in entries { register(e) } }

    /// Adds (or replaces) an entry.
    public func register(_ entry: Entry) {
        lock.lock(); defer { lock.unlock() }
        if entries.updateValue(entry, forKey: entry.name) == nil { order.append(entry.name) }
    }

    public var all: [Entry] { lock.lock(); defer { lock.unlock() }; return order.map { entries[$0]! } }
    public var names: [String] { all.map(\.name) }

    public func entry(_ name: String) -> Entry? { lock.lock(); defer { lock.unlock() }; return entries[name] }

    /// Splits `NAME[:param=value,...]`, finds the entry and checks every parameter; mistakes are thrown
    /// as the caller words them (a policy's, a codec's or a probe's errors).
    public func resolve(
        _ text: String, badSpec: () -> Error, unknown: (String, [String]) -> Error,
        unknownParameter: (Entry, String) -> Error, badValue: (Entry, ParameterSpec, String) -> Error,
        repeated: ((Entry, String) -> Error)? = nil
    ) throws -> (Entry, [String: String]) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw badSpec() }
        guard let e = entry(name) else { throw unknown(name, names) }
        let values = try ParameterSpec.resolve(
            parts.count == 2 ? parts[1] : nil, e.parameters, badSpec: badSpec,
            unknown: { unknownParameter(e, $0) }, badValue: { badValue(e, $0, $1) },
            repeated: repeated.map { r in { r(e, $0) } })
        return (e, values)
    }
}

extension Registry {
    /// A Markdown table of every entry (the README's tables are this text; a test keeps them equal).
    public func markdown(header: String) -> String {
        var out = header + "\n|---|---|---|---|\n"
        for e in all {
            let params = e.parameters.map { "`\($0.name)=\($0.defaultValue)`" }.joined(separator: ", ")
            out += "| `\(e.name)` | \(e.summary) | \(params.isEmpty ? "-" : params) | \(e.paper) |\n"
        }
        return out
    }

    /// A plain listing: each entry, its paper, and each parameter with its default, range and meaning.
    public func listing(title: String) -> String {
        var out = title + "\n"
        for e in all {
            out += "\(e.name) — \(e.summary)\n    paper: \(e.paper)\n"
            for s in e.parameters { out += "    \(s.name)=\(s.defaultValue)  (\(s.expected)) \(s.help)\n" }
        }
        return out
    }
}
