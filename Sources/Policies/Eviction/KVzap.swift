import Foundation
import KVCache
import TensorMath

/// `kvzap` — KVzap (NVIDIA, "KVzap: fast, adaptive and faithful KV cache pruning", 2026, arXiv:2601.07891;
/// kvpress 0.5.5's `KVzapPress`). KVzip's scores are the best query-agnostic ones but cost a re-read of
/// the prompt; KVzap predicts them from each layer's attention input with a small model fitted once per
/// model, so scoring costs one small product per token and layer while the prompt runs (a `LayerInputTap`)
/// and nothing after it. The predictor here is the paper's linear head: per layer, a ridge regression
/// (α = `ridge`, with intercept, as kvpress's `train.py` fits `sklearn.linear_model.Ridge()`) from the
/// normalised hidden state to each KV head's log KVzip score. It is fitted on the model's own prefill of
/// essay text (`samples` pieces of `tokens` tokens, KVKit's kvzip reconstruction as the targets, the query
/// heads of a group combined by max as in kvpress's trainer) by `kvkit calibrate --policy kvzap` or on
/// first use, and kept per model file and arithmetic in `$KVKIT_HOME`.
/// Deliberate differences: the targets are KVzip's scores as KVKit computes them (kvpress's restricted
/// softmax), not KVzip+'s (kvpress's trainer also divides by the query row's norm and multiplies by
/// ‖W_o v‖); the text is Paul Graham's essays, not the Nemotron pretraining sample (not on PyPI); and a
/// fixed budget is spent by ranking the predictions across every layer and head (`scope=global`, what a
/// single threshold on them does, the paper's `ThresholdPress`) instead of a threshold. The first 4
/// tokens are kept, as kvzip's. Parameters: `scope`, `samples`, `tokens`, `ridge`.
public struct KVzapPolicy: EvictionPolicy, Configurable {
    @Parameter("scope", "where predictions compete for the budget: across every layer and head (global, as a threshold), within a layer, or per head")
    public var scope = KVzipPolicy.Scope.global
    @Parameter("samples", 1...256, "essay pieces the predictor is fitted on (once per model, then read from $KVKIT_HOME)") public var samples = 12
    @Parameter("tokens", 64...4096, "tokens per fitting piece") public var tokens = 512
    @Parameter("ridge", 0...1_000_000, "ridge penalty of the linear fit (sklearn's alpha)") public var ridge = 1.0
    public var name: String { "kvzap" }
    public init() {}

    /// The fit's settings name the predictor (variants with other `scope`s share it).
    public var passKey: String { "kvzap.predictor-s\(samples)-t\(tokens)-r\(ridge)" }

    public var passes: [PolicyPass] {
        let (key, samples, tokens, ridge) = (passKey, samples, tokens, ridge)
        return [
            PolicyPass(key: key, label: "calibration", stage: .beforePrompt) { model, _, _ in
                KVzapTap(key: key, predictor: try Self.predictor(model: model, samples: samples, tokens: tokens, ridge: ridge))
            }
        ]
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let tap = s.prepared[passKey] as? KVzapTap else {
            preconditionFailure("kvzap needs its predictor's tap; the runner installs it before the prompt runs")
        }
        let row = s.stream < tap.scores.count ? tap.scores[s.stream] : []
        var c = s.positions.map { p in Int(p) < row.count ? row[Int(p)] : -.greatestFiniteMagnitude }
        for (i, p) in s.positions.enumerated() where p < KVzipPolicy.sinks { c[i] = .greatestFiniteMagnitude / Float(p + 1) }
        return c
    }

    public var ranksAcrossStreams: Bool { scope == .global }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? { KVzipPolicy.select(scope, views, budgets, scores: scores) }

    // MARK: The predictor

    /// Version 2: stored through `ModelCalibration` (bump when the fit changes).
    static let calibration = ModelCalibration<KVzapPredictor>(name: "kvzap", version: 2)

