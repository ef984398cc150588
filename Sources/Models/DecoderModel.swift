import Foundation
import KVCache
import ModelFile
import TensorMath

/// Errors a caller can cause (not internal invariants).
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case contextOverflow(needed: Int, limit: Int)
    case badToken(Int32, vocab: Int)
    case emptyInput
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .contextOverflow(n, lim):
            return "context of \(n) tokens exceeds the model's limit of \(lim); shorten the prompt or lower --max-tokens"
        case let .badToken(t, v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        case .emptyInput: return "nothing to run: the prompt is empty"
        case let .shapeMismatch(t, e, f): return "tensor '\(t)' has shape \(f), expected \(e); the file does not match its metadata"
        }
    }
}

/// A decoder-only transformer whose attention reads K and V from a `PagedKVCache`: the Llama block, with
/// what a family changes switched on by its `Architecture` (llama/mistral, gemma3, qwen2, qwen3, phi3; see
/// `Architecture.registry`), so runs, probes and benchmarks never name a family.
///
/// Weight matrices stay in their GGUF blocks in the memory-mapped file (`WeightStorage.native`, the
/// default: 93 MB for SmolLM2-135M's Q4_1 file) and are multiplied block by block (`Weights`), or are
/// dequantized once at load (`.f32`, ≈540 MB) for plain sgemm/sgemv: the reference the quantized path is
/// tested against.
/// Norm weights are always Float32 (a few KB).
public final class DecoderModel: LanguageModel, @unchecked Sendable {
    public let config: ModelConfig
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate
    public let file: GGUFFile
    /// The family's switches (norms, activation, RoPE pairing, windows).
    public let architecture: Architecture

    struct Layer {
        let attnNorm: FloatBuffer  // [dim]
        let wq: Weights  // [heads·headDim][dim]
        let wk: Weights  // [kvHeads·headDim][dim]
        let wv: Weights  // [kvHeads·headDim][dim]
        let wo: Weights  // [dim][heads·headDim]
        let ffnNorm: FloatBuffer  // [dim]
        let wGate: Weights  // [ffn][dim]
        let wUp: Weights  // [ffn][dim]
        let wDown: Weights  // [dim][ffn]
        // Family options (nil where the family has none).
        var qNorm: FloatBuffer? = nil, kNorm: FloatBuffer? = nil  // [headDim], per-head RMS norm
        var postAttnNorm: FloatBuffer? = nil, postFfnNorm: FloatBuffer? = nil  // [dim]
        var bq: FloatBuffer? = nil, bk: FloatBuffer? = nil, bv: FloatBuffer? = nil
        /// RoPE inverse frequencies of this layer ([headDim/2]).
        var invFreq: [Double] = []
        /// The layer's weight matrices.
        var matrices: [Weights] { [wq, wk, wv, wo, wGate, wUp, wDown] }
    }
    let layers: [Layer]
    let tokenEmbedding: Weights  // [vocab][dim]
    let outputNorm: FloatBuffer  // [dim]
    let output: Weights  // [vocab][dim]; the embedding itself when the head is tied
    /// How the weight matrices are held.
    public let storage: WeightStorage
    let invFreq: [Double]  // [headDim/2] RoPE inverse frequencies of global layers

    /// Tokens per forward chunk during prefill: bounds activation memory (≈ ubatch × (2·ffn + 6·dim) floats).
    public var prefillChunk = 512

    /// `format` overrides the chat format the file's template gives (`--format`; nil: the file's).
    public convenience init(path: String, storage: WeightStorage = .native, format: ChatTemplate.Format? = nil) throws {
        try self.init(gguf: GGUFFile(path: path), storage: storage, format: format)
    }

