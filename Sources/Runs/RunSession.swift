import Foundation
import KVCache
import Models
import ModelFile
import Crypto
import Probes
import TensorMath

/// Loads a model for a run, turning every file problem into a one-line `RunError`: a missing, unreadable
/// or non-regular path (a folder, a FIFO) is "no input" (66), a malformed file is "bad data" (65).
public enum ModelLoader {
    /// The model a plan names, with its threads, weights and chat format.
    public static func load(_ plan: RunPlan) throws -> any LanguageModel {
        try load(path: ModelLocation.path(plan.model), threads: plan.threads, storage: plan.weights, format: plan.format)
    }

    public static func load(path: String, threads: Int, storage: WeightStorage = .native, format: ChatTemplate.Format? = nil) throws -> any LanguageModel {
        Threads.set(threads)
        try checkReadable(path)
        do { return try DecoderModel(path: path, storage: storage, format: format) } catch let e as GGUFError {
            if case .cannotOpen = e { throw RunError.noInput(e.description) }
            throw RunError.data(e.description)
        } catch let e as ModelError {
            throw RunError.data(e.description)
        } catch let e as Tokenizer.Error {
            throw RunError.data(e.description)
        } catch let e as ChatTemplate.UnknownTemplate {
            throw RunError.data("\(path): \(e.description)")
        } catch {
            throw RunError.data("\(path): \(error)")
        }
    }

    /// A readable regular file at `path`, or the "no input" error that names what is there instead.
    public static func checkReadable(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw RunError.noInput("model file not found at \(path); \(ModelLocation.fix(for: path))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw RunError.noInput("\(path) is not a regular file (a folder, FIFO or device); pass --model PATH of a .gguf file")
        }
        guard access(path, R_OK) == 0 else {
            throw RunError.noInput("cannot read the model file \(path) (\(String(cString: strerror(errno)))); check its permissions")
        }
    }
}

/// A plan bound to a model: builds the case grid and runs it into a run folder, resuming what is there.
public struct RunSession {
    public let plan: RunPlan
    public let model: any LanguageModel
    /// Room kept after a generated context for the question and the answer.
    public static let questionRoom = 64

    public init(plan: RunPlan, model: any LanguageModel) { self.plan = plan; self.model = model }

    /// Progress after each case: cases done, cases to do, seconds elapsed, a label.
    public typealias Progress = (_ done: Int, _ total: Int, _ elapsed: Double, _ label: String) -> Void

    /// What a run wrote.
    public struct Outcome {
        public var resultsPath: String
        public var rows: [Summary.Row]
        /// Cases run now, and finished before (resumed).
        public var ran: Int, resumed: Int
        /// Probe-file lines skipped and repairs made to an interrupted results file, a sentence each.
        public var notes: [String]
    }

    /// The runner for this plan.
    func runner(pageSize: Int) -> Runner {
        var r = Runner(model: model)
        r.queryAware = plan.queryAware
        r.maxAnswerTokens = plan.maxAnswerTokens
        r.compressEvery = plan.compressEvery
        r.compressBetweenTurns = plan.compressBetweenTurns
        r.pageSize = pageSize
        r.offload = plan.offloadConfig
        r.offloadDirectory = plan.offloadDir
        r.seed = plan.seed
        r.sharePrefill = plan.sharePrefill
        return r
    }

    /// The SHA-256 of the run's inputs: every case's content in order (what the probe file, seed and
    /// haystack became), the probe file's bytes, and a haystack file's bytes (the essays' digest is in the
    /// haystack's description).
    func inputs(_ cases: [ProbeCase]) throws -> [String: String] {
        var out = ["cases": sha256Hex(Data(cases.map(\.contentSHA256).joined(separator: "\n").utf8))]
        if let path = plan.probeFile, let data = FileManager.default.contents(atPath: path) { out["probe-file"] = sha256Hex(data) }
        if !["essays", "grammar"].contains(plan.haystack), let data = FileManager.default.contents(atPath: plan.haystack) { out["haystack"] = sha256Hex(data) }
        return out
    }

