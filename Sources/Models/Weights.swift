import Foundation
import ModelFile
import TensorMath

/// How a model holds its weight matrices in memory.
public enum WeightStorage: String, CaseIterable, Sendable {
    /// In their GGUF blocks, read from the memory-mapped file (a 4-bit matrix stays 4-bit). Decode rows
    /// of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 matrices use integer dot products as llama.cpp does, with the activations
    /// quantized per 32-value block to 16 bits (llama.cpp: 8), one float scale per block pair.
    case native
    /// In their GGUF blocks, every product in Float32: each block dequantized in registers and multiplied
    /// by the Float32 activations (no activation rounding; the reference for `native`'s 8-bit activations).
    case exact

    /// How a run's `config.json` records the storage (nil: f32). `native` became integer decode with
    /// 16-bit activations on 2026-12-06 and is recorded as `native-q16`; runs before then wrote `native` for
    /// what is now `exact`, so a resumed old run refuses to mix the two.
    public var recordedName: String? {
        switch self { case .f32: return nil; case .native: return "native-q16"; case .exact: return "exact" }
    }
    /// Dequantized to Float32 once at load: the reference path (plain sgemv/sgemm), 4–8× the memory.
    case f32
}

/// One `[out][in]` weight matrix (GGML order: `in` contiguous), as `y[T][out] = x[T][in] · Wᵀ`.
///
/// `native` keeps the GGUF blocks where the file's memory map put them. A few rows of input (decode, the
/// batched forks of a probe) take a block dot product per output row: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 in
/// integers against activations quantized per block to 16 bits (`IntKernels`), the other types (K-quants,
/// F16, BF16) by dequantizing each block into registers and multiplying by the Float32 activations.
/// `exact` does the latter for every type ("dequantize and FMA": exact up to Float32 summation order).
/// Many rows (prefill) dequantize panels of output rows into a per-thread Float32 scratch and hand them
/// to sgemm, so prefill keeps BLAS's speed. `f32` holds a dequantized copy and calls BLAS directly (the reference).
final class Weights: @unchecked Sendable {
    let type: GGMLType
    let out: Int, inDim: Int
    private let blocks: UnsafeRawPointer?
    private let dense: FloatBuffer?
    private let rowBytes: Int

    /// Rows of input at or below which the block dot product runs instead of panels + sgemm.
    static let dotRows = 4
    /// Output rows per dequantized panel for sgemm.
    static let panelRows = 64

    /// Whether decode rows use 8-bit activations and integer dot products (`native` on a type `IntKernels` covers).
    let integerDecode: Bool

    init(type: GGMLType, out: Int, inDim: Int, bytes: UnsafeRawPointer, storage: WeightStorage) {
        self.type = type; self.out = out; self.inDim = inDim
        integerDecode = storage == .native && IntKernels.covers(type) && inDim % (IntKernels.superBlock(type) ? 256 : 32) == 0
        rowBytes = type.byteCount(elements: inDim)!
        if storage == .f32 {
            let buf = FloatBuffer(count: out * inDim, zeroed: false)
            Dequantize.run(type, bytes, buf.pointer, count: out * inDim)
            dense = buf; blocks = nil
        } else {
            dense = nil; blocks = bytes
        }
    }

    /// Bytes this matrix keeps resident (its blocks are pages of the mapped file, or its Float32 copy).
    var residentBytes: Int { dense.map { $0.count * 4 } ?? out * rowBytes }

    /// The matrix as Float32 without a copy: the dequantized copy, or an F32 tensor's mapped bytes.
    var floats: UnsafePointer<Float>? {
        if let dense { return UnsafePointer(dense.pointer) }
        return type == .f32 ? blocks!.assumingMemoryBound(to: Float.self) : nil
    }

    /// Row `o` as Float32 (an embedding lookup).
    func row(_ o: Int, into y: UnsafeMutablePointer<Float>) {
        if let dense { y.update(from: dense.pointer + o * inDim, count: inDim); return }
        Dequantize.run(type, blocks! + o * rowBytes, y, count: inDim)
    }

    /// One input `[rows][inDim]` to one or several matrices (q, k and v; gate and up): its 16-bit codes
    /// (decode) or its rounded copy (sgemm) are made once, on first use, for all of them.
    final class Input {
        let x: UnsafePointer<Float>, rows: Int, inDim: Int
        init(_ x: UnsafePointer<Float>, rows: Int, inDim: Int) { self.x = x; self.rows = rows; self.inDim = inDim }
        deinit { roundedRows?.deallocate() }
        private(set) lazy var codes: IntKernels.Activations = {
            let a = IntKernels.Activations(rows: rows, count: inDim)
            for t in 0..<rows { a.quantize(row: t, x + t * inDim) }
            return a
        }()
        private var roundedRows: UnsafeMutablePointer<Float>?
        /// `x` rounded to its 16-bit codes (q · d), rows split across threads.
        var rounded: UnsafePointer<Float> {
            if let r = roundedRows { return UnsafePointer(r) }
            let r = UnsafeMutablePointer<Float>.allocate(capacity: rows * inDim), inDim = inDim, T = rows
            let rows = UnsafeSendable((x, r))
            Threads.parallelFor((T + 15) / 16) { task in
                let (x, r) = rows.value
                for t in (task * 16)..<min(T, task * 16 + 16) { IntKernels.round(x + t * inDim, count: inDim, into: r + t * inDim) }
            }
            roundedRows = r
            return UnsafePointer(r)
        }
    }

