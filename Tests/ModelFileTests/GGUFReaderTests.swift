import Foundation
import Testing
@testable import ModelFile

/// Writes `bytes` to a fresh temporary file and returns its path.
func tempFile(_ bytes: [UInt8], name: String = "t.gguf") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

func f16Bits(_ x: Float) -> [UInt8] {
    let b = Float16(x).bitPattern
    return [UInt8(b & 0xFF), UInt8(b >> 8)]
}

/// A small valid file with every metadata value type, nested arrays, and two tensors.
func sampleWriter(version: UInt32 = 3) -> GGUFWriter {
    var w = GGUFWriter(version: version)
    w.set("general.architecture", .string("llama"))
    w.set("u8", .uint8(200)); w.set("i8", .int8(-5)); w.set("u16", .uint16(60000)); w.set("i16", .int16(-300))
    w.set("u32", .uint32(4_000_000_000)); w.set("i32", .int32(-70000)); w.set("u64", .uint64(1 << 40)); w.set("i64", .int64(-(1 << 40)))
    w.set("f32", .float32(1.5)); w.set("f64", .float64(-2.25)); w.set("b", .bool(true)); w.set("s", .string("héllo"))
    w.set("nested", .array(elementType: 9, [.array(elementType: 5, [.int32(1), .int32(2)]), .array(elementType: 5, [])]))
    w.set("strings", .array(elementType: 8, [.string("a"), .string("bc")]))
    w.addTensor("a", shape: [3], floats: [1, 2, 3])
    w.addTensor("b", shape: [2, 2], floats: [4, 5, 6, 7])
    return w
}

@Suite struct GGUFReaderTests {
    @Test(arguments: [UInt32(2), 3])
    func roundTripsEveryValueType(version: UInt32) throws {
        let w = sampleWriter(version: version)
        let g = try GGUFFile(path: tempFile(w.encoded()))
        #expect(g.version == version)
        #expect(g.metadataKeys == w.metadata.map(\.0))
        for (k, v) in w.metadata { #expect(g.metadata[k] == v, "key \(k)") }
        #expect(g.tensors.map(\.name) == ["a", "b"])
        #expect(g.tensors.allSatisfy { ($0.fileOffset - g.dataOffset) % g.alignment == 0 })
        #expect(g.dataOffset % 32 == 0)
        #expect(try g.floats("a") == [1, 2, 3])
        #expect(try g.floats("b") == [4, 5, 6, 7])
        #expect(g.tensorsByName["b"]?.shape == [2, 2])
    }

    @Test func honoursCustomAlignment() throws {
        var w = sampleWriter()
        w.alignment = 64
        w.set("general.alignment", .uint32(64))
        let g = try GGUFFile(path: tempFile(w.encoded()))
        #expect(g.alignment == 64)
        #expect(g.dataOffset % 64 == 0)
        #expect(try g.floats("b") == [4, 5, 6, 7])
    }

    @Test func dequantizesHandBuiltBlocks() throws {
        // Q8_0: d = 0.5, q = -16…15 → value = 0.5·q
        var q8: [UInt8] = f16Bits(0.5)
        for j in 0..<32 { q8.append(UInt8(bitPattern: Int8(j - 16))) }
        // Q4_0: d = 2, nibble n → 2·(n − 8); low nibbles are elements 0…15, high nibbles 16…31.
        var q40: [UInt8] = f16Bits(2)
        for j in 0..<16 { q40.append(UInt8(j) | UInt8(15 - j) << 4) }
        // Q4_1: d = 0.25, m = −1 → 0.25·n − 1.
        var q41: [UInt8] = f16Bits(0.25) + f16Bits(-1)
        for j in 0..<16 { q41.append(UInt8(j) | UInt8(15 - j) << 4) }
        let f16: [UInt8] = [1.0, -2.5, 65504, 0.000061035156].flatMap { f16Bits(Float($0)) }
        let bf16: [UInt8] = [Float(1.0), -3.0, 1e30].flatMap { f -> [UInt8] in
            let b = UInt16(f.bitPattern >> 16); return [UInt8(b & 0xFF), UInt8(b >> 8)]
        }
        var w = GGUFWriter()
        w.addTensor("q8", shape: [32], type: .q8_0, data: q8)
        w.addTensor("q40", shape: [32], type: .q4_0, data: q40)
        w.addTensor("q41", shape: [32], type: .q4_1, data: q41)
        w.addTensor("f16", shape: [4], type: .f16, data: f16)
        w.addTensor("bf16", shape: [3], type: .bf16, data: bf16)
        let g = try GGUFFile(path: tempFile(w.encoded()))
        #expect(try g.floats("q8") == (0..<32).map { 0.5 * Float($0 - 16) })
        #expect(try g.floats("q40") == (0..<16).map { 2 * Float($0 - 8) } + (0..<16).map { 2 * Float(15 - $0 - 8) })
        #expect(try g.floats("q41") == (0..<16).map { 0.25 * Float($0) - 1 } + (0..<16).map { 0.25 * Float(15 - $0) - 1 })
        #expect(try g.floats("f16") == [1.0, -2.5, 65504, 0.000061035156])
        #expect(try g.floats("bf16") == [1.0, -3.0, Float(bitPattern: Float(1e30).bitPattern & 0xFFFF_0000)])
    }
}

/// The catalogue of corrupt inputs: each must throw its typed error, never trap.
@Suite struct CorruptGGUFTests {
    func expectError(_ bytes: [UInt8], _ check: (GGUFError) -> Bool, _ comment: Comment) throws {
        let path = try tempFile(bytes)
        do {
            _ = try GGUFFile(path: path)
            Issue.record("expected an error: \(comment)")
        } catch let e as GGUFError {
            #expect(check(e), "\(comment): got \(e)")
            #expect(!e.description.contains("\n"), "one-line message")
        }
    }

