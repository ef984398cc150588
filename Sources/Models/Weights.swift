import CKernels
import Foundation
import ModelFile
import TensorMath

/// How a model holds its weight matrices in memory.
public enum WeightStorage: String, CaseIterable, Sendable {
    /// In their GGUF blocks, read from the memory-mapped file (a 4-bit matrix stays 4-bit). Decode rows
    /// of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K matrices use integer dot products as llama.cpp
    /// does, with the activations quantized per 32-value block to 16 bits (llama.cpp: 8), one float scale
    /// per block pair; Q4_K, Q5_K and Q6_K against 8-bit Q8_K codes per 256 values, as llama.cpp.
    case native
    /// In their GGUF blocks, every product in Float32: each block dequantized in registers and multiplied
    /// by the Float32 activations (no activation rounding; the reference for `native`'s activation codes).
    case exact

    /// How a run's `config.json` records the storage (nil: f32; `DecoderModel.weightsRecord` adds the kernels that
    /// change the arithmetic: `-q8k2`, `-vnni`). `native` became integer decode with
    /// 16-bit activations on 2026-12-06 and is recorded as `native-q16`; runs before then wrote `native` for
    /// what is now `exact`, so a resumed old run refuses to mix the two. Since the K-quant kernels take
    /// Q8_K activations (2026-12-06, evening) a model with K-quant matrices records `native-q16-q8k`, and
    /// `native-q16-q8k2` since their exact super-block sums (2026-12-07; `DecoderModel.weightsRecord`); one without (SmolLM2's Q4_1) computes as before and records `native-q16`.
    public var recordedName: String? {
        switch self {
        case .f32: return nil;
        case .native: return "native-q16";
        case .exact: return "exact"
        }
    }
    /// Dequantized to Float32 once at load: the reference path (plain sgemv/sgemm), 4–8× the memory.
    case f32
}

/// One `[out][in]` weight matrix (GGML order: `in` contiguous), as `y[T][out] = x[T][in] · Wᵀ`.
///
/// `native` keeps the GGUF blocks where the file's memory map put them. A few rows of input (decode, the
/// batched forks of a probe) take a block dot product per output row: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
/// Q5_K and Q6_K in integers against activations quantized per block to 16 bits (K-quants: 8-bit Q8_K
/// codes per 256 values) (`IntKernels`: SSE2 in the
/// portable build, AVX2 in the host build), the other types (Q2_K, Q3_K, F16, BF16) by dequantizing each
/// block and multiplying by the Float32 activations.
/// `exact` does the latter for every type ("dequantize and FMA": exact up to Float32 summation order).
/// Many rows (prefill) of a K-quant matrix run the decode kernel's arithmetic in a cache-blocked loop in the AVX2
/// build (`integerGemm`: 8-bit products, 1.0–1.3× sgemm's speed on the Qwen 1.5B matrices, and bitwise
/// what decode computes), or, on a CPU with AVX-512 VNNI and from 64 rows, a panel kernel with the same bits
/// (`kquantGemm`, ~4× sgemm); Q4_0 … Q8_0 matrices on such a CPU take a panel kernel on decode's 16-bit codes
/// (`blockGemm`, 2–3× sgemm; not decode's bits, so never in a row-invariant call); other types and CPUs
/// dequantize panels of output rows into a per-thread Float32 scratch and hand them to sgemm. `f32` holds a
/// dequantized copy and calls BLAS directly (the reference).
final class Weights: @unchecked Sendable {
    let type: GGMLType
    let out: Int, inDim: Int
    private let blocks: UnsafeRawPointer?
    private let dense: FloatBuffer?
    private let rowBytes: Int

    /// Rows of input at or below which the block dot product runs instead of panels + sgemm.
    static let dotRows = 4
    /// The same for integer decode: its many-row kernel unpacks each block once for up to 8 rows (an
    /// 8-token prefill 245 → 335 tok/s against panels + sgemm; equal at 16).
    static let integerRowsMax = 8
    /// Output rows per dequantized panel for sgemm.
    static let panelRows = 64

    /// Whether decode rows use integer dot products (`native` on a type `IntKernels` covers): against 16-bit
    /// activation codes, or Q8_K codes for the K-quants.
    let integerDecode: Bool