    /// `y[rows][out] = x[rows][inDim] · Wᵀ` (overwrites y).
    func linear(_ x: UnsafePointer<Float>, rows T: Int, _ y: UnsafeMutablePointer<Float>) {
        linear(Input(x, rows: T, inDim: inDim), y)
    }

    /// `linear` on a shared input.
    func linear(_ input: Input, _ y: UnsafeMutablePointer<Float>) {
        let x = input.x, T = input.rows
        precondition(input.inDim == inDim, "input width \(input.inDim) ≠ matrix width \(inDim)")
        if let w = floats { BLAS.linear(x, rows: T, inDim: inDim, w, outDim: out, y); return }
        if T <= Self.dotRows {
            if integerDecode { integerRows(input.codes, y) } else { dotRows(x, rows: T, y) }
        } else {
            // With integer decode, sgemm multiplies the same 16-bit codes (see `panels`).
            panels(integerDecode ? input.rounded : x, rows: T, y)
        }
    }

    /// Decode rows: an integer block dot product per output row against the input's 16-bit codes
    /// (output rows split across threads).
    private func integerRows(_ acts: IntKernels.Activations, _ y: UnsafeMutablePointer<Float>) {
        let chunk = 32, tasks = (out + chunk - 1) / chunk
        let masks = IntKernels.Masks()
        let src = UnsafeSendable((y, blocks!, acts))
        Threads.parallelFor(tasks) { task in
            let (y, blocks, acts) = src.value
            for o in (task * chunk)..<min(out, (task + 1) * chunk) {
                if IntKernels.superBlock(type) {
                    IntKernels.dotK(type, blocks + o * rowBytes, acts, masks, into: y + o, stride: out)
                } else {
                    IntKernels.dot(type, blocks + o * rowBytes, acts, masks, into: y + o, stride: out)
                }
            }
        }
    }

    /// Block dot products, output rows split across threads. Q4_0, Q4_1 and Q8_0 use the fused kernel on
    /// activations permuted once per call; other types dequantize each block to a scratch, then dot.
    private func dotRows(_ x: UnsafePointer<Float>, rows T: Int, _ y: UnsafeMutablePointer<Float>) {
        let chunk = 32, tasks = (out + chunk - 1) / chunk
        let bs = type.blockSize, bb = type.bytesPerBlock, nb = inDim / bs
        let fused = BlockKernels.fused(type)
        let xp = UnsafeMutablePointer<Float>.allocate(capacity: fused ? T * inDim : 1), sums = UnsafeMutablePointer<Float>.allocate(capacity: fused ? T * nb : 1)
        defer { xp.deallocate(); sums.deallocate() }
        if fused { for t in 0..<T { BlockKernels.permute(x + t * inDim, count: inDim, into: xp + t * inDim, sums: sums + t * nb) } }
        let src = UnsafeSendable((x, y, blocks!, xp, sums))
        Threads.parallelFor(tasks) { task in
            let (x, y, blocks, xp, sums) = src.value
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: bs); defer { scratch.deallocate() }
            for o in (task * chunk)..<min(out, (task + 1) * chunk) {
                let rowp = blocks + o * rowBytes
                if fused {
                    for t in 0..<T { y[t * out + o] = BlockKernels.fusedDot(type, rowp, xp + t * inDim, sums + t * nb, blocks: nb) }
                    continue
                }
                var acc: (Float, Float, Float, Float) = (0, 0, 0, 0)
                for b in 0..<nb {
                    BlockKernels.dequantize(type, rowp + b * bb, scratch, count: bs)
                    let xb = x + b * bs
                    acc.0 += BlockKernels.dot(scratch, xb, bs)
                    if T > 1 { acc.1 += BlockKernels.dot(scratch, xb + inDim, bs) }
                    if T > 2 { acc.2 += BlockKernels.dot(scratch, xb + 2 * inDim, bs) }
                    if T > 3 { acc.3 += BlockKernels.dot(scratch, xb + 3 * inDim, bs) }
                }
                y[o] = acc.0
                if T > 1 { y[out + o] = acc.1 }
                if T > 2 { y[2 * out + o] = acc.2 }
                if T > 3 { y[3 * out + o] = acc.3 }
            }
        }
    }

    /// Panels of `panelRows` output rows dequantized to Float32, one sgemm each.
    /// With integer decode, `x` is the input rounded to its 16-bit codes (x̂ = q · d), so that a row gets the
    /// same products whether it runs alone (the integer kernel computes Σ w · x̂ exactly) or stacked with
    /// others through sgemm: results do not depend on how many forks share a pass.
    private func panels(_ x: UnsafePointer<Float>, rows T: Int, _ y: UnsafeMutablePointer<Float>) {
        let P = Self.panelRows, tasks = (out + P - 1) / P
        let src = UnsafeSendable((x, y, blocks!))
        Threads.parallelFor(tasks) { task in
            let (x, y, blocks) = src.value
            let o0 = task * P, n = min(P, out - o0)
            let panel = UnsafeMutablePointer<Float>.allocate(capacity: n * inDim); defer { panel.deallocate() }
            for r in 0..<n { BlockKernels.dequantize(type, blocks + (o0 + r) * rowBytes, panel + r * inDim, count: inDim) }
            BLAS.gemm(m: T, n: n, k: inDim, x, lda: inDim, panel, ldb: inDim, transB: true, beta: 0, y + o0, ldc: out)
        }
    }
}

