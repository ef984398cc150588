/// A statistic computed from each layer's attention input while tokens run: the rows the model feeds
/// its query, key and value projections (the residual stream after the layer's input norm, what
/// HuggingFace passes to `self_attn` as `hidden_states`). The open kind of observation: a policy declares
/// its tap in its own file (KVzap's per-head score predictor is one) and installs it through a pass that
/// runs before the prompt (`PolicyPass.Stage.beforePrompt`); the model calls every installed tap, in
/// order, for every layer of every forward pass on that cache, prefill and decode alike.
///
/// A value type, as the other observations: a fork of the cache copies the taps with it (copy-on-write),
/// and each side then keeps adding its own rows.
public protocol LayerInputTap: Sendable, Equatable {
    /// Names the statistic (the installing pass's key): taps with one key compute the same, so a cache holds one.
    var key: String { get }
    /// Adds the attention-input rows `rows` (`[positions.count][width]`, row-major) of `layer` for the
    /// tokens at `positions`.
    mutating func add(layer: Int, rows: UnsafePointer<Float>, width: Int, positions: [Int32])
}

extension LayerInputTap {
    /// Whether `other` is a tap of the same type and state.
    public func isEqual(to other: any LayerInputTap) -> Bool { (other as? Self) == self }
}

/// The taps installed on one cache, in installation order; at most one per key.
public struct LayerInputTaps: Sendable, Equatable {
    public private(set) var all: [any LayerInputTap] = []
    public init() {}
    public var isEmpty: Bool { all.isEmpty }
    /// The tap installed under `key`.
    public subscript(key: String) -> (any LayerInputTap)? { all.first { $0.key == key } }
    /// Installs `tap` unless one with its key is there (so a second `prepare` keeps what the first collected).
    public mutating func install(_ tap: any LayerInputTap) {
        if self[tap.key] == nil { all.append(tap) }
    }
    /// Hands every tap the rows of one layer.
    public mutating func add(layer: Int, rows: UnsafePointer<Float>, width: Int, positions: [Int32]) {
        for i in all.indices { all[i].add(layer: layer, rows: rows, width: width, positions: positions) }
    }
    public static func == (a: LayerInputTaps, b: LayerInputTaps) -> Bool {
        a.all.count == b.all.count && zip(a.all, b.all).allSatisfy { $0.isEqual(to: $1) }
    }
}