    /// How many rows (more than `integerRowsMax`: prefill) are multiplied.
    enum ManyRows: String, Sendable {
        /// Panels of output rows dequantized to Float32, then OpenBLAS sgemm.
        case sgemm
        /// The decode kernel's arithmetic in a cache-blocked loop (`integerGemm`): the K-quants in the AVX2 build.
        case integer
    }
    /// `integer` where the build has the kernel for this type (`hasIntegerManyRows`), else `sgemm`;
    /// `kvkit bench --kernels` sets each in turn on the same matrix to time them.
    var manyRows: ManyRows
    /// Whether many rows can take an integer kernel: K-quant codes in the AVX2 build, the block types' 16-bit
    /// codes where the CPU has the AVX-512 VNNI panel kernel.
    var hasIntegerManyRows: Bool {
        guard integerDecode else { return false }
        return IntKernels.superBlock(type) ? IntKernels.integerPrefillK : IntKernels.vnniPanels
    }

    init(type: GGMLType, out: Int, inDim: Int, bytes: UnsafeRawPointer, storage: WeightStorage) {
        self.type = type; self.out = out; self.inDim = inDim
        integerDecode = storage == .native && IntKernels.covers(type) && inDim % (IntKernels.superBlock(type) ? 256 : 32) == 0
        rowBytes = type.byteCount(elements: inDim)!
        manyRows = .sgemm
        if storage == .f32 {
            let buf = FloatBuffer(count: out * inDim, zeroed: false)
            Dequantize.run(type, bytes, buf.pointer, count: out * inDim)
            dense = buf; blocks = nil
        } else {
            dense = nil; blocks = bytes
        }
        if hasIntegerManyRows { manyRows = .integer }
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

    /// One input `[rows][inDim]` to one or several matrices (q, k and v; gate and up): its activation codes
    /// (decode) or its rounded copy (sgemm) are made once, on first use, for all of them.
    final class Input {
        let x: UnsafePointer<Float>, rows: Int, inDim: Int
        init(_ x: UnsafePointer<Float>, rows: Int, inDim: Int) { self.x = x; self.rows = rows; self.inDim = inDim }
        deinit {
            roundedRows?.deallocate(); roundedRowsK?.deallocate(); interleaved?.deallocate()
            if let k = interleavedK { k.xi.deallocate(); k.sums32.deallocate() }
        }
        private(set) lazy var codes: IntKernels.Activations = {
            let a = IntKernels.Activations(rows: rows, count: inDim), T = rows, inDim = inDim
            let x = UnsafeSendable(x)
            Threads.parallelFor((T + 15) / 16) { task in
                for t in (task * 16)..<min(T, task * 16 + 16) { a.quantize(row: t, x.value + t * inDim) }
            }
            return a
        }()
        /// The Q8_K codes of the K-quant matrices (q, k and v of one file may mix Q4_K, Q6_K and Q5_0).
        private(set) lazy var codesK: IntKernels.ActivationsK = {
            let a = IntKernels.ActivationsK(rows: rows, count: inDim), T = rows, inDim = inDim
            let x = UnsafeSendable(x)
            Threads.parallelFor((T + 15) / 16) { task in
                for t in (task * 16)..<min(T, task * 16 + 16) { a.quantize(row: t, x.value + t * inDim) }
            }
            return a
        }()
        private var interleaved: UnsafeMutablePointer<Int32>?
        private var interleavedK: (xi: UnsafeMutablePointer<Int32>, sums32: UnsafeMutablePointer<Int16>)?
        /// `codes` of each 8 rows interleaved for the AVX-512 VNNI block kernel (`Weights.interleave`), made once
        /// for every matrix sharing this input.
        func codesInterleaved() -> UnsafeMutablePointer<Int32> {
            if let interleaved { return interleaved }
            let xi = Weights.interleave(codes)
            interleaved = xi
            return xi
        }
        /// `codesK` of each 8 rows interleaved, and their 32-value code sums, for the VNNI K-quant kernel.
        func codesKInterleaved() -> (xi: UnsafeMutablePointer<Int32>, sums32: UnsafeMutablePointer<Int16>) {
            if let interleavedK { return interleavedK }
            let k = Weights.interleave(codesK)
            interleavedK = k
            return k
        }
        private var roundedRows: UnsafeMutablePointer<Float>?, roundedRowsK: UnsafeMutablePointer<Float>?
        /// `x` rounded to the codes the integer kernels of `type` multiply (16-bit per 32 values, or Q8_K
        /// for the K-quants: q · d), rows split across threads.
        func rounded(for type: GGMLType) -> UnsafePointer<Float> {
            let k = IntKernels.superBlock(type)
            if let r = k ? roundedRowsK : roundedRows { return UnsafePointer(r) }
            let r = UnsafeMutablePointer<Float>.allocate(capacity: rows * inDim), inDim = inDim, T = rows
            let rows = UnsafeSendable((x, r))
            Threads.parallelFor((T + 15) / 16) { task in
                let (x, r) = rows.value
                for t in (task * 16)..<min(T, task * 16 + 16) {
                    if k {
                        IntKernels.roundK(x + t * inDim, count: inDim, into: r + t * inDim)
                    } else {
                        IntKernels.round(x + t * inDim, count: inDim, into: r + t * inDim)
                    }
                }
            }
            if k { roundedRowsK = r } else { roundedRows = r }
            return UnsafePointer(r)
        }
    }

    /// `y[rows][out] = x[rows][inDim] · Wᵀ` (overwrites y).
    func linear(_ x: UnsafePointer<Float>, rows T: Int, _ y: UnsafeMutablePointer<Float>, rowInvariant: Bool = false, segments: [Range<Int>]? = nil) {
        linear(Input(x, rows: T, inDim: inDim), y, rowInvariant: rowInvariant, segments: segments)
    }

    /// A segment of more rows than this multiplies through sgemm on its own rows in a row-invariant call.
    static let segmentSgemmRows = integerRowsMax

    /// `linear` on a shared input. `rowInvariant`: each row's result must not depend on the other rows of
    /// the call (the batched forks of a run, whose answers must be the same alone as beside any other
    /// variant): the few-row kernels, whose per-row arithmetic is fixed, in groups of their row count,
    /// instead of sgemm (whose blocking, and the switch to it, depend on the row count). With `segments`
    /// (each fork's consecutive rows, ascending), a segment longer than `segmentSgemmRows` (a later turn's
    /// question) goes through sgemm on its own rows alone — what it gets whatever shares the call — and the
    /// rows of the shorter segments through the few-row kernels: one pass over the weights per segment
    /// instead of one per 8 rows.
    func linear(_ input: Input, _ y: UnsafeMutablePointer<Float>, rowInvariant: Bool = false, segments: [Range<Int>]? = nil) {
        precondition(input.inDim == inDim, "input width \(input.inDim) ≠ matrix width \(inDim)")
        guard rowInvariant, let segments, segments.contains(where: { $0.count > Self.segmentSgemmRows }) else {
            linear(input, rows: 0..<input.rows, y, rowInvariant: rowInvariant)
            return
        }
        var short: Range<Int>?  // consecutive rows of short segments
        func flushShort() { if let r = short { linear(input, rows: r, y, rowInvariant: true) }; short = nil }
        for seg in segments where !seg.isEmpty {
            if seg.count > Self.segmentSgemmRows {
                flushShort()
                linear(input, rows: seg, y, rowInvariant: false)
            } else {
                if let r = short, r.upperBound == seg.lowerBound { short = r.lowerBound..<seg.upperBound } else { flushShort(); short = seg }
            }
        }
        flushShort()
    }

    /// `linear` on the rows `range` of `input` (into the same rows of `y`).
    private func linear(_ input: Input, rows range: Range<Int>, _ y0: UnsafeMutablePointer<Float>, rowInvariant: Bool) {
        let T = range.count, r0 = range.lowerBound
        let x = input.x + r0 * inDim, y = y0 + r0 * out
        if let w = floats {
            if rowInvariant {
                for t in 0..<T { BLAS.linear(x + t * inDim, rows: 1, inDim: inDim, w, outDim: out, y + t * out) }
            } else {
                BLAS.linear(x, rows: T, inDim: inDim, w, outDim: out, y)
            }
            return
        }
        // The block types' VNNI kernel is not decode's arithmetic: never where rows must equal decode's (row-invariant).
        if manyRows == .integer && hasIntegerManyRows && T > Self.integerRowsMax && (IntKernels.superBlock(type) || !rowInvariant) {
            // The panel kernels read each 8 rows' codes interleaved: the input's (made once for the matrices sharing
            // it) where the rows start a group of 8 in it, else made for this call.
            if IntKernels.superBlock(type) {
                let codes = input.codesK, acts = T == input.rows ? codes : IntKernels.ActivationsK(codes, rows: range)
                // Both are decode's bits: the VNNI panel kernel (lanes = weight rows) where the CPU has it and the
                // rows repay repacking the weights.
                if IntKernels.vnniPanels && T >= Self.kquantPanelRowsMin {
                    if r0 % 8 == 0 {
                        let k = input.codesKInterleaved()
                        kquantGemm(acts, k.xi + r0 * inDim / 4, k.sums32 + r0 * (inDim / 256) * 8, y)
                    } else {
                        let k = Self.interleave(acts)
                        defer { k.xi.deallocate(); k.sums32.deallocate() }
                        kquantGemm(acts, k.xi, k.sums32, y)
                    }
                } else {
                    integerGemm(acts, y)
                }
            } else {
                let codes = input.codes, acts = T == input.rows ? codes : IntKernels.Activations(codes, rows: range)
                if r0 % 8 == 0 {
                    blockGemm(acts, input.codesInterleaved() + r0 * inDim / 2, y)
                } else {
                    let xi = Self.interleave(acts)
                    defer { xi.deallocate() }
                    blockGemm(acts, xi, y)
                }
            }
        } else if integerDecode && (T <= Self.integerRowsMax || rowInvariant) {
            for t0 in stride(from: 0, to: T, by: Self.integerRowsMax) {
                let rows = (r0 + t0)..<(r0 + min(T, t0 + Self.integerRowsMax))
                if IntKernels.superBlock(type) {
                    let codes = input.codesK
                    integerRows(rows.count == input.rows ? codes : IntKernels.ActivationsK(codes, rows: rows), y + t0 * out)
                } else {
                    let codes = input.codes
                    integerRows(rows.count == input.rows ? codes : IntKernels.Activations(codes, rows: rows), y + t0 * out)
                }
            }
        } else if !integerDecode && (T <= Self.dotRows || rowInvariant) {
            for t0 in stride(from: 0, to: T, by: Self.dotRows) { dotRows(x + t0 * inDim, rows: min(Self.dotRows, T - t0), y + t0 * out) }
        } else {
            // With integer decode, sgemm multiplies the same activation codes (see `panels`).
            panels(integerDecode ? input.rounded(for: type) + r0 * inDim : x, rows: T, y)
        }
    }

    /// Decode rows: an integer block dot product per output row against the input's 16-bit codes
    /// (output rows split across threads).
    private func integerRows(_ acts: IntKernels.Activations, _ y: UnsafeMutablePointer<Float>) {
        let masks = IntKernels.Masks(), type = type
        outputRows(y, acts) { y, o, row, acts in IntKernels.dot(type, row, acts, masks, into: y + o, stride: self.out) }
    }

    /// The K-quant rows against the input's Q8_K codes.
    /// Fewer than four input rows (decode) go four weight rows at a time (`IntKernels.rowsK`: their float
    /// steps on four lanes); four or more, a weight row at a time against groups of four input rows (`dotK`).
    /// Either is bitwise the one-row kernel, row by row.
    private func integerRows(_ acts: IntKernels.ActivationsK, _ y: UnsafeMutablePointer<Float>) {
        let masks = IntKernels.Masks(), type = type
        guard acts.rows < 4 else {
            outputRows(y, acts) { y, o, row, acts in IntKernels.dotK(type, row, acts, masks, into: y + o, stride: self.out) }
            return
        }
        let chunk = Self.decodeChunk(out), tasks = (out + chunk - 1) / chunk, rowBytes = rowBytes, out = out
        let src = UnsafeSendable((y, blocks!, acts))
        Threads.parallelFor(tasks) { task in
            let (y, blocks, acts) = src.value
            let end = min(out, (task + 1) * chunk)
            var o = task * chunk
            while o + 4 <= end {
                for t in 0..<acts.rows {
                    let r = IntKernels.rowsK(type, blocks + o * rowBytes, rowBytes: rowBytes, acts, t)
                    for k in 0..<4 { y[t * out + o + k] = r[k] }
                }
                o += 4
            }
            for o in o..<end { IntKernels.dotK(type, blocks + o * rowBytes, acts, masks, into: y + o, stride: out) }
        }
    }

    /// Input rows from which the K-quant VNNI panel kernel (`kquantGemm`) repays repacking 16 weight rows per
    /// task (a scalar pass over the weights), against `integerGemm` on the VNNI group kernel. Measured on Qwen
    /// 1.5B (`kvkit bench`, 2 alternating rounds, tok/s at 16 / 32 / 64 / 128 prompt tokens): panel 61 / 97 /
    /// 148 / 194, groups 87 / 124 / 144 / 157. The block types' panel kernel wins from 9 rows (Qwen 0.5B: 211 /
    /// 344 / 457 / 559 against sgemm's 155 / 205 / 255 / 286), so it has no threshold of its own.
    static let kquantPanelRowsMin = 64

    /// Output rows per task, input rows per block, and super-blocks per pass of `integerGemm`: a pass's
    /// activations (32 rows × 3 × 256 bytes) stay in L1 while the task's 32 weight rows run over them.
    static let gemmRows = 32, gemmTokens = 32, gemmSupers = 3

    /// Many rows (prefill) on the integer K-quant kernels (`IntKernels.integerPrefillK`, the AVX2 build)
    /// instead of panels + sgemm: tasks of `gemmRows` output rows; per block of `gemmTokens` input rows,
    /// the super-blocks in passes of `gemmSupers`, every weight row of the task through a pass before the
    /// next (each (row, output) value still takes its super-blocks in order: bitwise the decode kernel's,
    /// so a row's result never depends on the rows that share the call).
    private func integerGemm(_ acts: IntKernels.ActivationsK, _ y: UnsafeMutablePointer<Float>) {
        #if KVKIT_AVX2
            let R = Self.gemmRows, B = Self.gemmTokens, C = Self.gemmSupers, T = acts.rows, tasks = (out + R - 1) / R
            let type = type, rowBytes = rowBytes, out = out, nsb = acts.supers
            let src = UnsafeSendable((y, blocks!, acts))
            Threads.parallelFor(tasks) { task in
                let (y, blocks, acts) = src.value
                let rows = (task * R)..<min(out, (task + 1) * R)
                let accs = UnsafeMutablePointer<SIMD4<Float>>.allocate(capacity: R * 2 * (B / 4)); defer { accs.deallocate() }
                for t0 in stride(from: 0, to: T, by: B) {
                    let block = IntKernels.ActivationsK(acts, rows: t0..<min(T, t0 + B)), groups = block.rows / 4, yb = y + t0 * out
                    accs.update(repeating: SIMD4(), count: rows.count * 2 * groups)
                    for c0 in stride(from: 0, to: nsb, by: C) {
                        for o in rows {
                            IntKernels.groupsK(
                                type, blocks + o * rowBytes, block, groups, accs + (o - rows.lowerBound) * 2 * groups, supers: c0..<min(nsb, c0 + C))
                        }
                    }
                    for o in rows {
                        IntKernels.finishK(block, groups, accs + (o - rows.lowerBound) * 2 * groups, into: yb + o, stride: out)
                        IntKernels.restK(type, blocks + o * rowBytes, block, into: yb + o, stride: out)
                    }
                }
            }
        #else
            let masks = IntKernels.Masks()
            for o in 0..<out { IntKernels.dotK(type, blocks! + o * rowBytes, acts, masks, into: y + o, stride: out) }
        #endif
    }

    /// `count` values of `T` at a 64-byte boundary (the panel kernels load whole 512-bit vectors aligned).
    private static func aligned<T>(_ count: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<T>.stride, alignment: 64).bindMemory(to: T.self, capacity: count)
    }

