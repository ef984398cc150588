import Foundation
import Testing
@testable import ModelFile

/// Q4_K and Q6_K blocks dequantized by KVKit against gguf-py (llama.cpp's Python package), an
/// independent implementation; the fixture and the script that made it are in `Fixtures/`.
@Suite struct KQuantTests {
    struct Case: Decodable { let hex: String; let floats: [Float] }

    static let fixture: [String: Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/kquants.json")
        return try! JSONDecoder().decode([String: Case].self, from: Data(contentsOf: url))
    }()

    @Test(arguments: [("q4_K", GGMLType.q4_K), ("q6_K", GGMLType.q6_K)])
    func matchesGGUFPy(name: String, type: GGMLType) throws {
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