    /// The predictor for `model`: from memory, from `$KVKIT_HOME/kvzap-<sha256 prefix><arithmetic>-s…-t…-r….json`,
    /// or fitted (`fit`) and kept there.
    public static func predictor(model: any ModelPass, samples: Int, tokens: Int, ridge: Double) throws -> KVzapPredictor {
        try calibration.value(model: model, settings: "-s\(samples)-t\(tokens)-r\(ridge)", valid: { $0.fits(model) }) {
            try fit(model: model, samples: samples, tokens: tokens, ridge: ridge)
        }
    }

    /// Keeps a predictor fitted with these settings as `predictor` would (in memory and in `$KVKIT_HOME`), so
    /// a policy with them reads it instead of fitting again (a test fits once and checks both).
    public static func remember(_ p: KVzapPredictor, model: any ModelPass, samples: Int, tokens: Int, ridge: Double) {
        calibration.remember(p, model: model, settings: "-s\(samples)-t\(tokens)-r\(ridge)")
    }

    /// The fit itself (no cache). Each piece of text runs after the chat template's opening onto a fresh
    /// cache while a recorder keeps every layer's attention input; KVzip's reconstruction then scores the
    /// piece's keys, and each (row, log of the group's largest score) pair enters the layer's normal
    /// equations. Tokens of the opening and the 4 sinks are left out (kvzip never ranks them). One more
    /// piece, never fitted on, measures how well the predictions follow KVzip's scores (`KVzapPredictor.heldOut`).
    public static func fit(model: any ModelPass, samples: Int, tokens: Int, ridge: Double) throws -> KVzapPredictor {
        let L = model.layers, H = model.kvHeads, d = model.hidden
        var gram = [[Double]](repeating: [Double](repeating: 0, count: d * d), count: L)
        var cross = [[Double]](repeating: [Double](repeating: 0, count: H * d), count: L)
        var xSum = [[Double]](repeating: [Double](repeating: 0, count: d), count: L)
        var ySum = [[Double]](repeating: [Double](repeating: 0, count: H), count: L)
        var rows = 0
        for s in 0..<samples {
            guard let piece = try piece(model: model, tokens: tokens, sample: s) else { break }
            let n = piece.rows
            for l in 0..<L {
                let x = piece.x[l].map(Double.init), y = piece.y[l]
                gram[l].withUnsafeMutableBufferPointer { g in
                    cross[l].withUnsafeMutableBufferPointer { c in
                        Ridge.accumulate(x, y, rows: n, d: d, m: H, gram: g.baseAddress!, cross: c.baseAddress!)
                    }
                }
                for t in 0..<n {
                    for j in 0..<d { xSum[l][j] += x[t * d + j] }
                    for h in 0..<H { ySum[l][h] += y[t * H + h] }
                }
            }
            rows += n
            model.progress(done: s + 1, total: samples + 1, label: "kvzap: fitted on \(s + 1) of \(samples) essay pieces")
        }
        guard rows > d / 4 else {
            throw PolicyError.passUnavailable(
                policy: "kvzap", reason: "its predictor is fitted on essay text and none was found; run 'make setup' (it fetches the Paul Graham essays)")
        }
        var weights: [[Float]] = [], bias: [[Float]] = []
        for l in 0..<L {
            // Centred normal equations (the intercept is not penalised, as sklearn's Ridge).
            let nx = Double(rows), mx = xSum[l].map { $0 / nx }, my = ySum[l].map { $0 / nx }
            var a = gram[l]
            for i in 0..<d {
                for j in 0..<d { a[i * d + j] -= nx * mx[i] * mx[j] }
                a[i * d + i] += max(ridge, 1e-9)
            }
            var b = cross[l]
            for h in 0..<H { for j in 0..<d { b[h * d + j] -= nx * my[h] * mx[j] } }
            guard Ridge.solve(&a, d: d, &b, m: H) else {
                throw PolicyError.passUnavailable(policy: "kvzap", reason: "its fit is singular at layer \(l); raise ridge (kvzap:ridge=10)")
            }
            weights.append(b.map(Float.init))
            bias.append((0..<H).map { h in Float(my[h] - (0..<d).reduce(0.0) { $0 + b[h * d + $1] * mx[$1] }) })
        }
        var p = KVzapPredictor(layers: L, kvHeads: H, hidden: d, weights: weights, bias: bias, rows: rows)
        if let test = try piece(model: model, tokens: tokens, sample: samples) { p.heldOut = p.agreement(with: test) }
        model.progress(done: samples + 1, total: samples + 1, label: "kvzap: checked on a held-out piece")
        return p
    }

