import Foundation
import KVKitTestSupport
import ModelFile
import TensorMath
import Testing
@testable import Models

/// The quantized weight kernels against the plain path: dequantize the whole matrix, then dot in Double.
@Suite struct WeightKernelTests {
    /// Random blocks of `type` whose scales are sane (random bytes elsewhere: every code pattern occurs).
    static func randomMatrix(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let bytes = type.byteCount(elements: rows * cols)!
        var m = (0..<bytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func half(_ at: Int, _ v: Float) { let b = Float16(v).bitPattern; m[at] = UInt8(b & 0xFF); m[at + 1] = UInt8(b >> 8) }
        let bb = type.bytesPerBlock
        for b in 0..<(bytes / bb) {
            let o = b * bb, scale = Float.random(in: 0.005...0.05, using: &rng)
            switch type {
            case .q4_0, .q8_0, .q5_0: half(o, scale)
            case .q4_1, .q5_1: half(o, scale); half(o + 2, -scale * 8)
            case .q4_K, .q5_K: half(o, scale); half(o + 2, scale / 2)
            case .q2_K: half(o + 80, scale); half(o + 82, scale / 2)
            case .q3_K: half(o + 108, scale / 4)
            case .q6_K: half(o + 208, scale / 8)
            case .f16: half(o, Float.random(in: -1...1, using: &rng))
            case .bf16: let v = Float.random(in: -1...1, using: &rng).bitPattern >> 16; m[o] = UInt8(v & 0xFF); m[o + 1] = UInt8(v >> 8)
            case .f32: withUnsafeBytes(of: Float.random(in: -1...1, using: &rng)) { for k in 0..<4 { m[o + k] = $0[k] } }
            default: break
            }
        }
        return m
    }

    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .f16, .bf16, .f32]

    @Test(arguments: types)
    func simdDequantizationIsBitExact(type: GGMLType) {
        let cols = 512, m = Self.randomMatrix(type, rows: 3, cols: cols, seed: 1)
        var a = [Float](repeating: 0, count: 3 * cols), b = a
        m.withUnsafeBytes { p in
            a.withUnsafeMutableBufferPointer { Dequantize.run(type, p.baseAddress!, $0.baseAddress!, count: 3 * cols) }
            b.withUnsafeMutableBufferPointer { BlockKernels.dequantize(type, p.baseAddress!, $0.baseAddress!, count: 3 * cols) }
        }
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(type)")
    }

