import Foundation

/// One GGUF metadata value. Arrays may nest (an array of arrays is legal GGUF).
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    case array(elementType: UInt32, [GGUFValue])

    /// Any integer value as Int (nil for non-integers or values that do not fit).
    public var int: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        case let .bool(v): return v ? 1 : 0
        default: return nil
        }
    }

    /// Any numeric value as Double.
    public var double: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return int.map(Double.init)
        }
    }

    public var string: String? { if case let .string(s) = self { return s } else { return nil } }
    public var array: [GGUFValue]? { if case let .array(_, a) = self { return a } else { return nil } }

    /// A short rendering for `kvkit inspect`: scalars in full, long strings and arrays abbreviated.
    public var summary: String {
        switch self {
        case let .string(s):
            let oneLine = s.replacingOccurrences(of: "\n", with: "\\n")
            return oneLine.count > 60 ? "\"\(oneLine.prefix(57))...\" (\(s.utf8.count) bytes)" : "\"\(oneLine)\""
        case let .array(t, items):
            let head = items.prefix(4).map(\.summary).joined(separator: ", ")
            let typeName = GGUFValueType(rawValue: t).map { "\($0)" } ?? "#\(t)"
            return "[\(typeName) × \(items.count)] [\(head)\(items.count > 4 ? ", ..." : "")]"
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(v): return "\(v)"
        default: return int.map { "\($0)" } ?? "?"
        }
    }
}

/// GGUF metadata value type codes (gguf.h `enum gguf_type`).
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64
}
