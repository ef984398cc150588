import Foundation
import Policies

/// The statistics a claim about a policy needs: an interval beside every accuracy, and a paired test
/// for "A beats B" on the same cases.
public enum Statistics {
    /// The 95 % Wilson score interval of `successes` out of `n` (Wilson 1927; the interval Brown, Cai &
    /// DasGupta 2001 recommend over the normal one, which collapses to a point at 0/n and n/n).
    /// `successes` may be fractional (partial-credit scores summed). nil for n = 0.
    public static func wilson(_ successes: Double, _ n: Int, z: Double = 1.959963984540054) -> (low: Double, high: Double)? {
        guard n > 0 else { return nil }
        let nn = Double(n), p = min(max(successes / nn, 0), 1), z2 = z * z
        let denom = 1 + z2 / nn
        let center = (p + z2 / (2 * nn)) / denom
        let half = z * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot() / denom
        return (max(0, center - half), min(1, center + half))
    }

    /// The exact (binomial) two-sided McNemar p-value for `b` cases only A got right and `c` only B got
    /// right: 2 · P(X ≤ min(b, c)) for X ~ Binomial(b + c, ½), capped at 1 (1 when b + c = 0).
    public static func mcnemarExact(_ b: Int, _ c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // Σ_{i≤k} C(n, i) / 2^n in log space (n can be thousands).
        let logHalfN = Double(n) * Foundation.log(0.5)
        var logTerms: [Double] = []
        var logC = 0.0  // log C(n, 0)
        for i in 0...k {
            if i > 0 { logC += Foundation.log(Double(n - i + 1)) - Foundation.log(Double(i)) }
            logTerms.append(logC + logHalfN)
        }
        let m = logTerms.max()!
        let tail = Foundation.exp(m) * logTerms.reduce(0) { $0 + Foundation.exp($1 - m) }
        return min(1, 2 * tail)
    }
}

/// Two variants of one run compared on the cases both ran: the paired outcome table and McNemar's test.
public struct PairedComparison: Sendable {
    public let a: String, b: String
    /// Cases both answered right, only A, only B, neither (a case is right when its score is 1).
    public var both = 0, onlyA = 0, onlyB = 0, neither = 0
    public var n: Int { both + onlyA + onlyB + neither }
    public var accuracyA: Double { n == 0 ? .nan : Double(both + onlyA) / Double(n) }
    public var accuracyB: Double { n == 0 ? .nan : Double(both + onlyB) / Double(n) }
    public var pValue: Double { Statistics.mcnemarExact(onlyA, onlyB) }
    /// Rows the reading dropped (`--drop-bad-rows`), a sentence each.
    public var notes: [String] = []

    /// Pairs the results of variants `a` and `b` (each a filter) by case id.
    public init(_ results: [VariantResult], a: String, b: String, matchA: (VariantResult) -> Bool, matchB: (VariantResult) -> Bool) {
        self.init(results, results, a: a, b: b, matchA: matchA, matchB: matchB)
    }

    /// Pairs A from `resultsA` with B from `resultsB` (two runs of the same cases) by case id.
    public init(
        _ resultsA: [VariantResult], _ resultsB: [VariantResult], a: String, b: String,
        matchA: (VariantResult) -> Bool, matchB: (VariantResult) -> Bool
    ) {
        self.a = a; self.b = b
        var scoresA: [String: Double] = [:], scoresB: [String: Double] = [:]
        for r in resultsA where matchA(r) { scoresA[r.caseId] = r.score }
        for r in resultsB where matchB(r) { scoresB[r.caseId] = r.score }
        for (id, sa) in scoresA {
            guard let sb = scoresB[id] else { continue }
            switch (sa >= 1, sb >= 1) {
            case (true, true): both += 1
            case (true, false): onlyA += 1
            case (false, true): onlyB += 1
            case (false, false): neither += 1
            }
        }
    }

    /// The table and the test in words.
    public var text: String {
        func pct(_ x: Double, _ right: Int) -> String {
            let ci = Statistics.wilson(Double(right), n)
            return String(format: "%.1f%% (%d/%d, 95%% CI %.1f–%.1f%%)", x * 100, right, n, (ci?.low ?? .nan) * 100, (ci?.high ?? .nan) * 100)
        }
        let w = 8
        func pad(_ s: String) -> String { s.padding(toLength: w, withPad: " ", startingAt: 0) }
        var s = "\(n) cases both ran\n"
        s += "  A = \(a): \(pct(accuracyA, both + onlyA))\n  B = \(b): \(pct(accuracyB, both + onlyB))\n\n"
        s += "  " + pad("") + "  B right  B wrong\n"
        s += "  " + pad("A right") + String(format: "  %7d  %7d\n", both, onlyA)
        s += "  " + pad("A wrong") + String(format: "  %7d  %7d\n", onlyB, neither)
        s += String(format: "\nexact McNemar test on the %d discordant cases (%d only A, %d only B): p = %.4g\n", onlyA + onlyB, onlyA, onlyB, pValue)
        if onlyA + onlyB == 0 {
            s += "no case separates them: no evidence either way\n"
        } else {
            s +=
                pValue < 0.05
                ? "\(onlyA > onlyB ? "A" : "B") answers more cases right (p < 0.05)\n"
                : "no significant difference at the 5% level (more cases would narrow it)\n"
        }
        return s
    }
}