    /// Block dot products (1 and 3 rows; integer decode also 8) and panels + sgemm (9 rows) within Float32 summation error of
    /// the Double reference: |y − ref| ≤ 2⁻¹⁸ · Σ|w·x| (about 16 ulp of the absolute sum), any type, for
    /// `exact` and `f32`. `native`'s integer decode (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) adds its activation rounding: each x
    /// is off by at most d/2 with d = max|x| / 32767 of its 32-value block (the K-quants' Q8_K codes: d =
    /// max|x| / 127 of its 256-value block), so |y − ref| ≤ Σ_b d_b/2 · Σ_b|w|
    /// on top, for 1 and 3 rows (integer kernels) and 9 (sgemm on the rounded activations); other types keep
    /// the tight bound.
    @Test(arguments: types)
    func linearMatchesDequantizeThenDot(type: GGMLType) {
        let out = 70, cols = 512  // 70 rows: a partial thread chunk and a partial panel
        let m = Self.randomMatrix(type, rows: out, cols: cols, seed: 2)
        var rng = SplitMix64(seed: 3)
        var w = [Float](repeating: 0, count: out * cols)
        m.withUnsafeBytes { p in w.withUnsafeMutableBufferPointer { Dequantize.run(type, p.baseAddress!, $0.baseAddress!, count: out * cols) } }
        m.withUnsafeBytes { p in
            let native = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .native)
            let exact = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .exact)
            let dense = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .f32)
            #expect(native.integerDecode == IntKernels.covers(type) && !exact.integerDecode)
            for T in [1, 3, 8, 9] {
                let x = (0..<(T * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
                var y = [Float](repeating: .nan, count: T * out), yd = y, ye = y
                Threads.with(2) {
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { native.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                        yd.withUnsafeMutableBufferPointer { dense.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                        ye.withUnsafeMutableBufferPointer { exact.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    }
                }
                var worst = 0.0, worstInt = 0.0
                // Integer decode rounds the activations to 16-bit codes on the sgemm path (9 rows) too.
                let integer = native.integerDecode
                for t in 0..<T {
                    for o in 0..<out {
                        var ref = 0.0, mag = 0.0, rounding = 0.0
                        for i in 0..<cols { let p = Double(w[o * cols + i]) * Double(x[t * cols + i]); ref += p; mag += abs(p) }
                        // 16-bit codes per 32 values; the K-quants' Q8_K codes per 256 (d = max|x| / 127).
                        let n = IntKernels.superBlock(type) ? 256 : 32, levels: Double = IntKernels.superBlock(type) ? 127 : 32767
                        for b in 0..<(cols / n) {
                            let d = Double((0..<n).map { abs(x[t * cols + b * n + $0]) }.max()!) / levels
                            rounding += d / 2 * (0..<n).reduce(0.0) { $0 + abs(Double(w[o * cols + b * n + $1])) }
                        }
                        let bound = mag / 262_144 + 1e-30, intBound = bound + rounding
                        #expect(abs(Double(y[t * out + o]) - ref) <= (integer ? intBound : bound), "\(type) T=\(T) row \(o): \(y[t * out + o]) vs \(ref)")
                        #expect(abs(Double(ye[t * out + o]) - ref) <= bound, "\(type) exact T=\(T) row \(o)")
                        #expect(abs(Double(yd[t * out + o]) - ref) <= bound, "\(type) f32 T=\(T) row \(o)")
                        worst = max(worst, abs(Double(ye[t * out + o]) - ref) / bound)
                        if integer { worstInt = max(worstInt, abs(Double(y[t * out + o]) - ref) / intBound) }
                    }
                }
                if T == 1 {
                    print(
                        "\(type): worst error \(String(format: "%.3f", worst)) of the bound (1 row, exact)\(integer ? String(format: "; integer decode %.3f of its bound", worstInt) : "")"
                    )
                }
            }
        }
    }
}

/// The K-quant kernels of the build (AVX2 in the host build: one row of activations at a time, four, or four
/// weight rows at once for decode) against
/// the portable one-row kernel `IntKernels.rowK`: the same Int32 super-block sums and the same float steps,
/// so the results are bitwise equal, on rows whose every code pattern occurs and activations with zero
/// blocks, one dominant value and ordinary values; `rowK` itself within 2⁻²⁰ of Σ|terms| of the float64 sum.
@Suite struct KQuantKernelTests {
    /// The AVX-512 Q8_K coder (`kvkit_q8k_quantize_avx512`, taken on a VNNI CPU) gives bitwise the Swift coder's
    /// codes, steps and 16-value sums: ordinary values, an all-zero super-block, a negative maximum, a maximum
    /// magnitude met first positive then negative (and the reverse: the first one sets the sign), one tiny
    /// value, a NaN (never the maximum). Skips, saying so, without the AVX-512 kernels.
    @Test func avx512CoderIsTheSwiftOne() {
        #if KVKIT_AVX2
            guard IntKernels.vnni512 else {
                print("skipped: this CPU (\(KernelBuild.cpu)) lacks AVX-512 VNNI, or KVKIT_KERNELS=avx2 is set")
                return
            }
            let cols = 2048, rows = 5
            var rng = SplitMix64(seed: 41)
            var x = (0..<(rows * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
            for j in 256..<512 { x[j] = 0 }
            x[600] = -9
            x[cols + 10] = 7; x[cols + 200] = -7
            x[cols + 300] = -7; x[cols + 400] = 7
            for j in (2 * cols + 512)..<(2 * cols + 768) { x[j] = 0 }
            x[2 * cols + 700] = 1e-30
            x[3 * cols + 5] = .nan
            let fast = IntKernels.ActivationsK(rows: rows, count: cols), slow = IntKernels.ActivationsK(rows: rows, count: cols)
            x.withUnsafeBufferPointer { xp in
                for t in 0..<rows {
                    fast.quantize(row: t, xp.baseAddress! + t * cols)
                    slow.quantizePortable(row: t, xp.baseAddress! + t * cols)
                }
            }
            let n = rows * cols, s = rows * (cols / 256)
            let codes = (0..<n).filter { fast.codes[$0] != slow.codes[$0] }.count
            let steps = (0..<s).filter { fast.scales[$0].bitPattern != slow.scales[$0].bitPattern }.count
            let sums = (0..<(16 * s)).filter { fast.bsums[$0] != slow.bsums[$0] }.count
            #expect(codes == 0 && steps == 0 && sums == 0, "\(codes) codes, \(steps) steps, \(sums) sums differ")
            #expect(fast.scales[cols / 256 + 0] < 0 && fast.scales[cols / 256 + 1] > 0, "the first maximum's sign sets the step's")
        #else
            print("skipped: the portable build has no AVX-512 coder")
        #endif
    }

    @Test(arguments: [GGMLType.q4_K, .q5_K, .q6_K])
    func fastKernelMatchesThePortableOne(type: GGMLType) {
        let out = 24, cols = 1024
        let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 11)
        var rng = SplitMix64(seed: 12)
        let rows = 7  // one group of four, then three alone
        var x = (0..<(rows * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
        for j in 256..<512 { x[j] = 0 }  // an all-zero super-block
        x[cols + 700] = 400  // one value dominates its block
        let a = IntKernels.ActivationsK(rows: rows, count: cols)
        x.withUnsafeBufferPointer { for t in 0..<rows { a.quantize(row: t, $0.baseAddress! + t * cols) } }
        m.withUnsafeBytes { p in
            let rowBytes = type.byteCount(elements: cols)!
            var y = [Float](repeating: .nan, count: rows * out)
            for o in 0..<out {
                let row = p.baseAddress! + o * rowBytes
                y.withUnsafeMutableBufferPointer { IntKernels.dotK(type, row, a, IntKernels.Masks(), into: $0.baseAddress! + o, stride: out) }
                var w = [Float](repeating: 0, count: cols)
                w.withUnsafeMutableBufferPointer { Dequantize.run(type, row, $0.baseAddress!, count: cols) }
                for t in 0..<rows {
                    let ref = IntKernels.rowK(type, row, a, t)
                    #expect(y[t * out + o].bitPattern == ref.bitPattern, "\(type) row \(o) t \(t): \(y[t * out + o]) vs \(ref)")
                    // The float64 sum of w · x̂ through the dequantized row, and Σ |terms|.
                    var exact = 0.0, mag = 0.0
                    for s in 0..<(cols / 256) {
                        for j in 0..<256 {
                            let term = Double(w[s * 256 + j]) * Double(a.codes[t * cols + s * 256 + j]) * Double(a.scales[t * (cols / 256) + s])
                            exact += term; mag += abs(term)
                        }
                    }
                    #expect(abs(Double(ref) - exact) <= mag / 1_048_576 + 1e-30, "\(type) row \(o) t \(t): \(ref) vs float64 \(exact)")
                }
            }
            // Decode's four-weight-row kernel: each lane bitwise the one-row kernel.
            for o in stride(from: 0, to: out, by: 4) {
                for t in 0..<rows {
                    let four = IntKernels.rowsK(type, p.baseAddress! + o * rowBytes, rowBytes: rowBytes, a, t)
                    for k in 0..<4 {
                        let ref = IntKernels.rowK(type, p.baseAddress! + (o + k) * rowBytes, a, t)
                        #expect(four[k].bitPattern == ref.bitPattern, "\(type) rows \(o)+\(k) t \(t): \(four[k]) vs \(ref)")
                    }
                }
            }
        }
        // Q8_K codes: the block's largest magnitude is ∓127, every code within ±127, code sums per 16 values.
        for t in 0..<rows {
            for s in 0..<(cols / 256) {
                let codes = (0..<256).map { Int(a.codes[t * cols + s * 256 + $0]) }
                #expect(codes.allSatisfy { abs($0) <= 127 })
                #expect(codes.map(abs).max()! == (t == 0 && s == 1 ? 0 : 127), "t \(t) block \(s)")
                for g in 0..<16 { #expect(Int(a.bsums[(t * (cols / 256) + s) * 16 + g]) == codes[(16 * g)..<(16 * g + 16)].reduce(0, +)) }
            }
        }
    }
}

/// Batched forks take the row-invariant kernels: a row's result is bitwise the same alone as beside
/// other rows, for every integer-decode type (the K-quant kernels included).
@Suite struct RowInvarianceTests {
    /// Batched forks: a segment longer than 8 rows (a later turn's question) goes through sgemm on its own
    /// rows, the short segments' rows through the few-row kernels; either way a segment's rows are bitwise
    /// the same as when that segment is the call's only one, and close to the plain product.
    @Test(arguments: [(GGMLType.q8_0, WeightStorage.native), (.q4_K, .native), (.q6_K, .native), (.q4_0, .exact), (.q8_0, .f32)])
    func aSegmentIsTheSameAloneAndInCompany(type: GGMLType, storage: WeightStorage) {
        segmentsAloneAndInCompany(type: type, storage: storage, segments: [0..<2, 2..<14, 14..<15, 15..<16, 16..<29])
    }

    /// The same with K-quant segments long enough for the VNNI panel kernel (≥ 64 rows): one starting at a row that
    /// is not a multiple of 8 (its codes interleaved for that call) and one that is (read at an offset into the
    /// codes interleaved once for the whole input).
    @Test(arguments: [GGMLType.q4_K, .q6_K])
    func longKQuantSegmentsAreTheSameAloneAndInCompany(type: GGMLType) {
        segmentsAloneAndInCompany(type: type, storage: .native, segments: [0..<3, 3..<75, 75..<80, 80..<150])
    }

    func segmentsAloneAndInCompany(type: GGMLType, storage: WeightStorage, segments: [Range<Int>]) {
        let out = 40, cols = 768
        let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 7)
        var rng = SplitMix64(seed: 8)
        let T = segments.last!.upperBound
        let x = (0..<(T * cols)).map { _ in Float.random(in: -2...2, using: &rng) }
        m.withUnsafeBytes { p in
            let w = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: storage)
            Threads.with(2) {
                x.withUnsafeBufferPointer { xp in
                    var together = [Float](repeating: .nan, count: T * out), plain = together
                    together.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!, rowInvariant: true, segments: segments) }
                    plain.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    for seg in segments {
                        var alone = [Float](repeating: .nan, count: seg.count * out)
                        alone.withUnsafeMutableBufferPointer {
                            w.linear(xp.baseAddress! + seg.lowerBound * cols, rows: seg.count, $0.baseAddress!, rowInvariant: true, segments: [0..<seg.count])
                        }
                        #expect(alone == Array(together[(seg.lowerBound * out)..<(seg.upperBound * out)]), "\(type) \(storage): segment \(seg)")
                    }
                    let worst = zip(together, plain).map { abs($0 - $1) }.max()!
                    #expect(worst < 2e-3, "\(type) \(storage): \(worst) from the plain product")
                }
            }
        }
    }

    /// Prefill of a K-quant matrix in the AVX2 build (`Weights.integerGemm`; `kquantGemm` on a VNNI CPU): 75 rows (two full 32-row blocks,
    /// a partial one, groups of four and single rows), the super-blocks in several passes (on a VNNI CPU the panel
    /// kernel: 16-row panels, groups of eight input rows and single ones) give every row bitwise what that row
    /// gives alone (decode), and agree with the panels + sgemm path on the same rounded activations to Float32
    /// summation order.
    @Test(arguments: [GGMLType.q4_K, .q5_K, .q6_K])
    func integerPrefillIsDecodeRowByRow(type: GGMLType) {
        let out = 70, cols = 2048, T = 75  // 8 super-blocks: passes of 3, 3 and 2 (`Weights.gemmSupers`)
        let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 9)
        var rng = SplitMix64(seed: 10)
        let x = (0..<(T * cols)).map { _ in Float.random(in: -2...2, using: &rng) }
        m.withUnsafeBytes { p in
            let w = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .native)
            #expect(w.manyRows == (IntKernels.integerPrefillK ? .integer : .sgemm))
            Threads.with(2) {
                x.withUnsafeBufferPointer { xp in
                    var many = [Float](repeating: .nan, count: T * out), panels = many
                    many.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    w.manyRows = .sgemm
                    panels.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    for t in 0..<T {
                        var alone = [Float](repeating: .nan, count: out)
                        alone.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress! + t * cols, rows: 1, $0.baseAddress!) }
                        let row = Array(many[(t * out)..<((t + 1) * out)])
                        if IntKernels.integerPrefillK { #expect(alone == row, "\(type): row \(t) of \(T)") }
                        let scale = row.map(abs).max()!
                        let worst = zip(row, panels[(t * out)..<((t + 1) * out)]).map { abs($0 - $1) }.max()!
                        #expect(worst <= scale * 1e-5, "\(type): row \(t), integer vs sgemm \(worst)")
                    }
                }
            }
        }
    }

    /// The AVX-512 VNNI K-quant kernels (C, chosen at run time by CPUID) give bitwise what the AVX2 kernels give,
    /// for prefill and for batched rows: 75 rows, 8 super-blocks in passes of 3, 3 and 2, random codes and
    /// scales (every 6-bit scale and minimum, activation codes up to ±127). So does the AVX-512 decode kernel of
    /// the 32-value block types (`kvkit_block_dot_avx512`) for one row and for batched rows (row-invariant calls),
    /// on an odd block count (its last block alone). Skips, saying so, on a CPU without them.
    @Test(arguments: [GGMLType.q4_K, .q5_K, .q6_K, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0])
    func vnniKernelsAreTheAVX2Kernels(type: GGMLType) {
        #if KVKIT_AVX2
            guard IntKernels.vnni512 else {
                print("skipped: this CPU (\(KernelBuild.cpu)) lacks AVX-512 VNNI, or KVKIT_KERNELS=avx2 is set")
                return
            }
            let superBlock = IntKernels.superBlock(type), out = 37, cols = superBlock ? 2048 : 2080
            let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 21)
            var rng = SplitMix64(seed: 22)
            m.withUnsafeBytes { p in
                let w = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .native)
                for T in superBlock ? [75, 9, 4] : [75, 9, 4, 1] {
                    let x = (0..<(T * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
                    func product(vnni: Bool, rowInvariant: Bool) -> [Float] {
                        IntKernels.vnni512 = vnni
                        defer { IntKernels.vnni512 = true }
                        var y = [Float](repeating: .nan, count: T * out)
                        Threads.with(2) {
                            x.withUnsafeBufferPointer { xp in
                                y.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!, rowInvariant: rowInvariant) }
                            }
                        }
                        return y
                    }
                    // The block types' many-row prefill (not decode's arithmetic) is `vnniBlockPrefillAgreesWithSgemm`'s.
                    for invariant in superBlock ? [false, true] : [true] {
                        let a = product(vnni: true, rowInvariant: invariant), b = product(vnni: false, rowInvariant: invariant)
                        #expect(a.allSatisfy { !$0.isNaN })
                        let differing = zip(a, b).filter { $0.0 != $0.1 }.count
                        #expect(differing == 0, "\(type), \(T) rows, rowInvariant \(invariant): \(differing) of \(a.count) values differ from AVX2's")
                    }
                }
            }
        #else
            print("skipped: the portable build has no AVX2 kernels to compare with")
        #endif
    }

    /// Prefill on the AVX-512 VNNI panel kernels (`Weights.blockGemm`, `Weights.kquantGemm`): 75 input rows
    /// against 37 weight rows (two full 16-row panels and a partial one; groups of input rows and single ones)
    /// agree with panels + sgemm on the same activation codes to Float32 summation order, and rows 10 ..< 30
    /// multiplied alone give bitwise what they give among all 75. Skips, saying so, on a CPU without VNNI.
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    func vnniBlockPrefillAgreesWithSgemm(type: GGMLType) {
        guard IntKernels.vnniPanels else {
            print("skipped: no AVX-512 VNNI block kernel in this build or on this CPU (\(KernelBuild.cpu))")
            return
        }
        let out = 37, cols = 768, T = 75
        let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 31)
        var rng = SplitMix64(seed: 32)
        let x = (0..<(T * cols)).map { _ in Float.random(in: -2...2, using: &rng) }
        m.withUnsafeBytes { p in
            let w = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .native)
            #expect(w.manyRows == .integer)
            Threads.with(2) {
                x.withUnsafeBufferPointer { xp in
                    var many = [Float](repeating: .nan, count: T * out), panels = many, part = [Float](repeating: .nan, count: 20 * out)
                    many.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    part.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress! + 10 * cols, rows: 20, $0.baseAddress!) }
                    w.manyRows = .sgemm
                    panels.withUnsafeMutableBufferPointer { w.linear(xp.baseAddress!, rows: T, $0.baseAddress!) }
                    w.manyRows = .integer
                    #expect(part == Array(many[(10 * out)..<(30 * out)]), "\(type): rows 10..<30 alone differ from in company")
                    // Q4_1 / Q5_1's minimum term takes the inputs' exact float sums (as decode does), sgemm their
                    // 16-bit roundings: up to ~2e-5 of the row's largest apart.
                    let tolerance: Float = IntKernels.hasMin(type) ? 5e-5 : 1e-5
                    for t in 0..<T {
                        let row = many[(t * out)..<((t + 1) * out)], scale = row.map(abs).max()!
                        let worst = zip(row, panels[(t * out)..<((t + 1) * out)]).map { abs($0 - $1) }.max()!
                        #expect(worst <= scale * tolerance, "\(type): row \(t), VNNI vs sgemm \(worst) of \(scale)")
                    }
                }
            }
        }
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    func aRowIsTheSameAloneAndInCompany(type: GGMLType) {
        let out = 40, cols = 768
        let m = WeightKernelTests.randomMatrix(type, rows: out, cols: cols, seed: 5)
        var rng = SplitMix64(seed: 6)
        m.withUnsafeBytes { p in
            let native = Weights(type: type, out: out, inDim: cols, bytes: p.baseAddress!, storage: .native)
            for T in [2, 8, 9] {
                let x = (0..<(T * cols)).map { _ in Float.random(in: -2...2, using: &rng) }
                var together = [Float](repeating: .nan, count: T * out)
                Threads.with(2) {
                    x.withUnsafeBufferPointer { xp in
                        together.withUnsafeMutableBufferPointer { native.linear(xp.baseAddress!, rows: T, $0.baseAddress!, rowInvariant: true) }
                        for t in 0..<T {
                            var alone = [Float](repeating: .nan, count: out)
                            alone.withUnsafeMutableBufferPointer { native.linear(xp.baseAddress! + t * cols, rows: 1, $0.baseAddress!) }
                            #expect(alone == Array(together[(t * out)..<((t + 1) * out)]), "\(type): row \(t) of \(T)")
                        }
                    }
                }
            }
        }
    }
}
