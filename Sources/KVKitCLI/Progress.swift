import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Progress on stderr: a redrawn line with ETA on a terminal (at most 10 redraws a second), a plain line
/// per case otherwise (logs, CI), nothing with `--no-progress`. Stdout carries only results.
struct Progress {
    let total: Int
    let enabled: Bool
    let tty = isatty(STDERR_FILENO) == 1
    private var lastDraw = 0.0
    private var elapsed = 0.0

    /// What is counted, for the closing line.
    var unit = "cases"

    init(total: Int, enabled: Bool, unit: String = "cases") { self.total = total; self.enabled = enabled; self.unit = unit }

    mutating func update(done: Int, elapsed: Double, label: String) {
        guard enabled else { return }
        self.elapsed = elapsed
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        if tty {
            guard elapsed - lastDraw >= 0.1 || done == total else { return }
            lastDraw = elapsed
            let width = 24, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            write(String(format: "\r[%@] %d/%d  %.0fs elapsed, ETA %.0fs  %@\u{1B}[K", bar, done, total, elapsed, eta, label))
        } else {
            write(String(format: "[%d/%d] %@  %.1fs elapsed, ETA %.0fs\n", done, total, label, elapsed, eta))
        }
    }

    func finish() {
        guard enabled else { return }
        if tty { write("\n") }
        write(String(format: "%d %@ in %.1fs\n", total, unit, elapsed))
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