    public init(gguf: GGUFFile, storage: WeightStorage = .native, format: ChatTemplate.Format? = nil) throws {
        file = gguf
        self.storage = storage
        architecture = try Architecture.of(gguf)
        config = try ModelConfig(gguf: gguf)
        tokenizer = try Tokenizer(gguf: gguf)
        chatTemplate = try ChatTemplate(gguf: gguf, format: format)
        let c = config
        func tensor(_ name: String, _ shape: [Int]) throws -> GGUFTensorInfo {
            guard let info = gguf.tensorsByName[name] else { throw GGUFError.missingTensor(name) }
            guard info.shape == shape else { throw ModelError.shapeMismatch(tensor: name, expected: shape, found: info.shape) }
            guard info.type.canDequantize else { throw GGUFError.unsupportedTensorType(name: name, type: info.type.rawValue) }
            return info
        }
        // Vectors (norms) in Float32; matrices as `storage` says ([in, out] in GGUF order).
        func load(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
            let info = try tensor(name, shape)
            let buf = FloatBuffer(count: info.elementCount, zeroed: false)
            Dequantize.run(info.type, gguf.file.base + info.fileOffset, buf.pointer, count: info.elementCount)
            return buf
        }
        func matrix(_ name: String, _ shape: [Int]) throws -> Weights {
            let info = try tensor(name, shape)
            return Weights(type: info.type, out: shape[1], inDim: shape[0], bytes: gguf.file.base + info.fileOffset, storage: storage)
        }
        /// The tensor map's fused case: consecutive row ranges of one tensor (Phi-3's `attn_qkv`, and its
        /// `ffn_up` holding the gate's rows then the up projection's), each read in place as its own matrix
        /// (a GGUF matrix row is whole blocks, so a row range is a matrix).
        func rows(of fused: String, _ outs: [Int], inDim: Int) throws -> [Weights] {
            let info = try tensor(fused, [inDim, outs.reduce(0, +)])
            let rowBytes = info.type.byteCount(elements: inDim)!
            var row = 0
            return outs.map { out in
                defer { row += out }
                return Weights(type: info.type, out: out, inDim: inDim, bytes: gguf.file.base + info.fileOffset + row * rowBytes, storage: storage)
            }
        }
        func has(_ name: String) -> Bool { gguf.tensorsByName[name] != nil }
        for unsupported in ["rope_factors_long.weight", "blk.0.rope_factors_long.weight"] where gguf.tensorsByName[unsupported] != nil {
            throw GGUFError.badMetadata(key: unsupported, reason: "LongRoPE factors (Phi-3 128k variants) are not supported; use a 4k-context file")
        }
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        let a = architecture
        // RoPE: base^(-2i/d) per rotated pair, divided by `rope_freqs` factors where the file has them
        // (Llama 3.1's long-context scaling), windowed layers with their own base where the family has one.
        var factors = [Double](repeating: 1, count: c.headDim / 2)
        if gguf.tensorsByName["rope_freqs.weight"] != nil { factors = try load("rope_freqs.weight", [c.headDim / 2]).array.map(Double.init) }
        func frequencies(_ base: Double) -> [Double] {
            (0..<(c.headDim / 2)).map { Foundation.pow(base, -2.0 * Double($0) / Double(c.headDim)) / factors[$0] }
        }
        let global = frequencies(c.ropeBase), local = c.localRopeBase.map(frequencies) ?? global
        var ls: [Layer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            // Q, K, V and the MLP's gate and up: separate tensors, or fused ones (the gate's rows first, as
            // llama.cpp's swiglu splits a fused `ffn_up`).
            let qkv =
                !has(p + "attn_q.weight") && has(p + "attn_qkv.weight")
                ? try rows(of: p + "attn_qkv.weight", [qDim, kvDim, kvDim], inDim: c.dim)
                : [
                    try matrix(p + "attn_q.weight", [c.dim, qDim]), try matrix(p + "attn_k.weight", [c.dim, kvDim]),
                    try matrix(p + "attn_v.weight", [c.dim, kvDim]),
                ]
            let gateUp =
                !has(p + "ffn_gate.weight") && gguf.tensorsByName[p + "ffn_up.weight"]?.shape == [c.dim, 2 * c.ffnDim]
                ? try rows(of: p + "ffn_up.weight", [c.ffnDim, c.ffnDim], inDim: c.dim)
                : [try matrix(p + "ffn_gate.weight", [c.dim, c.ffnDim]), try matrix(p + "ffn_up.weight", [c.dim, c.ffnDim])]
            var layer = Layer(
                attnNorm: try load(p + "attn_norm.weight", [c.dim]),
                wq: qkv[0], wk: qkv[1], wv: qkv[2],
                wo: try matrix(p + "attn_output.weight", [qDim, c.dim]),
                ffnNorm: try load(p + "ffn_norm.weight", [c.dim]),
                wGate: gateUp[0], wUp: gateUp[1],
                wDown: try matrix(p + "ffn_down.weight", [c.ffnDim, c.dim]))
            if a.qkNorm { layer.qNorm = try load(p + "attn_q_norm.weight", [c.headDim]); layer.kNorm = try load(p + "attn_k_norm.weight", [c.headDim]) }
            if a.postNorms {
                layer.postAttnNorm = try load(p + "post_attention_norm.weight", [c.dim])
                layer.postFfnNorm = try load(p + "post_ffw_norm.weight", [c.dim])
            }
            if a.qkvBias {
                layer.bq = try load(p + "attn_q.bias", [qDim]); layer.bk = try load(p + "attn_k.bias", [kvDim]); layer.bv = try load(p + "attn_v.bias", [kvDim])
            }
            layer.invFreq = c.window(layer: i) != nil ? local : global
            ls.append(layer)
        }
        layers = ls
        tokenEmbedding = try matrix("token_embd.weight", [c.dim, c.vocabSize])
        outputNorm = try load("output_norm.weight", [c.dim])
        output = gguf.tensorsByName["output.weight"] != nil ? try matrix("output.weight", [c.dim, c.vocabSize]) : tokenEmbedding
        invFreq = global
    }