    /// Every case of the grid in order (all shards), the haystack's description, and skipped lines.
    public func cases() throws -> (cases: [ProbeCase], haystack: String, skipped: [String]) {
        let context = model.config.contextLength
        if let path = plan.probeFile {
            let loaded: (cases: [ProbeCase], skipped: [ProbeFile.Error])
            do {
                loaded = try ProbeFile.load(path, tokenizer: model.tokenizer, chat: model.chatTemplate, skipBadLines: plan.skipBadLines)
            } catch let e as ProbeFile.Error {
                if case .unreadable = e { throw RunError.noInput(e.description) }
                throw RunError.data(e.description)
            }
            var skipped = loaded.skipped.map(\.skipNote), cases: [ProbeCase] = [], ids = Set<String>()
            let runner = runner(pageSize: 16)
            for c in loaded.cases {
                guard ids.insert(c.id).inserted else {
                    throw RunError.data("probe file \(path) holds case id '\(RunDirectory.shown(c.id))' twice; give each case its own id")
                }
                // The context, every turn's question and answer prefix, and room for each answer.
                let needed =
                    c.context.count
                    + c.turns.enumerated().reduce(0) { sum, t in
                        sum + runner.turnTokens(t.element, index: t.offset, previous: nil).count + runner.maxAnswerTokens(for: t.element) + 4
                    }
                if needed > context {
                    let message =
                        "probe file case \(c.id) needs \(needed) tokens with its question and answer, beyond the model's context of \(context); shorten it"
                    guard plan.skipBadLines else { throw RunError.data(message + ", or pass --skip-bad-lines") }
                    skipped.append("skipped " + message)
                    continue
                }
                cases.append(c)
            }
            guard !cases.isEmpty else {
                throw RunError.data(
                    "probe file \(path) holds no case that fits the model's context of \(context) tokens; shorten its contexts or use a model with a longer context"
                )
            }
            return (cases, "file \((path as NSString).lastPathComponent)", skipped)
        }
        if let n = plan.lengths.first(where: { $0 > context - Self.questionRoom }) {
            throw RunError.usage(
                "--lengths \(n) leaves no room for the question within the model's context of \(context) tokens; use at most \(context - Self.questionRoom)")
        }
        var gen = ProbeGenerator(tokenizer: model.tokenizer, chat: model.chatTemplate, haystackSeed: plan.seed)
        gen.wording = plan.wording
        let (sentences, haystack) = try Self.haystack(plan.haystack, seed: plan.seed)
        gen.haystackSentences = sentences
        var cases: [ProbeCase] = []
        for name in plan.probes {
            guard let p = ProbeRegistry.shared.probe(name) else { throw RunError.usage("--probe: unknown probe '\(name)'") }
            let axes = plan.axes(p)
            if let short = plan.lengths.first(where: { $0 < p.shortestLength }) {
                throw RunError.usage("--lengths \(short): \(name) needs at least \(p.shortestLength) tokens (its template and answer room); use longer lengths")
            }
            for k in axes.hops {
                for l in plan.lengths {
                    for d in axes.depths {
                        for s in 0..<plan.samples {
                            gen.hops = k
                            cases.append(gen.make(p, length: l, depth: d, sample: s, seed: plan.seed))
                        }
                    }
                }
            }
        }
        return (cases, haystack, [])
    }

    /// Writes, per case and variant, the positions every (layer, KV head) keeps after compression as JSON
    /// lines at `path` (atomically): `{"id", "policy", "budget", "prompt_tokens", "opening_tokens", "tokens",
    /// "kept": [layer][head][positions]}` (`tokens`: the prompt's ids, so another tool runs exactly them; in
    /// query-aware mode `question_in_prompt`: how many of them are the question). Positions count from the prompt's first token; the chat template's
    /// opening takes the first `opening_tokens`. Returns the number of lines.
    public func exportKept(to path: String, progress: Progress? = nil) throws -> Int {
        let (variants, _, _) = try plan.resolved()
        let all = try cases().cases
        let runner = runner(pageSize: plan.pageSize(for: [nil]))
        let opening = model.tokenizer.encode(model.chatTemplate.openingOfFirstUserTurn(), addBOS: true).count
        var text = "", lines = 0
        let clock = ContinuousClock(), t0 = clock.now
        for (i, c) in all.enumerated() {
            let keptSets = try runner.keptPositions(c, variants: variants)
            for (v, kept) in zip(variants, keptSets) {
                let prompt = runner.prompt(c)
                var object: [String: Any] = [
                    "id": c.id, "policy": v.spec.description, "budget": v.budget.description,
                    "prompt_tokens": prompt.count, "opening_tokens": opening, "tokens": prompt.map(Int.init),
                    "kept": kept.map { $0.map { $0.map(Int.init) } },
                ]
                // What another tool needs to answer the first turn on its own compressed cache, as the run does.
                if let turn = c.turns.first {
                    let question: [Int32] = plan.queryAware ? [] : runner.turnTokens(turn, index: 0, previous: nil)
                    object["question_tokens"] = question.map { Int($0) }
                    object["answers"] = turn.answers
                    object["max_new_tokens"] = runner.maxAnswerTokens(for: turn)
                }
                // Query-aware: the prompt's last tokens are the question (FINCH's window; kvpress finds it by a delimiter).
                if let q = runner.question(c, prompt: prompt) { object["question_in_prompt"] = q }
                text += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
                lines += 1
            }
            progress?(i + 1, all.count, (clock.now - t0).seconds, c.id)
        }
        try RunDirectory.write(Data(text.utf8), to: path)
        return lines
    }

