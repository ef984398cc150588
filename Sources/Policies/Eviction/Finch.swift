/// `finch` — FINCH (Corallo & Papotti, "FINCH: Prompt-guided Key-Value Cache Compression for Large Language
/// Models", TACL 2024; kvpress's `FinchPress`). SnapKV's scoring with the question itself as the observation
/// window: each context token is scored by the attention the question's own tokens give it (averaged over
/// the query heads of its group, no pooling), and the question is always kept. In a query-aware run
/// (`--query-aware`) the question is the prompt's last turn, so the window is exactly its tokens, as
/// kvpress finds them from its delimiter token; without a question in the prompt, the last `window` tokens
/// stand in (SnapKV's window without pooling).
/// Deliberate differences from the press, for the record: kvpress multiplies each window query's attention
/// by the number of keys it sees before averaging; KVKit sums the window's attention as tapped, which for a
/// question of q tokens after P others reweights queries by at most 1 + q/P (under 1 % for a 30-token
/// question after 4,000); the press's optional chunked top-k (`chunk_length`, off by default) and key
/// re-rotation (KVKit keeps every token's original position) are not reproduced.
public struct FinchPolicy: EvictionPolicy, Configurable {
    @Parameter("window", 1...4096, "last prompt tokens standing in for the question when the prompt has none (query-agnostic runs); kept")
    public var window = 32
    public var name: String { "finch" }
    public init() {}
    public var needs: ObservationNeeds {
        var n = ObservationNeeds(window: window)
        n.questionWindow = true
        return n
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let w = s.window else { preconditionFailure("finch needs the question's attention; the runner requests it from `needs`") }
        return s.combine(w, .mean)
    }
    /// The question (or the stand-in window) is kept whole.
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: s.question ?? window) }

    public static let info = PolicyInfo(
        FinchPolicy.self, summary: "attention from the question's own tokens (query-aware runs), question kept",
        paper: "Corallo & Papotti 2024, FINCH (TACL, doi:10.1162/tacl_a_00716)")
}
