/// Errors from reading a model file. Every case carries a one-line message that names the fix.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notGGUF(path: String)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int, fileSize: Int)
    case badValueType(UInt32, key: String)
    case unsupportedTensorType(name: String, type: UInt32)
    case tensorOutOfBounds(name: String)
    case badTensorShape(name: String)
    case missingKey(String)
    case missingTensor(String)
    case badMetadata(key: String, reason: String)
    /// A metadata key or tensor name that appears twice (llama.cpp rejects such files too).
    case duplicate(what: String, name: String)
    case misalignedTensor(name: String, offset: UInt64, alignment: Int)

    public var description: String {
        // Names and keys come from the file: quote them escaped and capped, never raw.
        let q = GGUFError.quote
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open model file \(path): \(reason) (run 'make setup' or pass --model PATH)"
        case let .notGGUF(path):
            return "\(path) is not a GGUF file (bad magic); pass a .gguf model with --model PATH"
        case let .unsupportedVersion(v):
            return "GGUF version \(v) is not supported (only v2 and v3); re-export the model with a current llama.cpp"
        case let .truncated(what, offset, size):
            return "model file is truncated: \(GGUFError.escape(what)) at byte \(offset) runs past the end (\(size) bytes); download it again with 'make setup'"
        case let .badValueType(t, key):
            return "metadata key \(q(key)) has unknown value type \(t); the file is corrupt or from a newer GGUF revision"
        case let .unsupportedTensorType(name, t):
            return
                "tensor \(q(name)) has type \(GGMLType(rawValue: t).map { "\($0)" } ?? "#\(t)"), which KVKit cannot read (supported: \(GGMLType.allCases.filter(\.canDequantize).map { "\($0)".uppercased() }.joined(separator: ", ")))"
        case let .tensorOutOfBounds(name):
            return "tensor \(q(name)) points outside the file; the file is corrupt, download it again with 'make setup'"
        case let .badTensorShape(name):
            return "tensor \(q(name)) has an invalid shape; the file is corrupt"
        case let .missingKey(key):
            return "model file lacks metadata key \(q(key)); is it a Llama-family GGUF?"
        case let .missingTensor(name):
            return "model file lacks tensor \(q(name)); is it a Llama-family GGUF?"
        case let .badMetadata(key, reason):
            return "metadata key \(q(key)) is invalid: \(reason)"
        case let .duplicate(what, name):
            return "\(what) \(q(name)) appears twice; the file is corrupt (llama.cpp refuses it too)"
        case let .misalignedTensor(name, offset, alignment):
            return "tensor \(q(name)) starts at data offset \(offset), not a multiple of the file's alignment \(alignment); the file is corrupt"
        }
    }

    /// A name from the file in quotes, non-printable characters escaped and at most 80 characters kept.
    public static func quote(_ s: String) -> String { "'" + escape(s) + "'" }

    public static func escape(_ s: String, limit: Int = 80) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if out.unicodeScalars.count >= limit { return out + "…(\(s.unicodeScalars.count) characters)" }
            out += u.properties.generalCategory == .control || u == "'" ? u.escaped(asASCII: true) : String(u)
        }
        return out
    }
}
