import Foundation
import ModelFile
import Policies
#if canImport(Glibc)
    import Glibc
#endif

/// A run's folder, held under an exclusive lock while open: `config.json` (what ran), `cases.json` (the
/// grid's case order, every shard), `results.jsonl` (one line per variant of a case; a case is written
/// whole, in one write), `summary.csv` and `figures/`. It owns resuming (repairing what a killed or
/// disk-full run left), appending, reading results strictly, summaries, and merging shards.
public final class RunDirectory {
    public let path: String
    private var lockFD: Int32 = -1
    private var handle: FileHandle?

    public var configPath: String { path + "/config.json" }
    public var casesPath: String { path + "/cases.json" }
    public var resultsPath: String { path + "/results.jsonl" }

    /// Creates the folder if needed and takes its lock; a second run into the same folder is refused.
    public init(path: String) throws {
        self.path = path
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw RunError.cantCreate("cannot create the run folder \(path) (\(Self.reason(error))); choose a writable --out")
        }
        let fd = open(path + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunError.cantCreate("cannot write in \(path) (\(String(cString: strerror(errno)))); choose a writable --out") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw RunError.cantCreate("\(path) is in use by another kvkit run or merge; wait for it to finish, or choose another --out")
        }
        lockFD = fd
    }

    /// Whether a run folder could be created at `path` (nothing is created): every name within the
    /// file system's limit, and the nearest existing folder above it writable.
    public static func checkCreatable(_ path: String) throws {
        for part in path.split(separator: "/") where part.utf8.count > 255 {
            throw RunError.cantCreate("cannot create \(shown(path)): the name '\(shown(String(part)))' is longer than 255 bytes; choose a shorter name")
        }
        guard path.utf8.count < 4000 else { throw RunError.cantCreate("cannot create a folder at a path of \(path.utf8.count) bytes; choose a shorter one") }
        var at = (path as NSString).standardizingPath
        var isDir: ObjCBool = false
        while !FileManager.default.fileExists(atPath: at, isDirectory: &isDir) {
            let up = (at as NSString).deletingLastPathComponent
            if up == at || up.isEmpty { at = "."; break }
            at = up
        }
        _ = FileManager.default.fileExists(atPath: at, isDirectory: &isDir)
        guard isDir.boolValue else { throw RunError.cantCreate("cannot create \(path): \(at) is a file, not a folder; choose another place") }
        guard access(at, W_OK) == 0 else { throw RunError.cantCreate("cannot create \(path): \(at) is not writable; choose a writable place") }
    }

    deinit {
        try? handle?.close()
        if lockFD >= 0 { flock(lockFD, LOCK_UN); close(lockFD) }
    }

    // MARK: Config and cases

    /// Writes `config.json` and `cases.json`, or checks that the run already here is the same experiment.
    public func adopt(_ config: RunConfig, caseIds: [String]) throws {
        if try !Self.holdsSameRun(path, as: config) { try write(Self.prettyEncoder.encode(config), to: configPath) }
        try write(JSONEncoder().encode(caseIds), to: casesPath)
    }

    /// Whether `dir` already holds a run (false: no config.json there); a run of another experiment is
    /// refused, naming what changed. Shared by `adopt` and `sweep --dry-run`'s check.
    static func holdsSameRun(_ dir: String, as config: RunConfig) throws -> Bool {
        guard let old = try Self.config(in: dir, required: false) else { return false }
        let changed = old.differences(from: config)
        guard changed.isEmpty else {
            throw RunError.usage(
                "\(dir) holds results of a different run (changed: \(changed.joined(separator: ", "))); delete it, or write the results elsewhere (--out, or a sweep config's 'results')"
                    + kernelHint(old: old, new: config))
        }
        return true
    }

    /// How to resume a run whose only difference may be the kernels chosen at run time: "" when they did not change.
    static func kernelHint(old: RunConfig, new: RunConfig) -> String {
        let oldVNNI = old.weights?.hasSuffix("-vnni") ?? false, newVNNI = new.weights?.hasSuffix("-vnni") ?? false
        guard oldVNNI != newVNNI || old.attention != new.attention else { return "" }
        if old.attention == nil && oldVNNI {  // made between the two kernels' arrival (2026-12-07, afternoon)
            return "; no setting of this version repeats its arithmetic (AVX-512 VNNI weight products with sgemm attention)"
        }
        return old.attention == nil
            ? ", or resume it with the arithmetic it was made with (KVKIT_KERNELS=avx2 declines the AVX-512 kernels)"
            : ", or resume it on a CPU with AVX-512 VNNI without KVKIT_KERNELS=avx2 (the kernels it was made with)"
    }

    /// The run config in `dir` (nil when absent and not `required`).
    public static func config(in dir: String, required: Bool = true) throws -> RunConfig? {
        guard let data = FileManager.default.contents(atPath: dir + "/config.json") else {
            if required { throw RunError.noInput("\(dir) holds no run (config.json is missing); give a folder 'kvkit run' wrote") }
            return nil
        }
        do { return try JSONDecoder().decode(RunConfig.self, from: data) } catch {
            throw RunError.data("\(dir)/config.json is not a kvkit run config; restore it or delete the folder")
        }
    }

    static func caseIds(in dir: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: dir + "/cases.json") else {
            throw RunError.noInput("\(dir)/cases.json is missing; rerun that run with this version of kvkit (it resumes)")
        }
        do { return try JSONDecoder().decode([String].self, from: data) } catch {
            throw RunError.data("\(dir)/cases.json is not a list of case ids; rerun that run to rewrite it")
        }
    }

    // MARK: Results

    /// A results file read strictly: every complete line a result (in file order, with its text), and
    /// the bytes of a last line that was cut off (a run killed or out of disk mid-write), if any.
    public struct ResultsFile {
        public var lines: [(text: String, result: VariantResult)] = []
        /// Each line's number in the file (1-based), for messages.
        public var lineNumbers: [Int] = []
        public var partialTail: Int = 0
        public var results: [VariantResult] { lines.map(\.result) }
    }

    /// Reads `results.jsonl` in `dir` (empty when absent). A malformed complete line is an error naming
    /// it: the file was edited or damaged, and guessing would mix runs. This is the raw reading; resume,
    /// merge, compare and the summaries read through ``checkedResults(in:badRows:repairTail:)``.
    public static func readResults(in dir: String) throws -> ResultsFile {
        let path = dir + "/results.jsonl"
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw RunError.noInput(
                "\(path) is a folder, not a results file; move it out of the run folder (a rerun with the same --out then starts the results again)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { return ResultsFile() }
        var file = ResultsFile()
        var pieces = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if let last = pieces.last {
            if !last.isEmpty { file.partialTail = last.count }
            pieces.removeLast()
        }
        let decoder = JSONDecoder()
        for (i, piece) in pieces.enumerated() where !piece.isEmpty {
            guard let r = try? decoder.decode(VariantResult.self, from: Data(piece)) else {
                throw RunError.data("\(path) line \(i + 1) is not a result; the file was edited or damaged: delete that line (its case reruns on resume)")
            }
            file.lines.append((String(decoding: piece, as: UTF8.self), r))
            file.lineNumbers.append(i + 1)
        }
        return file
    }

    /// The help of `--drop-bad-rows` (run, sweep, merge, compare).
    public static let dropBadRowsHelp =
        "Drop rows of results.jsonl that do not belong to the run (a case or variant it does not list, two different results for one case and variant) with a note, instead of refusing the file."

    /// What a reader does with rows that do not belong to the run: refuse the file (the default), or drop
    /// them with a note (`--drop-bad-rows`).
    public enum BadRows: Sendable { case refuse, drop }

    /// The one rule for a run's results file, shared by resume, merge, compare and the summaries:
    /// - a malformed complete line is refused (65), a folder in place of the file too (66);
    /// - a cut-off last line (a killed run, or one still writing) is refused, except by the run's own
    ///   resume (`repairTail`), which removes it;
    /// - a foreign row (a case id not in `cases.json`, or a variant the run's `config.json` does not list)
    ///   and conflicting duplicates (one case and variant, two different lines) are refused, or under
    ///   `badRows: .drop` dropped with a note (every line of a conflict: that case and variant reruns);
    /// - an identical duplicate line is dropped with a note (it says nothing new).
    /// Returns the lines that stand, in file order, and a sentence per line dropped or repaired.
    public static func checkedResults(in dir: String, badRows: BadRows = .refuse, repairTail: Bool = false) throws -> (
        lines: [(text: String, result: VariantResult)], notes: [String]
    ) {
        let path = dir + "/results.jsonl"
        let file = try readResults(in: dir)
        var notes: [String] = []
        if file.partialTail > 0 {
            guard repairTail else {
                throw RunError.data(
                    "\(path) ends in a cut-off line (a run was killed, or is still writing); rerun that run with the same --out (it repairs and resumes), or wait for it to finish"
                )
            }
            notes.append("removed a cut-off last line (\(file.partialTail) bytes) from \(path)")
        }
        guard !file.lines.isEmpty else { return ([], notes) }
        let known = Set(try caseIds(in: dir))
        let expected = try config(in: dir).flatMap(expectedVariants)
        // Why each line does not belong (nil: it does), by index.
        var why = [String?](repeating: nil, count: file.lines.count)
        var first: [String: Int] = [:], identical = Set<Int>()
        for (i, l) in file.lines.enumerated() {
            let r = l.result, key = variantKey(r)
            if !known.contains(r.caseId) {
                why[i] = "case '\(Self.shown(r.caseId))' is not one of the run's cases (cases.json)"
            } else if let expected, !expected.contains(key) {
                why[i] = "variant \(Self.shown(r.policy))@\(Self.shown(r.budget)) (\(Self.shown(r.quant))) is not one the run's config.json lists"
            } else if let j = first[r.caseId + "\u{1}" + key] {
                if file.lines[j].text == l.text || file.lines[j].result == r { identical.insert(i); continue }
                let conflict =
                    "lines \(file.lineNumbers[j]) and \(file.lineNumbers[i]) give case \(Self.shown(r.caseId)), variant \(Self.shown(r.policy))@\(r.budget), different results"
                why[i] = conflict
                if why[j] == nil { why[j] = conflict }
            } else {
                first[r.caseId + "\u{1}" + key] = i
            }
        }
        let bad = why.indices.filter { why[$0] != nil }
        if let b = bad.first {
            guard badRows == .drop else {
                throw RunError.data(
                    "\(path) line \(file.lineNumbers[b]): \(why[b]!); delete the line(s), or pass --drop-bad-rows to drop such rows with a note\(bad.count > 1 ? " (\(bad.count) rows in all)" : "")"
                )
            }
            notes.append("dropped \(bad.count) row(s) of \(path) that do not belong to the run (first: line \(file.lineNumbers[b]): \(why[b]!))")
        }
        if !identical.isEmpty { notes.append("removed \(identical.count) duplicate result line(s) from \(path)") }
        let kept = file.lines.indices.filter { why[$0] == nil && !identical.contains($0) }.map { file.lines[$0] }
        return (kept, notes)
    }

    /// The (policy|budget|codec) keys a run's config lists: the full cache, and every policy × budget ×
    /// codec. nil when a policy or codec is not registered in this binary (a plug-in's run read by plain
    /// kvkit): only case ids are checked then.
    static func expectedVariants(_ c: RunConfig) -> Set<String>? {
        guard let (variants, _) = try? Variant.grid(policies: c.policies, budgets: c.budgets, quants: c.quants) else { return nil }
        var keys: Set<String> = ["full|\(Budget.fraction(1).description)|fp32"]
        for v in variants { keys.insert("\(v.spec.description)|\(v.budget.description)|\(v.quant)") }
        return keys
    }

    /// A name from a file as a message shows it: one line, at most 80 characters.
    static func shown(_ s: String) -> String { s.shownOnOneLine() }

    /// Runs `body` while no kvkit run or merge writes into `dir` (a shared hold on its lock); a folder in
    /// use is refused (73), as a reader would otherwise see a run's partial results.
    public static func readingLocked<T>(_ dir: String, _ body: () throws -> T) throws -> T {
        let fd = open(dir + "/.lock", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return try body() }  // never run into (or read-only): nobody writes there
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            throw RunError.cantCreate("\(dir) is in use by a kvkit run or merge that is still writing; wait for it to finish, then read it")
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// The variant a result line is for: lines of one case with the same key are duplicates.
    static func variantKey(_ r: VariantResult) -> String { "\(r.policy)|\(r.budget)|\(r.quant)" }

    /// Lines grouped by case in first-seen order (the lines already checked: no duplicates).
    static func byCase(_ lines: [(text: String, result: VariantResult)]) -> (order: [String], lines: [String: [(text: String, result: VariantResult)]]) {
        var order: [String] = [], out: [String: [(text: String, result: VariantResult)]] = [:]
        for l in lines {
            if out[l.result.caseId] == nil { order.append(l.result.caseId) }
            out[l.result.caseId, default: []].append(l)
        }
        return (order, out)
    }

    /// Makes `results.jsonl` ready to append to, by ``checkedResults(in:badRows:repairTail:)``: a cut-off
    /// last line is removed, and so are the lines of cases that lack some of their `linesPerCase`
    /// variants (those cases run again). Returns the cases that are finished and a sentence per repair.
    public func resume(linesPerCase: Int, badRows: BadRows = .refuse) throws -> (done: Set<String>, repairs: [String]) {
        // Every line the rule removed (a cut-off tail, a duplicate, a dropped row) comes with a note.
        var (lines, repairs) = try Self.checkedResults(in: path, badRows: badRows, repairTail: true)
        let (order, groups) = Self.byCase(lines)
        let complete = order.filter { groups[$0]!.count >= linesPerCase }
        let incomplete = order.filter { groups[$0]!.count < linesPerCase }
        if !incomplete.isEmpty {
            repairs.append("\(incomplete.count) case(s) had only some of their \(linesPerCase) results (first: \(Self.shown(incomplete[0]))); they run again")
        }
        if !repairs.isEmpty {
            lines = complete.flatMap { groups[$0]! }
            try write(Data(lines.map { $0.text + "\n" }.joined().utf8), to: resultsPath)
        }
        return (Set(complete), repairs)
    }

    private static let lineEncoder: JSONEncoder = {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]; return e
    }()
    static let prettyEncoder: JSONEncoder = {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }()

    /// Appends one case's results in a single write, so a killed run loses at most the case in flight.
    public func append(_ results: [VariantResult]) throws {
        var chunk = Data()
        for r in results { chunk += try Self.lineEncoder.encode(r); chunk += Data("\n".utf8) }
        do {
            if handle == nil {
                if !FileManager.default.fileExists(atPath: resultsPath) {
                    guard FileManager.default.createFile(atPath: resultsPath, contents: nil) else {
                        throw RunError.cantCreate("cannot create \(resultsPath); choose a writable --out")
                    }
                }
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: resultsPath))
            }
            try handle!.seekToEnd()
            try handle!.write(contentsOf: chunk)
        } catch let e as RunError {
            throw e
        } catch {
            throw RunError.io(
                "cannot write \(resultsPath) (\(Self.reason(error))); finished cases are kept: free space, then rerun with the same --out to resume")
        }
    }

    /// Every result in the folder, read by the one rule (``checkedResults(in:badRows:repairTail:)``).
    public func results() throws -> [VariantResult] { try Self.checkedResults(in: path).lines.map(\.result) }

    /// Writes `summary.csv` and the figures for `results`, and returns the summary rows.
    @discardableResult
    public func writeReport(_ results: [VariantResult]) throws -> [Summary.Row] {
        let rows = Summary.rows(results)
        try write(Data(Summary.csv(rows).utf8), to: path + "/summary.csv")
        do { try Figures.write(results, to: path + "/figures") } catch {
            if [ENOSPC, EDQUOT, EIO, EFBIG].contains(Self.posixCode(error)) {
                throw RunError.io(
                    "cannot write the figures in \(path)/figures (\(Self.reason(error))); the results are kept: free space, then rerun with the same --out")
            }
            throw RunError.cantCreate("cannot write the figures in \(path)/figures (\(Self.reason(error))); the results are kept")
        }
        // Accuracy against budget with interval bars, per probe, beside the heatmaps.
        for p in Array(Set(rows.map(\.probe))).sorted() {
            let name = "accuracy_vs_budget_" + String(p.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }) + ".svg"
            try write(Data(Report.accuracyChart(rows, probe: p).utf8), to: path + "/figures/" + name)
        }
        // A suite's leaderboard view (RULER): per task and the average, as CSV and SVG.
        let suite = SuiteSummary.rows(rows)
        if !suite.rows.isEmpty {
            try write(Data(SuiteSummary.csv(tasks: suite.tasks, rows: suite.rows).utf8), to: path + "/ruler.csv")
            try write(Data(SuiteSummary.chart(tasks: suite.tasks, rows: suite.rows, from: rows).utf8), to: path + "/ruler.svg")
        }
        try writeIndex(rows)
        return rows
    }

    /// `index.html`: the config, the summary with intervals and every figure, one page that opens offline.
    func writeIndex(_ rows: [Summary.Row]) throws {
        let dir = path + "/figures"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".svg") && !$0.hasPrefix("accuracy_vs_budget_") }
            .sorted()
        let figures = names.compactMap { n in (try? String(contentsOfFile: dir + "/" + n, encoding: .utf8)).map { (n, $0) } }
        let config = try? Self.config(in: path, required: false)
        let title = "KVKit run: " + (path as NSString).lastPathComponent
        try write(Data(Report.html(title: title, config: config ?? nil, rows: rows, figures: figures).utf8), to: path + "/index.html")
    }

    /// Writes a file atomically (a temporary file renamed over it).
    func write(_ data: Data, to file: String) throws { try Self.write(data, to: file) }

    /// Writes a file atomically (a temporary file renamed over it); a failure is a one-line "cannot create".
    public static func write(_ data: Data, to file: String) throws {
        do { try data.write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
            // A full disk or a failing device mid-run is an I/O error (74); a folder that cannot take the
            // file at all is "cannot create" (73).
            if [ENOSPC, EDQUOT, EIO, EFBIG].contains(posixCode(error)) {
                throw RunError.io("cannot write \(file) (\(Self.reason(error))); finished results are kept: free space, then rerun with the same --out")
            }
            throw RunError.cantCreate("cannot write \(file) (\(Self.reason(error))); free space or choose a writable --out")
        }
    }

    /// The POSIX error number behind a Foundation error, if any.
    static func posixCode(_ error: Error) -> Int32? {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain { return Int32(u.code) }
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileWriteOutOfSpaceError { return ENOSPC }
        return nil
    }

    /// The reason of a Foundation error in words (the POSIX error's text where there is one).
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(u.code))) }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }

    // MARK: Merging shards

    /// What `merge` wrote.
    public struct MergeOutcome {
        public var shards: Int, cases: Int
        public var results: [VariantResult]
        public var rows: [Summary.Row]
        /// Rows dropped under `--drop-bad-rows`, a sentence per shard.
        public var notes: [String] = []
    }

    /// Merges the folders of a sharded run into `out`: the same lines, in the grid's case order, as the
    /// unsharded run writes. Refuses a folder given twice, `out` being one of the shards, shards of
    /// another run, a missing shard, a shard holding one twice, and unfinished cases.
    public static func merge(_ shards: [String], into out: String, badRows: BadRows = .refuse) throws -> MergeOutcome {
        guard !shards.isEmpty else { throw RunError.usage("give the shards' folders to merge") }
        func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        var seen: [String: String] = [:]
        for d in shards {
            if let first = seen.updateValue(d, forKey: canonical(d)) { throw RunError.usage("\(d) is given twice (as \(first) too); give each shard once") }
        }
        if let hit = shards.first(where: { canonical($0) == canonical(out) }) {
            throw RunError.usage("--out \(out) is the shard folder \(hit): merging there would overwrite that shard; merge into another folder")
        }
        var configs: [RunConfig] = [], caseLists: [[String]] = []
        for d in shards {
            configs.append(try config(in: d)!)
            caseLists.append(try caseIds(in: d))
        }
        var base = configs[0]; base.shard = nil
        for (d, c) in zip(shards, configs) {
            var x = c; x.shard = nil
            let changed = base.differences(from: x)
            guard changed.isEmpty else {
                throw RunError.usage(
                    "\(d) is a shard of a different run (its config.json differs from \(shards[0])'s in: \(changed.joined(separator: ", "))); merge the shards of one run"
                )
            }
        }
        guard caseLists.allSatisfy({ $0 == caseLists[0] }) else { throw RunError.usage("the shards list different cases; they come from different runs") }
        var holder: [String: String] = [:]
        for (d, c) in zip(shards, configs) {
            let id = c.shard ?? "1/1"
            if let other = holder.updateValue(d, forKey: id) { throw RunError.usage("\(other) and \(d) both hold shard \(id); give each shard once") }
        }
        let n = configs.compactMap { $0.shard.flatMap { Int($0.split(separator: "/").last ?? "") } }.first ?? 1
        let missing = (1...n).map { "\($0)/\(n)" }.filter { holder[$0] == nil }
        guard missing.isEmpty else { throw RunError.usage("shard(s) \(missing.joined(separator: ", ")) missing; run them and merge every shard") }

        // Lines per case, kept verbatim (each shard wrote them in case order), each shard read by the one
        // rule while no run writes into it.
        var lines: [String: [(text: String, result: VariantResult)]] = [:], counts: [String: Int] = [:], notes: [String] = []
        for d in shards {
            let (checked, n) = try readingLocked(d) { try checkedResults(in: d, badRows: badRows) }
            notes += n
            let (order, groups) = byCase(checked)
            for id in order {
                if lines[id] != nil { throw RunError.usage("case \(shown(id)) has results in more than one shard; the shards overlap") }
                lines[id] = groups[id]!; counts[id] = groups[id]!.count
            }
        }
        let ids = caseLists[0]
        let perCase = expectedVariants(base)?.count ?? counts.values.max() ?? 0
        let unfinished = ids.filter { (counts[$0] ?? 0) < perCase || perCase == 0 }
        guard unfinished.isEmpty else {
            let dropped = notes.isEmpty ? "" : " (rows --drop-bad-rows dropped were among theirs)"
            throw RunError.usage(
                "\(unfinished.count) case(s) have no complete results yet\(dropped) (first: \(shown(unfinished[0]))); finish their shard (rerun it with the same --out: it resumes)"
            )
        }
        let dir = try RunDirectory(path: out)
        try dir.adopt(base, caseIds: ids)
        let merged = ids.flatMap { lines[$0]! }
        try dir.write(Data(merged.map { $0.text + "\n" }.joined().utf8), to: dir.resultsPath)
        let all = merged.map(\.result)  // the lines just written, already parsed
        let rows = try dir.writeReport(all)
        return MergeOutcome(shards: shards.count, cases: ids.count, results: all, rows: rows, notes: notes)
    }
}