    /// One piece of essay text as the fit reads it: per layer, the attention-input rows `[rows][hidden]`
    /// of the scored positions and their targets `[rows][kvHeads]` (log KVzip scores). nil past the text.
    static func piece(model: any ModelPass, tokens: Int, sample: Int) throws -> KVzapPiece? {
        let L = model.layers, H = model.kvHeads, G = model.heads / H
        let opening = model.encode(model.opening, addBOS: true)
        guard let text = model.calibrationText(tokens: min(tokens, (model.contextLength - opening.count) / 3), sample: sample) else { return nil }
        let prompt = opening + text
        let cache = model.makeCache()
        let from = max(opening.count, Int(KVzipPolicy.sinks))
        var obs = Observations(layers: L, kvHeads: H, group: G, windowStart: nil)
        obs.inputTaps.install(HiddenRecorder(from: Int32(from), layers: L))
        cache.observations = obs
        try model.forward(prompt, cache: cache)
        guard let recorder = cache.observations?.inputTaps[HiddenRecorder.key] as? HiddenRecorder else { return nil }
        cache.observations = nil
        let maxima = try KVzipPolicy.reconstruction(model: model, cache: cache, prompt: prompt)
        let n = prompt.count - from
        let y = (0..<L).map { l in
            (0..<(n * H)).map { i -> Double in
                let m = maxima[l * H + i % H], p = from + i / H
                let best = (0..<G).reduce(Float(0)) { max($0, m[p * G + $1]) }
                return Foundation.log(Double(max(best, 1e-10)))
            }
        }
        guard recorder.rows.allSatisfy({ $0.count == n * model.hidden }) else { return nil }
        return KVzapPiece(rows: n, x: recorder.rows, y: y)
    }

    public static let info = PolicyInfo(
        KVzapPolicy.self, summary: "KVzip's scores predicted from the hidden states by a per-model linear fit",
        paper: "KVzap (NVIDIA 2026, arXiv:2601.07891)")
}

/// KVzap's linear heads: per layer, `[kvHead][hidden]` weights and a bias per KV head, mapping a token's
/// attention input to its predicted log KVzip score.
public struct KVzapPredictor: Codable, Sendable, Equatable {
    public let layers: Int, kvHeads: Int, hidden: Int
    public let weights: [[Float]]
    public let bias: [[Float]]
    /// Rows it was fitted on.
    public let rows: Int
    /// How its predictions followed KVzip's scores on a piece of text it was not fitted on (nil: not measured).
    public var heldOut: Agreement?

    /// Predictions against KVzip's scores, over the (layer, KV head) streams of a held-out piece.
    public struct Agreement: Codable, Sendable, Equatable {
        /// Pearson correlation of predicted and true log scores, the mean over streams.
        public var correlation: Double
        /// The share of each stream's top 10 % by KVzip's score that is in its top 10 % by prediction, the mean over streams.
        public var topTenRecall: Double
        public var rows: Int

        /// The means over `streams`, each a stream's true scores and predictions over the same rows.
        static func of(_ streams: [(truth: [Double], guess: [Double])], rows: Int) -> Agreement {
            var r = 0.0, recall = 0.0
            for (truth, guess) in streams {
                let n = truth.count, mt = truth.reduce(0, +) / Double(n), mp = guess.reduce(0, +) / Double(n)
                var sxy = 0.0, sxx = 0.0, syy = 0.0
                for t in 0..<n { sxy += (truth[t] - mt) * (guess[t] - mp); sxx += (truth[t] - mt) * (truth[t] - mt); syy += (guess[t] - mp) * (guess[t] - mp) }
                r += sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : 0
                let k = max(1, n / 10)
                let top = Set((0..<n).sorted { truth[$0] > truth[$1] }.prefix(k)), best = Set((0..<n).sorted { guess[$0] > guess[$1] }.prefix(k))
                recall += Double(top.intersection(best).count) / Double(k)
            }
            let count = Double(max(streams.count, 1))
            return Agreement(correlation: r / count, topTenRecall: recall / count, rows: rows)
        }
    }

