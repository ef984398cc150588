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

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open model file \(path): \(reason) (run 'make setup' or pass --model PATH)"
        case let .notGGUF(path):
            return "\(path) is not a GGUF file (bad magic); pass a .gguf model with --model PATH"
        case let .unsupportedVersion(v):
            return "GGUF version \(v) is not supported (only v2 and v3); re-export the model with a current llama.cpp"
        case let .truncated(what, offset, size):
            return "model file is truncated: \(what) at byte \(offset) runs past the end (\(size) bytes); download it again with 'make setup'"
        case let .badValueType(t, key):
            return "metadata key '\(key)' has unknown value type \(t); the file is corrupt or from a newer GGUF revision"
        case let .unsupportedTensorType(name, t):
            return "tensor '\(name)' has type \(GGMLType(rawValue: t).map { "\($0)" } ?? "#\(t)"), which KVKit cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)"
        case let .tensorOutOfBounds(name):
            return "tensor '\(name)' points outside the file; the file is corrupt, download it again with 'make setup'"
        case let .badTensorShape(name):
            return "tensor '\(name)' has an invalid shape; the file is corrupt"
        case let .missingKey(key):
            return "model file lacks metadata key '\(key)'; is it a Llama-family GGUF?"
        case let .missingTensor(name):
            return "model file lacks tensor '\(name)'; is it a Llama-family GGUF?"
        case let .badMetadata(key, reason):
            return "metadata key '\(key)' is invalid: \(reason)"
        }
    }
}