/// Block dequantization with SIMD for the 32-value formats, and a SIMD dot product.
enum BlockKernels {
    /// Dequantizes `count` values (whole blocks) of `type` at `p` into `y`.
    @inline(__always) static func dequantize(_ type: GGMLType, _ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, count: Int) {
        switch type {
        case .q4_1:
            for b in 0..<(count / 32) {
                let q = p + b * 20
                let d = half(q.loadUnaligned(as: UInt16.self))
                let m = half(q.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let v = q.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
                let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v & 0x0F)), hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v &>> 4))
                let out = UnsafeMutableRawPointer(y + b * 32)
                out.storeBytes(of: lo * d + m, as: SIMD16<Float>.self)
                out.storeBytes(of: hi * d + m, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        case .q4_0:
            for b in 0..<(count / 32) {
                let q = p + b * 18
                let d = half(q.loadUnaligned(as: UInt16.self))
                let v = q.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
                let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v & 0x0F) &- 8), hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v &>> 4) &- 8)
                let out = UnsafeMutableRawPointer(y + b * 32)
                out.storeBytes(of: lo * d, as: SIMD16<Float>.self)
                out.storeBytes(of: hi * d, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        case .q8_0:
            for b in 0..<(count / 32) {
                let q = p + b * 34
                let d = half(q.loadUnaligned(as: UInt16.self))
                let a = q.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self), c = q.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)
                let out = UnsafeMutableRawPointer(y + b * 32)
                out.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: a)) * d, as: SIMD16<Float>.self)
                out.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: c)) * d, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        case .f32:
            UnsafeMutableRawPointer(y).copyMemory(from: p, byteCount: count * 4)
        case .f16:
            var i = 0
            while i + 8 <= count {
                let h = p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
                for k in 0..<8 { y[i + k] = half(h[k]) }
                i += 8
            }
            while i < count { y[i] = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))); i += 1 }
        case .bf16:
            var i = 0
            while i + 8 <= count {
                let h = SIMD8<UInt32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)) &<< 16
                UnsafeMutableRawPointer(y + i).storeBytes(of: unsafeBitCast(h, to: SIMD8<Float>.self), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { y[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16); i += 1 }
        default:
            Dequantize.run(type, p, y, count: count)
        }
    }

    /// Float16 bits to Float: exact for every finite value (normals and subnormals scale by 2¹¹²), without
    /// the library call Swift emits for `Float(Float16)` on baseline x86-64.
    @inline(__always) static func half(_ h: UInt16) -> Float {
        if h & 0x7C00 == 0x7C00 { return Float(Float16(bitPattern: h)) }  // inf, NaN
        let f = Float(bitPattern: UInt32(h & 0x7FFF) << 13) * 0x1p112
        return h & 0x8000 != 0 ? -f : f
    }

    /// Whether `fusedDot` handles `type`.
    static func fused(_ type: GGMLType) -> Bool { type == .q4_0 || type == .q4_1 || type == .q8_0 }

    /// Activations in the order the fused kernels read codes: in each 32-value block, group g = 4h + k holds
    /// elements 16h + 4i + k (i = 0…3), so that one 4-lane integer shift and mask of the block's packed
    /// bytes gives the codes of one group. With each block's sum (Q4_1's offset term).
    static func permute(_ x: UnsafePointer<Float>, count: Int, into xp: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let src = x + b * 32, dst = xp + b * 32
            var s: Float = 0
            for h in 0..<2 { for k in 0..<4 { for i in 0..<4 { dst[(h * 4 + k) * 4 + i] = src[16 * h + 4 * i + k] } } }
            for j in 0..<32 { s += src[j] }
            sums[b] = s
        }
    }

    /// One row's dot product with permuted activations `xp` (see `permute`), codes turned into floats in
    /// registers: 4-lane integer shifts and masks, then the 2²³ float trick (exact for codes below 2²³).
    /// The same products as dequantize-then-dot, summed in another order. Q4_0, Q4_1 and Q8_0 only.
    @inline(__always) static func fusedDot(_ type: GGMLType, _ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ sums: UnsafePointer<Float>, blocks nb: Int) -> Float {
        let xr = UnsafeRawPointer(xp)
        let magic = SIMD4<UInt32>(repeating: 0x4B00_0000)
        var acc = SIMD4<Float>(), offsets: Float = 0
        switch type {
        case .q4_1, .q4_0:
            let q41 = type == .q4_1, stride = q41 ? 20 : 18
            let nibble = SIMD4<UInt32>(repeating: 0xF), bias: Float = q41 ? 8_388_608 : 8_388_616
            for b in 0..<nb {
                let q = row + b * stride, xb = xr + b * 128
                let d = half(q.loadUnaligned(as: UInt16.self))
                let w = q.loadUnaligned(fromByteOffset: q41 ? 4 : 2, as: SIMD4<UInt32>.self)
                var s = SIMD4<Float>()
                for g in 0..<8 {
                    let n = (w &>> UInt32(8 * (g & 3) + 4 * (g >> 2))) & nibble
                    s += (unsafeBitCast(n | magic, to: SIMD4<Float>.self) - bias) * xb.loadUnaligned(fromByteOffset: g * 16, as: SIMD4<Float>.self)
                }
                acc += s * d
                if q41 { offsets += half(q.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * sums[b] }
            }
        case .q8_0:
            let byte = SIMD4<UInt32>(repeating: 0xFF), sign = SIMD4<UInt32>(repeating: 0x80)
            for b in 0..<nb {
                let q = row + b * 34, xb = xr + b * 128
                let d = half(q.loadUnaligned(as: UInt16.self))
                let w0 = q.loadUnaligned(fromByteOffset: 2, as: SIMD4<UInt32>.self), w1 = q.loadUnaligned(fromByteOffset: 18, as: SIMD4<UInt32>.self)
                var s = SIMD4<Float>()
                for g in 0..<8 {
                    // Signed bytes biased by 128 (xor the sign bit), then the float trick minus 2²³ + 128.
                    let n = (((g < 4 ? w0 : w1) &>> UInt32(8 * (g & 3))) & byte) ^ sign
                    s += (unsafeBitCast(n | magic, to: SIMD4<Float>.self) - 8_388_736) * xb.loadUnaligned(fromByteOffset: g * 16, as: SIMD4<Float>.self)
                }
                acc += s * d
            }
        default:
            preconditionFailure("fusedDot: \(type) is not a fused type")
        }
        return acc.sum() + offsets
    }

    /// Σ a[i]·b[i] over n values (16 lanes at a time).
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>(), i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            acc += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}

