import Policies

/// `vatp` — Value-Aware Token Pruning (Guo et al., "Attention Score is not All You Need for Token
/// Importance Indicator in KV Cache Reduction: Value Also Matters", EMNLP 2024): a token's importance is
/// the attention it receives times the L1 norm of its value vector. Attention from the observation
/// window as in SnapKV; the first `sinks` tokens (whose values are near zero, so the product would evict
/// them) and the window are always kept.
/// Each hyper-parameter is declared once, where it is stored: `kvkit policies`, `--policy vatp:window=16`,
/// sweep configs and `VATPPolicy { $0.window = 16 }` all read and check the same declaration.
public struct VATPPolicy: EvictionPolicy, Configurable {
    @Parameter("window", 1...4096, "observation window, always kept") public var window = 32
    @Parameter("sinks", 0...1024, "initial tokens always kept") public var sinks = 4
    public var name: String { "vatp" }
    public var needs: ObservationNeeds { ObservationNeeds(window: window) }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        let attention = s.combine(s.window!, .mean)
        return (0..<s.count).map { i in
            let v = s.value(i)
            var l1: Float = 0
            for d in 0..<s.headDim { l1 += abs(v[d]) }
            return attention[i] * l1
        }
    }

    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: sinks, last: window) }

    public static let info = PolicyInfo(
        VATPPolicy.self, summary: "window attention × value L1 norm (plugin example)",
        paper: "Guo et al. 2024, VATP (arXiv:2406.12335)")
}
