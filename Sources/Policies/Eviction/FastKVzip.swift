import Foundation
import KVCache
import TensorMath

/// `fastkvzip` — Fast KVzip (Kim, Han & Yun, "Fast KVzip: Efficient and Accurate LLM Inference with Gated
/// KV Eviction", 2026, arXiv:2601.17668; kvpress 0.5.5's `FastKVzipPress`). KVzip's scores predicted by a
/// small *sink-attention gate* per layer from the attention input, trained once per model: the hidden
/// state is projected to one 16-wide query per query head and one 16-wide key per KV head (each RMS-normed),
/// and a token's score is the probability its key wins against 16 learned sink keys,
/// `1 / (1 + Σₛ exp(k_baseₛ·q − k·q − b))` (scaled by 1/√16), averaged over the query heads of the group.
/// The gates are fitted as the paper's `optim.py` fits them — binary cross-entropy against KVzip's scores
/// (the largest reconstruction attention of the group, in [0, 1]), SGD with momentum 0.9, learning rate 0.2
/// with its step schedule, batches of 1,000 tokens — on the model's own prefill of essay text (`samples`
/// pieces of `tokens` tokens, the pieces `kvzap` fits on), by `kvkit calibrate --policy fastkvzip` or on
/// first use, and kept per model in `$KVKIT_HOME`. As kvpress scores them, the first 4 tokens and the last
/// 2 % of the prompt score 1 (kept), and the lowest scores across every layer and head are evicted
/// (`scope=global`; kvpress's `layerwise=True` is `scope=layer`).
/// Deliberate differences: the authors' gates were trained on their data with 5,000 steps on a GPU (not
/// on PyPI, and none for these models); here `steps` steps on CPU over essay text. The authors' trainer
/// adds the bias `b` twice to the logit while kvpress's gate adds it once; here it is added once in both.
/// Parameters: `scope`, `samples`, `tokens`, `steps`.
public struct FastKVzipPolicy: EvictionPolicy, Configurable {
    @Parameter("scope", "where gate scores compete for the budget: across every layer and head (global, kvpress's default), within a layer, or per head")
    public var scope = KVzipPolicy.Scope.global
    @Parameter("samples", 1...256, "essay pieces the gates are trained on (once per model, then read from $KVKIT_HOME)") public var samples = 12
    @Parameter("tokens", 64...4096, "tokens per training piece") public var tokens = 512
    @Parameter("steps", 10...100_000, "SGD steps of the gates' training (batches of 1,000 tokens)") public var steps = 600
    public var name: String { "fastkvzip" }
    public init() {}

    /// Tokens at the start that always score 1 (kvpress's `n_sink`).
    public static let sinks = 4
    /// The share of the prompt's last tokens that always score 1 (kvpress's `window_ratio`).
    public static let windowRatio = 0.02

    public var passKey: String { "fastkvzip.gates-s\(samples)-t\(tokens)-n\(steps)" }

    public var passes: [PolicyPass] {
        let (key, samples, tokens, steps) = (passKey, samples, tokens, steps)
        return [
            PolicyPass(key: key, label: "calibration", stage: .beforePrompt) { model, _, _ in
                FastKVzipTap(key: key, gates: try Self.gates(model: model, samples: samples, tokens: tokens, steps: steps))
            }
        ]
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let tap = s.prepared[passKey] as? FastKVzipTap else {
            preconditionFailure("fastkvzip needs its gates' tap; the runner installs it before the prompt runs")
        }
        let row = s.stream < tap.scores.count ? tap.scores[s.stream] : []
        // kvpress sets the sinks and the local window (2 % of what was prefilled, at least 1 token) to 1.
        let window = max(1, Int(Double(row.count) * Self.windowRatio))
        return s.positions.map { p in
            let i = Int(p)
            if i < Self.sinks || (i < row.count && i >= row.count - window) { return 1 }
            return i < row.count ? row[i] : 0
        }
    }

    public var ranksAcrossStreams: Bool { scope == .global }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? { KVzipPolicy.select(scope, views, budgets, scores: scores) }

    // MARK: The gates

    static let calibration = ModelCalibration<FastKVzipGates>(name: "fastkvzip", version: 1)

    /// The gates for `model`: from memory, from `$KVKIT_HOME`, or trained (`train`) and kept there.
    public static func gates(model: any ModelPass, samples: Int, tokens: Int, steps: Int) throws -> FastKVzipGates {
        try calibration.value(model: model, settings: "-s\(samples)-t\(tokens)-n\(steps)", valid: { $0.fits(model) }) {
            try train(model: model, samples: samples, tokens: tokens, steps: steps)
        }
    }

