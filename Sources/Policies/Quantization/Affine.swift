import KVCache

/// Asymmetric (min, scale) integer quantization of groups of values, the scheme int8, int4 and KIVI share:
/// x ≈ q·scale + min with q ∈ [0, 2^bits − 1], one (scale, min) pair per group stored as two Float16.
///
/// Error bound: min is rounded down and scale up to Float16, so every value of a group lies in
/// [min, min + qmax·scale] and is coded to the nearest step: |x − x̂| ≤ scale/2, where
/// scale ≤ (max − min + 2⁻¹⁰·|min|)/qmax · (1 + 2⁻¹⁰). Values must stay within Float16 range (±65,504),
/// which K/V activations of the models here do by orders of magnitude.
///
/// Layout of `packedBytes`: every group's (scale, min) pair, then the codes bit-packed in row-major
/// order (code i = row·headDim + channel at bit i·bits, low bits first).
public struct AffineCodec: PageCodec {
    /// Which values share a (scale, min): `group` channels of one token, or one channel over `group` tokens.
    public enum Axis: String, Sendable { case token, channel }
    public let bits: Int
    public let axis: Axis
    public let group: Int
    public let name: String

    public init(name: String, bits: Int, axis: Axis, group: Int) {
        precondition([2, 4, 8].contains(bits), "bits must be 2, 4 or 8")
        precondition(group >= 1, "group must be positive")
        self.name = name; self.bits = bits; self.axis = axis; self.group = group
    }

    var qmax: Float { Float((1 << bits) - 1) }

    /// Groups of a `rows × headDim` page: per token ⌈headDim/group⌉ per row; per channel ⌈rows/group⌉ per channel.
    func groups(rows: Int, headDim: Int) -> Int {
        axis == .token ? rows * ((headDim + group - 1) / group) : ((rows + group - 1) / group) * headDim
    }

    public func packedBytes(rows: Int, headDim: Int) -> Int {
        groups(rows: rows, headDim: headDim) * 4 + (rows * headDim * bits + 7) / 8
    }

    public func encode(_ x: UnsafePointer<Float>, rows: Int, headDim hd: Int, into out: UnsafeMutableRawPointer) {
        let params = out.assumingMemoryBound(to: Float16.self)
        let codes = (out + groups(rows: rows, headDim: hd) * 4).assumingMemoryBound(to: UInt8.self)
        codes.initialize(repeating: 0, count: (rows * hd * bits + 7) / 8)
        let qmax = self.qmax, b = bits
        // One group: elements at `base + k·stride`, k < n.
        func quantize(_ gi: Int, _ base: Int, _ stride: Int, _ n: Int) {
            var mn = Float.infinity, mx = -Float.infinity
            for k in 0..<n { let v = x[base + k * stride]; mn = min(mn, v); mx = max(mx, v) }
            var mh = Float16(mn)
            if Float(mh) > mn { mh = mh.nextDown }
            let m = Float(mh)
            var sh = Float16((mx - m) / qmax)
            if Float(sh) * qmax < mx - m { sh = sh.nextUp }
            let s = Float(sh), inv: Float = s > 0 ? 1 / s : 0
            params[2 * gi] = sh; params[2 * gi + 1] = mh
            for k in 0..<n {
                let i = base + k * stride
                let q = min(UInt32((x[i] - m) * inv + 0.5), UInt32(qmax))
                codes[(i * b) >> 3] |= UInt8(truncatingIfNeeded: q << UInt32((i * b) & 7))
            }
        }
        switch axis {
        case .token:
            let per = (hd + group - 1) / group
            for r in 0..<rows {
                for g in 0..<per {
                    let c0 = g * group
                    quantize(r * per + g, r * hd + c0, 1, min(group, hd - c0))
                }
            }
        case .channel:
            for tg in 0..<((rows + group - 1) / group) {
                let r0 = tg * group
                for d in 0..<hd { quantize(tg * hd + d, r0 * hd + d, hd, min(group, rows - r0)) }
            }
        }
    }

