import Foundation
import Testing
@testable import ModelFile

/// Blocks of every GGML block type KVKit reads (Q4_0 … Q8_0, Q2_K … Q6_K) dequantized by KVKit against gguf-py (llama.cpp's Python package), an
/// independent implementation; the fixture and the script that made it are in `Fixtures/`.
@Suite struct KQuantTests {
    struct Case: Decodable { let hex: String; let floats: [Float] }

    static let fixture: [String: Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/dequant.json")
        return try! JSONDecoder().decode([String: Case].self, from: Data(contentsOf: url))
    }()

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    func matchesGGUFPy(type: GGMLType) throws {
        let name = "\(type)"
        let c = try #require(Self.fixture[name])
        var bytes: [UInt8] = []
        var it = c.hex.makeIterator()
        while let a = it.next(), let b = it.next() { bytes.append(UInt8(String([a, b]), radix: 16)!) }
        #expect(bytes.count == c.floats.count / type.blockSize * type.bytesPerBlock)
        var w = GGUFWriter()
        w.addTensor("t", shape: [c.floats.count], type: type, data: bytes)
        let g = try GGUFFile(path: tempFile(w.encoded()))
        let ours = try g.floats("t")
        var worst: Float = 0
        for i in ours.indices { worst = max(worst, abs(ours[i] - c.floats[i])) }
        #expect(worst <= 1e-6, "\(name): max abs diff \(worst)")
    }
}