    /// Trains every layer's gate on `samples` essay pieces (each prefilled and re-read by KVzip for its
    /// targets, as `kvzap` reads them), then measures it on one more piece it never saw.
    public static func train(model: any ModelPass, samples: Int, tokens: Int, steps: Int) throws -> FastKVzipGates {
        let L = model.layers, H = model.kvHeads, D = model.hidden, G = model.heads / H
        var x = [[Float]](repeating: [], count: L), y = [[Float]](repeating: [], count: L), rows = 0
        for s in 0..<samples {
            guard let piece = try KVzapPolicy.piece(model: model, tokens: tokens, sample: s) else { break }
            for l in 0..<L {
                x[l] += piece.x[l]
                y[l] += piece.y[l].map { Float(Foundation.exp($0)) }
            }
            rows += piece.rows
            model.progress(done: s + 1, total: samples + L + 1, label: "fastkvzip: KVzip's scores on \(s + 1) of \(samples) essay pieces")
        }
        guard rows >= 64 else {
            throw PolicyError.passUnavailable(
                policy: "fastkvzip", reason: "its gates are trained on essay text and none was found; run 'make setup' (it fetches the Paul Graham essays)")
        }
        var gates = FastKVzipGates(layers: [], rows: rows)
        for l in 0..<L {
            var gate = FastKVzipGate(hidden: D, kvHeads: H, group: G, seed: UInt64(l + 1))
            gate.train(x: x[l], y: y[l], rows: rows, steps: steps, seed: UInt64(1000 + l))
            gates.layers.append(gate)
            model.progress(done: samples + l + 1, total: samples + L + 1, label: "fastkvzip: trained layer \(l + 1) of \(L)")
        }
        if let test = try KVzapPolicy.piece(model: model, tokens: tokens, sample: samples) { gates.heldOut = gates.agreement(with: test) }
        model.progress(done: samples + L + 1, total: samples + L + 1, label: "fastkvzip: checked on a held-out piece")
        return gates
    }

    public static let info = PolicyInfo(
        FastKVzipPolicy.self, summary: "KVzip's scores from a small sink-attention gate per layer, trained per model",
        paper: "Kim et al. 2026, Fast KVzip (arXiv:2601.17668)")
}

/// Fast KVzip's gate for one layer: `[out][hidden]` projections to a 16-wide query per query head (with a
/// bias) and a 16-wide key per KV head, their RMS-norm weights, 16 learned sink keys per KV head and a
/// logit bias per query head. `dim` and `sinks` are the paper's 16.
public struct FastKVzipGate: Codable, Sendable, Equatable {
    public static let dim = 16, sinkKeys = 16
    public let hidden: Int, kvHeads: Int, group: Int
    public var wq: [Float], bq: [Float], wk: [Float], qNorm: [Float], kNorm: [Float], kBase: [Float], b: [Float]

    var qWidth: Int { kvHeads * group * Self.dim }
    var kWidth: Int { kvHeads * Self.dim }
    static let eps: Float = 1e-6