    /// The model's rotary embedding (pairing and per-layer frequencies, positions scaled as the model
    /// scales them), for policies that rotate query statistics.
    public var rope: RoPEInfo {
        let s = config.ropePositionScale ?? 1
        let perLayer = layers.map { $0.invFreq.map { $0 * s } }
        return RoPEInfo(
            frequencies: invFreq.map { $0 * s }, halves: architecture.ropePairs == .halves,
            layerFrequencies: Set(perLayer.map { $0 }).count > 1 ? perLayer : nil)
    }

    /// A fresh paged cache shaped for this model, with its layers' sliding windows.
    public func makeCache(pageSize: Int) -> PagedKVCache {
        let cache = PagedKVCache(
            layers: config.layers, kvHeads: config.kvHeads, headDim: config.headDim,
            group: config.heads / config.kvHeads, pageSize: pageSize)
        cache.windows = (0..<config.layers).map { config.window(layer: $0) }
        return cache
    }

    /// How runs record the weights' arithmetic: the storage's name, with `-q8k2` when integer kernels
    /// multiply K-quant matrices against Q8_K activation codes (`WeightStorage.recordedName`). `-q8k` (until
    /// 2026-12-07) kept eight float lanes per super-block and prefilled through sgemm; `-q8k2` sums each
    /// super-block exactly in Int32 and takes the portable kernel's float steps, decode and (in the AVX2
    /// build) prefill alike, so a resumed run made with the old arithmetic refuses to mix.
    public var weightsRecord: String? {
        let all = layers.flatMap(\.matrices) + [output]
        let k8 = all.contains { $0.integerDecode && IntKernels.superBlock($0.type) }
        // Prefill of Q4_0 … Q8_0 matrices on the AVX-512 VNNI kernel sums in another order than sgemm (the K-quant
        // VNNI kernels are bitwise the AVX2 ones and change nothing): recorded, so a resume never mixes the two.
        let vnni = all.contains { $0.manyRows == .integer && $0.hasIntegerManyRows && !IntKernels.superBlock($0.type) }
        return storage.recordedName.map { ($0 + (k8 ? "-q8k2" : "")) + (vnni ? "-vnni" : "") }
    }

    public func outputProjection(layer: Int) -> [Float] {
        let w = layers[layer].wo
        var out = [Float](repeating: 0, count: w.out * w.inDim)
        out.withUnsafeMutableBufferPointer { p in for o in 0..<w.out { w.row(o, into: p.baseAddress! + o * w.inDim) } }
        return out
    }

    /// Bytes of weights the model keeps resident (matrices in their storage, norms in Float32; the tied
    /// head counted once).
    public var weightBytes: Int {
        var n = tokenEmbedding.residentBytes + outputNorm.count * 4 + (output === tokenEmbedding ? 0 : output.residentBytes)
        for l in layers {
            n += (l.attnNorm.count + l.ffnNorm.count) * 4
            n += l.matrices.reduce(0) { $0 + $1.residentBytes }
        }
        return n
    }

    /// Weight bytes one decode step reads: every layer's matrices and norms, and the output head (the
    /// embedding lookup reads one row).
    public var decodeWeightBytes: Int {
        layers.reduce(output.residentBytes + outputNorm.count * 4) { n, l in
            n + (l.attnNorm.count + l.ffnNorm.count) * 4 + l.matrices.reduce(0) { $0 + $1.residentBytes }
        }
    }

