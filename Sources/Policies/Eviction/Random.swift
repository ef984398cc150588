import TensorMath

/// `random`: keeps a uniformly random subset of each stream (seeded; the same seed keeps the same slots).
/// The floor any informed policy should beat.
public struct RandomPolicy: EvictionPolicy, Configurable {
    @Parameter("seed", 0...Int(Int32.max), "random seed, mixed with --seed, layer and head") public var seed = 0
    public var name: String { "random" }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] {
        var rng = SplitMix64(seed: s.seed ^ UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15)
        return (0..<s.count).map { _ in Float.random(in: 0..<1, using: &rng) }
    }

    public static let info = PolicyInfo(RandomPolicy.self, summary: "uniformly random tokens (seeded)", paper: "baseline")
}
