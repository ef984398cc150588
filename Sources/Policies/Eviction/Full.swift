/// `full`: no compression; every token is kept whatever the budget. The ceiling every policy is judged against.
public struct FullPolicy: EvictionPolicy, Configurable {
    public var name: String { "full" }
    public var compresses: Bool { false }
    public init() {}
    public func scores(_ s: StreamView) -> [Float] { [Float](repeating: 0, count: s.count) }
    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] { views.map { Array(0..<$0.count) } }

    public static let info = PolicyInfo(FullPolicy.self, summary: "no compression: keeps every token", paper: "-")
}
