import Foundation
import KVCache
import Models
import ModelFile
import Policies
import Probes

/// Everything that defines a `kvkit run`: the policies, codecs and budgets to compare, the case grid, the
/// model and how pages are stored. `kvkit run`'s flags and a sweep config's job options are both read
/// through `RunPlan.options`, so a flag means the same thing wherever it is written and is checked once.
public struct RunPlan: Equatable, Sendable {
    /// Policy specs as given (`snapkv:window=16`); `full` always runs as the reference.
    public var policies: [String] = []
    public var budgets: [String] = ["0.1", "0.25", "0.5"]
    public var quants: [String] = ["fp32"]
    public var probes: [String] = ["niah", "multihop"]
    public var lengths: [Int] = [512, 1024]
    public var depths: [Double] = [0.1, 0.5, 0.9]
    public var hops: [Int] = [ProbeGenerator.defaultHops]
    public var wording: MultihopWording = .magic
    /// Cases per probe × length × depth: 5 gives the default grid 30 needle and 10 chain cases, enough
    /// for a 95 % interval of about ±15 points rather than a bare 0 % or 100 %.
    public var samples = 5
    public var seed: UInt64 = 0
    public var queryAware = false
    /// Answer tokens per turn (a probe-file line's `max_new_tokens` wins for its case); nil: by the turn
    /// (room for the values after an answer prefix, 48 tokens without one: `Runner.maxAnswerTokens(for:)`).
    public var maxAnswerTokens: Int?
    /// Compress again while answering (`Runner.compressEvery`, `Runner.compressBetweenTurns`).
    public var compressEvery: Int?
    public var compressBetweenTurns = false
    /// The haystack: `essays` (Paul Graham's, as NIAH and RULER use: results comparable with the
    /// literature), `grammar` (KVKit's generated English) or the path of a text file.
    public var haystack = "essays"
    /// Bring-your-own cases (JSONL) instead of the generated grid.
    public var probeFile: String?
    public var skipBadLines = false
    /// Resume drops rows of the folder's results.jsonl that do not belong to the run, with a note, instead
    /// of refusing it (`RunDirectory.checkedResults`).
    public var dropBadRows = false
    /// Fork one prefill per case (true), or prefill again per variant (for benchmarks).
    public var sharePrefill = true
    /// The GGUF file (nil: the one `make setup` fetched).
    public var model: String?
    /// How prompts are written, when not the format the file's chat template gives (`--format`).
    public var format: ChatFormat?

    /// The registered chat format called `name` (plug-ins' included), or a one-line usage error listing them.
    public static func chatFormat(_ name: String) throws -> ChatFormat {
        guard let f = ChatFormat.named(name) else {
            throw RunError.usage("--format '\(name.shownOnOneLine())' is unknown; use " + ChatFormat.names.joined(separator: ", "))
        }
        return f
    }
    public var threads = 2
    /// How the model holds its weight matrices (`f32`, the reference, or `native` GGUF blocks).
    public var weights = WeightStorage.native
    public var pageSize: Int?
    /// The cold tier (`lz4`), its hot pages per stream and its folder.
    public var offload: String?
    public var hotPages = 4
    public var offloadDir: String?
    public var shard: Shard?
    /// The run folder (nil: `runs/<timestamp>-<policies>`).
    public var out: String?

    public init() {}

    /// `--shard I/N`: case k of the grid goes to shard (k mod N) + 1.
    public struct Shard: Equatable, Sendable, CustomStringConvertible {
        public var index: Int, count: Int
        public init(index: Int, count: Int) { self.index = index; self.count = count }
        public var description: String { "\(index)/\(count)" }
        public init(parsing text: String) throws {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, n <= 100_000, (1...n).contains(i) else {
                throw RunError.usage("--shard '\(text)' is invalid; write I/N with 1 ≤ I ≤ N, such as 2/4")
            }
            index = i; count = n
        }
    }

    // MARK: Options

    /// An option value as a sweep config or the command line gives it.
    public enum Value: Equatable, Sendable, Decodable {
        case text(String), flag(Bool), list([String])

        public init(from d: Decoder) throws {
            let c = try d.singleValueContainer()
            if let b = try? c.decode(Bool.self) {
                self = .flag(b)
            } else if let s = try? c.decode(String.self) {
                self = .text(s)
            } else if let n = try? c.decode(Double.self) {
                self = .text(Self.number(n))
            } else if let a = try? c.decode([Double].self) {
                self = .list(a.map(Self.number))
            } else if let a = try? c.decode([String].self) {
                self = .list(a)
            } else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected text, a number, true/false or a list")
            }
        }

