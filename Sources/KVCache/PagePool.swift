import Foundation

/// How a page holds its K/V rows.
public enum PageKind: UInt8, Sendable {
    /// Float32 rows, written in place while the stream grows.
    case raw
    /// Rows encoded by a `CacheCodec` (fp16, int4, KIVI, ...); always a full page.
    case packed
    /// An LZ4-compressed copy of a raw or packed page's payload, in memory or in a file; always a full page.
    case cold
}

/// A pool of K/V pages with per-page reference counts and free lists.
///
/// Every page starts with its slot metadata, then its payload:
///   positions  [pageSize] Int32   original token position (RoPE was applied at this position)
///   tokenIds   [pageSize] Int32
///   raw:     K [pageSize][headDim] Float32, V [pageSize][headDim] Float32
///   packed:  K then V as the cache's codec packs them (codes, scales, zero points)
///   cold:    a 32-byte header (inner format, sizes, checksum, file offset); the compressed payload lives
///            in the `ColdStore` (memory or file)
/// Metadata stays uncompressed in every kind, so positions (causality, survival) never need decoding.
/// Why pages: a (layer, KV head) stream grows and shrinks by whole pages, so eviction can return memory
/// to the pool and forks can share pages by reference count; free lists are LIFO stacks per page size so
/// the most recently freed (cache-warm) page is reused first.
public final class PagePool: @unchecked Sendable {
    public let headDim: Int
    public let pageSize: Int
    /// Bytes of one raw page: K and V data plus the per-slot position and token id.
    public let pageBytes: Int
    /// Bytes of the slot metadata at the start of every page.
    public let metaBytes: Int
    /// Bytes of a raw page's K and V rows.
    public var rawPayloadBytes: Int { pageBytes - metaBytes }

    private var storage: [UnsafeMutableRawPointer] = []  // page id → memory
    private var sizes: [Int] = []  // page id → bytes of its allocation
    private var kinds: [PageKind] = []
    private var formats: [Int16] = []  // packed: codec index; cold: inner codec index, −1 = raw
    private var refCounts: [Int32] = []  // page id → owners; 0 = on a free list
    private var freeLists: [Int: [Int32]] = [:]  // allocation size → free ids
    private var coldBlobs: [UnsafeMutableRawPointer?] = []  // cold pages in memory: the compressed payload
    /// Codecs pages of this pool were packed with; a packed page records its index here.
    public private(set) var codecs: [CacheCodec] = []
    /// Where cold payloads go (set before offloading; in memory by default).
    public var coldStore = ColdStore()
    private var failure: KVCacheError?
    private let failureLock = NSLock()
    /// Compressed bytes of live cold pages (memory or file) and their uncompressed payload bytes.
    public private(set) var coldCompressedBytes = 0
    public private(set) var coldPayloadBytes = 0

    static let coldHeaderBytes = 32

    public init(headDim: Int, pageSize: Int) {
        precondition(headDim > 0 && pageSize > 0, "page geometry must be positive")
        self.headDim = headDim
        self.pageSize = pageSize
        metaBytes = 2 * pageSize * MemoryLayout<Int32>.size
        pageBytes = metaBytes + 2 * pageSize * headDim * MemoryLayout<Float>.size
    }

    deinit {
        for p in storage { p.deallocate() }
        for b in coldBlobs { b?.deallocate() }
    }

    /// Pages ever created (held by the pool, in use or free).
    public var capacityPages: Int { storage.count }
    /// Pages with at least one owner.
    public var livePages: Int { storage.count - freeLists.values.reduce(0) { $0 + $1.count } }
    /// Bytes the pool holds from the system (pages in use or free, and in-memory cold payloads).
    public var allocatedBytes: Int { sizes.reduce(0, +) + (coldStore.inFile ? 0 : coldCompressedBytes) }
    /// Bytes of pages that some cache holds (in-memory cold payloads included).
    public var liveBytes: Int {
        var s = 0
        for i in storage.indices where refCounts[i] > 0 { s += sizes[i] }
        return s + (coldStore.inFile ? 0 : coldCompressedBytes)
    }

    /// A raw page with reference count 1, from a free list or newly allocated.
    public func allocate() -> Int32 { allocate(bytes: pageBytes, kind: .raw, format: -1) }

