import Foundation
import KVKitTestSupport
import TensorMath
import Testing
@testable import KVCache
@testable import Policies

/// K/V-like rows: mostly small values, a few outlier channels (as real keys have), seeded.
func kvRows(_ rows: Int, _ hd: Int, _ rng: inout SplitMix64, outliers: [Int] = [3, 17]) -> [Float] {
    var x = (0..<(rows * hd)).map { _ in Float.random(in: -1...1, using: &rng) }
    for r in 0..<rows { for c in outliers where c < hd { x[r * hd + c] *= 12 } }
    return x
}

func codec(_ text: String) throws -> CacheCodec { try #require(try CodecRegistry.shared.make(text)) }

/// A cache of `n` tokens over 2 layers × 2 KV heads with seeded K/V rows.
func filledCache(n: Int, hd: Int = 16, pageSize: Int = 8, seed: UInt64 = 5, pool: PagePool? = nil) -> (PagedKVCache, k: [Float], v: [Float]) {
    var rng = SplitMix64(seed: seed)
    let cache = PagedKVCache(layers: 2, kvHeads: 2, headDim: hd, pageSize: pageSize, pool: pool)
    let k = kvRows(n * 2, hd, &rng), v = kvRows(n * 2, hd, &rng, outliers: [])
    let pos = (0..<n).map(Int32.init)
    for l in 0..<2 { cache.append(layer: l, keys: k, values: v, positions: pos, tokens: pos.map { $0 &* 3 }) }
    cache.nextPosition = n
    return (cache, k, v)
}

/// Every stream's K and V rows as Float32, read through the pool (dequantized, decompressed).
func denseRows(_ c: PagedKVCache, layer: Int) -> (k: [Float], v: [Float], pos: [Int32]) {
    let hd = c.headDim, H = c.kvHeads, n = c.count(layer: layer, head: 0)
    var k = [Float](repeating: 0, count: n * H * hd), v = k
    let s = PagePool.Scratch(c.pool)
    for h in 0..<H {
        let t = c.table(layer: layer, head: h)
        for (pi, page) in t.pages.enumerated() {
            let r = c.pool.read(page, s)!
            for j in 0..<min(c.pageSize, t.count - pi * c.pageSize) {
                let i = pi * c.pageSize + j
                for d in 0..<hd { k[(i * H + h) * hd + d] = r.keys[j * hd + d]; v[(i * H + h) * hd + d] = r.values[j * hd + d] }
            }
        }
    }
    return (k, v, c.slots(layer: layer, head: 0).map(\.position))
}

@Suite struct CodecTests {
    /// Every binary16 bit pattern widens exactly as Swift's own Float16 → Float conversion.
    @Test func halfWideningIsExactForEveryBitPattern() {
        let bits = (0...UInt16.max).map { $0 }
        var out = [Float](repeating: 0, count: bits.count)
        bits.withUnsafeBytes { p in out.withUnsafeMutableBufferPointer { halfToFloat(p.baseAddress!, count: bits.count, into: $0.baseAddress!) } }
        var bad = 0
        for (i, b) in bits.enumerated() {
            let ref = Float(Float16(bitPattern: b))
            if ref.isNaN ? !out[i].isNaN : out[i].bitPattern != ref.bitPattern { bad += 1 }
        }
        #expect(bad == 0)
    }

    /// Every registered codec (plus non-default settings) round trips within the bound its doc comment
    /// states: fp32 exact, fp16 = Swift's RNE rounding, the affine codecs within half a step of their
    /// group's range, the rotated ones near their Lloyd–Max distortion (measured worst case printed). A
    /// codec with no bound stated here fails, so a newly registered one cannot pass untested.
    @Test(arguments: CodecRegistry.shared.names + ["int4:group=16", "int8/int4"])
    func roundTripWithinTheStatedBound(name: String) throws {
        let c = try CodecRegistry.shared.make(name) ?? CacheCodec(name: "fp32", keys: FP32Codec(), values: FP32Codec())
        var rng = SplitMix64(seed: 11)
        let rows = 32, hd = 64
        let x = kvRows(rows, hd, &rng)
        for (side, codec) in [("keys", c.keys), ("values", c.values)] {
            let bytes = codec.packedBytes(rows: rows, headDim: hd)
            let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16); defer { buf.deallocate() }
            var y = [Float](repeating: .nan, count: rows * hd)
            x.withUnsafeBufferPointer { codec.encode($0.baseAddress!, rows: rows, headDim: hd, into: buf) }
            y.withUnsafeMutableBufferPointer { codec.decode(buf, rows: rows, headDim: hd, into: $0.baseAddress!) }
            if let rot = codec as? RotatedCodec {
                // A distortion bound, over the block: the relative squared error of Lloyd–Max at its bits.
                let lloydMax = [2: 0.1175, 3: 0.03454, 4: 0.009497][rot.bits]
                var err = 0.0, energy = 0.0
                for i in x.indices { err += Double((x[i] - y[i]) * (x[i] - y[i])); energy += Double(x[i] * x[i]) }
                #expect(lloydMax != nil && err / energy < lloydMax! * 1.35, "\(name) \(side): relative squared error \(err / energy)")
                print("\(name) \(side): \(bytes) bytes, relative squared error \(String(format: "%.4f", err / energy)) (Lloyd–Max \(lloydMax ?? .nan))")
                continue
            }
            guard codec is AffineCodec || codec is FP16Codec || codec is FP32Codec else {
                Issue.record("\(name): no error bound stated for \(type(of: codec)); add its bound here"); continue
            }
            var worst: Float = 0  // error in units of the bound
            for r in 0..<rows {
                for d in 0..<hd {
                    let i = r * hd + d, err = abs(x[i] - y[i])
                    let bound: Float
                    if let a = codec as? AffineCodec {
                        // The group's range: channels of this row, or this channel over the row group.
                        let idx =
                            a.axis == .token
                            ? (0..<hd).filter { $0 / a.group == d / a.group }.map { r * hd + $0 }
                            : (0..<rows).filter { $0 / a.group == r / a.group }.map { $0 * hd + d }
                        let g = idx.map { x[$0] }
                        let step = (g.max()! - g.min()! + abs(g.min()!) / 1024) / a.qmax * (1 + 1 / 1024)
                        bound = step / 2 + 1e-6
                    } else if codec is FP16Codec {
                        #expect(y[i] == Float(Float16(x[i])))
                        bound = abs(x[i]) / 2048 + 1e-7
                    } else {
                        bound = 0
                    }
                    #expect(err <= bound, "\(name) \(side) [\(r), \(d)]: |\(x[i]) − \(y[i])| > \(bound)")
                    if bound > 0 { worst = max(worst, err / bound) }
                }
            }
            print(
                "\(name) \(side): \(bytes) bytes for \(rows)×\(hd) values (\(String(format: "%.2f", Double(rows * hd * 2) / Double(bytes)))× vs fp16), worst error \(String(format: "%.2f", worst)) of the bound"
            )
        }
    }

    @Test func quantMistakesAreOneLineErrors() throws {
        for (text, needle) in [
            ("int3", "accepted: fp32, fp16, int8, int4, kivi2, kivi4"), ("int4:grp=8", "no parameter 'grp'"),
            ("kivi2:group=1", "expected an integer in 2...4096"), ("int4/int8/fp16", "KEYS/VALUES"),
        ] {
            #expect(throws: PolicyError.self) { _ = try CodecRegistry.shared.make(text) }
            do { _ = try CodecRegistry.shared.make(text) } catch { #expect("\(error)".contains(needle), "\(text): \(error)") }
        }
        let fp32 = try CodecRegistry.shared.make("fp32")
        #expect(fp32 == nil, "fp32 is the unquantized cache")
        #expect(splitSpecList("snapkv:window=8,gqa=max,h2o") == ["snapkv:window=8,gqa=max", "h2o"])
        #expect(splitSpecList("fp16,int4:group=16,residual=32,kivi2") == ["fp16", "int4:group=16,residual=32", "kivi2"])
    }
}

@Suite struct QuantizedCacheTests {
    /// Full pages outside the residual window are packed, the rest stay Float32; bytes are what the
    /// layout says: codes, Float16 (scale, min) pairs and the Float32 residual.
    @Test func pagesArePackedOutsideTheResidualWindowAndBytesAreMeasured() throws {
        let (cache, _, _) = filledCache(n: 100, hd: 32, pageSize: 16)
        let kivi = try codec("kivi2:group=16,residual=40")
        try cache.quantize(kivi)
        let t = cache.table(layer: 0, head: 0)
        // (100 − 40) / 16 = 3 pages packed, 4 raw (the last one partial).
        #expect(t.pages.map { cache.pool.kind($0) } == [.packed, .packed, .packed, .raw, .raw, .raw, .raw])
        let packedPage = kivi.payloadBytes(pageSize: 16, headDim: 32)
        // keys: 32 channels × a (scale, min) pair + 16·32 2-bit codes; values: 16 rows × 2 groups × a pair + the same codes.
        #expect(packedPage == (32 * 4 + 128) + (16 * 2 * 4 + 128))
        #expect(cache.kvDataBytes == 4 * (3 * packedPage + 52 * 32 * 2 * 4))
        #expect(cache.liveTokenBytes == cache.kvDataBytes + 4 * 100 * 8)
        // Appending moves the window: 28 more tokens make (128 − 40) / 16 = 5 packed pages.
        var rng = SplitMix64(seed: 3)
        let k = kvRows(28 * 2, 32, &rng)
        for l in 0..<2 { cache.append(layer: l, keys: k, values: k, positions: (100..<128).map(Int32.init), tokens: Array(repeating: 0, count: 28)) }
        #expect(cache.table(layer: 1, head: 1).pages.prefix(6).map { cache.pool.kind($0) } == [.packed, .packed, .packed, .packed, .packed, .raw])
    }

    /// The kernel on quantized pages equals the dense oracle on the dequantized rows, on the decode path
    /// (direct on pages, split-K) and the prefill path (gathered tiles, sgemm), cold pages included.
    /// Every registered codec on both paths (one with cold pages), plus non-default KIVI settings.
    @Test(
        arguments: CodecRegistry.shared.names.enumerated().flatMap { i, n in [(1, n, i % 2 == 0 ? 0 : 3), (40, n, i % 2 == 0 ? 2 : 0)] }
            + [(1, "kivi2:group=8,residual=16", 0), (40, "kivi4:group=8", 0)])
    func kernelOnPackedPagesEqualsDenseOnDequantizedRows(queries: Int, quant: String, hotPages: Int) throws {
        let (cache, _, _) = filledCache(n: 300, hd: 16, pageSize: 8)
        try cache.quantize(try CodecRegistry.shared.make(quant))  // nil for fp32: raw pages
        if hotPages > 0 { try cache.setOffload(OffloadConfig(hotPages: hotPages)) }
        var rng = SplitMix64(seed: 8)
        let nHeads = 6
        let q = (0..<(queries * nHeads * 16)).map { _ in Float.random(in: -2...2, using: &rng) }
        let qpos = (0..<queries).map { Int32(300 - queries + $0) }
        for layer in 0..<2 {
            var out = [Float](repeating: 0, count: q.count)
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    PagedAttention.attend(cache: cache, layer: layer, q: qp.baseAddress!, positions: qpos, nHeads: nHeads, out: op.baseAddress!)
                }
            }
            try cache.pool.checkIntegrity()
            let d = denseRows(cache, layer: layer)
            let ref = DenseAttention.attend(q: q, queryPositions: qpos, k: d.k, v: d.v, keyPositions: d.pos, nHeads: nHeads, kvHeads: 2, headDim: 16)
            let err = zip(out, ref).map { abs($0 - $1) }.max()!
            #expect(err < 2e-5, "\(quant) layer \(layer): \(err)")
        }
    }

    /// Eviction on a quantized cache keeps the kept slots' dequantized rows (fp16 re-encodes exactly) and
    /// a fork's quantization never touches its parent's pages.
    @Test func evictionAndForksOnQuantizedPages() throws {
        let (parent, k, _) = filledCache(n: 64, hd: 16, pageSize: 8)
        let fork = parent.fork()
        try fork.quantize(try codec("fp16"))
        #expect(parent.table(layer: 0, head: 0).pages.allSatisfy { parent.pool.kind($0) == .raw }, "the parent stays Float32")
        #expect(fork.table(layer: 0, head: 0).pages.allSatisfy { fork.pool.kind($0) == .packed })
        let keep = Array(stride(from: 0, to: 64, by: 3))
        fork.keep(layer: 0, head: 1, indices: keep)
        #expect(fork.slots(layer: 0, head: 1).map(\.position) == keep.map(Int32.init))
        let rows = denseRows(fork, layer: 0)
        for (i, src) in keep.enumerated() {
            for d in 0..<16 {
                #expect(rows.k[(i * 2 + 1) * 16 + d] == Float(Float16(k[(src * 2 + 1) * 16 + d])))
            }
        }
        let kinds = fork.table(layer: 0, head: 1).pages.map { fork.pool.kind($0) }
        #expect(kinds.dropLast().allSatisfy { $0 == .packed } && kinds.last == .raw, "rewritten full pages are packed again: \(kinds)")
        let livePages = parent.pool.livePages
        _ = consume fork
        #expect(parent.pool.livePages < livePages, "the fork's packed pages return to the pool")
    }
}