extension PairedComparison {
    /// One side of a comparison as the command line names it: `POLICY[:params][@BUDGET]`.
    struct Side {
        let policy: String, budget: String?
        init(_ text: String) throws {
            let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let spec: PolicySpec
            do { spec = try PolicyRegistry.shared.parse(parts[0]) } catch let e as PolicyError { throw RunError.usage(e.description) }
            policy = spec.description
            if parts.count == 2 {
                do { budget = try Budget(parsing: parts[1]).description } catch let e as PolicyError { throw RunError.usage(e.description) }
            } else {
                budget = spec.name == "full" ? Budget.fraction(1).description : nil
            }
        }
    }

    /// Compares variants `a` and `b` (each `POLICY[:params][@BUDGET]`) on the cases of the run folder
    /// `dir` both ran, optionally only probe `probe` and codec `quant`. With `bDir`, B is read from that
    /// folder (another run of the same cases, such as the query-aware job of a study) and paired by case id.
    public static func load(
        dir: String, a: String, b: String, bDir: String? = nil, quant: String = "fp32", probe: String? = nil,
        badRows: RunDirectory.BadRows = .refuse
    ) throws -> PairedComparison {
        var allNotes: [String] = []
        func read(_ dir: String) throws -> [VariantResult] {
            guard FileManager.default.fileExists(atPath: dir + "/results.jsonl") else {
                throw RunError.noInput("no results.jsonl in \(dir); give the folder a kvkit run or merge wrote")
            }
            let (lines, notes) = try RunDirectory.readingLocked(dir) { try RunDirectory.checkedResults(in: dir, badRows: badRows) }
            allNotes += notes
            let results = lines.map(\.result).filter { r in r.quant == quant && (probe.map { r.probe == $0 } ?? true) }
            guard !results.isEmpty else {
                throw RunError.usage("\(dir) holds no results\(probe.map { " for probe \($0)" } ?? "") with codec \(quant); check --probe and --quant")
            }
            return results
        }
        let resultsA = try read(dir), resultsB = try bDir.map(read) ?? resultsA
        func matcher(_ text: String, _ results: [VariantResult], _ dir: String) throws -> (String, (VariantResult) -> Bool) {
            let present = Array(Set(results.map { "\($0.policy)@\($0.budget)" })).sorted()
            let side = try Side(text)
            let budgets = Array(Set(results.filter { $0.policy == side.policy }.map(\.budget))).sorted()
            guard !budgets.isEmpty else {
                throw RunError.usage("'\(text)' (\(side.policy)) did not run in \(dir); it holds: \(present.joined(separator: ", "))")
            }
            guard let budget = side.budget ?? (budgets.count == 1 ? budgets[0] : nil) else {
                throw RunError.usage("'\(text)' ran at budgets \(budgets.joined(separator: ", ")); name one as \(text)@BUDGET")
            }
            guard budgets.contains(budget) else {
                throw RunError.usage("'\(text)' did not run at budget \(budget) in \(dir); its budgets: \(budgets.joined(separator: ", "))")
            }
            return ("\(side.policy) @ \(budget)", { $0.policy == side.policy && $0.budget == budget })
        }
        let (la, ma) = try matcher(a, resultsA, dir), (lb, mb) = try matcher(b, resultsB, bDir ?? dir)
        // Rows pair by case id only where the cases are the same: another seed, probe file or haystack gives
        // the same ids to other cases.
        var digests: [String: String] = [:]
        for r in resultsA where ma(r) { if let d = r.caseSHA256 { digests[r.caseId] = d } }
        if let r = resultsB.first(where: { r in mb(r) && r.caseSHA256 != nil && digests[r.caseId].map { $0 != r.caseSHA256 } == true }) {
            throw RunError.data(
                "case \(r.caseId) is not the same case in \(dir) and \(bDir ?? dir) (its content differs: another seed, probe file or haystack); compare runs of the same cases"
            )
        }
        var c =
            bDir == nil
            ? PairedComparison(resultsA, a: la, b: lb, matchA: ma, matchB: mb)
            : PairedComparison(resultsA, resultsB, a: la + " (\(dir))", b: lb + " (\(bDir!))", matchA: ma, matchB: mb)
        guard c.n > 0 else { throw RunError.usage("\(a) and \(b) share no case in \(dir); compare variants of the same run") }
        c.notes = allNotes
        return c
    }
}