        static func number(_ n: Double) -> String { n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n) }

        /// The command-line text of a value (lists joined with commas).
        public var text: String? {
            switch self {
            case let .text(t): return t
            case let .list(l): return l.joined(separator: ",")
            case .flag: return nil
            }
        }
    }

    /// One `kvkit run` option: its flag name (without `--`), help, and how it sets the plan.
    public struct Option: Sendable {
        public let name: String
        public let help: String
        /// A flag takes no value on the command line (true/false in a sweep config).
        public let isFlag: Bool
        let apply: @Sendable (inout RunPlan, String) throws -> Void
    }

    /// Every option a run takes, in help order.
    public static let options: [Option] = [
        Option(
            name: "policy",
            help: "Policies, comma-separated (NAME or NAME:param=value; see 'kvkit policies'). The full cache always runs too; 'full' alone runs only it.",
            isFlag: false
        ) {
            $0.policies = try specList($1, "--policy")
        },
        Option(name: "budget", help: "Budgets, comma-separated (fractions such as 0.25 or token counts such as 256).", isFlag: false) {
            $0.budgets = try list($1, "--budget") { t in
                _ = try Budget(parsing: t); return t
            }
        },
        Option(
            name: "quant",
            help:
                "Page codecs, comma-separated, swept like policies: fp32 (none), \(CodecRegistry.shared.names.filter { $0 != "fp32" }.joined(separator: ", ")), NAME:param=value or KEYS/VALUES such as int4/fp16 (see 'kvkit policies').",
            isFlag: false
        ) {
            $0.quants = try specList($1, "--quant")
        },
        Option(
            name: "suite",
            help:
                "A named set of probes instead of --probe: ruler (RULER's 11 synthetic tasks with its templates, haystacks and scoring; the question is kept out of compression; the summary adds each policy's average over the tasks).",
            isFlag: false
        ) {
            guard $1 == "ruler" else { throw RunError.usage("--suite: unknown suite '\($1)'; accepted: ruler") }
            $0.probes = RulerProbe.suite
        },
        Option(name: "probe", help: "Probes, comma-separated: \(ProbeRegistry.shared.names.joined(separator: ", ")) (see 'kvkit probes').", isFlag: false) {
            let known = ProbeRegistry.shared.names
            $0.probes = try list($1, "--probe") { p in
                guard known.contains(p) else {
                    throw RunError.usage("--probe: unknown probe '\(p)'; accepted: \(known.joined(separator: ", ")) (see 'kvkit probes')")
                }
                return p
            }
        },
        Option(name: "lengths", help: "Context lengths in tokens, comma-separated (64 to 1,048,576).", isFlag: false) {
            $0.lengths = try list($1, "--lengths") { Int($0).flatMap { (64...1 << 20).contains($0) ? $0 : nil } }
        },
        Option(name: "depths", help: "Needle depths in [0, 1], comma-separated.", isFlag: false) {
            $0.depths = try list($1, "--depths") { Double($0).flatMap { (0...1).contains($0) ? $0 : nil } }
        },
        Option(name: "hops", help: "Links per chain for multihop, multihop-direct and variable-tracking, comma-separated (1–4).", isFlag: false) {
            $0.hops = try list($1, "--hops") { Int($0).flatMap { (1...4).contains($0) ? $0 : nil } }
        },
        Option(name: "wording", help: "Wording of multi-hop links: \(MultihopWording.allCases.map(\.rawValue).joined(separator: ", ")).", isFlag: false) {
            guard let w = MultihopWording(rawValue: $1) else {
                throw RunError.usage("--wording '\($1)' is unknown; use one of \(MultihopWording.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            $0.wording = w
        },
        Option(name: "samples", help: "Cases per probe × length × depth (1–100,000).", isFlag: false) {
            $0.samples = try integer($1, "--samples", 1...100_000)
        },
        Option(name: "seed", help: "Seed for the probes and seeded policies.", isFlag: false) {
            guard let s = UInt64($1) else { throw RunError.usage("--seed '\($1)' is invalid; give a whole number from 0 to \(UInt64.max)") }
            $0.seed = s
        },
        Option(
            name: "max-answer-tokens",
            help:
                "Tokens an answer may take (1–4096). Default: room for the values after an answer prefix, 48 tokens where a case has no prefix (so the sentence before the value can finish); decoding stops earlier once the score is settled.",
            isFlag: false
        ) {
            $0.maxAnswerTokens = try integer($1, "--max-answer-tokens", 1...4096)
        },
        Option(
            name: "compress-every",
            help:
                "Also compress while answering: each N tokens appended, back to the budget the prompt got (in tokens per stream), as decode-time methods such as rkv do (1–65,536; default: only after the prompt).",
            isFlag: false
        ) {
            $0.compressEvery = try integer($1, "--compress-every", 1...65_536)
        },
        Option(
            name: "compress-between-turns",
            help: "Also compress after each later turn's question is appended (the model's earlier answers included), back to the budget the prompt got.",
            isFlag: true
        ) { p, _ in p.compressBetweenTurns = true },
        Option(name: "query-aware", help: "Put the first question in the prompt before compressing (default: query-agnostic).", isFlag: true) { p, _ in
            p.queryAware = true
        },
        Option(
            name: "haystack",
            help:
                "Filler text: essays (Paul Graham's, as Kamradt's NIAH and RULER), grammar (generated English) or a text file's path; sentences in order from a start drawn from the seed and sample.",
            isFlag: false
        ) {
            guard !$1.isEmpty else { throw RunError.usage("--haystack is empty; give essays, grammar or a text file's path") }
            $0.haystack = $1
        },
        Option(
            name: "probe-file",
            help: "Run the cases of this JSONL file (context, question, answers, optional needles as character spans) instead of generated probes.",
            isFlag: false
        ) {
            $0.probeFile = $1
        },
        Option(
            name: "skip-bad-lines",
            help: "With --probe-file: report malformed lines (and cases that do not fit the context) and skip them instead of stopping.", isFlag: true
        ) { p, _ in p.skipBadLines = true },
        Option(name: "drop-bad-rows", help: RunDirectory.dropBadRowsHelp, isFlag: true) { p, _ in p.dropBadRows = true },
        Option(name: "no-share-prefill", help: "Prefill again for every policy × budget instead of forking one prefill (for benchmarks).", isFlag: true) {
            p, _ in p.sharePrefill = false
        },
        Option(
            name: "model", help: "GGUF model file (default: $KVKIT_HOME/\(ModelLocation.defaultFileName), KVKIT_HOME defaults to ~/.cache/kvkit).",
            isFlag: false
        ) { $0.model = $1 },
        Option(
            name: "format",
            help: "How prompts are written, instead of the format the model file's chat template gives: "
                + ChatFormat.names.joined(separator: ", ")
                + " (plain: turns as paragraphs, for a base model). Needed only for a template KVKit does not recognise; recorded in the run's config.",
            isFlag: false
        ) {
            $0.format = try RunPlan.chatFormat($1)
        },
        Option(name: "threads", help: "Threads for OpenBLAS and the attention kernel (1–256).", isFlag: false) {
            $0.threads = try integer($1, "--threads", 1...256)
        },
        Option(
            name: "weights",
            help:
                "How weight matrices are held: native (the default: their GGUF blocks, memory-mapped; decode with integer dot products on 16-bit activation codes, 8-bit for K-quant layers as llama.cpp), exact (GGUF blocks, Float32 activations) or f32 (dequantized at load, the reference).",
            isFlag: false
        ) {
            guard let w = WeightStorage(rawValue: $1) else { throw RunError.usage("--weights '\($1)' is unknown; use native, exact or f32") }
            $0.weights = w
        },
        Option(name: "page-size", help: "Tokens per KV page (default 16; with a KIVI codec, its key group).", isFlag: false) {
            $0.pageSize = try integer($1, "--page-size", 1...4096)
        },
        Option(name: "offload", help: "Move pages beyond --hot-pages per stream to a compressed store: lz4.", isFlag: false) {
            guard $1 == "lz4" else { throw RunError.usage("--offload '\($1)' is unknown; the cold tier supports: lz4") }
            $0.offload = $1
        },
        Option(name: "hot-pages", help: "With --offload: pages per (layer, KV head) stream kept hot (most recent first; at least 1).", isFlag: false) {
            $0.hotPages = try integer($1, "--hot-pages", 1...1 << 20)
        },
        Option(name: "offload-dir", help: "With --offload: keep cold pages in a file in this folder instead of memory.", isFlag: false) { $0.offloadDir = $1 },
        Option(
            name: "shard",
            help: "Run only shard I of N (I/N, 1-based): case k of the grid goes to shard (k mod N) + 1. Merge the shards' folders with 'kvkit merge'.",
            isFlag: false
        ) {
            $0.shard = try Shard(parsing: $1)
        },
        Option(name: "out", help: "Output folder (default runs/<timestamp>-<policies>).", isFlag: false) { $0.out = $1 },
    ]

    public static func option(_ name: String) -> Option? { options.first { $0.name == name } }

    /// Each option's default as the command line writes it (read from a default plan, never restated).
    static var defaults: [String: String] {
        let p = RunPlan()
        return [
            "budget": p.budgets.joined(separator: ","), "quant": p.quants.joined(separator: ","), "probe": p.probes.joined(separator: ","),
            "lengths": p.lengths.map(String.init).joined(separator: ","), "depths": p.depths.map { Value.number($0) }.joined(separator: ","),
            "hops": p.hops.map(String.init).joined(separator: ","), "wording": p.wording.rawValue, "samples": "\(p.samples)", "seed": "\(p.seed)",
            "haystack": p.haystack, "threads": "\(p.threads)", "hot-pages": "\(p.hotPages)", "weights": p.weights.rawValue,
        ]
    }

    /// The help text of an option with its default (for the command line's declarations).
    public static func help(_ name: String, default withDefault: Bool = true) -> String {
        (option(name)?.help ?? "") + (withDefault ? defaults[name].map { " (default: \($0))" } ?? "" : "")
    }

    /// A plan from options in order (later ones win); unknown names and values of the wrong kind are
    /// one-line usage errors naming the option.
    public init(options given: [(name: String, value: Value)], context: String = "") throws {
        self.init()
        let prefix = context.isEmpty ? "" : context + ": "
        if given.contains(where: { $0.name == "suite" }) && given.contains(where: { $0.name == "probe" }) {
            throw RunError.usage(prefix + "give --probe or --suite, not both (a suite is a set of probes)")
        }
        for (name, value) in given {
            guard let o = Self.option(name) else {
                throw RunError.usage("\(prefix)'\(name)' is not a kvkit run option; options: \(Self.options.map(\.name).joined(separator: ", "))")
            }
            do {
                if o.isFlag {
                    guard case let .flag(on) = value else { throw RunError.usage("'\(name)' is a flag: write true or false") }
                    if on { try o.apply(&self, "") }
                } else {
                    guard let text = value.text else { throw RunError.usage("'\(name)' takes a value, not true/false") }
                    try o.apply(&self, text)
                }
            } catch let e as RunError {
                throw RunError.usage(prefix + e.description)
            }
        }
        do { try validate() } catch let e as RunError { throw RunError.usage(prefix + e.description) }
    }

    /// Checks that hold between options, and that every policy and codec resolves.
    public func validate() throws {
        guard !policies.isEmpty else { throw RunError.usage("--policy is missing; give the policies to compare (full alone runs the uncompressed baseline)") }
        if offload == nil && offloadDir != nil { throw RunError.usage("--offload-dir needs --offload lz4") }
        _ = try resolved()
        if probeFile == nil {
            // Bounds the grid before any case is built (each case holds its context's tokens).
            let perProbe = probes.compactMap { ProbeRegistry.shared.probe($0) }.reduce(0) {
                let a = axes($1); return $0 + a.hops.count * a.depths.count
            }
            let (cases, overflow) = (perProbe * lengths.count).multipliedReportingOverflow(by: samples)
            guard !overflow, cases <= 1_000_000 else {
                throw RunError.usage("the case grid holds more than 1,000,000 cases; lower --samples or list fewer lengths, depths or probes")
            }
        }
    }

    /// The chain lengths and depths a probe's cases vary over (the grid's other axes: lengths, samples).
    public func axes(_ probe: any Probe) -> (hops: [Int], depths: [Double]) {
        (probe.usesHops ? hops : [ProbeGenerator.defaultHops], probe.usesDepth ? depths : [depths[0]])
    }

    /// Variants (policy × budget × codec), budgets and codecs, resolved through the registries.
    public func resolved() throws -> (variants: [Variant], budgets: [Budget], codecs: [CacheCodec?]) {
        do {
            let (variants, budgets) = try Variant.grid(policies: policies, budgets: budgets, quants: quants)
            let codecs = try quants.map { try CodecRegistry.shared.make($0) }
            return (variants, budgets, codecs)
        } catch let e as PolicyError {
            throw RunError.usage(e.description)
        }
    }

    /// The cold tier's settings (nil: every page stays hot).
    public var offloadConfig: OffloadConfig? { offload == nil ? nil : OffloadConfig(hotPages: hotPages) }

    /// Page size for the codecs swept: the one given, else the key group a codec asks for, else 16.
    public func pageSize(for codecs: [CacheCodec?]) -> Int {
        pageSize ?? codecs.compactMap { $0?.preferredPageSize }.max() ?? 16
    }

    /// The default run folder.
    public func defaultOut(now: Date = Date()) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        let names = (policies.isEmpty ? ["full"] : policies).joined(separator: "+").replacingOccurrences(of: ":", with: "_")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ",", with: "_")
        return "runs/\(f.string(from: now))-\(names)"
    }

    // MARK: Parsing helpers

    /// A comma-separated list: no empty item, no item twice, each parsed by `parse`.
    static func list<T>(_ text: String, _ flag: String, _ parse: (String) throws -> T?) throws -> [T] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try checked(items, flag).map { i in
            let v: T?
            do { v = try parse(i) } catch let e as PolicyError { throw RunError.usage("\(flag): \(e.description)") }
            guard let v else { throw RunError.usage("\(flag): '\(i)' is invalid") }
            return v
        }
    }

    /// Policy or codec specs (whose parameters are comma-separated too): no empty item, none twice.
    static func specList(_ text: String, _ flag: String) throws -> [String] {
        try checked(splitSpecList(text), flag)
    }

    private static func checked(_ items: [String], _ flag: String) throws -> [String] {
        guard !items.isEmpty, !(items.count == 1 && items[0].isEmpty) else { throw RunError.usage("\(flag) is empty") }
        if items.contains(where: \.isEmpty) { throw RunError.usage("\(flag) has an empty item; separate values with single commas") }
        var seen = Set<String>()
        for i in items where !seen.insert(i).inserted { throw RunError.usage("\(flag) lists '\(i)' twice; each value once") }
        return items
    }

    static func integer(_ text: String, _ flag: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let n = Int(text), range.contains(n) else {
            throw RunError.usage("\(flag) must be a whole number from \(range.lowerBound) to \(range.upperBound) (got '\(text)')")
        }
        return n
    }
}