@Suite struct ColdTierTests {
    /// Random swap-out / swap-in sequences over raw and packed pages: every restored page is bit-identical
    /// (metadata and payload) to the page that went cold; live bytes return to what they were.
    @Test(arguments: [false, true])
    func randomSwapsRestoreEveryPageBitExact(inFile: Bool) throws {
        let pool = PagePool(headDim: 16, pageSize: 8)
        if inFile { pool.coldStore = try ColdStore(directory: FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-cold-test").path) }
        let (cache, _, _) = filledCache(n: 200, hd: 16, pageSize: 8, pool: pool)
        try cache.quantize(try codec("kivi2:group=8,residual=64"))
        let scratch = PagePool.Scratch(pool)
        func snapshot(_ id: Int32) -> [UInt8] {
            let n = pool.bytes(id)
            return Array(UnsafeRawBufferPointer(start: pool.positions(id), count: n))
        }
        var pages = cache.tables.flatMap(\.pages).filter { cache.pool.refCount($0) == 1 }
        let original = Dictionary(uniqueKeysWithValues: pages.map { ($0, snapshot($0)) })
        var current = Dictionary(uniqueKeysWithValues: pages.map { ($0, $0) })  // original id → current id
        var rng = SplitMix64(seed: 77)
        var kinds = Set<PageKind>()
        for _ in 0..<2_000 {
            let orig = pages[Int(rng.next() % UInt64(pages.count))]
            let id = current[orig]!
            kinds.insert(pool.kind(id))
            if pool.kind(id) == .cold {
                let hot = try pool.restore(id, scratch)
                pool.release(id); current[orig] = hot
                #expect(snapshot(hot) == original[orig]!, "page \(orig) restored with different bytes")
            } else {
                let cold = try pool.offload(id)
                pool.release(id); current[orig] = cold
            }
        }
        #expect(kinds == [.raw, .packed, .cold])
        for (orig, id) in current where pool.kind(id) == .cold {
            let hot = try pool.restore(id, scratch)
            #expect(snapshot(hot) == original[orig]!)
            pool.release(id); current[orig] = hot
        }
        pages = []
        print("cold tier: \(pool.capacityPages) page ids for \(original.count) pages after 2,000 random swaps")
    }

    /// A cold page whose bytes changed is detected on read, never used: in memory (a flipped byte) and in a
    /// file (a flipped byte; the file truncated).
    @Test func corruptOrTruncatedColdPagesAreDetected() throws {
        // Memory.
        let (cache, _, _) = filledCache(n: 64, hd: 16, pageSize: 8)
        try cache.setOffload(OffloadConfig(hotPages: 1))
        let page = cache.table(layer: 0, head: 0).pages[2]
        #expect(cache.pool.kind(page) == .cold)
        let s = PagePool.Scratch(cache.pool)
        #expect(cache.pool.read(page, s) != nil)
        try cache.pool.checkIntegrity()
        cache.pool.corruptColdBlob(page, at: 40)
        #expect(cache.pool.read(page, s) == nil)
        #expect(throws: KVCacheError.self) { try cache.pool.checkIntegrity() }

        // File: flip a byte, then truncate.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvkit-cold-\(UUID().uuidString)").path
        let pool = PagePool(headDim: 16, pageSize: 8)
        pool.coldStore = try ColdStore(directory: dir)
        let (fc, _, _) = filledCache(n: 64, hd: 16, pageSize: 8, pool: pool)
        try fc.setOffload(OffloadConfig(hotPages: 2))
        let path = try #require(pool.coldStore.path)
        var q = [Float](repeating: 0.1, count: 6 * 16), out = q
        func attendAll() throws {
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    PagedAttention.attend(cache: fc, layer: 0, q: qp.baseAddress!, positions: [63], nHeads: 6, out: op.baseAddress!)
                }
            }
            try pool.checkIntegrity()
        }
        try attendAll()
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        try h.seek(toOffset: 100)
        let b = try #require(try h.read(upToCount: 1))
        try h.seek(toOffset: 100)
        try h.write(contentsOf: Data([b[0] ^ 0xFF]))
        #expect(throws: KVCacheError.self) { try attendAll() }
        try h.seek(toOffset: 100)
        try h.write(contentsOf: b)
        try attendAll()
        try h.truncate(atOffset: 10)  // layer 0's pages were written first
        try h.close()
        do { try attendAll(); Issue.record("a truncated offload file went unnoticed") } catch let e as KVCacheError {
            #expect("\(e)".contains("shorter than recorded") || "\(e)".contains("does not decode"), "\(e)")
        }
    }

