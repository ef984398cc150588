/// `streaming` — StreamingLLM (Xiao et al., "Efficient Streaming Language Models with Attention Sinks",
/// ICLR 2024). Keeps the first `sinks` tokens (attention sinks) and the most recent ones; the sinks count
/// inside the budget.
public struct StreamingLLMPolicy: EvictionPolicy, Configurable {
    @Parameter("sinks", 0...1024, "initial tokens always kept") public var sinks = 4
    public var name: String { "streaming" }
    public init() {}

    /// Recency: later slots score higher.
    public func scores(_ s: StreamView) -> [Float] { (0..<s.count).map(Float.init) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { Array(0..<min(sinks, s.count)) }

    public static let info = PolicyInfo(
        StreamingLLMPolicy.self, summary: "attention sinks + recent window",
        paper: "Xiao et al. 2024, StreamingLLM (arXiv:2309.17453)")
}
