import Foundation
import ModelFile
import Yams

/// A sweep config in YAML, read into the same tree `StrictJSON` gives for JSON, so both formats follow
/// one set of rules: nesting bounded before the parser runs (Yams builds its nodes recursively: a config
/// nested 5,000 levels deep crashed it), no anchors or aliases (a few lines can expand to gigabytes), a
/// key given twice refused (Yams keeps the last), plain scalars typed as YAML 1.2's core schema does
/// (`true`/`false`, numbers as written, `null`), quoted ones always text.
enum ConfigYAML {
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
    }

    static func tree(_ text: String, maxDepth: Int) throws -> StrictJSON.Value {
        try checkShape(text, maxDepth: maxDepth)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw Error(description: String(String(describing: error).split(separator: "\n").first ?? "not YAML").prefix(200).description)
        }
        guard let node else { throw Error(description: "the file is empty") }
        return try value(node)
    }

    /// An upper bound of the nesting, read line by line before parsing: indentation columns, compact
    /// sequence markers (`- - x`) and open flow brackets each add at most one level. Anchors and aliases
    /// are refused here too.
    static func checkShape(_ text: String, maxDepth: Int) throws {
        var flow = 0, lineNo = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let bytes = Array(line.utf8)
            var i = 0
            if flow == 0 { while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 } }
            let indent = i
            var markers = 0
            while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "?"), bytes[i + 1] == UInt8(ascii: " ") {
                markers += 1; i += 2
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            }
            var quote: UInt8? = nil, deepest = flow, prev: UInt8 = UInt8(ascii: " ")
            while i < bytes.count {
                let b = bytes[i]
                if let q = quote {
                    if b == q { quote = nil } else if b == UInt8(ascii: "\\"), q == UInt8(ascii: "\"") { i += 1 }
                } else if b == UInt8(ascii: "#"), prev == UInt8(ascii: " ") {
                    break
                } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                    quote = b
                } else if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") {
                    flow += 1; deepest = max(deepest, flow)
                } else if b == UInt8(ascii: "]") || b == UInt8(ascii: "}") {
                    flow = max(0, flow - 1)
                } else if (b == UInt8(ascii: "&") || b == UInt8(ascii: "*")),
                    [UInt8(ascii: " "), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ",")].contains(prev),
                    i + 1 < bytes.count, bytes[i + 1] != UInt8(ascii: " ")
                {
                    throw Error(
                        description:
                            "line \(lineNo): anchors and aliases (& and *) are not read in a sweep config; write the values out (quote a value that starts with & or *)"
                    )
                }
                prev = b
                i += 1
            }
            guard indent + markers + deepest <= maxDepth * 4 else {
                throw Error(description: "line \(lineNo): nested deeper than a sweep config may be (\(maxDepth) levels; a study's config needs 4)")
            }
        }
    }

    static func place(_ mark: Mark?) -> String { mark.map { "line \($0.line)" } ?? "" }

    static func value(_ node: Node) throws -> StrictJSON.Value {
        switch node {
        case let .scalar(s):
            guard s.style == .plain || s.style == .any else { return .string(s.string) }
            let t = s.string
            switch t {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            case "null", "Null", "NULL", "~", "": return .null
            default: break
            }
            if t.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil { return .number(t) }
            return .string(t)
        case let .sequence(seq):
            return .array(try seq.map(value))
        case let .mapping(map):
            var members: [(key: String, value: StrictJSON.Value)] = [], seen = Set<String>()
            for (k, v) in map {
                guard case let .scalar(ks) = k else { throw Error(description: "\(place(map.mark)): a key must be plain text") }
                guard seen.insert(ks.string).inserted else {
                    throw Error(description: "\(place(ks.mark)): key '\(RunDirectory.shown(ks.string))' appears twice in one mapping")
                }
                members.append((ks.string, try value(v)))
            }
            return .object(members)
        @unknown default:
            throw Error(description: "an unsupported YAML node")
        }
    }
}

extension Study.File {
    /// The config's fields from its tree: unknown keys and values of the wrong kind refused, naming where.
    init(_ tree: StrictJSON.Value) throws {
        func fail(_ m: String) -> ConfigYAML.Error { ConfigYAML.Error(description: m) }
        func object(_ v: StrictJSON.Value, _ at: String, keys: [String]) throws -> [(key: String, value: StrictJSON.Value)] {
            guard let m = v.members else { throw fail("\(at) must be an object, not \(v.kind)") }
            if let bad = m.first(where: { !keys.contains($0.key) }) {
                throw fail("unknown key '\(RunDirectory.shown(bad.key))' in \(at); keys there: \(keys.joined(separator: ", "))")
            }
            return m
        }
        func text(_ v: StrictJSON.Value?, _ at: String) throws -> String? {
            switch v {
            case nil, .null?: return nil
            case let .string(s)?: return s
            case let v?: throw fail("\(at) must be text, not \(v.kind)")
            }
        }
        func options(_ v: StrictJSON.Value?, _ at: String) throws -> [(String, RunPlan.Value)] {
            let members: [(key: String, value: StrictJSON.Value)]
            switch v {
            case nil, .null?: return []
            case let .object(m)?: members = m
            case let v?: throw fail("\(at) must be an object of kvkit run options, not \(v.kind)")
            }
            return try members.map { k, x in
                let place = "\(at).\(RunDirectory.shown(k))"
                switch x {
                case let .string(s): return (k, .text(s))
                case let .number(n): return (k, .text(n))
                case let .bool(b): return (k, .flag(b))
                case let .array(items):
                    return (
                        k,
                        .list(
                            try items.map { item in
                                switch item {
                                case let .string(s): return s
                                case let .number(n): return n
                                default: throw fail("\(place) lists \(item.kind); list text or numbers")
                                }
                            })
                    )
                case .null, .object: throw fail("\(place) must be text, a number, true/false or a list, not \(x.kind)")
                }
            }
        }
        let top = Dictionary(uniqueKeysWithValues: try object(tree, "the config", keys: ["study", "results", "common", "jobs"]).map { ($0.key, $0.value) })
        guard let study = try text(top["study"], "'study'") else { throw fail("'study' is missing; name the study") }
        self.study = study
        results = try text(top["results"], "'results'")
        common = try options(top["common"], "common")
        guard case let .array(jobList)? = top["jobs"] else {
            throw fail(top["jobs"] == nil ? "'jobs' is missing; list the jobs" : "'jobs' must be a list of {name, options}")
        }
        jobs = try jobList.enumerated().map { i, j in
            let m = Dictionary(uniqueKeysWithValues: try object(j, "jobs[\(i)]", keys: ["name", "options"]).map { ($0.key, $0.value) })
            guard let name = try text(m["name"], "jobs[\(i)].name") else { throw fail("jobs[\(i)] has no 'name'") }
            return (name, try options(m["options"], "job \(RunDirectory.shown(name))"))
        }
    }
}