    /// Writes the plan's case grid as a probe file at `path` (atomically); returns the number of cases.
    public func export(to path: String) throws -> Int {
        let cases = try cases().cases
        var text = ""
        for c in cases {
            do { text += try ProbeExport.line(c, tokenizer: model.tokenizer, chat: model.chatTemplate) + "\n" } catch {
                throw RunError.data("\(error)")
            }
        }
        try RunDirectory.write(Data(text.utf8), to: path)
        return cases.count
    }

    /// The SHA-256 of the essays as `make setup` checks them (their bytes in file-name order).
    public static let essaysSHA256 = "b3a70ebc054f2eab5057baf3c4b7e857711472be8086240a516fd29b648ad857"

    /// The sentences of a `--haystack` value (nil: the generated grammar) and how the run's config names it.
    public static func haystack(_ choice: String, seed: UInt64) throws -> (sentences: [String]?, description: String) {
        switch choice {
        case "grammar":
            return (nil, "grammar (generated English, seed \(seed))")
        case "essays":
            let dir = ModelLocation.kvkitHome + "/" + EssayHaystack.folderName
            let files = (try? EssayHaystack.files(in: dir)) ?? []
            guard !files.isEmpty else {
                throw RunError.noInput("the Paul Graham essays are not in \(dir); run 'make setup' to fetch them, or pass --haystack grammar")
            }
            var hash = SHA256()
            for f in files { hash.update(data: f.data) }
            let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
            guard digest == essaysSHA256 else {
                throw RunError.data(
                    "the essays in \(dir) differ from the ones NIAH uses (SHA-256 \(digest.prefix(12))…); delete the folder and run 'make setup' again")
            }
            return (EssayHaystack.sentences(files), "essays (Paul Graham, \(files.count) files, sha256 \(digest.prefix(16)))")
        default:
            let path = choice
            guard let data = FileManager.default.contents(atPath: path) else {
                throw RunError.noInput("cannot read haystack file \(path); check the path, or pass --haystack essays or grammar")
            }
            guard let text = String(data: data, encoding: .utf8) else { throw RunError.data("haystack file \(path) is not UTF-8 text") }
            let sentences = ProbeGenerator.split(text)
            guard !sentences.isEmpty else { throw RunError.data("haystack file \(path) holds no sentences") }
            return (sentences, "file \((path as NSString).lastPathComponent), \(text.utf8.count) bytes")
        }
    }

    /// A run made ready: its config as `config.json` records it, every case of the grid (all shards), the
    /// cases of this shard, the variants and notes on skipped probe-file lines.
    struct Prepared {
        var config: RunConfig
        var all: [ProbeCase], cases: [ProbeCase]
        var variants: [Variant]
        var runner: Runner
        var skipped: [String]
    }