    public func decode(_ p: UnsafeRawPointer, rows: Int, headDim hd: Int, into x: UnsafeMutablePointer<Float>) {
        let params = p.assumingMemoryBound(to: Float16.self)
        let codes = (p + groups(rows: rows, headDim: hd) * 4).assumingMemoryBound(to: UInt8.self)
        let b = bits, mask = UInt8((1 << bits) - 1)
        switch axis {
        case .token:
            let per = (hd + group - 1) / group
            for r in 0..<rows {
                for g in 0..<per {
                    let s = Float(params[2 * (r * per + g)]), m = Float(params[2 * (r * per + g) + 1])
                    let i0 = r * hd + g * group, i1 = r * hd + min(hd, (g + 1) * group)
                    decodeRun(codes, b, mask, i0, i1, s, m, x)
                }
            }
        case .channel:
            // Scales and mins of one token group, converted once; then each row reads them per channel.
            let sc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * hd); defer { sc.deallocate() }
            for tg in 0..<((rows + group - 1) / group) {
                for d in 0..<hd { sc[d] = Float(params[2 * (tg * hd + d)]); sc[hd + d] = Float(params[2 * (tg * hd + d) + 1]) }
                for r in (tg * group)..<min(rows, (tg + 1) * group) {
                    let base = r * hd
                    if b == 8 {
                        for d in 0..<hd { x[base + d] = Float(codes[base + d]) * sc[d] + sc[hd + d] }
                    } else {
                        for d in 0..<hd {
                            let i = base + d
                            let q = (codes[(i * b) >> 3] >> UInt8((i * b) & 7)) & mask
                            x[i] = Float(q) * sc[d] + sc[hd + d]
                        }
                    }
                }
            }
        }
    }

    /// x[i] = q[i]·s + m for codes i0..<i1.
    @inline(__always) private func decodeRun(
        _ codes: UnsafePointer<UInt8>, _ b: Int, _ mask: UInt8, _ i0: Int, _ i1: Int,
        _ s: Float, _ m: Float, _ x: UnsafeMutablePointer<Float>
    ) {
        switch b {
        case 8:
            for i in i0..<i1 { x[i] = Float(codes[i]) * s + m }
        case 4 where i0 & 1 == 0 && i1 & 1 == 0:
            var i = i0
            while i < i1 {
                let byte = codes[i >> 1]
                x[i] = Float(byte & 0xF) * s + m
                x[i + 1] = Float(byte >> 4) * s + m
                i += 2
            }
        default:
            for i in i0..<i1 { x[i] = Float((codes[(i * b) >> 3] >> UInt8((i * b) & 7)) & mask) * s + m }
        }
    }
}

extension AffineCodec {
    /// Settings of a per-token codec (int8, int4).
    public struct PerTokenSettings: Configurable {
        @Parameter("group", 1...4096, "channels per (scale, min) pair") public var group = 32
        @Parameter("residual", 0...1_000_000, "most recent tokens per stream kept in full precision (only full pages outside it are packed)")
        public var residual = 0
        public init() {}
    }

    /// The registry entry of a per-token codec of `bits` bits (int8, int4): `group` channels per
    /// (scale, min) pair, keys and values alike.
    static func perTokenInfo(bits: Int, summary: String) -> CodecInfo {
        CodecInfo(
            name: "int\(bits)", summary: summary, paper: "per-token asymmetric INT\(bits) (as in KIVI's baselines)",
            settings: PerTokenSettings.self
        ) { s in
            let c = AffineCodec(name: "int\(bits):group=\(s.group)", bits: bits, axis: .token, group: s.group)
            return CacheCodec(name: s.group == 32 ? "int\(bits)" : "int\(bits):group=\(s.group)", keys: c, values: c, residual: s.residual)
        }
    }
}