/// Where the model lives by default: `$KVKIT_HOME/SmolLM2-135M-Instruct.Q4_1.gguf`.
public enum ModelLocation {
    public static let defaultFileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    public static var kvkitHome: String {
        if let h = ProcessInfo.processInfo.environment["KVKIT_HOME"], !h.isEmpty { return h }
        return NSHomeDirectory() + "/.cache/kvkit"
    }

    /// Model files `make setup` can fetch, by file name, with the command that fetches each.
    public static let fetchable: [String: String] = [
        defaultFileName: "make setup",
        "gemma-3-270m-q4_k_m.gguf": "make setup MODELS=gemma3",
        "qwen2.5-coder-0.5b-instruct.gguf": "make setup MODELS=qwen0.5b",
        "qwen2.5-coder-1.5b-instruct.gguf": "make setup MODELS=qwen1.5b",
    ]

    /// The default model, or `given`; a bare file name (no "/") that is not in the current folder is
    /// looked up in $KVKIT_HOME, where `make setup` puts models (`--model gemma-3-270m-q4_k_m.gguf`).
    public static func path(_ given: String?) -> String {
        guard let given else { return "\(kvkitHome)/\(defaultFileName)" }
        if !given.contains("/") && !FileManager.default.fileExists(atPath: given) { return "\(kvkitHome)/\(given)" }
        return given
    }

    /// How to get the model file at `path`: its fetch command when `make setup` knows it.
    public static func fix(for path: String) -> String {
        let name = (path as NSString).lastPathComponent
        return fetchable[name].map { "run '\($0)' to fetch it" }
            ?? "pass --model PATH of a GGUF file (\(fetchable.values.sorted().joined(separator: "; ")) fetch the known ones)"
    }
}