    /// `heldOut` for one piece.
    func agreement(with piece: KVzapPiece) -> Agreement {
        let n = piece.rows, H = kvHeads, d = hidden
        var streams: [(truth: [Double], guess: [Double])] = []
        for l in 0..<layers {
            for h in 0..<H {
                let pred = (0..<n).map { t in
                    Double(bias[l][h]) + (0..<d).reduce(0.0) { $0 + Double(weights[l][h * d + $1]) * Double(piece.x[l][t * d + $1]) }
                }
                streams.append(((0..<n).map { piece.y[l][$0 * H + h] }, pred))
            }
        }
        return .of(streams, rows: n)
    }
    public init(layers: Int, kvHeads: Int, hidden: Int, weights: [[Float]], bias: [[Float]], rows: Int) {
        self.layers = layers; self.kvHeads = kvHeads; self.hidden = hidden; self.weights = weights; self.bias = bias; self.rows = rows
    }
    func fits(_ m: any ModelPass) -> Bool {
        layers == m.layers && kvHeads == m.kvHeads && hidden == m.hidden && weights.count == layers
            && weights.allSatisfy { $0.count == kvHeads * hidden } && bias.allSatisfy { $0.count == kvHeads }
    }
}

/// The predictor applied while tokens run: every attention-input row of every layer becomes one predicted
/// log score per KV head, kept by position.
public struct KVzapTap: LayerInputTap {
    public let key: String
    public let predictor: KVzapPredictor
    /// `[layer·kvHeads + head][position]`: the predicted log score (−∞ where no row was seen).
    public private(set) var scores: [[Float]]

    public init(key: String, predictor: KVzapPredictor) {
        self.key = key; self.predictor = predictor
        scores = Array(repeating: [], count: predictor.layers * predictor.kvHeads)
    }

    public mutating func add(layer: Int, rows: UnsafePointer<Float>, width: Int, positions: [Int32]) {
        let H = predictor.kvHeads, n = positions.count
        guard layer < predictor.layers, width == predictor.hidden, n > 0 else { return }
        var out = [Float](repeating: 0, count: n * H)
        predictor.weights[layer].withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { BLAS.linear(rows, rows: n, inDim: width, w.baseAddress!, outDim: H, $0.baseAddress!) }
        }
        let top = Int(positions.max()!) + 1
        for h in 0..<H {
            let i = layer * H + h
            if scores[i].count < top { scores[i] += repeatElement(-.greatestFiniteMagnitude, count: top - scores[i].count) }
            for (t, p) in positions.enumerated() { scores[i][Int(p)] = out[t * H + h] + predictor.bias[layer][h] }
        }
    }
}

/// One piece of the fit's text: per layer, `[rows][hidden]` attention inputs and `[rows][kvHeads]` log KVzip scores.
struct KVzapPiece {
    let rows: Int
    let x: [[Float]]
    let y: [[Double]]
}

extension KVzapTap: PassSummary {
    public var summary: String {
        let fitted = "fitted on \(predictor.rows) tokens"
        guard let a = predictor.heldOut else { return fitted }
        return fitted
            + String(
                format: "; on %d held-out tokens: correlation with KVzip's log scores %.3f, top-10 %% recall %.3f (means over streams)", a.rows, a.correlation,
                a.topTenRecall)
    }
}

/// Keeps every layer's attention-input rows from a position on (the fit's inputs).
struct HiddenRecorder: LayerInputTap {
    static let key = "kvzap.recorder"
    var key: String { Self.key }
    let from: Int32
    /// Per layer, `[row][width]` for positions from `from`, in arrival order.
    var rows: [[Float]]
    init(from: Int32, layers: Int) { self.from = from; rows = Array(repeating: [], count: layers) }
    mutating func add(layer: Int, rows r: UnsafePointer<Float>, width: Int, positions: [Int32]) {
        for (t, p) in positions.enumerated() where p >= from { rows[layer] += UnsafeBufferPointer(start: r + t * width, count: width) }
    }
}
