import ArgumentParser
import Foundation
import Policies
import Runs

/// `kvkit calibrate`: fits or measures what a policy needs once per model (KVzap's predictor,
/// DuoAttention's head scores) and keeps it in `$KVKIT_HOME`, with a progress bar, so that a study's
/// first case does not pay for it.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a policy's per-model predictor or head scores now (kvzap, duo) and keep them in $KVKIT_HOME.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Policies, comma-separated, with their parameters (e.g. kvzap or kvzap:samples=24,duo).") var policy: String
    @Flag(help: "No progress line on stderr.") var noProgress = false

    func run() throws {
        let policies: [any EvictionPolicy]
        do { policies = try splitSpecList(policy).map { try PolicyRegistry.shared.make($0) } } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
        let model = try modelOptions.load()
        let bar = ProgressBox(enabled: !noProgress)
        do {
            for (key, seconds, summary) in try PolicyPreparation.calibrate(policies, model: model, progress: { bar.update($0, $1, $2) }) {
                bar.finish()
                print(String(format: "%@: ready in %.1f s (kept in %@)", key, seconds, ModelLocation.kvkitHome) + (summary.map { "; " + $0 } ?? ""))
            }
        } catch let e as RunError { throw fail(e.description, code: e.exitCode) }
    }
}

/// `Progress` behind a lock, for a pass that reports from inside the library.
final class ProgressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var progress: Progress?
    private let enabled: Bool
    private let start = ContinuousClock.now
    init(enabled: Bool) { self.enabled = enabled }
    func update(_ done: Int, _ total: Int, _ label: String) {
        lock.lock(); defer { lock.unlock() }
        if progress == nil || progress!.total != total { progress = Progress(total: total, enabled: enabled, unit: "steps") }
        progress!.update(done: done, elapsed: (ContinuousClock.now - start).seconds, label: label)
    }
    func finish() {
        lock.lock(); defer { lock.unlock() }
        progress?.finish(); progress = nil
    }
}
