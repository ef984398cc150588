/// `cur` — CurDKV (Sengupta et al., "Value-Guided KV Compression for LLMs via Approximated CUR
/// Decomposition", 2025; kvpress 0.5.5's `CURPress`). A token's key and value rows are scored by their
/// approximate leverage, the squared L2 norm ‖k‖² and ‖v‖², each normalized within consecutive windows
/// of `window` tokens (the paper's local approximation), and combined (`kv-product`, the default:
/// their product; `kv-avg`, `key` or `value`). The first `sinks` tokens are always kept. Query-agnostic
/// and needs no attention, as kvpress's press with its defaults (no random projection).
public struct CURPolicy: EvictionPolicy, Configurable {
    public enum Leverage: String, ParameterChoice { case kvProduct = "kv-product", kvAvg = "kv-avg", key, value }
    @Parameter("sinks", 0...1024, "first tokens always kept (attention sinks)") public var sinks = 4
    @Parameter("window", 1...4096, "tokens per window the leverage scores are normalized in") public var window = 16
    @Parameter("leverage", "how key and value leverage combine: kv-product, kv-avg, key or value") public var leverage = Leverage.kvProduct
    public var name: String { "cur" }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        func squaredNorms(_ row: (Int) -> [Float]) -> [Float] { (0..<s.count).map { row($0).reduce(0) { $0 + $1 * $1 } } }
        /// Each window's values divided by the window's sum (windows start at slot 0, as kvpress pads at the end).
        func local(_ x: [Float]) -> [Float] {
            var y = x
            for start in stride(from: 0, to: x.count, by: window) {
                let end = min(x.count, start + window), total = x[start..<end].reduce(0, +)
                for i in start..<end { y[i] = total > 0 ? x[i] / total : 0 }
            }
            return y
        }
        let k2 = leverage == .value ? [] : local(squaredNorms(s.key))
        let v2 = leverage == .key ? [] : local(squaredNorms(s.value))
        switch leverage {
        case .kvProduct: return zip(k2, v2).map { $0 * $1 }
        case .kvAvg: return zip(k2, v2).map { ($0 + $1) / 2 }
        case .key: return k2
        case .value: return v2
        }
    }

    /// The attention sinks: the slots holding the first `sinks` positions.
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { (0..<s.count).filter { s.positions[$0] < Int32(sinks) } }

    public static let info = PolicyInfo(
        CURPolicy.self, summary: "key and value leverage (windowed squared norms)",
        paper: "Sengupta et al. 2025, CurDKV (arXiv:2509.15038)")
}