    /// `LanguageModel.forward`: the prompt in chunks of `prefillChunk` rows.
    public func run(
        _ tokens: [Int32], cache: PagedKVCache, reads: (any PageSelector)?, allLogits: Bool,
        attentionTap: AttentionTap?, logitsTap: LogitsTap?
    ) throws -> [Float] {
        try validate(tokens, cache: cache)
        var logits: [Float] = []
        var start = 0
        let V = config.vocabSize
        while start < tokens.count {
            let end = min(tokens.count, start + max(1, prefillChunk))
            let isLast = end == tokens.count
            let firstPosition = cache.nextPosition
            let part = forwardChunk(
                [Segment(tokens: Array(tokens[start..<end]), cache: cache, reads: reads, tap: attentionTap)],
                logitRows: allLogits || logitsTap != nil ? .all : (isLast ? .last : .none))
            if let logitsTap { part[0].withUnsafeBufferPointer { logitsTap(tokens[start..<end], firstPosition, $0) } }
            if allLogits { logits.append(contentsOf: part[0]) } else if isLast { logits = Array(part[0].suffix(V)) }
            start = end
        }
        try cache.pool.checkIntegrity()  // a corrupt cold page was skipped, never used: stop here
        return logits
    }

    /// One forward pass over several sequences at once, each with its own cache (for example the forks
    /// of one prefilled context, each compressed by another policy): the weight products run once over
    /// the rows of all sequences (sgemm instead of one sgemv per sequence), attention per sequence on
    /// its own cache. Returns each sequence's last-token logits. Sequences are packed into groups of at
    /// most `prefillChunk` rows; a longer input is first run on its own.
    public func runBatch(
        _ inputs: [[Int32]], caches: [PagedKVCache], reads: [(any PageSelector)?]?,
        attentionTaps: [AttentionTap?]?
    ) throws -> [[Float]] {
        precondition(inputs.count == caches.count && (reads?.count ?? inputs.count) == inputs.count, "one cache per input")
        precondition(Set(caches.map(ObjectIdentifier.init)).count == caches.count, "a cache may appear once per batch")
        for (t, c) in zip(inputs, caches) { try validate(t, cache: c) }
        var out = [[Float]](repeating: [], count: inputs.count)
        var group: [(index: Int, segment: Segment)] = [], rows = 0
        func flush() {
            guard !group.isEmpty else { return }
            let logits = forwardChunk(group.map(\.segment), logitRows: .last, rowInvariant: true)
            for (g, l) in zip(group, logits) { out[g.index] = l }
            group = []; rows = 0
        }
        let cap = max(1, prefillChunk)
        for i in inputs.indices {
            var tokens = inputs[i]
            let tap = attentionTaps?[i] ?? nil, selector = reads?[i] ?? nil
            if tokens.count > cap {
                try forward(Array(tokens.dropLast(cap)), cache: caches[i], reads: selector, attentionTap: tap)
                tokens = Array(tokens.suffix(cap))
            }
            if rows + tokens.count > cap { flush() }
            group.append((i, Segment(tokens: tokens, cache: caches[i], reads: selector, tap: tap)))
            rows += tokens.count
        }
        flush()
        for c in caches { try c.pool.checkIntegrity() }
        return out
    }

