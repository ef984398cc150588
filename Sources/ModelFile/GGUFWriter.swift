import Foundation

/// Writes GGUF files: used by tests to build small synthetic models and corrupt-file cases, and by
/// researchers who want to save a model KVKit can read. Tensor data is written as given (raw bytes).
public struct GGUFWriter {
    public var version: UInt32 = 3
    public var alignment = 32
    public private(set) var metadata: [(String, GGUFValue)] = []
    public private(set) var tensors: [(name: String, shape: [Int], type: GGMLType, data: [UInt8])] = []

    public init(version: UInt32 = 3) { self.version = version }

    public mutating func set(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    /// Replaces a key's value in place (nil removes it); tests use it to write faulty variants of a file.
    public mutating func update(_ key: String, _ value: GGUFValue?) {
        guard let i = metadata.firstIndex(where: { $0.0 == key }) else { if let value { set(key, value) }; return }
        if let value { metadata[i].1 = value } else { metadata.remove(at: i) }
    }

    public mutating func addTensor(_ name: String, shape: [Int], type: GGMLType, data: [UInt8]) {
        tensors.append((name, shape, type, data))
    }

    /// Adds a Float32 tensor (`shape[0]` contiguous).
    public mutating func addTensor(_ name: String, shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "shape does not match the data")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * 4)
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 } }
        addTensor(name, shape: shape, type: .f32, data: bytes)
    }

    /// The file's bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out += Array(s.utf8) }
        func typeCode(_ v: GGUFValue) -> UInt32 {
            switch v {
            case .uint8: return 0
            case .int8: return 1
            case .uint16: return 2
            case .int16: return 3
            case .uint32: return 4
            case .int32: return 5
            case .float32: return 6
            case .bool: return 7
            case .string: return 8
            case .array: return 9
            case .uint64: return 10
            case .int64: return 11
            case .float64: return 12
            }
        }
        func putValue(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): put(x)
            case let .int8(x): put(x)
            case let .uint16(x): put(x)
            case let .int16(x): put(x)
            case let .uint32(x): put(x)
            case let .int32(x): put(x)
            case let .uint64(x): put(x)
            case let .int64(x): put(x)
            case let .float32(x): put(x.bitPattern)
            case let .float64(x): put(x.bitPattern)
            case let .bool(x): put(UInt8(x ? 1 : 0))
            case let .string(s): putString(s)
            case let .array(t, items):
                put(t); put(UInt64(items.count))
                for i in items { putValue(i) }
            }
        }
        put(UInt32(0x4655_4747)); put(version)
        put(UInt64(tensors.count)); put(UInt64(metadata.count))
        for (k, v) in metadata { putString(k); put(typeCode(v)); putValue(v) }
        var offsets: [Int] = [], next = 0
        for t in tensors {
            offsets.append(next)
            next = (next + t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            putString(t.name); put(UInt32(t.shape.count))
            for d in t.shape { put(UInt64(d)) }
            put(t.type.rawValue); put(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (t, off) in zip(tensors, offsets) {
            while out.count < dataStart + off { out.append(0) }
            out += t.data
        }
        return out
    }

    public func write(to path: String) throws {
        try Data(encoded()).write(to: URL(fileURLWithPath: path))
    }
}
