/// One entry of the tensor directory.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// GGML order: `shape[0]` is the contiguous (innermost) dimension.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset from the start of the file (data section start + the directory's relative offset).
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A GGUF v2/v3 file, memory-mapped: metadata parsed eagerly, tensor data read in place on demand.
/// Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
public final class GGUFFile: @unchecked Sendable {
    public let file: MappedFile
    public let version: UInt32
    /// Metadata in file order (order matters for `kvkit inspect`), and by key.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let tensorsByName: [String: GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int

    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        var c = ByteCursor(base: file.base, size: file.size, offset: 0)
        guard file.size >= 4, try c.read(UInt32.self, "magic") == 0x4655_4747 else { throw GGUFError.notGGUF(path: file.path) }
        version = try c.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let tensorCount = try c.read(UInt64.self, "tensor count")
        let kvCount = try c.read(UInt64.self, "metadata count")
        // Each key-value pair takes at least 12 bytes and each tensor entry at least 24: bound counts by file size.
        guard kvCount <= UInt64(file.size / 12), tensorCount <= UInt64(file.size / 24) else {
            throw GGUFError.truncated(what: "directory counts", offset: c.offset, fileSize: file.size)
        }

        var keys: [String] = [], meta: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try c.readString("metadata key")
            let type = try c.read(UInt32.self, "type of '\(key)'")
            let value = try Self.readValue(&c, type: type, key: key, depth: 0)
            guard meta.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicate(what: "metadata key", name: key) }
            keys.append(key)
        }
        metadataKeys = keys
        metadata = meta

        let align = meta["general.alignment"]?.int ?? 32
        guard align > 0, align & (align - 1) == 0 else {
            throw GGUFError.badMetadata(key: "general.alignment", reason: "\(align) is not a power of two")
        }
        alignment = align

        struct RawInfo { let name: String; let shape: [Int]; let type: UInt32; let offset: UInt64 }
        var raw: [RawInfo] = []
        for _ in 0..<tensorCount {
            let name = try c.readString("tensor name")
            let nDims = try c.read(UInt32.self, "dims of '\(name)'")
            guard nDims >= 1, nDims <= 4 else { throw GGUFError.badTensorShape(name: name) }
            var shape: [Int] = []
            for _ in 0..<nDims {
                let d = try c.read(UInt64.self, "shape of '\(name)'")
                guard d >= 1, d < 1 << 40 else { throw GGUFError.badTensorShape(name: name) }
                shape.append(Int(d))
            }
            let type = try c.read(UInt32.self, "type of '\(name)'")
            let offset = try c.read(UInt64.self, "offset of '\(name)'")
            raw.append(RawInfo(name: name, shape: shape, type: type, offset: offset))
        }
        let data = (c.offset + align - 1) / align * align
        dataOffset = data

        var infos: [GGUFTensorInfo] = [], byName: [String: GGUFTensorInfo] = [:]
        for r in raw {
            guard let type = GGMLType(rawValue: r.type) else {
                throw GGUFError.unsupportedTensorType(name: r.name, type: r.type)
            }
            var count = 1
            for d in r.shape {
                let (m, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw GGUFError.badTensorShape(name: r.name) }
                count = m
            }
            guard r.shape[0] % type.blockSize == 0, let bytes = type.byteCount(elements: count) else {
                throw GGUFError.badTensorShape(name: r.name)
            }
            guard r.offset % UInt64(align) == 0 else { throw GGUFError.misalignedTensor(name: r.name, offset: r.offset, alignment: align) }
            guard r.offset <= UInt64(file.size),
                data <= file.size, Int(r.offset) <= file.size - data, bytes <= file.size - data - Int(r.offset)
            else {
                throw GGUFError.tensorOutOfBounds(name: r.name)
            }
            let info = GGUFTensorInfo(name: r.name, shape: r.shape, type: type, fileOffset: data + Int(r.offset), byteCount: bytes)
            infos.append(info)
            guard byName.updateValue(info, forKey: r.name) == nil else { throw GGUFError.duplicate(what: "tensor", name: r.name) }
        }
        tensors = infos
        tensorsByName = byName
    }

    private static func readValue(_ c: inout ByteCursor, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        guard let t = GGUFValueType(rawValue: type) else { throw GGUFError.badValueType(type, key: key) }
        switch t {
        case .uint8: return .uint8(try c.read(UInt8.self, key))
        case .int8: return .int8(try c.read(Int8.self, key))
        case .uint16: return .uint16(try c.read(UInt16.self, key))
        case .int16: return .int16(try c.read(Int16.self, key))
        case .uint32: return .uint32(try c.read(UInt32.self, key))
        case .int32: return .int32(try c.read(Int32.self, key))
        case .uint64: return .uint64(try c.read(UInt64.self, key))
        case .int64: return .int64(try c.read(Int64.self, key))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, key)))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, key)))
        case .bool:
            let b = try c.read(UInt8.self, key)
            guard b <= 1 else { throw GGUFError.badMetadata(key: key, reason: "bool byte \(b)") }
            return .bool(b == 1)
        case .string: return .string(try c.readString(key))
        case .array:
            guard depth < 8 else { throw GGUFError.badMetadata(key: key, reason: "arrays nested deeper than 8") }
            let elementType = try c.read(UInt32.self, key)
            let count = try c.read(UInt64.self, key)
            // Every element takes at least one byte: a count beyond the remaining bytes is corrupt.
            guard count <= UInt64(c.size - c.offset) else {
                throw GGUFError.truncated(what: "array '\(key)'", offset: c.offset, fileSize: c.size)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<count { items.append(try readValue(&c, type: elementType, key: key, depth: depth + 1)) }
            return .array(elementType: elementType, items)
        }
    }

    // MARK: Typed metadata access

    /// A required integer.
    public func int(_ key: String) throws -> Int {
        guard let i = try optionalInt(key) else { throw GGUFError.missingKey(key) }
        return i
    }

    /// A required finite number.
    public func double(_ key: String) throws -> Double {
        guard let d = try optionalDouble(key) else { throw GGUFError.missingKey(key) }
        return d
    }

    /// A number that may be absent (nil) but, when present, must be a finite number.
    public func optionalDouble(_ key: String) throws -> Double? {
        guard let v = metadata[key] else { return nil }
        guard let d = v.double, d.isFinite else { throw GGUFError.badMetadata(key: key, reason: "expected a finite number, found \(v.summary)") }
        return d
    }

    /// An integer that may be absent (nil) but, when present, must be an integer.
    public func optionalInt(_ key: String) throws -> Int? {
        guard let v = metadata[key] else { return nil }
        guard let i = v.int else { throw GGUFError.badMetadata(key: key, reason: "expected an integer, found \(v.summary)") }
        return i
    }

    public func string(_ key: String) throws -> String {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let s = v.string else { throw GGUFError.badMetadata(key: key, reason: "expected a string") }
        return s
    }

    // MARK: Tensor data

    /// The raw bytes of a tensor, in place in the mapping.
    public func rawData(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: file.base + info.fileOffset, count: info.byteCount)
    }

    /// A tensor dequantized to Float32, in GGML order (`shape[0]` contiguous).
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensorsByName[name] else { throw GGUFError.missingTensor(name) }
        guard info.type.canDequantize else { throw GGUFError.unsupportedTensorType(name: name, type: info.type.rawValue) }
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buf, n in
            Dequantize.run(info.type, file.base + info.fileOffset, buf.baseAddress!, count: info.elementCount)
            n = info.elementCount
        }
    }
}
