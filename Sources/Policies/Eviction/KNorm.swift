/// `knorm` — key-norm eviction (Devoto et al., "A Simple and Effective L2 Norm-Based Strategy for KV
/// Cache Compression", EMNLP 2024): keys with a low L2 norm attract more attention, so the tokens with
/// the smallest key norms are kept. Needs no attention statistics.
public struct KNormPolicy: EvictionPolicy, Configurable {
    public var name: String { "knorm" }
    public init() {}
    public func scores(_ s: StreamView) -> [Float] { s.keyNorms().map { -$0 } }

    public static let info = PolicyInfo(KNormPolicy.self, summary: "smallest key norms", paper: "Devoto et al. 2024 (arXiv:2406.11430)")
}