    /// Everything a run does before its first case: the variants and codecs resolved, the cold tier's
    /// folder, the cases built, the config with every input's SHA-256.
    func prepare() throws -> Prepared {
        let (variants, budgets, codecs) = try plan.resolved()
        let pageSize = plan.pageSize(for: codecs)
        if let dir = plan.offloadDir {
            do { _ = try ColdStore(directory: dir) } catch let e as KVCacheError { throw RunError.cantCreate(e.description) }
        }
        let (all, haystack, skipped) = try cases()
        let runner = runner(pageSize: pageSize)
        var config = RunConfig(
            policies: ["full"] + variants.map(\.spec.description).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } },
            budgets: budgets.map(\.description), probes: plan.probeFile.map { ["file:" + ($0 as NSString).lastPathComponent] } ?? plan.probes,
            lengths: plan.lengths, depths: plan.depths, hops: plan.hops, wording: plan.wording.rawValue,
            samples: plan.samples, seed: plan.seed, queryAware: plan.queryAware, maxAnswerTokens: runner.maxAnswerTokens, pageSize: pageSize,
            quants: codecs.map { $0?.name ?? "fp32" }, offload: plan.offloadConfig.map { "lz4:hot-pages=\($0.hotPages)" } ?? "none",
            threads: plan.threads, haystack: haystack, model: ModelIdentity(model: model), codeVersion: codeVersion(),
            shard: plan.shard?.description, weights: model.weightsRecord,
            compressEvery: plan.compressEvery, compressBetweenTurns: plan.compressBetweenTurns ? true : nil)
        config.inputs = try inputs(all)
        config.attention = PagedAttention.record(headDim: model.config.headDim)
        var cases = all
        if let s = plan.shard { cases = cases.enumerated().filter { $0.offset % s.count == s.index - 1 }.map(\.element) }
        return Prepared(config: config, all: all, cases: cases, variants: variants, runner: runner, skipped: skipped)
    }

    /// What `sweep --dry-run` checks: everything the run would do before its first case (every input read
    /// and checked, the cases built), and that `out` can take it: a folder holding another run, results
    /// the one rule refuses, or a path that cannot be created is named now, not after an hour. Writes
    /// nothing. Returns the number of cases the run would run (its shard's, minus those finished).
    public func check(out: String) throws -> (cases: Int, finished: Int) {
        let p = try prepare()
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RunError.cantCreate("\(out) is a file, not a folder; choose another --out") }
            if try RunDirectory.holdsSameRun(out, as: p.config) {
                let (lines, _) = try RunDirectory.readingLocked(out) {
                    try RunDirectory.checkedResults(in: out, badRows: plan.dropBadRows ? .drop : .refuse, repairTail: true)
                }
                let per = p.variants.count + 1
                let done = Dictionary(grouping: lines, by: \.result.caseId).filter { $0.value.count >= per }
                return (p.cases.count, p.cases.filter { done[$0.id] != nil }.count)
            }
            guard access(out, W_OK) == 0 else { throw RunError.cantCreate("cannot write in \(out); choose a writable folder") }
            return (p.cases.count, 0)
        }
        try RunDirectory.checkCreatable(out)
        return (p.cases.count, 0)
    }

    /// Runs the plan's cases (its shard's) into `out`, resuming finished cases, then writes the summary
    /// and figures over every result in the folder.
    public func execute(out: String, progress: Progress? = nil) throws -> Outcome {
        let p = try prepare()
        let (config, all, cases, variants, runner, skipped) = (p.config, p.all, p.cases, p.variants, p.runner, p.skipped)
        let dir = try RunDirectory(path: out)
        try dir.adopt(config, caseIds: all.map(\.id))
        let (done, repairs) = try dir.resume(linesPerCase: variants.count + 1, badRows: plan.dropBadRows ? .drop : .refuse)
        let todo = cases.filter { !done.contains($0.id) }
        let clock = ContinuousClock(), t0 = clock.now
        for (i, c) in todo.enumerated() {
            let results: [VariantResult]
            do { results = try runner.run(c, variants: variants) } catch let e as KVCacheError {
                throw RunError.io("\(e.description) (case \(c.id); finished cases are in \(dir.resultsPath))")
            } catch let e as ModelError {
                throw RunError.data("case \(c.id): \(e.description); finished cases are in \(dir.resultsPath)")
            }
            try dir.append(results)
            progress?(i + 1, todo.count, (clock.now - t0).seconds, "\(c.id)  full \(Int(results[0].score * 100))%")
        }
        // The summary covers every line in the folder (cases finished by an earlier run included).
        let rows = try dir.writeReport(try dir.results())
        return Outcome(resultsPath: dir.resultsPath, rows: rows, ran: todo.count, resumed: cases.count - todo.count, notes: skipped + repairs)
    }
}