    /// The 16-bit codes of each 8 rows interleaved for `kvkit_block_gemm_avx512vnni` (`kvkit_codes_interleave`:
    /// group G at G · 4 · count Int32), groups split across threads; the caller deallocates.
    static func interleave(_ a: IntKernels.Activations) -> UnsafeMutablePointer<Int32> {
        let groups = a.rows / 8, xi = aligned(Swift.max(1, groups * 4 * a.count), Int32.self)
        let src = UnsafeSendable((a, xi))
        Threads.parallelFor((groups + 7) / 8) { task in
            let (a, xi) = src.value, g0 = task * 8, n = Swift.min(groups, g0 + 8) - g0
            kvkit_codes_interleave(a.codes + g0 * 8 * a.count, a.count, n * 8, xi + g0 * 4 * a.count)
        }
        return xi
    }

    /// The Q8_K codes of each 8 rows interleaved for `kvkit_kquant_gemm_avx512vnni` (group G at G · 2 · count
    /// Int32), and every row's 32-value code sums (row t at t · supers · 8), groups split across threads.
    static func interleave(_ a: IntKernels.ActivationsK) -> (xi: UnsafeMutablePointer<Int32>, sums32: UnsafeMutablePointer<Int16>) {
        let groups = (a.rows + 7) / 8, full = a.rows / 8
        let xi = aligned(Swift.max(1, full * 2 * a.count), Int32.self), sums32 = aligned(Swift.max(1, a.rows * a.supers * 8), Int16.self)
        let src = UnsafeSendable((a, xi, sums32))
        Threads.parallelFor((groups + 7) / 8) { task in
            let (a, xi, sums32) = src.value, t0 = task * 64, n = Swift.min(a.rows, t0 + 64) - t0
            kvkit_q8k_interleave(
                a.codes + t0 * a.count, a.count, a.bsums + t0 * a.supers * 16, a.supers, n, xi + t0 / 8 * 2 * a.count, sums32 + t0 * a.supers * 8)
        }
        return (xi, sums32)
    }

