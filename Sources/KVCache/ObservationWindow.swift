/// An observation window: each key's attention summed over the queries at or after `start` (SnapKV's last
/// 32 or 64 queries before a compression, TOVA's last one, FINCH's question), the `AttentionStatistic` most
/// policies read (`ObservationNeeds.windows`, `StreamView.window`). `Compressor.prepare` installs one per size
/// asked for, starting `size` queries before the prompt's end and zeroed at every compression, so policies
/// sharing one prefill each read the window of their own size, never a wider one.
public struct ObservationWindow: AttentionStatistic, Equatable {
    /// The number of queries the window was asked for (nil: set by hand, read by any policy).
    public let size: Int?
    /// The first observed query position.
    public let start: Int32
    public init(size: Int?, start: Int32) { self.size = size; self.start = start }
    public var key: String { size.map { "window:\($0)" } ?? "window:any" }
    public func observes(query position: Int32, promptEnd: Int32) -> Bool { position >= start }
}

extension Observations {
    /// The observation windows installed, in installation order.
    public var windows: [ObservationWindow] { statistics.entries.compactMap { $0.statistic as? ObservationWindow } }

    /// The earliest window start: queries from here on are observed for a window.
    public var windowStart: Int32? { windows.map(\.start).min() }

    /// The totals of the first window (hand-built observations hold one); setting them installs a window set
    /// by hand (read by any policy) when there is none.
    public var window: [[Float]] {
        get { windows.first.flatMap { statistics[$0.key] } ?? Array(repeating: [], count: layers * kvHeads) }
        set {
            if let w = windows.first {
                for i in newValue.indices { statistics.set(w.key, stream: i, newValue[i]) }
            } else {
                statistics.install(ObservationWindow(size: nil, start: 0), values: newValue)
            }
        }
    }

    /// The totals of the window of `size` queries; a window set by hand (size nil) serves any size.
    public func window(size: Int) -> [[Float]]? {
        let ws = windows
        guard let w = ws.first(where: { $0.size == size }) ?? ws.first(where: { $0.size == nil && ws.count == 1 }) else { return nil }
        return statistics[w.key]
    }

    /// Replaces the windows with zeroed ones of the given sizes and starts (before each compression, or before
    /// observing a new question); `slots[i]` is stream i's current token count.
    public mutating func restartWindows(_ specs: [(size: Int, start: Int32)], slots: [Int]) {
        statistics.removeAll { $0 is ObservationWindow }
        for spec in specs {
            statistics.install(ObservationWindow(size: spec.size, start: spec.start), values: slots.map { [Float](repeating: 0, count: $0 * group) })
        }
    }
}
