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

/// A Llama-architecture transformer whose attention reads K and V from a `PagedKVCache`.
///
/// All weights are dequantized to Float32 once at load (≈540 MB for SmolLM2-135M): prefill is then a
/// chain of OpenBLAS sgemm calls and decode of sgemv calls, and the math equals a plain float32 forward
/// pass up to summation order, which is what the reference comparison needs.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate
    public let file: GGUFFile

    struct Layer {
        let attnNorm: FloatBuffer   // [dim]
        let wq: FloatBuffer         // [heads·headDim][dim]
        let wk: FloatBuffer         // [kvHeads·headDim][dim]
        let wv: FloatBuffer         // [kvHeads·headDim][dim]
        let wo: FloatBuffer         // [dim][heads·headDim]
        let ffnNorm: FloatBuffer    // [dim]
        let wGate: FloatBuffer      // [ffn][dim]
        let wUp: FloatBuffer        // [ffn][dim]
        let wDown: FloatBuffer      // [dim][ffn]
    }
    let layers: [Layer]
    let tokenEmbedding: FloatBuffer  // [vocab][dim]
    let outputNorm: FloatBuffer      // [dim]
    let output: FloatBuffer          // [vocab][dim]; the embedding itself when the head is tied
    let invFreq: [Double]            // [headDim/2] RoPE inverse frequencies

    /// Tokens per forward chunk during prefill: bounds activation memory (≈ ubatch × (2·ffn + 6·dim) floats).
    public var prefillChunk = 512

    public convenience init(path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }

    public init(gguf: GGUFFile) throws {
        file = gguf
        config = try LlamaConfig(gguf: gguf)
        tokenizer = try Tokenizer(gguf: gguf)
        chatTemplate = ChatTemplate(gguf: gguf)
        let c = config
        func load(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
            guard let info = gguf.tensorsByName[name] else { throw GGUFError.missingTensor(name) }
            guard info.shape == shape else { throw ModelError.shapeMismatch(tensor: name, expected: shape, found: info.shape) }
            guard info.type.canDequantize else { throw GGUFError.unsupportedTensorType(name: name, type: info.type.rawValue) }
            let buf = FloatBuffer(count: info.elementCount, zeroed: false)
            Dequantize.run(info.type, gguf.file.base + info.fileOffset, buf.pointer, count: info.elementCount)
            return buf
        }
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        var ls: [Layer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            ls.append(Layer(
                attnNorm: try load(p + "attn_norm.weight", [c.dim]),
                wq: try load(p + "attn_q.weight", [c.dim, qDim]),
                wk: try load(p + "attn_k.weight", [c.dim, kvDim]),
                wv: try load(p + "attn_v.weight", [c.dim, kvDim]),
                wo: try load(p + "attn_output.weight", [qDim, c.dim]),
                ffnNorm: try load(p + "ffn_norm.weight", [c.dim]),
                wGate: try load(p + "ffn_gate.weight", [c.dim, c.ffnDim]),
                wUp: try load(p + "ffn_up.weight", [c.dim, c.ffnDim]),
                wDown: try load(p + "ffn_down.weight", [c.ffnDim, c.dim])))
        }
        layers = ls
        tokenEmbedding = try load("token_embd.weight", [c.dim, c.vocabSize])
        outputNorm = try load("output_norm.weight", [c.dim])
        output = gguf.tensorsByName["output.weight"] != nil ? try load("output.weight", [c.dim, c.vocabSize]) : tokenEmbedding
        // GGML "normal" RoPE: adjacent pairs (x[2i], x[2i+1]) rotate by pos · base^(-2i/headDim).
        invFreq = (0..<(c.headDim / 2)).map { Foundation.pow(c.ropeBase, -2.0 * Double($0) / Double(c.headDim)) }
    }

    /// A fresh paged cache shaped for this model.
    public func makeCache(pageSize: Int = 16) -> PagedKVCache {
        PagedKVCache(layers: config.layers, kvHeads: config.kvHeads, headDim: config.headDim, pageSize: pageSize)
    }

    /// Bytes of Float32 weights held in memory (the tied head counted once).
    public var weightBytes: Int {
        var n = tokenEmbedding.count + outputNorm.count + (output === tokenEmbedding ? 0 : output.count)
        for l in layers {
            n += l.attnNorm.count + l.wq.count + l.wk.count + l.wv.count + l.wo.count
            n += l.ffnNorm.count + l.wGate.count + l.wUp.count + l.wDown.count
        }
        return n * MemoryLayout<Float>.size
    }

    /// Runs `tokens` through the model, appending their K/V to `cache` at positions starting from
    /// `cache.nextPosition`, and returns the logits of the last token (`[vocab]`), or of every token
    /// (`[T][vocab]`) when `allLogits`.
    /// Sees each layer's attention output (before the output projection): `[T][heads·headDim]` floats.
    public typealias AttentionTap = (_ layer: Int, _ output: UnsafePointer<Float>, _ rows: Int, _ width: Int) -> Void

    @discardableResult
    public func forward(_ tokens: [Int32], cache: PagedKVCache, allLogits: Bool = false, attentionTap: AttentionTap? = nil) throws -> [Float] {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        let needed = cache.nextPosition + tokens.count
        guard needed <= config.contextLength else { throw ModelError.contextOverflow(needed: needed, limit: config.contextLength) }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.badToken(bad, vocab: config.vocabSize)
        }
        var logits: [Float] = []
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + max(1, prefillChunk))
            let isLast = end == tokens.count
            let part = forwardChunk(Array(tokens[start..<end]), cache: cache, logitRows: allLogits ? .all : (isLast ? .last : .none),
                                    attentionTap: attentionTap)
            logits.append(contentsOf: part)
            start = end
        }
        return logits
    }

    enum LogitRows { case none, last, all }

    private func forwardChunk(_ tokens: [Int32], cache: PagedKVCache, logitRows: LogitRows, attentionTap: AttentionTap?) -> [Float] {
        let c = config, T = tokens.count, dim = c.dim
        let qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim
        let positions = (0..<T).map { Int32(cache.nextPosition + $0) }
        let x = FloatBuffer(count: T * dim, zeroed: false)
        let xb = FloatBuffer(count: T * dim, zeroed: false)
        let q = FloatBuffer(count: T * qDim, zeroed: false)
        let k = FloatBuffer(count: T * kvDim, zeroed: false)
        let v = FloatBuffer(count: T * kvDim, zeroed: false)
        let att = FloatBuffer(count: T * qDim, zeroed: false)
        let gate = FloatBuffer(count: T * c.ffnDim, zeroed: false)
        let up = FloatBuffer(count: T * c.ffnDim, zeroed: false)
        for t in 0..<T {
            (x.pointer + t * dim).update(from: tokenEmbedding.pointer + Int(tokens[t]) * dim, count: dim)
        }
        // RoPE tables for this chunk: [T][headDim/2] cos and sin.
        let half = c.headDim / 2
        var cosT = [Float](repeating: 0, count: T * half), sinT = cosT
        for t in 0..<T {
            for i in 0..<half {
                let a = Double(positions[t]) * invFreq[i]
                cosT[t * half + i] = Float(Foundation.cos(a))
                sinT[t * half + i] = Float(Foundation.sin(a))
            }
        }
        func rope(_ buf: FloatBuffer, heads: Int) {
            for t in 0..<T {
                for h in 0..<heads {
                    let p = buf.pointer + (t * heads + h) * c.headDim
                    for i in 0..<half {
                        let cs = cosT[t * half + i], sn = sinT[t * half + i]
                        let a = p[2 * i], b = p[2 * i + 1]
                        p[2 * i] = a * cs - b * sn
                        p[2 * i + 1] = a * sn + b * cs
                    }
                }
            }
        }

        for (li, L) in layers.enumerated() {
            for t in 0..<T { Vector.rmsNorm(x.pointer + t * dim, L.attnNorm.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) }
            BLAS.linear(xb.pointer, rows: T, inDim: dim, L.wq.pointer, outDim: qDim, q.pointer)
            BLAS.linear(xb.pointer, rows: T, inDim: dim, L.wk.pointer, outDim: kvDim, k.pointer)
            BLAS.linear(xb.pointer, rows: T, inDim: dim, L.wv.pointer, outDim: kvDim, v.pointer)
            rope(q, heads: c.heads)
            rope(k, heads: c.kvHeads)
            cache.append(layer: li, keys: k.pointer, values: v.pointer, positions: positions, tokens: tokens)
            PagedAttention.attend(cache: cache, layer: li, q: q.pointer, positions: positions, nHeads: c.heads, out: att.pointer)
            attentionTap?(li, att.pointer, T, qDim)
            BLAS.linear(att.pointer, rows: T, inDim: qDim, L.wo.pointer, outDim: dim, xb.pointer)
            Vector.add(x.pointer, xb.pointer, count: T * dim)

            for t in 0..<T { Vector.rmsNorm(x.pointer + t * dim, L.ffnNorm.pointer, xb.pointer + t * dim, count: dim, eps: c.rmsEps) }
            BLAS.linear(xb.pointer, rows: T, inDim: dim, L.wGate.pointer, outDim: c.ffnDim, gate.pointer)
            BLAS.linear(xb.pointer, rows: T, inDim: dim, L.wUp.pointer, outDim: c.ffnDim, up.pointer)
            Vector.siluMul(gate.pointer, up.pointer, count: T * c.ffnDim)
            BLAS.linear(gate.pointer, rows: T, inDim: c.ffnDim, L.wDown.pointer, outDim: dim, xb.pointer)
            Vector.add(x.pointer, xb.pointer, count: T * dim)
        }
        cache.nextPosition += T

        let first: Int
        switch logitRows {
        case .none: return []
        case .last: first = T - 1
        case .all: first = 0
        }
        let rows = T - first
        for t in first..<T {
            Vector.rmsNorm(x.pointer + t * dim, outputNorm.pointer, xb.pointer + (t - first) * dim, count: dim, eps: c.rmsEps)
        }
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        logits.withUnsafeMutableBufferPointer {
            BLAS.linear(xb.pointer, rows: rows, inDim: dim, output.pointer, outDim: c.vocabSize, $0.baseAddress!)
        }
        return logits
    }
}