    @Test func missingFile() {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        do { _ = try GGUFFile(path: "/nonexistent/model.gguf") } catch let e as GGUFError {
            #expect(e.description.contains("make setup"))
        } catch { Issue.record("wrong error \(error)") }
    }

    @Test func directoryIsNotAFile() throws {
        #expect(throws: GGUFError.self) { try GGUFFile(path: FileManager.default.temporaryDirectory.path) }
    }

    @Test func emptyAndWrongMagic() throws {
        try expectError(
            [],
            {
                if case .truncated = $0 { return true }; return false
            }, "empty file")
        try expectError(
            Array("GGML".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16),
            {
                if case .notGGUF = $0 { return true }; return false
            }, "wrong magic")
        try expectError(
            Array("<html>not a model</html>".utf8),
            {
                if case .notGGUF = $0 { return true }; return false
            }, "text file")
    }

    @Test(arguments: [UInt32(0), 1, 4, 99])
    func unsupportedVersions(version: UInt32) throws {
        var bytes = sampleWriter().encoded()
        bytes[4] = UInt8(version & 0xFF); bytes[5] = 0; bytes[6] = 0; bytes[7] = 0
        try expectError(bytes, { $0 == .unsupportedVersion(version) }, "version \(version)")
    }

    @Test func everyTruncationThrows() throws {
        let bytes = sampleWriter().encoded()
        // Every cut inside header + directory, and a few inside the data section.
        let g = try GGUFFile(path: tempFile(bytes))
        for cut in Array(0..<g.dataOffset) + [g.dataOffset + 4, bytes.count - 1] {
            try expectError(
                Array(bytes.prefix(cut)),
                { e in
                    switch e {
                    case .truncated, .tensorOutOfBounds, .notGGUF: return true;
                    default: return false
                    }
                }, "cut at \(cut)")
        }
    }

    @Test func unknownValueType() throws {
        var w = GGUFWriter()
        w.set("k", .uint32(7))
        var bytes = w.encoded()
        // header 24 bytes, key length 8 + "k" 1 → type code at 33
        bytes[33] = 42
        try expectError(bytes, { $0 == .badValueType(42, key: "k") }, "value type 42")
    }

    @Test func hugeArrayCountIsRejectedBeforeAllocating() throws {
        var w = GGUFWriter()
        w.set("arr", .array(elementType: 4, [.uint32(1)]))
        var bytes = w.encoded()
        // header 24, key 8+3, type 4, element type 4 → count at 43
        for i in 0..<8 { bytes[43 + i] = 0xFF }
        bytes[50] = 0x0F
        try expectError(
            bytes,
            {
                if case .truncated = $0 { return true }; return false
            }, "array count 2^60")
    }

    @Test func unsupportedTensorType() throws {
        var w = GGUFWriter()
        w.addTensor("t", shape: [32], type: .q8_0, data: [UInt8](repeating: 0, count: 34))
        var bytes = w.encoded()
        // tensor entry: name 8+1, n_dims 4, dim 8 → type code at 24 + 9 + 4 + 8 = 45
        bytes[45] = 77
        try expectError(bytes, { $0 == .unsupportedTensorType(name: "t", type: 77) }, "tensor type 77")
        // A known type KVKit cannot dequantize (Q8_K, llama.cpp's intermediate type) opens, but reading it
        // is a typed error naming the type and every supported one.
        var w2 = GGUFWriter()
        w2.addTensor("t", shape: [256], type: .q8_K, data: [UInt8](repeating: 0, count: 292))
        let g = try GGUFFile(path: tempFile(w2.encoded()))
        #expect(throws: GGUFError.unsupportedTensorType(name: "t", type: 15)) { try g.floats("t") }
        let message = "\(GGUFError.unsupportedTensorType(name: "t", type: 15))"
        #expect(message.contains("q8_K") && message.contains("Q5_0") && message.contains("Q3_K") && !message.contains("\n"), "\(message)")
    }

    @Test func tensorOffsetsOutsideTheFile() throws {
        var w = GGUFWriter()
        w.addTensor("t", shape: [4], floats: [1, 2, 3, 4])
        let good = w.encoded()
        // offset field at 24 + 9 + 4 + 8 + 4 = 49
        var far = good
        far[49] = 0; far[50] = 0x10; far[51] = 0  // offset 4096 (aligned), past the end
        try expectError(far, { $0 == .tensorOutOfBounds(name: "t") }, "offset past end")
        var mis = good
        mis[49] = 3  // misaligned
        try expectError(
            mis, { $0 == .misalignedTensor(name: "t", offset: 3, alignment: 32) && $0.description.contains("not a multiple of the file's alignment") },
            "misaligned offset")
        var huge = good
        for i in 49..<57 { huge[i] = 0xFF }
        huge[49] = 0xE0
        try expectError(huge, { $0 == .tensorOutOfBounds(name: "t") }, "offset near 2^64")
    }

    @Test func badShapes() throws {
        var w = GGUFWriter()
        w.addTensor("t", shape: [30], type: .q8_0, data: [UInt8](repeating: 0, count: 34))  // not a whole block
        try expectError(w.encoded(), { $0 == .badTensorShape(name: "t") }, "partial block")
        var w2 = GGUFWriter()
        w2.addTensor("t", shape: [4], floats: [1, 2, 3, 4])
        var bytes = w2.encoded()
        bytes[37] = 0  // dim 0
        try expectError(bytes, { $0 == .badTensorShape(name: "t") }, "zero dimension")
        bytes[37] = 4; bytes[33] = 9  // n_dims 9
        try expectError(bytes, { $0 == .badTensorShape(name: "t") }, "too many dims")
    }
}
