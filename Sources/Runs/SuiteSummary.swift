import Foundation
import Probes

/// A suite's leaderboard view (`--suite ruler`, as kvpress's leaderboard reads RULER): per policy and
/// budget, each task's mean score and the average over the tasks, against the compression ratio
/// (1 − the budget's share: 0.25, 0.5, 0.75, 0.875 on the leaderboard), one line per method. Written as
/// `ruler.csv` and `ruler.svg` beside `summary.csv`, and printed after the summary.
public enum SuiteSummary {
    public struct Row: Sendable {
        public var label: String, budget: String
        /// 1 − the kept share for a fractional budget (nil for a token budget).
        public var compressionRatio: Double?
        /// Each task's mean score in [0, 1] (nil: not run for this variant).
        public var tasks: [Double?]
        /// The mean of the tasks' scores, and its 95 % interval: a normal approximation whose variance is the
        /// sum of the tasks' (each from its Wilson interval's half-width, over 1.96) over the tasks squared.
        public var average: Double, ciLow: Double, ciHigh: Double
        /// Cases over every task.
        public var cases: Int
    }

    /// The suite's task names in the run (in suite order) and a row per variant; empty when the run holds none.
    public static func rows(_ summary: [Summary.Row], suite: [String] = RulerProbe.suite) -> (tasks: [String], rows: [Row]) {
        let mine = summary.filter { suite.contains($0.probe) }
        let tasks = suite.filter { t in mine.contains { $0.probe == t } }
        var order: [String] = [], groups: [String: [Summary.Row]] = [:]
        for r in mine {
            let key = r.label + "|" + r.budget
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        let rows = order.map { key -> Row in
            let g = groups[key]!
            let scores = tasks.map { t in g.first { $0.probe == t } }
            let present = scores.compactMap { $0 }
            let avg = present.map(\.accuracy).reduce(0, +) / Double(present.count)
            let variance = present.map { r in pow((r.ciHigh - r.ciLow) / 2 / 1.96, 2) }.reduce(0, +) / pow(Double(present.count), 2)
            let half = 1.96 * variance.squareRoot()
            let ratio = Double(g[0].budget).flatMap { $0 <= 1 ? 1 - $0 : nil }
            return Row(
                label: g[0].label, budget: g[0].budget, compressionRatio: ratio, tasks: scores.map { $0?.accuracy }, average: avg,
                ciLow: max(0, avg - half), ciHigh: min(1, avg + half), cases: present.map(\.cases).reduce(0, +))
        }.sorted { ($0.label == "full" ? "" : $0.label, $0.compressionRatio ?? -1) < ($1.label == "full" ? "" : $1.label, $1.compressionRatio ?? -1) }
        return (tasks, rows)
    }

    /// Scores as RULER reports them (0–100), "n/a" where a task did not run.
    static func score(_ x: Double?) -> String { x.map { String(format: "%.1f", $0 * 100) } ?? "n/a" }

    public static func csv(tasks: [String], rows: [Row]) -> String {
        var s = "policy,budget,compression_ratio," + tasks.joined(separator: ",") + ",average,ci_low,ci_high,cases\n"
        for r in rows {
            s +=
                "\"\(r.label)\",\(r.budget),\(r.compressionRatio.map { String(format: "%.3f", $0) } ?? ""),"
                + r.tasks.map { $0.map { String(format: "%.2f", $0 * 100) } ?? "" }.joined(separator: ",")
                + String(format: ",%.2f,%.2f,%.2f,%d\n", r.average * 100, r.ciLow * 100, r.ciHigh * 100, r.cases)
        }
        return s
    }

    public static func text(tasks: [String], rows: [Row]) -> String {
        let short = tasks.map { $0.replacingOccurrences(of: RulerProbe.prefix, with: "").replacingOccurrences(of: "niah-", with: "") }
        var s = "RULER (scores 0–100; average over the tasks with its 95% interval)\n"
        let widths = short.map { max(6, $0.count + 2) }
        s += "policy".padding(toLength: 32, withPad: " ", startingAt: 0) + "budget  ratio "
        s += zip(short, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined()
        s += "average  95% CI\n"
        for r in rows {
            s += String(r.label.prefix(31)).padding(toLength: 32, withPad: " ", startingAt: 0) + r.budget.padding(toLength: 8, withPad: " ", startingAt: 0)
            s += (r.compressionRatio.map { String(format: "%5.3f ", $0) } ?? "  -   ")
            s += zip(r.tasks, widths).map { score($0).padding(toLength: $1, withPad: " ", startingAt: 0) }.joined()
            s += String(format: "%7.1f  %4.1f–%4.1f\n", r.average * 100, r.ciLow * 100, r.ciHigh * 100)
        }
        return s
    }

    /// The leaderboard's picture: the average against the budget, one line per method, the full cache dashed
    /// (drawn by `Report.accuracyChart` from rows standing for the average).
    public static func chart(tasks: [String], rows: [Row], from summary: [Summary.Row]) -> String {
        let probe = "RULER average of \(tasks.count) tasks"
        let standIns: [Summary.Row] = rows.compactMap { r in
            guard var s = summary.first(where: { $0.label == r.label && $0.budget == r.budget && tasks.contains($0.probe) }) else { return nil }
            s.probe = probe; s.accuracy = r.average; s.ciLow = r.ciLow; s.ciHigh = r.ciHigh; s.cases = r.cases
            return s
        }
        return Report.accuracyChart(standIns, probe: probe)
    }
}
