import Foundation
@_exported import PluginRegistry

/// A registered policy: name, one-line summary, paper, typed parameters and a factory.
public struct PolicyInfo: RegistryEntry {
    public let name: String
    public let summary: String
    public let paper: String
    public let parameters: [ParameterSpec]
    public let make: @Sendable (PolicyParameters) throws -> any EvictionPolicy

    public init(
        name: String, summary: String, paper: String, parameters: [ParameterSpec] = [],
        make: @escaping @Sendable (PolicyParameters) throws -> any EvictionPolicy
    ) {
        self.name = name; self.summary = summary; self.paper = paper; self.parameters = parameters; self.make = make
    }
}

extension PolicyInfo {
    /// The entry of a policy whose hyper-parameters are `@Parameter` properties: its name, parameter
    /// table and factory all read the type (`P()` holds the defaults).
    public init<P: EvictionPolicy & Configurable>(_ type: P.Type, summary: String, paper: String) {
        let name = P().name
        self.init(name: name, summary: summary, paper: paper, parameters: P.parameterSpecs) { p in
            do { return try P.configured(p.values) } catch let e as ParameterError {
                throw PolicyError.badValue(policy: name, name: e.name, value: e.value, expected: e.expected)
            }
        }
    }
}

/// A parsed `NAME[:param=value,...]` with its validated parameters.
public struct PolicySpec: Sendable, Equatable, Codable, CustomStringConvertible {
    public let name: String
    public let parameters: PolicyParameters
    public var description: String {
        let p = parameters.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return p.isEmpty ? name : "\(name):\(p)"
    }
}

/// The policies: `Registry<PolicyInfo>`. The CLI's `--policy` parsing, `kvkit policies`, the conformance
/// tests and the README table all read this one list. Plugins add theirs with `register`.
public typealias PolicyRegistry = Registry<PolicyInfo>

private let sharedPolicies = PolicyRegistry(PolicyRegistry.builtIn)

extension Registry where Entry == PolicyInfo {
    public static var shared: PolicyRegistry { sharedPolicies }

    public func info(_ name: String) -> PolicyInfo? { entry(name) }

    /// Parses `NAME` or `NAME:param=value,param=value`, validating every parameter.
    public func parse(_ text: String) throws -> PolicySpec {
        // `compose:A+B` is shorthand for `compose:first=A,then=B`.
        var text = text
        if text.hasPrefix("compose:"), !text.contains("="), case let parts = text.dropFirst(8).split(separator: "+"), parts.count == 2 {
            text = "compose:first=\(parts[0]),then=\(parts[1])"
        }
        let (info, values) = try resolve(
            text, badSpec: { PolicyError.badSpec(text) }, unknown: { PolicyError.unknownPolicy($0, accepted: $1) },
            unknownParameter: { PolicyError.unknownParameter(policy: $0.name, name: $1, accepted: $0.parameters.map(\.name)) },
            badValue: { PolicyError.badValue(policy: $0.name, name: $1.name, value: $2, expected: $1.expected) },
            repeated: { PolicyError.repeatedParameter(spec: text, name: $1) })
        return PolicySpec(name: info.name, parameters: PolicyParameters(values: values))
    }

    /// Builds the policy a spec names.
    public func make(_ spec: PolicySpec) throws -> any EvictionPolicy {
        guard let info = info(spec.name) else { throw PolicyError.unknownPolicy(spec.name, accepted: names) }
        return try info.make(spec.parameters)
    }

    public func make(_ text: String) throws -> any EvictionPolicy { try make(parse(text)) }

    /// The built-in policies, one line each; each file holds the policy and its `info`.
    static let builtIn: [PolicyInfo] = [
        FullPolicy.info, RandomPolicy.info, StreamingLLMPolicy.info, H2OPolicy.info, TOVAPolicy.info,
        SnapKVPolicy.info, FinchPolicy.info, RKVPolicy.info, PyramidKVPolicy.info, KNormPolicy.info, KeyDiffPolicy.info, CURPolicy.info, LeveragePolicy.info,
        CompactorPolicy.info, LagKVPolicy.info, QFilterPolicy.info,
        ExpectedAttentionPolicy.info, KVzipPolicy.info, KVzapPolicy.info, FastKVzipPolicy.info, KVComposePolicy.info, DuoAttentionPolicy.info, AdaKVPolicy.info,
        ComposePolicy.info,
        CriticalKVPolicy.info,
        ChunkKVPolicy.info, SentenceKVPolicy.info, QuestPolicy.info, SelectiveContextPolicy.info,
    ]
}

/// The help of every policy's `gqa` parameter.
let groupHelp = "combine the scores of query heads sharing a KV head by mean or max"

/// A wrapper's part (`compose:first=duo,then=kvzip`, `adakv:base=h2o`): the name of a registered policy —
/// built in or a plug-in's — that frees tokens by itself, made with its defaults. Wrappers, `full` and
/// read-side policies (`quest`) are not parts: a part must choose which slots stay.
public struct PolicyName: ParameterName, ExpressibleByStringLiteral, Hashable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral s: String) { rawValue = s }

    /// The wrappers themselves (a part of a part would hide which statistics ran).
    public static let wrappers: Set<String> = ["compose", "adakv", "criticalkv"]

    public static var accepted: [String] {
        PolicyRegistry.shared.names.filter { name in
            guard !wrappers.contains(name), let p = try? PolicyRegistry.shared.make(name) else { return false }
            return p.evicts && p.compresses
        }
    }

    /// The policy with its defaults (nil: a name no registered policy has; `validate()` reports it).
    public var policy: (any EvictionPolicy)? {
        Self.wrappers.contains(rawValue) ? nil : try? PolicyRegistry.shared.make(rawValue)
    }
}