    private func validate(_ tokens: [Int32], cache: PagedKVCache) throws {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        let needed = cache.nextPosition + tokens.count
        guard needed <= config.contextLength else { throw ModelError.contextOverflow(needed: needed, limit: config.contextLength) }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.badToken(bad, vocab: config.vocabSize)
        }
    }

    enum LogitRows { case none, last, all }

    /// Consecutive rows of one forward pass that belong to one sequence.
    struct Segment {
        let tokens: [Int32]
        let cache: PagedKVCache
        let reads: (any PageSelector)?
        let tap: AttentionTap?
    }

    /// Runs the segments' rows through every layer; returns per segment the logits `logitRows` asks for.
    /// `rowInvariant` (batched forks): every segment's rows get the same arithmetic whatever other segments
    /// share the pass (few-row weight kernels in fixed groups, unsplit attention), so a variant's answer is
    /// the same alone as beside any other; a lone sequence (prefill) keeps sgemm and split-K.
    private func forwardChunk(_ segments: [Segment], logitRows: LogitRows, rowInvariant: Bool = false) -> [[Float]] {
        let c = config, dim = c.dim
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        let tokens = segments.flatMap(\.tokens), T = tokens.count
        var offsets: [Int] = [], positionsBySegment: [[Int32]] = []
        for s in segments {
            offsets.append(positionsBySegment.reduce(0) { $0 + $1.count })
            positionsBySegment.append((0..<s.tokens.count).map { Int32(s.cache.nextPosition + $0) })
        }
        let positions = positionsBySegment.flatMap { $0 }
        // Each fork's rows: a row-invariant product may take a long segment through sgemm on its own rows.
        let rowSegments = rowInvariant ? zip(offsets, segments).map { $0..<($0 + $1.tokens.count) } : nil
        let x = FloatBuffer(count: T * dim, zeroed: false)
        let xb = FloatBuffer(count: T * dim, zeroed: false)
        let q = FloatBuffer(count: T * qDim, zeroed: false)
        let k = FloatBuffer(count: T * kvDim, zeroed: false)
        let v = FloatBuffer(count: T * kvDim, zeroed: false)
        let att = FloatBuffer(count: T * qDim, zeroed: false)
        let gate = FloatBuffer(count: T * c.ffnDim, zeroed: false)
        let up = FloatBuffer(count: T * c.ffnDim, zeroed: false)
        for t in 0..<T { tokenEmbedding.row(Int(tokens[t]), into: x.pointer + t * dim) }
        let a = architecture
        if a.scalesEmbedding {
            let s = Float(dim).squareRoot()
            for i in 0..<(T * dim) { x.pointer[i] *= s }
        }
        // RoPE tables for these rows, [T][headDim/2] cos and sin, per distinct frequency set (local/global).
        let half = c.headDim / 2, positionScale = c.ropePositionScale ?? 1
        var tables: [[Double]: (cos: [Float], sin: [Float])] = [:]
        for L in layers where tables[L.invFreq] == nil {
            var cosT = [Float](repeating: 0, count: T * half), sinT = cosT
            for t in 0..<T {
                for i in 0..<half {
                    let angle = Double(positions[t]) * positionScale * L.invFreq[i]
                    cosT[t * half + i] = Float(Foundation.cos(angle))
                    sinT[t * half + i] = Float(Foundation.sin(angle))
                }
            }
            tables[L.invFreq] = (cosT, sinT)
        }
        // GGML "normal" RoPE rotates adjacent pairs (x[2i], x[2i+1]); NEOX mode the halves (x[i], x[i + d/2]).
        let stride = a.ropePairs == .halves ? 1 : 2, partner = a.ropePairs == .halves ? half : 1
        func rope(_ buf: FloatBuffer, heads: Int, _ table: (cos: [Float], sin: [Float])) {
            for t in 0..<T {
                for h in 0..<heads {
                    let p = buf.pointer + (t * heads + h) * c.headDim
                    for i in 0..<half {
                        let cs = table.cos[t * half + i], sn = table.sin[t * half + i]
                        let j = stride * i, a = p[j], b = p[j + partner]
                        p[j] = a * cs - b * sn
                        p[j + partner] = a * sn + b * cs
                    }
                }
            }
        }
        func addBias(_ buf: FloatBuffer, _ bias: FloatBuffer?, width: Int) {
            guard let bias else { return }
            for t in 0..<T { Vector.add(buf.pointer + t * width, bias.pointer, count: width) }
        }
        func headNorm(_ buf: FloatBuffer, _ w: FloatBuffer?, heads: Int) {
            guard let w else { return }
            for r in 0..<(T * heads) { Vector.rmsNorm(buf.pointer + r * c.headDim, w.pointer, buf.pointer + r * c.headDim, count: c.headDim, eps: c.rmsEps) }
        }

        for (li, L) in layers.enumerated() {
            for t in 0..<T { Vector.rmsNorm(x.pointer + t * dim, L.attnNorm.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) }
            // Taps of the attention input that policies declared (KVzap's predictor reads these rows).
            for (s, (o, pos)) in zip(segments, zip(offsets, positionsBySegment)) where !(s.cache.observations?.inputTaps.isEmpty ?? true) {
                s.cache.observations!.inputTaps.add(layer: li, rows: xb.pointer + o * dim, width: dim, positions: pos)
            }
            let attnIn = Weights.Input(xb.pointer, rows: T, inDim: dim)
            L.wq.linear(attnIn, q.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            L.wk.linear(attnIn, k.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            L.wv.linear(attnIn, v.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            addBias(q, L.bq, width: qDim); addBias(k, L.bk, width: kvDim); addBias(v, L.bv, width: kvDim)
            headNorm(q, L.qNorm, heads: c.heads); headNorm(k, L.kNorm, heads: c.kvHeads)
            // Query statistics before RoPE (after the QK norm, as the model sees them).
            for (s, (o, pos)) in zip(segments, zip(offsets, positionsBySegment)) {
                for m in s.cache.observations?.queryMoments.indices ?? 0..<0 {
                    s.cache.observations!.queryMoments[m].add(layer: li, q: q.pointer + o * qDim, positions: pos)
                }
            }
            let table = tables[L.invFreq]!
            rope(q, heads: c.heads, table)
            rope(k, heads: c.kvHeads, table)
            // Chunked non-causal attention (Compactor) reads the rows after RoPE.
            for (s, (o, pos)) in zip(segments, zip(offsets, positionsBySegment)) where !(s.cache.observations?.chunked.isEmpty ?? true) {
                for i in s.cache.observations!.chunked.indices {
                    s.cache.observations!.chunked[i].add(layer: li, q: q.pointer + o * qDim, k: k.pointer + o * kvDim, positions: pos)
                }
            }
            var items: [PagedAttention.BatchItem] = []
            for (s, (o, pos)) in zip(segments, zip(offsets, positionsBySegment)) {
                s.cache.append(layer: li, keys: k.pointer + o * kvDim, values: v.pointer + o * kvDim, positions: pos, tokens: s.tokens)
                items.append(.init(cache: s.cache, q: q.pointer + o * qDim, positions: pos, out: att.pointer + o * qDim, reads: s.reads))
            }
            PagedAttention.attendBatch(items, layer: li, nHeads: c.heads, rowInvariant: rowInvariant)
            if c.window(layer: li) != nil {
                for (s, pos) in zip(segments, positionsBySegment) { s.cache.releaseOutsideWindow(layer: li, next: Int(pos.last!) + 1) }
            }
            for (s, (o, pos)) in zip(segments, zip(offsets, positionsBySegment)) { s.tap?(li, att.pointer + o * qDim, pos.count, qDim) }
            L.wo.linear(att.pointer, rows: T, xb.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            if let n = L.postAttnNorm { for t in 0..<T { Vector.rmsNorm(xb.pointer + t * dim, n.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) } }
            Vector.add(x.pointer, xb.pointer, count: T * dim)

            for t in 0..<T { Vector.rmsNorm(x.pointer + t * dim, L.ffnNorm.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) }
            let ffnIn = Weights.Input(xb.pointer, rows: T, inDim: dim)
            L.wGate.linear(ffnIn, gate.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            L.wUp.linear(ffnIn, up.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            switch a.activation {
            case .silu: Vector.siluMul(gate.pointer, up.pointer, count: T * c.ffnDim)
            case .geluTanh: Vector.geluTanhMul(gate.pointer, up.pointer, count: T * c.ffnDim)
            }
            L.wDown.linear(gate.pointer, rows: T, xb.pointer, rowInvariant: rowInvariant, segments: rowSegments)
            if let n = L.postFfnNorm { for t in 0..<T { Vector.rmsNorm(xb.pointer + t * dim, n.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) } }
            Vector.add(x.pointer, xb.pointer, count: T * dim)
        }
        for s in segments { s.cache.nextPosition += s.tokens.count }

        // Rows whose logits are wanted, per segment.
        let wanted: [Range<Int>] = zip(segments, offsets).map { s, o in
            switch logitRows {
            case .none: return o..<o
            case .last: return (o + s.tokens.count - 1)..<(o + s.tokens.count)
            case .all: return o..<(o + s.tokens.count)
            }
        }
        let rows = wanted.reduce(0) { $0 + $1.count }
        guard rows > 0 else { return segments.map { _ in [] } }
        var r = 0
        for range in wanted {
            for t in range {
                Vector.rmsNorm(x.pointer + t * dim, outputNorm.pointer, xb.pointer + r * dim, count: dim, eps: c.rmsEps)
                r += 1
            }
        }
        // Every row's logits (self-information) take the few-row kernels as the last row alone does: the
        // prompt's last logits must not depend on whether another variant asked for the others.
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        logits.withUnsafeMutableBufferPointer { output.linear(xb.pointer, rows: rows, $0.baseAddress!, rowInvariant: rowInvariant || logitRows == .all) }
        var out: [[Float]] = [], start = 0
        for range in wanted {
            out.append(Array(logits[(start * c.vocabSize)..<((start + range.count) * c.vocabSize)]))
            start += range.count
        }
        return out
    }
}