    private func allocate(bytes: Int, kind: PageKind, format: Int16) -> Int32 {
        let id: Int32
        if let f = freeLists[bytes]?.popLast() {
            id = f
        } else {
            storage.append(UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64))
            sizes.append(bytes); kinds.append(kind); formats.append(format); refCounts.append(0); coldBlobs.append(nil)
            id = Int32(storage.count - 1)
        }
        refCounts[Int(id)] = 1; kinds[Int(id)] = kind; formats[Int(id)] = format
        return id
    }

    public func retain(_ id: Int32) {
        precondition(refCounts[Int(id)] > 0, "retain of a free page")
        refCounts[Int(id)] += 1
    }

    /// Drops one owner; the page returns to its free list when none is left (a cold page's payload is freed).
    public func release(_ id: Int32) {
        let i = Int(id)
        precondition(refCounts[i] > 0, "page \(id) released twice")
        refCounts[i] -= 1
        guard refCounts[i] == 0 else { return }
        if kinds[i] == .cold {
            let h = header(id)
            coldCompressedBytes -= h.compressed; coldPayloadBytes -= h.payload
            coldBlobs[i]?.deallocate(); coldBlobs[i] = nil
        }
        freeLists[sizes[i], default: []].append(id)
    }

    public func refCount(_ id: Int32) -> Int { Int(refCounts[Int(id)]) }
    public func kind(_ id: Int32) -> PageKind { kinds[Int(id)] }
    /// Bytes of the page's allocation (metadata and payload; a cold page's compressed payload excluded).
    public func bytes(_ id: Int32) -> Int { sizes[Int(id)] }
    /// How the page's rows are encoded: the codec index of a packed page or of the packed page a cold page
    /// holds, −1 for Float32 rows.
    public func format(_ id: Int32) -> Int16 { formats[Int(id)] }
    /// The codec of a packed page, or of the packed page a cold page holds (nil: full precision).
    public func codec(_ id: Int32) -> CacheCodec? { formats[Int(id)] >= 0 ? codecs[Int(formats[Int(id)])] : nil }

    /// Bytes of K/V data the page stands for: rows × 2 × headDim × 4 for raw pages (`slots` rows used),
    /// the packed payload for packed pages, the compressed payload for cold ones.
    public func dataBytes(_ id: Int32, slots: Int) -> Int {
        switch kinds[Int(id)] {
        case .raw: return slots * 2 * headDim * MemoryLayout<Float>.size
        case .packed: return sizes[Int(id)] - metaBytes
        case .cold: return header(id).compressed
        }
    }

    /// Uncompressed payload bytes of a cold page.
    public func coldPayload(_ id: Int32) -> Int { kinds[Int(id)] == .cold ? header(id).payload : 0 }

    /// The free pages, for audits in tests.
    var freePages: [Int32] { freeLists.values.flatMap { $0 } }

    /// Copies a whole raw page (data and slot metadata).
    public func copyPage(from src: Int32, to dst: Int32) {
        precondition(kinds[Int(src)] == .raw && kinds[Int(dst)] == .raw, "only raw pages are copied in place")
        storage[Int(dst)].copyMemory(from: storage[Int(src)], byteCount: pageBytes)
    }

    // MARK: Slot access

    /// Raw pages only: the page's key rows, writable.
    @inline(__always) public func keys(_ id: Int32) -> UnsafeMutablePointer<Float> {
        precondition(kinds[Int(id)] == .raw, "keys(_:) of a \(kinds[Int(id)]) page; read it with read(_:_:)")
        return (storage[Int(id)] + metaBytes).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) public func values(_ id: Int32) -> UnsafeMutablePointer<Float> {
        precondition(kinds[Int(id)] == .raw, "values(_:) of a \(kinds[Int(id)]) page; read it with read(_:_:)")
        return (storage[Int(id)] + metaBytes).assumingMemoryBound(to: Float.self) + pageSize * headDim
    }
    @inline(__always) public func positions(_ id: Int32) -> UnsafeMutablePointer<Int32> {
        storage[Int(id)].assumingMemoryBound(to: Int32.self)
    }
    @inline(__always) public func tokenIds(_ id: Int32) -> UnsafeMutablePointer<Int32> {
        positions(id) + pageSize
    }
    @inline(__always) func payload(_ id: Int32) -> UnsafeMutableRawPointer { storage[Int(id)] + metaBytes }

    // MARK: Reading any kind

    /// Scratch for reading packed and cold pages: one page of decoded K and V rows and one raw payload.
    /// One per worker; a few tens of KiB, independent of context length.
    public final class Scratch: @unchecked Sendable {
        let k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
        let bytes: UnsafeMutableRawPointer
        public init(_ pool: PagePool) {
            k = .allocate(capacity: pool.pageSize * pool.headDim)
            v = .allocate(capacity: pool.pageSize * pool.headDim)
            bytes = .allocate(byteCount: pool.rawPayloadBytes, alignment: 64)
        }
        deinit { k.deallocate(); v.deallocate(); bytes.deallocate() }
    }

    /// The K and V rows of any page as Float32: pointers into a raw page, or rows decoded (and for cold
    /// pages decompressed and checked) into `scratch`, valid until its next use. A cold page that fails
    /// its check returns nil and is recorded; `checkIntegrity()` then throws.
    public func read(_ id: Int32, _ scratch: Scratch, keys wantK: Bool = true, values wantV: Bool = true)
        -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)?
    {
        let i = Int(id)
        switch kinds[i] {
        case .raw:
            let k = (storage[i] + metaBytes).assumingMemoryBound(to: Float.self)
            return (UnsafePointer(k), UnsafePointer(k + pageSize * headDim))
        case .packed:
            decode(codecs[Int(formats[i])], payload(id), scratch, wantK, wantV)
            return (UnsafePointer(scratch.k), UnsafePointer(scratch.v))
        case .cold:
            guard let n = unpackCold(id, into: scratch.bytes) else { return nil }
            if formats[i] < 0 {
                let k = scratch.bytes.assumingMemoryBound(to: Float.self)
                precondition(n == rawPayloadBytes)
                return (UnsafePointer(k), UnsafePointer(k + pageSize * headDim))
            }
            decode(codecs[Int(formats[i])], UnsafeRawPointer(scratch.bytes), scratch, wantK, wantV)
            return (UnsafePointer(scratch.k), UnsafePointer(scratch.v))
        }
    }

    private func decode(_ c: CacheCodec, _ p: UnsafeRawPointer, _ s: Scratch, _ wantK: Bool, _ wantV: Bool) {
        if wantK { c.keys.decode(p, rows: pageSize, headDim: headDim, into: s.k) }
        if wantV { c.values.decode(p + c.keys.packedBytes(rows: pageSize, headDim: headDim), rows: pageSize, headDim: headDim, into: s.v) }
    }

    /// Throws the first corrupt cold page any read met since the last check (and clears it).
    public func checkIntegrity() throws {
        failureLock.lock(); defer { failureLock.unlock() }
        if let f = failure { failure = nil; throw f }
    }

    /// Keeps the first failure (a corrupt cold page met by a read, a cold write that failed) for `checkIntegrity()`.
    func record(_ e: KVCacheError) {
        failureLock.lock(); defer { failureLock.unlock() }
        if failure == nil { failure = e }
    }

    // MARK: Packing

    /// The index of `codec` in this pool (registered on first use). Codecs are told apart by name only:
    /// the residual is the cache's rule for when to pack, not part of a packed page's format.
    public func register(_ codec: CacheCodec) -> Int16 {
        if let i = codecs.firstIndex(where: { $0.name == codec.name }) { return Int16(i) }
        codecs.append(codec)
        return Int16(codecs.count - 1)
    }

    /// A new packed page holding raw page `raw`'s metadata and rows encoded with codec `index`.
    /// The raw page is left as it is (the caller releases it).
    public func pack(_ raw: Int32, codec index: Int16) -> Int32 {
        precondition(kinds[Int(raw)] == .raw, "only raw pages are packed")
        let c = codecs[Int(index)]
        let id = allocate(bytes: metaBytes + c.payloadBytes(pageSize: pageSize, headDim: headDim), kind: .packed, format: index)
        storage[Int(id)].copyMemory(from: storage[Int(raw)], byteCount: metaBytes)
        let out = payload(id)
        c.keys.encode(keys(raw), rows: pageSize, headDim: headDim, into: out)
        c.values.encode(values(raw), rows: pageSize, headDim: headDim, into: out + c.keys.packedBytes(rows: pageSize, headDim: headDim))
        return id
    }

    /// A new raw page with the rows of any page as Float32 (a packed page's rows dequantized); nil when a
    /// cold page fails its check.
    public func unpack(_ id: Int32, _ scratch: Scratch) -> Int32? {
        guard let (k, v) = read(id, scratch) else { return nil }
        let out = allocate()
        storage[Int(out)].copyMemory(from: storage[Int(id)], byteCount: metaBytes)
        keys(out).update(from: k, count: pageSize * headDim)
        values(out).update(from: v, count: pageSize * headDim)
        return out
    }

    // MARK: Cold tier

    private struct ColdHeader {
        var payload: Int, compressed: Int, checksum: UInt64, offset: Int64
    }

    private func header(_ id: Int32) -> ColdHeader {
        let p = UnsafeRawPointer(payload(id))
        return ColdHeader(
            payload: Int(p.load(fromByteOffset: 0, as: Int32.self)), compressed: Int(p.load(fromByteOffset: 4, as: Int32.self)),
            checksum: p.load(fromByteOffset: 8, as: UInt64.self), offset: p.load(fromByteOffset: 16, as: Int64.self))
    }

    /// A new cold page holding page `id`'s payload (raw or packed) LZ4-compressed in the cold store, with
    /// a checksum of the uncompressed bytes. The hot page is left as it is (the caller releases it).
    public func offload(_ id: Int32) throws -> Int32 {
        let i = Int(id)
        precondition(kinds[i] != .cold, "page \(id) is cold already")
        let n = sizes[i] - metaBytes, src = UnsafeRawPointer(payload(id))
        let cap = LZ4Block.bound(n)
        let tmp = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        defer { tmp.deallocate() }
        let c = LZ4Block.compress(src, n, into: tmp, capacity: cap)
        precondition(c > 0, "LZ4 cannot fail with a bound-sized output")
        var offset: Int64 = -1
        if coldStore.inFile { offset = try coldStore.append(tmp, c) }
        let cold = allocate(bytes: metaBytes + Self.coldHeaderBytes, kind: .cold, format: formats[i])
        storage[Int(cold)].copyMemory(from: storage[i], byteCount: metaBytes)
        let h = payload(cold)
        h.storeBytes(of: Int32(n), toByteOffset: 0, as: Int32.self)
        h.storeBytes(of: Int32(c), toByteOffset: 4, as: Int32.self)
        h.storeBytes(of: checksum64(src, n), toByteOffset: 8, as: UInt64.self)
        h.storeBytes(of: offset, toByteOffset: 16, as: Int64.self)
        if !coldStore.inFile {
            let blob = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
            blob.copyMemory(from: tmp, byteCount: c)
            coldBlobs[Int(cold)] = blob
        }
        coldCompressedBytes += c; coldPayloadBytes += n
        return cold
    }

    /// Decompresses and checks a cold page's payload into `dst` (capacity `rawPayloadBytes`); returns its size.
    private func unpackCold(_ id: Int32, into dst: UnsafeMutableRawPointer) -> Int? {
        let h = header(id)
        let src: UnsafeRawPointer
        var owned: UnsafeMutableRawPointer?
        defer { owned?.deallocate() }
        if let blob = coldBlobs[Int(id)] {
            src = UnsafeRawPointer(blob)
        } else {
            let buf = UnsafeMutableRawPointer.allocate(byteCount: max(h.compressed, 1), alignment: 16)
            owned = buf
            guard h.offset >= 0, coldStore.read(h.offset, h.compressed, into: buf) else {
                record(.corruptColdPage(page: id, reason: "the offload file is shorter than recorded"))
                return nil
            }
            src = UnsafeRawPointer(buf)
        }
        guard h.payload <= rawPayloadBytes, LZ4Block.decompress(src, h.compressed, into: dst, h.payload) else {
            record(.corruptColdPage(page: id, reason: "the LZ4 block does not decode"))
            return nil
        }
        guard checksum64(dst, h.payload) == h.checksum else {
            record(.corruptColdPage(page: id, reason: "checksum mismatch"))
            return nil
        }
        return h.payload
    }

    /// A new hot page bit-identical to the page that was offloaded into cold page `id` (same kind, codec,
    /// metadata and payload bytes). Throws when the cold copy fails its check.
    public func restore(_ id: Int32, _ scratch: Scratch) throws -> Int32 {
        precondition(kinds[Int(id)] == .cold, "page \(id) is not cold")
        guard let n = unpackCold(id, into: scratch.bytes) else { try checkIntegrity(); fatalError("unreachable") }
        let f = formats[Int(id)]
        let hot = allocate(bytes: metaBytes + n, kind: f < 0 ? .raw : .packed, format: f)
        storage[Int(hot)].copyMemory(from: storage[Int(id)], byteCount: metaBytes)
        payload(hot).copyMemory(from: scratch.bytes, byteCount: n)
        return hot
    }

    /// Tests: flips one byte of a cold page's compressed payload in memory.
    func corruptColdBlob(_ id: Int32, at byte: Int) {
        guard let b = coldBlobs[Int(id)] else { return }
        let p = b.assumingMemoryBound(to: UInt8.self)
        p[byte % max(header(id).compressed, 1)] ^= 0x5A
    }
}