/// Integer decode kernels (`WeightStorage.native`): activations quantized per 32-value block to 16 bits
/// (q = round(x / d), d = max|x| / 32767), so that SSE2's `pmaddwd` multiplies 8 Int16 pairs and adds them
/// pairwise in one instruction. llama.cpp quantizes activations to 8 bits because its AVX2/VNNI kernels
/// multiply bytes; `pmaddwd` multiplies 16-bit lanes either way, so 16 bits cost nothing more here and cut
/// the rounding 258-fold: at most d/2 per value, 1/65534 of the block's largest (with 8 bits SmolLM2's
/// greedy text left llama.cpp's at token 15 of a reference prompt). Sums stay far inside Int32: a lane
/// adds 8 products of at most 127 · 32767. Each block's codes are laid out as [even 0…14][odd 1…15]
/// [even 16…30][odd 17…31]: the order in which 16-bit lanes of the weight bytes give their nibbles (Q4)
/// or bytes (Q8) with one shift and mask.
enum IntKernels {
    static func covers(_ type: GGMLType) -> Bool { [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K].contains(type) }
    /// The 256-value super-block types (their own kernel, `dotK`).
    @inline(__always) static func superBlock(_ type: GGMLType) -> Bool { type == .q4_K || type == .q5_K || type == .q6_K }

    /// Bytes per 32-value block, and where the nibbles start.
    @inline(__always) static func blockBytes(_ type: GGMLType) -> Int {
        switch type { case .q4_0: return 18; case .q4_1: return 20; case .q5_0: return 22; case .q5_1: return 24; default: return 34 }
    }
    /// The code offset a type subtracts (Q4_0: 8, Q5_0: 16), applied through the activations' code sums.
    @inline(__always) static func bias(_ type: GGMLType) -> Float { type == .q4_0 ? 8 : type == .q5_0 ? 16 : 0 }
    /// Whether the block has a Float16 minimum after its scale (Q4_1, Q5_1), applied through the float sums.
    @inline(__always) static func hasMin(_ type: GGMLType) -> Bool { type == .q4_1 || type == .q5_1 }