    /// Many rows (prefill) of a Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 matrix on the AVX-512 VNNI kernel
    /// (`IntKernels.vnniPanels`): per task 16 weight rows repacked so that one `vpdpwssd` adds a value pair of
    /// all 16 rows, then every input row against them (16-bit activation codes, as decode; each block's exact
    /// sums, then Float32 steps in block order). Each input row is computed on its own: its result does not depend
    /// on the rows sharing the call (it is not decode's bitwise, as sgemm's is not).
    private func blockGemm(_ acts: IntKernels.Activations, _ xi: UnsafeMutablePointer<Int32>, _ y: UnsafeMutablePointer<Float>) {
        precondition(IntKernels.vnniPanels, "blockGemm needs the host build's AVX-512 VNNI kernel")
        let P = 16, tasks = (out + P - 1) / P, nb = inDim / 32, rowBytes = rowBytes, out = out
        let code = IntKernels.blockCode(type)!, hasMin = IntKernels.hasMin(type)
        let src = UnsafeSendable((y, blocks!, acts, xi))
        Threads.parallelFor(tasks) { task in
            let (y, blocks, acts, xi) = src.value
            let o0 = task * P, n = min(P, out - o0)
            let panel = Self.aligned(nb * 512, Int16.self), d = Self.aligned(nb * 16, Float.self), m = Self.aligned(nb * 16, Float.self)
            defer { panel.deallocate(); d.deallocate(); m.deallocate() }
            kvkit_block_panel(code, blocks + o0 * rowBytes, rowBytes, n, nb, panel, d, hasMin ? m : nil)
            kvkit_block_gemm_avx512vnni(
                panel, d, hasMin ? m : nil, acts.codes, xi, acts.count, acts.scales, acts.sums, nb, acts.rows, y + o0, out, n)
        }
    }