    /// A cold write that fails (a full disk: the store writes to /dev/full) never corrupts the cache:
    /// every page is committed before the next may fail, the failure reaches `checkIntegrity`, the pages
    /// that could not go cold stay hot and readable, and releasing the cache releases each page once.
    @Test func aFailedColdWriteLeavesAConsistentCacheAndIsReported() throws {
        let pool = PagePool(headDim: 16, pageSize: 8)
        pool.coldStore = try ColdStore(existing: "/dev/full")
        var (cache, k, v): (PagedKVCache?, [Float], [Float]) = filledCache(n: 64, hd: 16, pageSize: 8, pool: pool)
        let before = denseRows(cache!, layer: 1)
        #expect(throws: KVCacheError.self) { try cache!.setOffload(OffloadConfig(hotPages: 1)) }
        #expect(cache!.byteBreakdown.cold == 0, "nothing went cold")
        // Appending with offload on records the failure instead of hiding it.
        let pos = (64..<80).map(Int32.init)
        var rng = SplitMix64(seed: 9)
        k = kvRows(16 * 2, 16, &rng); v = kvRows(16 * 2, 16, &rng)
        cache!.append(layer: 0, keys: k, values: v, positions: pos, tokens: pos)
        do { try pool.checkIntegrity(); Issue.record("a failed cold write went unreported") } catch let e as KVCacheError {
            #expect("\(e)".contains("No space left") && "\(e)".contains("--offload-dir"), "\(e)")
        }
        let after = denseRows(cache!, layer: 1)
        #expect(after.k == before.k && after.v == before.v, "rows survive the failed offload")
        // With quantization the packed pages are committed before their offload fails.
        let int8 = try codec("int8")
        #expect(throws: KVCacheError.self) { try cache!.quantize(int8) }
        #expect(cache!.byteBreakdown.packed > 0 && cache!.byteBreakdown.cold == 0)
        cache = nil
        #expect(pool.livePages == 0 && pool.freePages.count == pool.capacityPages, "every page released exactly once")
    }
}