    /// The quantized activations of a few rows, with each block's scale, float sum (Q4_1's offset term)
    /// and code sum (Q4_0's −8 term). Codes are 64-byte aligned: each block's four 16-byte groups load aligned.
    final class Activations: @unchecked Sendable {
        let rows: Int, count: Int, blocks: Int
        let codes: UnsafeMutablePointer<Int16>
        let scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>, codeSums: UnsafeMutablePointer<Int32>
        init(rows: Int, count: Int) {
            self.rows = rows; self.count = count; blocks = count / 32
            codes = UnsafeMutableRawPointer.allocate(byteCount: rows * count * 2, alignment: 64).bindMemory(to: Int16.self, capacity: rows * count)
            scales = .allocate(capacity: rows * blocks); sums = .allocate(capacity: rows * blocks); codeSums = .allocate(capacity: rows * blocks)
        }
        deinit { UnsafeMutableRawPointer(codes).deallocate(); scales.deallocate(); sums.deallocate(); codeSums.deallocate() }

        func quantize(row t: Int, _ x: UnsafePointer<Float>) {
            for b in 0..<blocks {
                let src = x + b * 32, dst = codes + t * count + b * 32
                var s: Float = 0
                for j in 0..<32 { s += src[j] }
                let (d, inv) = scale(UnsafeRawPointer(src))
                var qs: Int32 = 0
                for j in 0..<32 {
                    let q = Int16(code(src[j], inv))
                    let r = j & 15
                    dst[(j & 16) + (r & 1) * 8 + (r >> 1)] = q
                    qs += Int32(q)
                }
                scales[t * blocks + b] = d; sums[t * blocks + b] = s; codeSums[t * blocks + b] = qs
            }
        }
    }

    /// `x` rounded to its 16-bit codes and back (q · d per 32-value block, exactly as `Activations` codes
    /// it): what the integer kernels multiply, for the sgemm path of the same storage.
    static func round(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let src = UnsafeRawPointer(x + b * 32), dst = UnsafeMutableRawPointer(y + b * 32)
            let v0 = src.loadUnaligned(as: SIMD16<Float>.self), v1 = src.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let (d, inv) = scale(src)
            dst.storeBytes(of: code(v0, inv) * d, as: SIMD16<Float>.self)
            dst.storeBytes(of: code(v1, inv) * d, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// A 32-value block's code step d = max|x| / 32767 and its inverse (0 for an all-zero block): the one
    /// definition `Activations` (integer kernels) and `round` (sgemm) share, so both see the same codes.
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> (d: Float, inv: Float) {
        let d = absMax(p) / 32767
        return (d, d > 0 ? 1 / d : 0)
    }

    /// x · inv rounded to the nearest integer, ties to even, by the 1.5·2²³ trick (exact for |x · inv| ≤ 2²²).
    @inline(__always) static func code(_ x: Float, _ inv: Float) -> Float { (x * inv + 12_582_912) - 12_582_912 }
    @inline(__always) static func code(_ x: SIMD16<Float>, _ inv: Float) -> SIMD16<Float> {
        let magic = SIMD16<Float>(repeating: 12_582_912)
        return (x * inv + magic) - magic
    }

    /// The largest |value| of the 32 floats at `p`: lane-wise maxima of the values and of their negations
    /// (selects LLVM keeps in registers; SIMD's `pointwiseMax` and `.max()` are calls here).
    @inline(__always) static func absMax(_ p: UnsafeRawPointer) -> Float {
        @inline(__always) func vmax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: a .< b) }
        var hi = SIMD4<Float>(), lo = SIMD4<Float>()
        for k in 0..<8 {
            let v = p.loadUnaligned(fromByteOffset: 16 * k, as: SIMD4<Float>.self)
            hi = vmax(hi, v); lo = vmax(lo, -v)
        }
        let m = vmax(hi, lo)
        return Swift.max(Swift.max(m[0], m[1]), Swift.max(m[2], m[3]))
    }

    /// Float16 bits to Float for finite values without a branch (a valid file's scales are finite; an
    /// infinite or NaN scale would read as a large finite one).
    @inline(__always) static func halfFinite(_ h: UInt16) -> Float {
        let magnitude = Float(bitPattern: UInt32(h & 0x7FFF) << 13) * 0x1p112
        return Float(bitPattern: magnitude.bitPattern | UInt32(h & 0x8000) << 16)
    }