    /// Many rows of a K-quant matrix on the AVX-512 VNNI panel kernel (`kvkit_kquant_gemm_avx512vnni`): per task
    /// 16 weight rows repacked so that one `vpdpbusd` adds four values of all 16 rows against four broadcast
    /// activation codes, no horizontal sums; exact integer super-block sums and decode's float steps on the rows'
    /// lanes: bitwise what decode computes, row by row (so it serves row-invariant calls too).
    private func kquantGemm(
        _ acts: IntKernels.ActivationsK, _ xi: UnsafeMutablePointer<Int32>, _ sums32: UnsafeMutablePointer<Int16>, _ y: UnsafeMutablePointer<Float>
    ) {
        precondition(IntKernels.vnniPanels, "kquantGemm needs the host build's AVX-512 VNNI kernel")
        let P = 16, tasks = (out + P - 1) / P, nsb = inDim / 256, rowBytes = rowBytes, out = out
        let code: Int32 = type == .q6_K ? 2 : type == .q5_K ? 1 : 0, ns = type == .q6_K ? 16 : 8
        let src = UnsafeSendable((y, blocks!, acts, xi, sums32))
        Threads.parallelFor(tasks) { task in
            let (y, blocks, acts, xi, sums32) = src.value
            let o0 = task * P, n = min(P, out - o0)
            let codes = Self.aligned(nsb * 4096, UInt8.self), scales = Self.aligned(nsb * ns * 16, Int32.self)
            let pairs = Self.aligned(nsb * ns * 16, Int16.self), d = Self.aligned(nsb * 16, Float.self), dmin = Self.aligned(nsb * 16, Float.self)
            defer { codes.deallocate(); scales.deallocate(); pairs.deallocate(); d.deallocate(); dmin.deallocate() }
            kvkit_kquant_panel(code, blocks + o0 * rowBytes, rowBytes, n, nsb, codes, scales, pairs, d, dmin)
            kvkit_kquant_gemm_avx512vnni(
                code, codes, scales, pairs, d, dmin, acts.codes, xi, sums32, acts.count, acts.scales, acts.bsums, nsb, acts.rows, y + o0, out,
                n)
        }
    }

