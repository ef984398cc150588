/// `tova` — Token Omission Via Attention (Oren et al., "Transformers are Multi-State RNNs", 2024).
/// Keeps the tokens the current (last) query attends to most, averaged over heads; the last token stays.
public struct TOVAPolicy: EvictionPolicy, Configurable {
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.mean
    public var name: String { "tova" }
    public var needs: ObservationNeeds { ObservationNeeds(window: 1) }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        guard let w = s.window else { preconditionFailure("tova needs the last query's attention; the runner requests it from `needs`") }
        return s.combine(w, gqa)
    }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: 1) }

    public static let info = PolicyInfo(TOVAPolicy.self, summary: "attention of the last query", paper: "Oren et al. 2024, TOVA (arXiv:2401.06104)")
}
