import Foundation
import KVCache

/// A registered page codec: name, one-line summary, paper, typed parameters and a factory.
public struct CodecInfo: RegistryEntry {
    public let name: String
    public let summary: String
    public let paper: String
    public let parameters: [ParameterSpec]
    public let make: @Sendable (PolicyParameters) throws -> CacheCodec

    public init(
        name: String, summary: String, paper: String, parameters: [ParameterSpec] = [],
        make: @escaping @Sendable (PolicyParameters) throws -> CacheCodec
    ) {
        self.name = name; self.summary = summary; self.paper = paper; self.parameters = parameters; self.make = make
    }
}

extension CodecInfo {
    /// The entry of a codec whose settings are `@Parameter` properties of `S` (`S()` holds the defaults).
    public init<S: Configurable>(
        name: String, summary: String, paper: String, settings: S.Type,
        make: @escaping @Sendable (S) -> CacheCodec
    ) {
        self.init(name: name, summary: summary, paper: paper, parameters: S.parameterSpecs) { p in
            do { return make(try S.configured(p.values)) } catch let e as ParameterError {
                throw PolicyError.badQuant("codec '\(name)': \(e)")
            }
        }
    }
}

/// Settings of a codec with no parameter but the full-precision residual (fp32, fp16).
public struct ResidualSettings: Configurable {
    @Parameter("residual", 0...1_000_000, "most recent tokens per stream kept in full precision (only full pages outside it are packed)")
    public var residual = 0
    public init() {}
}

/// The page codecs: `Registry<CodecInfo>`. `--quant` values are `NAME[:param=value,...]` for keys and
/// values alike, or `KEYS/VALUES` to give each its own codec (`int4/fp16`: 4-bit keys, half-precision
/// values; the larger residual of the two applies).
public typealias CodecRegistry = Registry<CodecInfo>

private let sharedCodecs = CodecRegistry([
    FP32Codec.info, FP16Codec.info, Int8Codec.info, Int4Codec.info, KIVICodec.info2, KIVICodec.info4,
    RotatedCodec.info(bits: 2), RotatedCodec.info(bits: 3), RotatedCodec.info(bits: 4),
])

extension Registry where Entry == CodecInfo {
    public static var shared: CodecRegistry { sharedCodecs }

    /// The codec a `--quant` item names (fp32 means "no quantization" and gives nil).
    public func make(_ text: String) throws -> CacheCodec? {
        let sides = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard sides.count <= 2 else {
            throw PolicyError.badQuant("cannot parse --quant '\(text)'; write NAME, NAME:param=value or KEYS/VALUES such as int4/fp16")
        }
        let codecs = try sides.map(one)
        if codecs.count == 1 { return codecs[0].name == "fp32" && codecs[0].residual == 0 ? nil : codecs[0] }
        return CacheCodec(
            name: codecs[0].name + "/" + codecs[1].name, keys: codecs[0].keys, values: codecs[1].values,
            residual: max(codecs[0].residual, codecs[1].residual), preferredPageSize: codecs[0].preferredPageSize ?? codecs[1].preferredPageSize)
    }

    private func one(_ text: String) throws -> CacheCodec {
        let (info, values) = try resolve(
            text, badSpec: { PolicyError.badQuant("cannot parse codec '\(text)'; write NAME or NAME:param=value") },
            unknown: { PolicyError.badQuant("unknown codec '\($0)'; accepted: \($1.joined(separator: ", ")) (see 'kvkit policies')") },
            unknownParameter: {
                PolicyError.badQuant("codec '\($0.name)' has no parameter '\($1)'; accepted: \($0.parameters.map(\.name).joined(separator: ", "))")
            },
            badValue: { PolicyError.badQuant("codec '\($0.name)': \($1.name)=\($2) is invalid; expected \($1.expected)") },
            repeated: { PolicyError.repeatedParameter(spec: text, name: $1) })
        return try info.make(PolicyParameters(values: values))
    }
}

/// Splits a comma-separated list of specs whose parameters are comma-separated too: an item with `=`
/// and no `:` continues the previous item (`snapkv:window=8,gqa=max,h2o` → `snapkv:window=8,gqa=max`, `h2o`).
public func splitSpecList(_ text: String) -> [String] {
    var out: [String] = []
    for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
        let item = raw.trimmingCharacters(in: .whitespaces)
        if item.contains("="), !item.contains(":"), !item.contains("/"), let last = out.popLast() {
            out.append(last + "," + item)
        } else {
            out.append(item)
        }
    }
    return out
}