    /// `body(y, o, weight row o, acts)` for every output row, split across threads in contiguous runs.
    @inline(__always) private func outputRows<A>(
        _ y: UnsafeMutablePointer<Float>, _ acts: A,
        _ body: @escaping (UnsafeMutablePointer<Float>, Int, UnsafeRawPointer, A) -> Void
    ) {
        let chunk = Self.decodeChunk(out), tasks = (out + chunk - 1) / chunk, rowBytes = rowBytes, out = out
        let src = UnsafeSendable((y, blocks!, acts))
        Threads.parallelFor(tasks) { task in
            let (y, blocks, acts) = src.value
            for o in (task * chunk)..<min(out, (task + 1) * chunk) { body(y, o, blocks + o * rowBytes, acts) }
        }
    }

    /// Output rows per decode task: one contiguous run of weight rows per thread, which the hardware
    /// prefetcher streams (32-row tasks taken in turn by two threads read 10–12 GB/s, one run per thread
    /// 16–20 GB/s: SmolLM2 decode 120 → 211 tok/s). A thread that is late still gets its run taken by
    /// the other (tasks are claimed, not assigned).
    static func decodeChunk(_ out: Int) -> Int { Swift.max(32, (out + Threads.count - 1) / Threads.count) }

    /// Block dot products, output rows split across threads. Q4_0, Q4_1 and Q8_0 use the fused kernel on
    /// activations permuted once per call; other types dequantize each block to a scratch, then dot.
    private func dotRows(_ x: UnsafePointer<Float>, rows T: Int, _ y: UnsafeMutablePointer<Float>) {
        let chunk = Self.decodeChunk(out), tasks = (out + chunk - 1) / chunk
        let bs = type.blockSize, bb = type.bytesPerBlock, nb = inDim / bs
        let fused = BlockKernels.fused(type)
        let xp = UnsafeMutablePointer<Float>.allocate(capacity: fused ? T * inDim : 1),
            sums = UnsafeMutablePointer<Float>.allocate(capacity: fused ? T * nb : 1)
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
    /// With integer decode, `x` is the input rounded to its activation codes (x̂ = q · d), so that a row gets the
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
    @inline(__always) static func fusedDot(_ type: GGMLType, _ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ sums: UnsafePointer<Float>, blocks nb: Int)
        -> Float
    {
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
