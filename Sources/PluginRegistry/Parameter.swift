import Foundation

/// A value a hyper-parameter can hold: an integer, a number, or a choice (a `String` enum).
public protocol ParameterValue: Codable, Sendable, Equatable {
    /// The value as a spec writes it (`32`, `0.5`, `max`).
    var parameterText: String { get }
}

extension Int: ParameterValue { public var parameterText: String { String(self) } }
extension Double: ParameterValue {
    /// Whole numbers print without a fraction (`beta=20`), as specs and summaries have always written them.
    public var parameterText: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// A choice parameter: a `String`-backed enum whose cases are the accepted values.
public protocol ParameterChoice: ParameterValue, RawRepresentable<String>, CaseIterable {}
extension ParameterChoice { public var parameterText: String { rawValue } }

/// A parameter that names an entry of a list known only at run time (a wrapper policy's part: any
/// registered policy, plug-ins' included). Held as its name; `accepted` is read each time a value is checked.
public protocol ParameterName: ParameterValue, RawRepresentable<String> {
    static var accepted: [String] { get }
}
extension ParameterName { public var parameterText: String { rawValue } }

/// One hyper-parameter, declared once where it is stored:
///
/// ```swift
/// @Parameter("kernel", 1...63, "pooling width over neighbouring tokens", rule: .odd) public var kernel = 7
/// ```
///
/// gives the stored value, its default (the initial value), its range or choices, its help text and
/// its validation, whichever way the owner is built: from a CLI spec or sweep config
/// (`Configurable.configured`), or by its Swift initializer (checked by `Configurable.validate()`, which
/// the compressor calls before it uses a policy).
@propertyWrapper
public struct Parameter<Value: ParameterValue>: Sendable, Codable, Equatable {
    public var wrappedValue: Value
    /// The declaration (nil in a value decoded from JSON: the type's default instance carries it).
    public let spec: ParameterSpec?

    public init(wrappedValue: Value, _ name: String, _ range: ClosedRange<Int>, _ help: String, rule: ParameterSpec.Rule? = nil) where Value == Int {
        self.wrappedValue = wrappedValue
        spec = ParameterSpec(name, .int(range), default: wrappedValue.parameterText, help, rule: rule)
    }
    public init(wrappedValue: Value, _ name: String, _ range: ClosedRange<Double>, _ help: String) where Value == Double {
        self.wrappedValue = wrappedValue
        spec = ParameterSpec(name, .double(range), default: wrappedValue.parameterText, help)
    }
    public init(wrappedValue: Value, _ name: String, _ help: String) where Value: ParameterChoice {
        self.wrappedValue = wrappedValue
        spec = ParameterSpec(name, .choice(Value.allCases.map(\.rawValue)), default: wrappedValue.rawValue, help)
    }

    public init(wrappedValue: Value, _ name: String, _ help: String) where Value: ParameterName {
        self.wrappedValue = wrappedValue
        spec = ParameterSpec(name, .named { Value.accepted }, default: wrappedValue.rawValue, help)
    }

    public init(from decoder: Decoder) throws { wrappedValue = try Value(from: decoder); spec = nil }
    public func encode(to encoder: Encoder) throws { try wrappedValue.encode(to: encoder) }
    public static func == (a: Self, b: Self) -> Bool { a.wrappedValue == b.wrappedValue }
}

/// What `Configurable` reads from a `Parameter` without knowing its value type.
protocol AnyParameter {
    var spec: ParameterSpec? { get }
    var text: String { get }
}
extension Parameter: AnyParameter { var text: String { wrappedValue.parameterText } }

/// A parameter value outside its declaration (a Swift initializer given `kernel: 4`).
public struct ParameterError: Error, CustomStringConvertible, Equatable {
    public let name: String, value: String, expected: String
    public var description: String { "\(name)=\(value) is invalid; expected \(expected)" }
}

/// A type whose hyper-parameters are `@Parameter` properties (a policy, a codec's settings, a probe).
/// Stored `Configurable` properties (PyramidKV's SnapKV scoring) contribute their parameters too, under
/// their own names. `init()` gives the defaults.
public protocol Configurable: Codable, Sendable {
    init()
}

/// One declared parameter found in a value: where it is stored (for JSON), its declaration and value.
private struct Field {
    let path: [String]
    let spec: ParameterSpec?
    let text: String
}

private func fields(_ value: Any, prefix: [String] = []) -> [Field] {
    Mirror(reflecting: value).children.flatMap { child -> [Field] in
        guard var label = child.label else { return [] }
        if let p = child.value as? AnyParameter {
            if label.hasPrefix("_") { label.removeFirst() }
            return [Field(path: prefix + [label], spec: p.spec, text: p.text)]
        }
        if child.value is any Configurable { return fields(child.value, prefix: prefix + [label]) }
        return []
    }
}

extension Configurable {
    /// The defaults with some parameters changed: `SnapKVPolicy { $0.window = 8; $0.pool = .avg }`.
    /// Nothing is checked here; `validate()` (which the compressor calls) checks every value.
    public init(_ configure: (inout Self) -> Void) {
        self.init()
        configure(&self)
    }

    /// Every declared parameter, in declaration order (nested configurables in place).
    public static var parameterSpecs: [ParameterSpec] { fields(Self()).compactMap(\.spec) }

    /// Each parameter's value as a spec writes it, by parameter name.
    public var parameterValues: [String: String] {
        let declared = fields(Self()), mine = fields(self)
        return Dictionary(zip(declared, mine).compactMap { d, m in d.spec.map { ($0.name, m.text) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Checks every parameter against its declaration (range, choices, rule): a value set by a Swift
    /// initializer goes through the same check as one given on the command line.
    public func validate() throws {
        for (d, m) in zip(fields(Self()), fields(self)) {
            guard let spec = d.spec, !spec.accepts(m.text) else { continue }
            throw ParameterError(name: spec.name, value: m.text, expected: spec.expected)
        }
    }

    /// The value whose parameters are `values` (by parameter name, as a spec writes them; the rest keep
    /// their defaults), validated.
    public static func configured(_ values: [String: String]) throws -> Self {
        var tree = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self())) as? [String: Any] ?? [:]
        for f in fields(Self()) {
            guard let spec = f.spec, let text = values[spec.name] else { continue }
            guard spec.accepts(text) else { throw ParameterError(name: spec.name, value: text, expected: spec.expected) }
            let typed: Any
            switch spec.kind {
            case .int: typed = Int(text)!
            case .double: typed = Double(text)!
            case .choice, .named: typed = text
            }
            set(&tree, f.path[...], typed)
        }
        let made = try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: tree))
        try made.validate()
        return made
    }
}

private func set(_ tree: inout [String: Any], _ path: ArraySlice<String>, _ value: Any) {
    guard let key = path.first else { return }
    if path.count == 1 { tree[key] = value; return }
    var sub = tree[key] as? [String: Any] ?? [:]
    set(&sub, path.dropFirst(), value)
    tree[key] = sub
}
