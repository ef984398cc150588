import Foundation

/// Locations of the real model and of the committed llama.cpp reference outputs, and readers for them.
/// Used by KVKit's own tests; plugin authors can use it to find the model the same way.
public enum TestSupport {
    /// The model `make setup` fetched ($KVKIT_HOME or ~/.cache/kvkit).
    public static var modelPath: String { home + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// Gemma 3 270M (base, Q4_K_M), fetched by `make setup MODELS=gemma3` (and by `make test`).
    public static var gemmaPath: String { home + "/gemma-3-270m-q4_k_m.gguf" }

    /// Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct, fetched by `make setup MODELS=qwen0.5b,qwen1.5b`
    /// (`make test` fetches the 0.5B one).
    public static var qwen05Path: String { home + "/qwen2.5-coder-0.5b-instruct.gguf" }
    public static var qwen15Path: String { home + "/qwen2.5-coder-1.5b-instruct.gguf" }

    /// llama.cpp's outputs on the Qwen2.5-Coder files (`Tests/Fixtures/reference-qwen2.5-coder`).
    public static func qwenReferenceDirectory(file: String = #filePath) -> String {
        repositoryRoot(file: file) + "/Tests/Fixtures/reference-qwen2.5-coder"
    }

    /// $KVKIT_HOME, or ~/.cache/kvkit.
    public static var home: String {
        ProcessInfo.processInfo.environment["KVKIT_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache/kvkit"
    }

    /// llama.cpp's and a float32 forward pass's outputs on the SmolLM2 file, committed with the tests
    /// (`Tests/Fixtures/reference-smollm2`, its README says how they were made; override with KVKIT_REFERENCE).
    public static func referenceDirectory(file: String = #filePath) -> String {
        if let r = ProcessInfo.processInfo.environment["KVKIT_REFERENCE"], !r.isEmpty { return r }
        return repositoryRoot(file: file) + "/Tests/Fixtures/reference-smollm2"
    }

    /// llama.cpp's outputs on the Gemma 3 270M file (`Tests/Fixtures/reference-gemma3`).
    public static func gemmaReferenceDirectory(file: String = #filePath) -> String {
        repositoryRoot(file: file) + "/Tests/Fixtures/reference-gemma3"
    }

    /// The checkout this file belongs to (the folder holding Package.swift).
    public static func repositoryRoot(file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// The real model, loaded once per test process; a missing or broken file fails each test that
    /// needs it with a message naming the fix, instead of stopping the whole suite.
    public static func loadOnce<T>(_ make: () throws -> T) -> Result<T, Failure> {
        do { return .success(try make()) } catch {
            return .failure(Failure("cannot load \(modelPath): \(error); run 'make setup' to fetch the model"))
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }

    /// Reads a little-endian float32 NumPy `.npy` file (format v1/v2).
    public static func readNpyFloat32(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        guard bytes.count > 10, bytes[0] == 0x93, String(decoding: bytes[1..<6], as: UTF8.self) == "NUMPY" else {
            throw Failure("\(path) is not a .npy file")
        }
        let major = bytes[6]
        let headerLen: Int, start: Int
        if major == 1 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        } else {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; start = 12
        }
        let header = String(decoding: bytes[start..<(start + headerLen)], as: UTF8.self)
        guard header.contains("'<f4'"), header.contains("'fortran_order': False") else { throw Failure("\(path): expected little-endian float32, C order") }
        let body = bytes[(start + headerLen)...]
        return body.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// The prompts of `llamacpp_anchors.json` or `numpy_anchors.json`.
    public struct Anchor: Decodable {
        public let text: String?
        public let token_ids: [Int32]?
        public let top20_ids: [Int]?
        public let greedy16_ids: [Int32]?
        public let greedy16_text: String?
        public let last_logits_file: String?
        public let step16_logits_file: String?
    }

    public static func anchors(_ name: String = "llamacpp_anchors.json", directory: String? = nil) throws -> [String: Anchor] {
        struct File: Decodable { let prompts: [String: Anchor] }
        let url = URL(fileURLWithPath: directory ?? referenceDirectory()).appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw Failure("reference file \(url.path) is missing; it is committed under Tests/Fixtures (or set KVKIT_REFERENCE)")
        }
        return try JSONDecoder().decode(File.self, from: data).prompts
    }

    /// Cosine similarity and max abs difference of two equal-length vectors.
    public static func compare(_ a: [Float], _ b: [Float]) -> (cosine: Double, maxAbs: Double) {
        precondition(a.count == b.count, "vectors differ in length")
        var dot = 0.0, na = 0.0, nb = 0.0, mx = 0.0
        for i in a.indices {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y; na += x * x; nb += y * y
            mx = max(mx, abs(x - y))
        }
        return (dot / (na.squareRoot() * nb.squareRoot()), mx)
    }

    /// Indices of the k largest values, largest first.
    public static func topK(_ x: [Float], _ k: Int) -> [Int] {
        Array(x.indices.sorted { x[$0] > x[$1] }.prefix(k))
    }

}

@_exported import struct TensorMath.SplitMix64