/// The rotated codecs (`rot2`, `rot3`, `rot4`): their parts checked against known values, and their
/// round trip against the Lloyd–Max distortion they are designed for.
@Suite struct RotatedCodecTests {
    @Test func lloydMaxLevelsAreMaxsTable() {
        // Max (1960), Table I, positive output levels for a unit Gaussian.
        let published: [Int: [Float]] = [
            2: [0.4528, 1.510], 3: [0.2451, 0.7560, 1.344, 2.152],
            4: [0.1284, 0.3881, 0.6568, 0.9424, 1.256, 1.618, 2.069, 2.733],
        ]
        for (bits, positive) in published {
            let levels = LloydMax.table[bits]
            #expect(levels.count == 1 << bits)
            for (ours, theirs) in zip(levels.suffix(positive.count), positive) { #expect(abs(ours - theirs) < 2e-3, "\(bits) bits: \(ours) vs \(theirs)") }
            for (a, b) in zip(levels, levels.reversed()) { #expect(abs(a + b) < 1e-5, "symmetric") }
        }
    }

    @Test func hadamardIsOrthonormalAndItsOwnInverse() {
        var rng = SplitMix64(seed: 3)
        for d in [64, 80, 128] {  // 80: blocks of 16
            let x = (0..<d).map { _ in Float.random(in: -2...2, using: &rng) }
            var y = x
            y.withUnsafeMutableBufferPointer { RotatedCodec.hadamard($0.baseAddress!, count: d) }
            let ex = x.reduce(0) { $0 + $1 * $1 }, ey = y.reduce(0) { $0 + $1 * $1 }
            #expect(abs(ex - ey) < 1e-3 * ex, "norm kept at d=\(d)")
            y.withUnsafeMutableBufferPointer { RotatedCodec.hadamard($0.baseAddress!, count: d) }
            #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-5 }, "H·H = I at d=\(d)")
        }
        // A spike spreads evenly: H e₀ = (1/√n, …, 1/√n).
        var e = [Float](repeating: 0, count: 64); e[0] = 1
        e.withUnsafeMutableBufferPointer { RotatedCodec.hadamard($0.baseAddress!, count: 64) }
        #expect(e.allSatisfy { abs($0 - 0.125) < 1e-6 })
    }

    @Test(arguments: [(2, 0.1175), (3, 0.03454), (4, 0.009497)])
    func roundTripErrorIsTheLloydMaxDistortion(bits: Int, distortion: Double) throws {
        let c = try codec("rot\(bits)")
        var rng = SplitMix64(seed: 17)
        let rows = 64, hd = 64
        let x = kvRows(rows, hd, &rng)  // two outlier channels 12× the others: the rotation spreads them
        let bytes = c.keys.packedBytes(rows: rows, headDim: hd)
        #expect(bytes == rows * (2 + 8 * bits))
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16); defer { buf.deallocate() }
        var y = [Float](repeating: .nan, count: rows * hd)
        x.withUnsafeBufferPointer { c.keys.encode($0.baseAddress!, rows: rows, headDim: hd, into: buf) }
        y.withUnsafeMutableBufferPointer { c.keys.decode(buf, rows: rows, headDim: hd, into: $0.baseAddress!) }
        var err = 0.0, energy = 0.0
        for i in 0..<(rows * hd) { err += Double((x[i] - y[i]) * (x[i] - y[i])); energy += Double(x[i] * x[i]) }
        let relative = err / energy
        print("rot\(bits): \(bytes) bytes for \(rows)×\(hd), relative squared error \(String(format: "%.4f", relative)) (Lloyd–Max \(distortion))")
        #expect(relative < distortion * 1.35 && relative > distortion * 0.6)
        // Pure function of the input and seed: the same bytes twice, other bytes for another seed.
        let again = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16); defer { again.deallocate() }
        x.withUnsafeBufferPointer { c.keys.encode($0.baseAddress!, rows: rows, headDim: hd, into: again) }
        #expect(memcmp(buf, again, bytes) == 0)
        let other = try codec("rot\(bits):seed=1")
        x.withUnsafeBufferPointer { other.keys.encode($0.baseAddress!, rows: rows, headDim: hd, into: again) }
        #expect(memcmp(buf, again, bytes) != 0)
    }
}
