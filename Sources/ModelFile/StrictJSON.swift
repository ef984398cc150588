/// JSON read strictly, for the files a person writes (probe files, sweep configs): RFC 8259 with no
/// extensions, a bounded nesting depth (checked while reading, so no input can exhaust the stack), a key
/// given twice in one object refused (Foundation's readers keep one of the two silently), and number
/// literals kept as written (`2.0` stays `2.0`: a budget fraction, not 2 tokens). Errors are one line
/// with the line and column.
public enum StrictJSON {
    public indirect enum Value: Sendable {
        /// Members in file order (keys are unique).
        case object([(key: String, value: Value)])
        case array([Value])
        case string(String)
        /// The literal as written (`1`, `0.25`, `-3e2`).
        case number(String)
        case bool(Bool)
        case null
    }

    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let message: String
        public let line: Int, column: Int
        public var description: String { "line \(line), column \(column): \(message.withoutLineBreaks)" }
    }

    /// Parses one JSON value (surrounding whitespace allowed, nothing after it).
    public static func parse(_ text: some Collection<UInt8>, maxDepth: Int = 64) throws -> Value {
        var p = Parser(bytes: Array(text), maxDepth: maxDepth)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.error("text after the end of the JSON value") }
        return v
    }

    public static func parse(_ text: String, maxDepth: Int = 64) throws -> Value { try parse(Array(text.utf8), maxDepth: maxDepth) }

    struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var i = 0

        init(bytes: [UInt8], maxDepth: Int) { self.bytes = bytes; self.maxDepth = maxDepth }

        func error(_ message: String, at offset: Int? = nil) -> Error {
            let at = min(offset ?? i, bytes.count)
            var line = 1, column = 1
            for b in bytes[..<at] { if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 } }
            return Error(message: message, line: line, column: column)
        }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func expect(_ word: String) throws {
            let w = Array(word.utf8)
            guard bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w else { throw error("expected a JSON value") }
            i += w.count
        }

        mutating func value(depth: Int) throws -> Value {
            guard i < bytes.count else { throw error("the text ends where a value should be") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                guard depth < maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
                i += 1
                var members: [(key: String, value: Value)] = [], seen = Set<String>()
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a key in double quotes") }
                    let at = i
                    let key = try string()
                    guard seen.insert(key).inserted else { throw error("key \"\(key.shownOnOneLine(limit: 60))\" appears twice in one object", at: at) }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
                    i += 1
                    skipSpace()
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw error("the text ends inside an object (a '}' is missing)") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    throw error("expected ',' or '}' in an object")
                }
            case UInt8(ascii: "["):
                guard depth < maxDepth else { throw error("nested deeper than \(maxDepth) levels") }
                i += 1
                var items: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw error("the text ends inside a list (a ']' is missing)") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw error("expected ',' or ']' in a list")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try number())
            default:
                throw error("expected a JSON value")
            }
        }

        mutating func number() throws -> String {
            let start = i
            func digits() -> Int { let s = i; while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }; return i - s }
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            let intStart = i
            guard digits() > 0 else { throw error("a number needs digits") }
            if bytes[intStart] == UInt8(ascii: "0"), i - intStart > 1 { throw error("a number must not start with 0", at: intStart) }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw error("a number needs digits after '.'") } }
            if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw error("a number needs digits in its exponent") }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - i >= 4 else { throw error("\\u needs four hex digits") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let d = Character(UnicodeScalar(bytes[i])).hexDigitValue else { throw error("\\u needs four hex digits") }
                v = v << 4 | UInt32(d); i += 1
            }
            return v
        }

        mutating func string() throws -> String {
            i += 1  // the opening quote
            var out = [UInt8]()
            while true {
                guard i < bytes.count else { throw error("the text ends inside a string (a '\"' is missing)") }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; break }
                if b < 0x20 {
                    throw error(String(format: "a control character (U+%04X) inside a string; write it escaped (\\u%04X)", Int(b), Int(b)))
                }
                if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
                i += 1
                guard i < bytes.count else { throw error("the text ends inside a string") }
                let e = bytes[i]; i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw error("a \\u surrogate must come in a pair")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("a \\u surrogate must come in a pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("a \\u surrogate must come in a pair")
                    }
                    out.append(contentsOf: Array(String(Character(UnicodeScalar(scalar)!)).utf8))
                default:
                    throw error("unknown escape '\\\(String(Character(UnicodeScalar(e))).shownOnOneLine())' in a string")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
            return s
        }
    }
}

extension StrictJSON.Value {
    /// The members of an object (nil for any other value).
    public var members: [(key: String, value: StrictJSON.Value)]? { if case let .object(m) = self { return m } else { return nil } }

    /// The kind of value in words, for messages.
    public var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "a list"
        case .string: return "text"
        case .number: return "a number"
        case .bool: return "true/false"
        case .null: return "null"
        }
    }
}
