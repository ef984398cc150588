import Foundation

/// The plain attention oracle: dense K/V arrays, full score rows, two-pass softmax. Slow and simple on
/// purpose; tests compare the paged kernel against it.
public enum DenseAttention {
    /// - q: `[T][nHeads][hd]`; k, v: `[N][kvHeads][hd]`; keyPositions `[N]`; returns `[T][nHeads][hd]`.
    public static func attend(
        q: [Float], queryPositions: [Int32], k: [Float], v: [Float], keyPositions: [Int32],
        nHeads: Int, kvHeads: Int, headDim hd: Int, window: Int? = nil
    ) -> [Float] {
        let T = queryPositions.count, N = keyPositions.count, G = nHeads / kvHeads
        var out = [Float](repeating: 0, count: T * nHeads * hd)
        let scale = 1 / Double(hd).squareRoot()
        for t in 0..<T {
            for head in 0..<nHeads {
                let kvh = head / G
                var scores = [Double](repeating: -.infinity, count: N)
                for j in 0..<N where keyPositions[j] <= queryPositions[t] && window.map({ Int(queryPositions[t] - keyPositions[j]) < $0 }) ?? true {
                    var s = 0.0
                    for d in 0..<hd { s += Double(q[(t * nHeads + head) * hd + d]) * Double(k[(j * kvHeads + kvh) * hd + d]) }
                    scores[j] = s * scale
                }
                let mx = scores.max() ?? -.infinity
                guard mx > -.infinity else { continue }
                let e = scores.map { $0 == -.infinity ? 0 : Foundation.exp($0 - mx) }
                let z = e.reduce(0, +)
                for d in 0..<hd {
                    var acc = 0.0
                    for j in 0..<N where e[j] != 0 { acc += e[j] * Double(v[(j * kvHeads + kvh) * hd + d]) }
                    out[(t * nHeads + head) * hd + d] = Float(acc / z)
                }
            }
        }
        return out
    }
}