    /// Initialised as torch initialises the paper's modules: the projections uniform in ±1/√hidden (nn.Linear),
    /// norms 1, sink keys and biases 0; seeded.
    public init(hidden: Int, kvHeads: Int, group: Int, seed: UInt64) {
        self.hidden = hidden; self.kvHeads = kvHeads; self.group = group
        var rng = SplitMix64(seed: seed)
        let bound = 1 / Float(hidden).squareRoot()
        func uniform(_ n: Int) -> [Float] { (0..<n).map { _ in (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * bound } }
        let qw = kvHeads * group * Self.dim
        wq = uniform(qw * hidden); bq = uniform(qw); wk = uniform(kvHeads * Self.dim * hidden)
        qNorm = [Float](repeating: 1, count: Self.dim); kNorm = [Float](repeating: 1, count: Self.dim)
        kBase = [Float](repeating: 0, count: kvHeads * Self.sinkKeys * Self.dim); b = [Float](repeating: 0, count: kvHeads * group)
    }

    /// The intermediate values of one forward pass over `rows` rows (kept for the backward pass).
    struct Pass {
        var qRaw: [Float], kRaw: [Float], q: [Float], k: [Float], qR: [Float], kR: [Float]
        /// `[row][head][group]`: the gate probability of each query head; `[row][head]` their mean.
        var sigma: [Float], sums: [Float], pred: [Float]
        /// `[row][head][group][sink]`: exp(sink logit − logit), the terms of `sums` (kept for the backward pass).
        var exps: [Float]
    }

    /// Scores `[rows][kvHeads]` of `x[rows][hidden]`, and what the backward pass needs.
    func forward(_ x: UnsafePointer<Float>, rows n: Int) -> Pass {
        let E = Self.dim, S = Self.sinkKeys, H = kvHeads, G = group, scale = 1 / Float(E).squareRoot()
        var qRaw = [Float](repeating: 0, count: n * qWidth), kRaw = [Float](repeating: 0, count: n * kWidth)
        wq.withUnsafeBufferPointer { w in
            qRaw.withUnsafeMutableBufferPointer { BLAS.linear(x, rows: n, inDim: hidden, w.baseAddress!, outDim: qWidth, $0.baseAddress!) }
        }
        wk.withUnsafeBufferPointer { w in
            kRaw.withUnsafeMutableBufferPointer { BLAS.linear(x, rows: n, inDim: hidden, w.baseAddress!, outDim: kWidth, $0.baseAddress!) }
        }
        for t in 0..<n { for j in 0..<qWidth { qRaw[t * qWidth + j] += bq[j] } }
        func norm(_ raw: [Float], _ w: [Float]) -> (out: [Float], r: [Float]) {
            var out = raw, r = [Float](repeating: 0, count: raw.count / E)
            for v in 0..<r.count {
                var ss: Float = 0
                for e in 0..<E { ss += raw[v * E + e] * raw[v * E + e] }
                r[v] = 1 / (ss / Float(E) + Self.eps).squareRoot()
                for e in 0..<E { out[v * E + e] = raw[v * E + e] * r[v] * w[e] }
            }
            return (out, r)
        }
        let (q, qR) = norm(qRaw, qNorm), (k, kR) = norm(kRaw, kNorm)
        var sigma = [Float](repeating: 0, count: n * H * G), sums = sigma, pred = [Float](repeating: 0, count: n * H)
        var exps = [Float](repeating: 0, count: n * H * G * S)
        q.withUnsafeBufferPointer { q in
            k.withUnsafeBufferPointer { k in
                kBase.withUnsafeBufferPointer { kb in
                    exps.withUnsafeMutableBufferPointer { ex in
                        for t in 0..<n {
                            for h in 0..<H {
                                let kv = (t * H + h) * E
                                var mean: Float = 0
                                for g in 0..<G {
                                    let i = (t * H + h) * G + g, qv = i * E
                                    var logit = b[h * G + g]
                                    for e in 0..<E { logit += k[kv + e] * q[qv + e] * scale }
                                    var sum: Float = 0
                                    for s in 0..<S {
                                        var base: Float = 0
                                        let kbs = (h * S + s) * E
                                        for e in 0..<E { base += kb[kbs + e] * q[qv + e] }
                                        let x = Foundation.exp(min(base * scale - logit, 80))
                                        ex[i * S + s] = x
                                        sum += x
                                    }
                                    sums[i] = sum; sigma[i] = 1 / (1 + sum); mean += sigma[i]
                                }
                                pred[t * H + h] = mean / Float(G)
                            }
                        }
                    }
                }
            }
        }
        return Pass(qRaw: qRaw, kRaw: kRaw, q: q, k: k, qR: qR, kR: kR, sigma: sigma, sums: sums, pred: pred, exps: exps)
    }

    /// The gate's parameters as one flat list (the order `step` and the gradient use).
    var parameters: [Float] { wq + bq + wk + qNorm + kNorm + kBase + b }
    mutating func setParameters(_ p: [Float]) {
        var i = 0
        func take(_ n: Int) -> [Float] { defer { i += n }; return Array(p[i..<(i + n)]) }
        wq = take(wq.count); bq = take(bq.count); wk = take(wk.count); qNorm = take(qNorm.count); kNorm = take(kNorm.count)
        kBase = take(kBase.count); b = take(b.count)
    }

    /// The paper's loss (`loss="cnt"`: binary cross-entropy of the gate's score against KVzip's, the mean
    /// over rows summed over KV heads) and its gradient over `parameters`.
    func lossAndGradient(_ x: UnsafePointer<Float>, _ y: [Float], rows n: Int) -> (loss: Double, gradient: [Float]) {
        let E = Self.dim, S = Self.sinkKeys, H = kvHeads, G = group, scale = 1 / Float(E).squareRoot()
        let f = forward(x, rows: n)
        var loss = 0.0
        var dq = [Float](repeating: 0, count: n * qWidth), dk = [Float](repeating: 0, count: n * kWidth)
        var dkBase = [Float](repeating: 0, count: kBase.count), db = [Float](repeating: 0, count: b.count)
        f.q.withUnsafeBufferPointer { q in
            f.k.withUnsafeBufferPointer { k in
                kBase.withUnsafeBufferPointer { kb in
                    f.exps.withUnsafeBufferPointer { ex in
                        dq.withUnsafeMutableBufferPointer { dq in
                            dk.withUnsafeMutableBufferPointer { dk in
                                dkBase.withUnsafeMutableBufferPointer { dkb in
                                    for t in 0..<n {
                                        for h in 0..<H {
                                            let p = min(max(f.pred[t * H + h], 1e-7), 1 - 1e-7), target = y[t * H + h]
                                            loss -=
                                                Double(target) * max(Foundation.log(Double(p)), -100) + Double(1 - target)
                                                * max(Foundation.log(Double(1 - p)), -100)
                                            let dSigma = (p - target) / (p * (1 - p)) / Float(n) / Float(G)
                                            let kv = (t * H + h) * E
                                            for g in 0..<G {
                                                let i = (t * H + h) * G + g, qv = i * E
                                                let sg = f.sigma[i], dLogit = dSigma * sg * sg * f.sums[i]
                                                db[h * G + g] += dLogit
                                                for e in 0..<E {
                                                    dk[kv + e] += dLogit * q[qv + e] * scale
                                                    dq[qv + e] += dLogit * k[kv + e] * scale
                                                }
                                                for s in 0..<S {
                                                    let base = (h * S + s) * E
                                                    let dBase = -dSigma * sg * sg * ex[i * S + s] * scale
                                                    for e in 0..<E {
                                                        dkb[base + e] += dBase * q[qv + e]
                                                        dq[qv + e] += dBase * kb[base + e]
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Through the RMS norms: y = u·r·w, r = (mean u² + ε)^(−1/2).
        func normBack(_ d: [Float], raw: [Float], r: [Float], w: [Float]) -> (du: [Float], dw: [Float]) {
            var du = d, dw = [Float](repeating: 0, count: E)
            for v in 0..<r.count {
                var dot: Float = 0
                for e in 0..<E {
                    dw[e] += d[v * E + e] * raw[v * E + e] * r[v]
                    dot += d[v * E + e] * w[e] * raw[v * E + e]
                }
                let r3 = r[v] * r[v] * r[v] * dot / Float(E)
                for e in 0..<E { du[v * E + e] = r[v] * w[e] * d[v * E + e] - r3 * raw[v * E + e] }
            }
            return (du, dw)
        }
        let (dqRaw, dqNorm) = normBack(dq, raw: f.qRaw, r: f.qR, w: qNorm), (dkRaw, dkNorm) = normBack(dk, raw: f.kRaw, r: f.kR, w: kNorm)
        var dwq = [Float](repeating: 0, count: wq.count), dwk = [Float](repeating: 0, count: wk.count), dbq = [Float](repeating: 0, count: bq.count)
        dqRaw.withUnsafeBufferPointer { a in
            dwq.withUnsafeMutableBufferPointer {
                BLAS.gemmTransA(m: qWidth, n: hidden, k: n, a.baseAddress!, lda: qWidth, x, ldb: hidden, beta: 0, $0.baseAddress!, ldc: hidden)
            }
        }
        dkRaw.withUnsafeBufferPointer { a in
            dwk.withUnsafeMutableBufferPointer {
                BLAS.gemmTransA(m: kWidth, n: hidden, k: n, a.baseAddress!, lda: kWidth, x, ldb: hidden, beta: 0, $0.baseAddress!, ldc: hidden)
            }
        }
        for t in 0..<n { for j in 0..<qWidth { dbq[j] += dqRaw[t * qWidth + j] } }
        return (loss / Double(n), dwq + dbq + dwk + dqNorm + dkNorm + dkBase + db)
    }

    /// The paper's learning-rate schedule (`utils.lr_schedule`): a ramp over the first 1 % of the steps, then
    /// 1, ½ from half-way, ¼ from three quarters.
    static func schedule(_ step: Int, of total: Int) -> Float {
        let s = Double(step), m = Double(total)
        if s < 0.01 * m { return Float(0.01 * s) }
        if s >= 0.75 * m { return 0.25 }
        if s >= 0.5 * m { return 0.5 }
        return 1
    }

    /// SGD with momentum 0.9 and learning rate 0.2 × `schedule`, on batches of 1,000 rows drawn without
    /// replacement (reshuffled each pass over the rows), as the paper's `optimize`.
    mutating func train(x: [Float], y: [Float], rows n: Int, steps: Int, seed: UInt64, batch: Int = 1000) {
        var rng = SplitMix64(seed: seed)
        var params = parameters, velocity = [Float](repeating: 0, count: params.count)
        let size = min(batch, n), splits = max(1, n / size)
        var order = Array(0..<n)
        var bx = [Float](repeating: 0, count: size * hidden), by = [Float](repeating: 0, count: size * kvHeads)
        for step in 0..<steps {
            let split = step % splits
            if split == 0 {
                for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            }
            for (j, r) in order[(split * size)..<((split + 1) * size)].enumerated() {
                for c in 0..<hidden { bx[j * hidden + c] = x[r * hidden + c] }
                for h in 0..<kvHeads { by[j * kvHeads + h] = y[r * kvHeads + h] }
            }
            let g = bx.withUnsafeBufferPointer { lossAndGradient($0.baseAddress!, by, rows: size).gradient }
            let lr = 0.2 * Self.schedule(step, of: steps)
            for i in params.indices {
                velocity[i] = 0.9 * velocity[i] + g[i]
                params[i] -= lr * velocity[i]
            }
            setParameters(params)
        }
    }
}

/// Every layer's gate, the rows they were trained on, and how they followed KVzip on a held-out piece.
public struct FastKVzipGates: Codable, Sendable, Equatable {
    public var layers: [FastKVzipGate]
    public let rows: Int
    public var heldOut: KVzapPredictor.Agreement?

    init(layers: [FastKVzipGate], rows: Int) { self.layers = layers; self.rows = rows }

    func fits(_ m: any ModelPass) -> Bool {
        layers.count == m.layers
            && layers.allSatisfy { $0.hidden == m.hidden && $0.kvHeads == m.kvHeads && $0.group == m.heads / m.kvHeads && $0.wq.count == $0.qWidth * $0.hidden }
    }

    /// Pearson correlation of the gates' scores with KVzip's and top-10 % recall, means over streams.
    func agreement(with piece: KVzapPiece) -> KVzapPredictor.Agreement {
        let n = piece.rows
        var streams: [(truth: [Double], guess: [Double])] = []
        for (l, gate) in layers.enumerated() {
            let H = gate.kvHeads
            let pred = piece.x[l].withUnsafeBufferPointer { gate.forward($0.baseAddress!, rows: n).pred }
            for h in 0..<H { streams.append(((0..<n).map { Foundation.exp(piece.y[l][$0 * H + h]) }, (0..<n).map { Double(pred[$0 * H + h]) })) }
        }
        return .of(streams, rows: n)
    }
}

/// The gates applied while tokens run: every attention-input row of every layer becomes one score per KV
/// head, kept by position.
public struct FastKVzipTap: LayerInputTap {
    public let key: String
    public let gates: FastKVzipGates
    /// `[layer·kvHeads + head][position]`: the gate's score (0 where no row was seen).
    public private(set) var scores: [[Float]]

    public init(key: String, gates: FastKVzipGates) {
        self.key = key; self.gates = gates
        scores = Array(repeating: [], count: gates.layers.count * (gates.layers.first?.kvHeads ?? 0))
    }

    public mutating func add(layer: Int, rows: UnsafePointer<Float>, width: Int, positions: [Int32]) {
        guard layer < gates.layers.count, width == gates.layers[layer].hidden, !positions.isEmpty else { return }
        let gate = gates.layers[layer], H = gate.kvHeads
        let pred = gate.forward(rows, rows: positions.count).pred
        let top = Int(positions.max()!) + 1
        for h in 0..<H {
            let i = layer * H + h
            if scores[i].count < top { scores[i] += repeatElement(0, count: top - scores[i].count) }
            for (t, p) in positions.enumerated() { scores[i][Int(p)] = pred[t * H + h] }
        }
    }
}

extension FastKVzipTap: PassSummary {
    public var summary: String {
        let trained = "trained on \(gates.rows) tokens"
        guard let a = gates.heldOut else { return trained }
        return trained
            + String(
                format: "; on %d held-out tokens: correlation with KVzip's scores %.3f, top-10 %% recall %.3f (means over streams)", a.rows, a.correlation,
                a.topTenRecall)
    }
}
