/// `tova` — Token Omission Via Attention (Oren et al., "Transformers are Multi-State RNNs", 2024).
/// Keeps the tokens the current (last) query attends to most; the last token stays.
///
/// `heads=layer` (the default) is the paper's policy: its code averages the last query's attention over
/// every head of the layer (`torch.mean(attn_weights[:, :, -1, :], dim=1)` in `tova_cache.py`) and keeps
/// the same tokens in every KV head, as kvpress's TOVAPress does ("Average across heads and repeat
/// num_key_value_head times"). `heads=group` scores each KV head by its own query heads (combined by
/// `gqa`), so KV heads may keep different tokens.
public struct TOVAPolicy: EvictionPolicy, Configurable {
    /// Whose attention decides what a KV head keeps.
    public enum Heads: String, ParameterChoice { case layer, group }
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.mean
    @Parameter("heads", "layer: every query head of the layer decides for all KV heads (the paper); group: each KV head's own") public var heads = Heads.layer
    public var name: String { "tova" }
    public var needs: ObservationNeeds { ObservationNeeds(window: 1) }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        guard let w = s.window else { preconditionFailure("tova needs the last query's attention; the runner requests it from `needs`") }
        return s.combine(w, gqa)
    }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: 1) }

    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        let perHead = views.map(scores)
        // Layer-wide scores need the heads to hold the same slots (they do until a head-wise policy ran).
        guard heads == .layer, views.count > 1, Set(views.map(\.positions)).count == 1 else {
            return zip(views, budgets).enumerated().map { i, vb in topK(vb.0, budget: vb.1, scores: perHead[i], pinned: pinned(vb.0, budget: vb.1)) }
        }
        // Each KV head's score is the mean over its group, so their mean is the mean over all query heads.
        let layer = (0..<views[0].count).map { i in perHead.reduce(0) { $0 + $1[i] } / Float(views.count) }
        return zip(views, budgets).map { v, b in topK(v, budget: b, scores: layer, pinned: pinned(v, budget: b)) }
    }

    public static let info = PolicyInfo(
        TOVAPolicy.self, summary: "attention of the last query (all heads of the layer)", paper: "Oren et al. 2024, TOVA (arXiv:2401.06104)")
}