    /// 8 Int16 products added pairwise into 4 Int32 lanes (one `pmaddwd`).
    @inline(__always) static func madd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
        let p = SIMD8<Int32>(truncatingIfNeeded: a) &* SIMD8<Int32>(truncatingIfNeeded: b)
        return p.evenHalf &+ p.oddHalf
    }

    /// The nibble mask and byte shift, read from memory once per call: as constants LLVM narrows the
    /// masked lanes (it knows their range) and turns `pmaddwd` into a shuffle-heavy multiply.
    nonisolated(unsafe) static var nibbleMask = SIMD4<UInt32>(repeating: 0x000F_000F)
    nonisolated(unsafe) static var byteShift: Int16 = 8
    /// Q5's fifth bits: lane k of the even groups tests bit 2k of a 16-bit half of `qh`, of the odd groups bit 2k+1.
    nonisolated(unsafe) static var evenBits = SIMD8<UInt16>(1, 4, 16, 64, 256, 1024, 4096, 16384)
    nonisolated(unsafe) static var oddBits = SIMD8<UInt16>(2, 8, 32, 128, 512, 2048, 8192, 32768)
    /// Q6_K's two high bits: `twoBits` (0b11 per lane) before a shift into place, `twoBitsHigh` (0b11 << 4) after.
    nonisolated(unsafe) static var twoBits = SIMD8<UInt16>(repeating: 3)
    nonisolated(unsafe) static var twoBitsHigh = SIMD8<UInt16>(repeating: 0x30)
    /// Q5_K's fifth bit: `one` before the shift into place, `sixteen` after.
    nonisolated(unsafe) static var oneBit = SIMD8<UInt16>(repeating: 1)
    nonisolated(unsafe) static var sixteenBit = SIMD8<UInt16>(repeating: 16)
    struct Masks {
        let nibbles = IntKernels.nibbleMask, shift = IntKernels.byteShift, even = IntKernels.evenBits, odd = IntKernels.oddBits
        let twoBits = IntKernels.twoBits, twoBitsHigh = IntKernels.twoBitsHigh, one = IntKernels.oneBit, sixteen = IntKernels.sixteenBit
    }

    /// One row's codes of one block as four groups of 8 Int16 ([even 0…14][odd 1…15][even 16…30][odd 17…31]).
    @inline(__always) static func codes(_ type: GGMLType, _ q: UnsafeRawPointer, _ m: Masks) -> (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>) {
        if type == .q8_0 {
            // Signed bytes: a lane's low byte (element 2k) by shifting left then arithmetically right, its
            // high byte (2k+1) by the right shift alone.
            let w0 = unsafeBitCast(q.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self), to: SIMD8<Int16>.self)
            let w1 = unsafeBitCast(q.loadUnaligned(fromByteOffset: 18, as: SIMD8<UInt16>.self), to: SIMD8<Int16>.self)
            return ((w0 &<< m.shift) &>> m.shift, w0 &>> m.shift, (w1 &<< m.shift) &>> m.shift, w1 &>> m.shift)
        }
        // 16-bit lane k holds bytes 2k, 2k+1: low nibbles are elements 2k, 2k+1; high ones 16+2k, 17+2k.
        let five = type == .q5_0 || type == .q5_1
        let at = (hasMin(type) ? 4 : 2) + (five ? 4 : 0)
        let w = q.loadUnaligned(fromByteOffset: at, as: SIMD4<UInt32>.self), m4 = m.nibbles
        var c = (unsafeBitCast(w & m4, to: SIMD8<UInt16>.self), unsafeBitCast((w &>> 8) & m4, to: SIMD8<UInt16>.self),
                 unsafeBitCast((w &>> 4) & m4, to: SIMD8<UInt16>.self), unsafeBitCast((w &>> 12) & m4, to: SIMD8<UInt16>.self))
        if five {
            // Element j's fifth bit is bit j of qh: 16 where set.
            let qh = q.loadUnaligned(fromByteOffset: at - 4, as: UInt32.self)
            let lo = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: qh)), hi = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: qh >> 16))
            let zero = SIMD8<UInt16>(), sixteen = SIMD8<UInt16>(repeating: 16)
            c.0 |= zero.replacing(with: sixteen, where: (lo & m.even) .!= zero)
            c.1 |= zero.replacing(with: sixteen, where: (lo & m.odd) .!= zero)
            c.2 |= zero.replacing(with: sixteen, where: (hi & m.even) .!= zero)
            c.3 |= zero.replacing(with: sixteen, where: (hi & m.odd) .!= zero)
        }
        return (unsafeBitCast(c.0, to: SIMD8<Int16>.self), unsafeBitCast(c.1, to: SIMD8<Int16>.self),
                unsafeBitCast(c.2, to: SIMD8<Int16>.self), unsafeBitCast(c.3, to: SIMD8<Int16>.self))
    }

    /// Σ codes · activation codes of one block (4 Int32 lanes).
    @inline(__always) static func blockSum(_ c: (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>), _ xb: UnsafeRawPointer) -> SIMD4<Int32> {
        (madd(c.0, xb.load(as: SIMD8<Int16>.self)) &+ madd(c.1, xb.load(fromByteOffset: 16, as: SIMD8<Int16>.self)))
            &+ (madd(c.2, xb.load(fromByteOffset: 32, as: SIMD8<Int16>.self)) &+ madd(c.3, xb.load(fromByteOffset: 48, as: SIMD8<Int16>.self)))
    }

    /// One weight row's dot products with every row of `a`, written to `y[t · stride]`.
    @inline(__always) static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks,
                                      into y: UnsafeMutablePointer<Float>, stride: Int) {
        if a.rows == 1 {
            switch type {
            case .q4_1: y[0] = dot1(.q4_1, row, a, m)
            case .q4_0: y[0] = dot1(.q4_0, row, a, m)
            case .q5_0: y[0] = dot1(.q5_0, row, a, m)
            case .q5_1: y[0] = dot1(.q5_1, row, a, m)
            case .q8_0: y[0] = dot1(.q8_0, row, a, m)
            default: preconditionFailure("IntKernels.dot: \(type) is not covered")
            }
            return
        }
        // Several rows (batched forks): each block's codes unpacked once, used for every row.
        let stride0 = blockBytes(type), bias = bias(type), hasMin = hasMin(type), nb = a.blocks
        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: a.rows) { acc in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: a.rows) { off in
                acc.initialize(repeating: SIMD4<Float>()); off.initialize(repeating: 0)
                for b in 0..<nb {
                    let q = row + b &* stride0, c = codes(type, q, m)
                    let dw = halfFinite(q.loadUnaligned(as: UInt16.self))
                    let mw: Float = hasMin ? halfFinite(q.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) : 0
                    for t in 0..<a.rows {
                        let i = t &* nb &+ b
                        let d = dw * a.scales[i]
                        acc[t] += SIMD4<Float>(blockSum(c, UnsafeRawPointer(a.codes + t &* a.count) + b &* 64)) * d
                        if hasMin { off[t] += mw * a.sums[i] } else if bias != 0 { off[t] -= bias * d * Float(a.codeSums[i]) }
                    }
                }
                for t in 0..<a.rows { y[t * stride] = acc[t].sum() + off[t] }
            }
        }
    }

    /// Q4_K, Q5_K and Q6_K rows (256-value super-blocks) against every row of `a`, written to `y[t · stride]`.
    /// Q4_K: sub-block j (32 values) is d · sc_j · code − dmin · m_j; its codes are the low (even j) or high
    /// (odd j) nibbles of 32 bytes, which give the kernel's lane order directly. Q5_K adds a fifth bit, bit j
    /// of `qh[l]` for value l of sub-block j. Q6_K: each 32 values take
    /// 4 bits from `ql` and 2 from `qh`, minus 32 (subtracted in the lanes: codes stay in Int16), with an
    /// int8 scale per 16 values: groups 0–1 of a block are its first 16 values, groups 2–3 the rest.
    static func dotK(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks,
                     into y: UnsafeMutablePointer<Float>, stride: Int) {
        let nsb = a.blocks / 8, rows = a.rows, m4 = m.nibbles
        @inline(__always) func lanes(_ w: SIMD4<UInt32>) -> SIMD8<UInt16> { unsafeBitCast(w, to: SIMD8<UInt16>.self) }
        @inline(__always) func i16(_ v: SIMD8<UInt16>) -> SIMD8<Int16> { unsafeBitCast(v, to: SIMD8<Int16>.self) }
        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: rows) { acc in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { off in
                acc.initialize(repeating: SIMD4<Float>()); off.initialize(repeating: 0)
                for sb in 0..<nsb {
                    if type == .q4_K || type == .q5_K {
                        let five = type == .q5_K, p = row + sb &* (five ? 176 : 144)
                        let d = halfFinite(p.loadUnaligned(as: UInt16.self)), dmin = halfFinite(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                        // Q5_K's fifth bits: 16-bit lanes of qh[0…15] and qh[16…31].
                        let h0 = five ? lanes(p.loadUnaligned(fromByteOffset: 16, as: SIMD4<UInt32>.self)) : SIMD8<UInt16>()
                        let h1 = five ? lanes(p.loadUnaligned(fromByteOffset: 32, as: SIMD4<UInt32>.self)) : SIMD8<UInt16>()
                        let one = m.one, sixteen = m.sixteen
                        for pair in 0..<4 {
                            let (sc0, mn0) = Dequantize.scaleMinK4(2 * pair, p + 4), (sc1, mn1) = Dequantize.scaleMinK4(2 * pair + 1, p + 4)
                            let q = p + (five ? 48 : 16) + 32 * pair
                            let w0 = q.loadUnaligned(as: SIMD4<UInt32>.self), w1 = q.loadUnaligned(fromByteOffset: 16, as: SIMD4<UInt32>.self)
                            var lo = (lanes(w0 & m4), lanes((w0 &>> 8) & m4), lanes(w1 & m4), lanes((w1 &>> 8) & m4))
                            var hi = (lanes((w0 &>> 4) & m4), lanes((w0 &>> 12) & m4), lanes((w1 &>> 4) & m4), lanes((w1 &>> 12) & m4))
                            if five {
                                // Bit j of a lane's low byte (even value) and of its high byte (odd value), as 16.
                                @inline(__always) func even(_ h: SIMD8<UInt16>, _ j: UInt16) -> SIMD8<UInt16> { ((h &>> j) & one) &<< 4 }
                                @inline(__always) func odd(_ h: SIMD8<UInt16>, _ j: UInt16) -> SIMD8<UInt16> { (h &>> (j + 4)) & sixteen }
                                let j0 = UInt16(2 * pair), j1 = j0 + 1
                                lo.0 |= even(h0, j0); lo.1 |= odd(h0, j0); lo.2 |= even(h1, j0); lo.3 |= odd(h1, j0)
                                hi.0 |= even(h0, j1); hi.1 |= odd(h0, j1); hi.2 |= even(h1, j1); hi.3 |= odd(h1, j1)
                            }
                            let lo16 = (i16(lo.0), i16(lo.1), i16(lo.2), i16(lo.3)), hi16 = (i16(hi.0), i16(hi.1), i16(hi.2), i16(hi.3))
                            let b0 = sb &* 8 &+ 2 &* pair
                            for t in 0..<rows {
                                let xr = UnsafeRawPointer(a.codes + t &* a.count), i = t &* a.blocks &+ b0
                                acc[t] += SIMD4<Float>(blockSum(lo16, xr + b0 &* 64)) * (d * sc0 * a.scales[i])
                                acc[t] += SIMD4<Float>(blockSum(hi16, xr + (b0 &+ 1) &* 64)) * (d * sc1 * a.scales[i &+ 1])
                                off[t] -= dmin * (mn0 * a.sums[i] + mn1 * a.sums[i &+ 1])
                            }
                        }
                    } else {
                        let p = row + sb &* 210, d = halfFinite(p.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
                        let thirtyTwo = SIMD8<Int16>(repeating: 32)
                        for half in 0..<2 {
                            let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half
                            // 16-bit lanes of qh[0…31], first and second 16 bytes.
                            let h0 = lanes(qh.loadUnaligned(as: SIMD4<UInt32>.self)), h1 = lanes(qh.loadUnaligned(fromByteOffset: 16, as: SIMD4<UInt32>.self))
                            let n = lanes(m4), three = m.twoBits, hiBits = m.twoBitsHigh
                            // Sub-block k (0…3) of this half: low nibbles of ql[0…31] (k 0) or ql[32…63] (k 1), high
                            // nibbles (k 2, 3); its 2 high bits are bits 2k, 2k+1 of qh[l].
                            for k in 0..<4 {
                                let at = k & 1 == 0 ? 0 : 32, shift = UInt16(k >= 2 ? 4 : 0), hs = UInt16(2 * k)
                                let s0 = lanes(ql.loadUnaligned(fromByteOffset: at, as: SIMD4<UInt32>.self))
                                let s1 = lanes(ql.loadUnaligned(fromByteOffset: at + 16, as: SIMD4<UInt32>.self))
                                @inline(__always) func even(_ s: SIMD8<UInt16>, _ h: SIMD8<UInt16>) -> SIMD8<Int16> {
                                    i16(((s &>> shift) & n) | (((h &>> hs) & three) &<< 4)) &- thirtyTwo
                                }
                                @inline(__always) func odd(_ s: SIMD8<UInt16>, _ h: SIMD8<UInt16>) -> SIMD8<Int16> {
                                    i16(((s &>> (shift + 8)) & n) | ((h &>> (hs + 4)) & hiBits)) &- thirtyTwo
                                }
                                let g = (even(s0, h0), odd(s0, h0), even(s1, h1), odd(s1, h1))
                                let sc0 = Float(Int8(bitPattern: sc.load(fromByteOffset: 2 * k, as: UInt8.self))) * d
                                let sc1 = Float(Int8(bitPattern: sc.load(fromByteOffset: 2 * k + 1, as: UInt8.self))) * d
                                let b = sb &* 8 &+ half &* 4 &+ k
                                for t in 0..<rows {
                                    let xb = UnsafeRawPointer(a.codes + t &* a.count) + b &* 64
                                    let first = madd(g.0, xb.load(as: SIMD8<Int16>.self)) &+ madd(g.1, xb.load(fromByteOffset: 16, as: SIMD8<Int16>.self))
                                    let second = madd(g.2, xb.load(fromByteOffset: 32, as: SIMD8<Int16>.self)) &+ madd(g.3, xb.load(fromByteOffset: 48, as: SIMD8<Int16>.self))
                                    acc[t] += (SIMD4<Float>(first) * sc0 + SIMD4<Float>(second) * sc1) * a.scales[t &* a.blocks &+ b]
                                }
                            }
                        }
                    }
                }
                for t in 0..<rows { y[t * stride] = acc[t].sum() + off[t] }
            }
        }
    }

    /// One row: the type fixed at the call, no branch in the block loop.
    @inline(__always) static func dot1(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks) -> Float {
        let xr = UnsafeRawPointer(a.codes), stride = blockBytes(type), bias = bias(type), hasMin = hasMin(type)
        var acc = SIMD4<Float>(), off: Float = 0
        for b in 0..<a.blocks {
            let q = row + b &* stride
            let d = halfFinite(q.loadUnaligned(as: UInt16.self)) * a.scales[b]
            acc += SIMD4<Float>(blockSum(codes(type, q, m), xr + b &* 64)) * d
            if hasMin { off += halfFinite(q.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * a.sums[b] } else if bias != 0 { off -= bias * d * Float(a.codeSums[b]) }
        }
        return acc.sum() + off
    }
}
