/// The token stream of one (layer, KV head): its pages in order and how many slots are filled.
/// Invariant: slots are packed, so page `i` holds `min(pageSize, count - i·pageSize)` tokens and
/// only the last page may be partly filled (compaction after eviction restores this).
public struct PageTable: Sendable, Equatable {
    public var pages: [Int32] = []
    public var count: Int = 0
    public init() {}
}

/// A paged K/V cache: one `PageTable` per (layer, KV head), all drawing pages from one `PagePool`.
/// Per-head tables let later policies keep different tokens in different heads and really free the rest.
public final class PagedKVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Query heads per KV head (grouped-query attention), from the model that made the cache: how every
    /// `[slot][group]` statistic is laid out. Never inferred from whether statistics were tapped (a policy's
    /// view must not depend on what other policies sharing the prefill asked for).
    public let group: Int
    public let pool: PagePool
    /// [layer × kvHeads + head]
    public private(set) var tables: [PageTable]
    /// The position the next appended token gets; eviction does not change it.
    public var nextPosition: Int = 0
    /// Attention statistics tapped by the kernel for policies that need them (nil: none requested).
    /// A value type: forks share it until one side writes.
    public var observations: Observations?
    /// How full pages are stored (nil: Float32). Set with `quantize(_:)`; inherited by forks.
    public private(set) var codec: CacheCodec?
    private var codecIndex: Int16 = -1
    /// Pages beyond the most recent `hotPages` of each stream go to the pool's LZ4 cold store (nil: none).
    /// Set with `setOffload(_:)`; inherited by forks.
    public private(set) var offload: OffloadConfig?
    /// Per layer, the sliding window of a windowed layer (Gemma 3's local layers), nil for a global one: a
    /// key `window` or more positions before a query is invisible to it, and `releaseOutsideWindow` frees
    /// the pages no later query can see. Inherited by forks.
    public var windows: [Int?]
    /// K/V data bytes freed so far because they fell wholly outside a layer's window (raw page bytes).
    public internal(set) var windowFreedBytes = 0

    public var pageSize: Int { pool.pageSize }

    public init(layers: Int, kvHeads: Int, headDim: Int, group: Int = 1, pageSize: Int = 16, pool: PagePool? = nil) {
        precondition(layers > 0 && kvHeads > 0 && headDim > 0 && pageSize > 0 && group > 0, "cache geometry must be positive")
        self.layers = layers
        self.group = group
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.pool = pool ?? PagePool(headDim: headDim, pageSize: pageSize)
        precondition(self.pool.headDim == headDim, "pool head size differs from the cache's")
        tables = Array(repeating: PageTable(), count: layers * kvHeads)
        windows = Array(repeating: nil, count: layers)
    }

    /// Frees the leading whole pages of a windowed `layer` whose every key is at least `window` positions
    /// before `next` (the position of the next query): no later token can attend to them. Slots stay in
    /// position order, so expired keys are always a prefix. Returns the bytes freed.
    @discardableResult
    public func releaseOutsideWindow(layer: Int, next: Int) -> Int {
        guard let w = windows[layer] else { return 0 }
        let ps = pool.pageSize
        var freed = 0
        for h in 0..<kvHeads {
            let idx = layer * kvHeads + h
            var t = tables[idx], drop = 0
            while drop < t.pages.count, (drop + 1) * ps <= t.count,
                Int(pool.positions(t.pages[drop])[ps - 1]) <= next - w
            { drop += 1 }
            guard drop > 0 else { continue }
            for p in t.pages.prefix(drop) { pool.release(p) }
            t.pages.removeFirst(drop)
            t.count -= drop * ps
            tables[idx] = t
            freed += drop * ps * 2 * headDim * MemoryLayout<Float>.size
            observations?.keep(stream: idx, indices: Array((drop * ps)..<(t.count + drop * ps)))
        }
        windowFreedBytes += freed
        return freed
    }

    deinit {
        for t in tables { for p in t.pages { pool.release(p) } }
    }

    @inline(__always) public func table(layer: Int, head: Int) -> PageTable { tables[layer * kvHeads + head] }

    func replaceTables(_ t: [PageTable]) { tables = t }
    func setTable(_ i: Int, _ t: PageTable) { tables[i] = t }

    /// Tokens held by (layer, head).
    public func count(layer: Int, head: Int) -> Int { tables[layer * kvHeads + head].count }

    /// Appends `n` tokens to every KV head of `layer`.
    /// - keys, values: `[n][kvHeads][headDim]` Float32 (RoPE already applied to keys).
    public func append(
        layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
        positions: [Int32], tokens: [Int32]
    ) {
        let n = positions.count
        precondition(tokens.count == n, "one token id per position")
        let ps = pool.pageSize, hd = headDim, stride = kvHeads * hd
        for h in 0..<kvHeads {
            var t = tables[layer * kvHeads + h]
            // Copy-on-write: a partly filled last page shared with a fork is copied before writing.
            if t.count % ps != 0, let last = t.pages.last, pool.refCount(last) > 1 {
                let copy = pool.allocate()
                pool.copyPage(from: last, to: copy)
                pool.release(last)
                t.pages[t.pages.count - 1] = copy
            }
            for i in 0..<n {
                let slot = t.count % ps
                if slot == 0 { t.pages.append(pool.allocate()) }
                let page = t.pages[t.pages.count - 1]
                (pool.keys(page) + slot * hd).update(from: keys + i * stride + h * hd, count: hd)
                (pool.values(page) + slot * hd).update(from: values + i * stride + h * hd, count: hd)
                pool.positions(page)[slot] = positions[i]
                pool.tokenIds(page)[slot] = tokens[i]
                t.count += 1
            }
            tables[layer * kvHeads + h] = t
            if codec != nil || offload != nil { sealRecordingFailure(stream: layer * kvHeads + h) }
        }
        observations?.appended(layer: layer, count: n)
    }

    // MARK: Quantized and cold pages

    /// Stores full pages with `codec` from now on, packing every full page already outside its residual
    /// window (pages shared with a fork are packed into new pages; the fork keeps its own). Throws the
    /// first cold page that failed its check while being repacked.
    public func quantize(_ codec: CacheCodec?) throws {
        self.codec = codec
        codecIndex = codec.map { pool.register($0) } ?? -1
        for i in tables.indices { try seal(stream: i) }
    }

    /// Keeps `config.hotPages` pages per stream hot and moves the rest to the pool's cold store.
    public func setOffload(_ config: OffloadConfig?) throws {
        offload = config
        for i in tables.indices { try seal(stream: i) }
    }

    func inherit(codec c: CacheCodec?, index: Int16, offload o: OffloadConfig?) { codec = c; codecIndex = index; offload = o }
    var codecSlot: Int16 { codecIndex }

    /// Brings stream `i`'s pages to the form the cache's codec and offload settings ask for: full pages
    /// older than the residual window packed, pages before the last `hotPages` cold. Only pages whose
    /// form changes are rewritten (into new pages: a page shared with a fork is never changed in place).
    /// Each page is committed to the table as soon as it changes, so a failed cold write (a full disk)
    /// leaves a consistent cache: the page that could not go cold simply stays hot.
    func seal(stream i: Int) throws {
        let ps = pool.pageSize
        let count = tables[i].count, pageCount = tables[i].pages.count
        let packable = codec.map { max(0, count - $0.residual) / ps } ?? 0  // leading pages that must be packed
        let hotFrom = offload.map { max(0, pageCount - $0.hotPages) } ?? 0  // pages before this go cold
        var scratch: PagePool.Scratch?
        for pi in 0..<max(packable, hotFrom) {
            var page = tables[i].pages[pi]
            if pi < packable, pool.format(page) != codecIndex {
                // Needs packing with this cache's codec: from a raw page, or via Float32 rows.
                var raw = page
                if pool.kind(page) != .raw {
                    if scratch == nil { scratch = PagePool.Scratch(pool) }
                    guard let r = pool.unpack(page, scratch!) else { try pool.checkIntegrity(); continue }
                    raw = r
                }
                let packed = pool.pack(raw, codec: codecIndex)
                if raw != page { pool.release(raw) }
                pool.release(page); page = packed
                tables[i].pages[pi] = page
            }
            if pi < hotFrom, pool.kind(page) != .cold {
                let cold = try pool.offload(page)
                pool.release(page)
                tables[i].pages[pi] = cold
            }
        }
    }

    /// Seals a stream after a write, keeping the first failure for `pool.checkIntegrity()`: the writer
    /// (a forward pass, an eviction) goes on with a consistent cache and its caller reports the error.
    func sealRecordingFailure(stream i: Int) {
        do { try seal(stream: i) } catch let e as KVCacheError { pool.record(e) } catch {
            pool.record(.coldStore("\(error)"))
        }
    }

    /// Removes every token and returns all pages to the pool.
    public func reset() {
        for i in tables.indices {
            for p in tables[i].pages { pool.release(p) }
            tables[i] = PageTable()
        }
        nextPosition = 0
        observations?.reset()
    }

    // MARK: Accounting

    /// Bytes per live token of a raw page: K and V rows plus the position and token id each slot records.
    public var bytesPerTokenSlot: Int { 2 * headDim * MemoryLayout<Float>.size + 2 * MemoryLayout<Int32>.size }

    /// Bytes held by live tokens across all streams: K/V data as stored (Float32 rows, packed codes with
    /// their scales and zero points, or compressed cold payloads) plus 8 bytes of metadata per slot.
    public var liveTokenBytes: Int { kvDataBytes + totalSlots * 2 * MemoryLayout<Int32>.size }

    /// K/V data bytes as stored, without slot metadata: what the compression ratio against fp16 measures.
    public var kvDataBytes: Int {
        var s = 0
        for t in tables {
            for (pi, p) in t.pages.enumerated() { s += pool.dataBytes(p, slots: min(pool.pageSize, t.count - pi * pool.pageSize)) }
        }
        return s
    }

    /// Live K/V data split by where it sits: hot Float32 rows, hot packed pages, cold compressed payloads
    /// (and the uncompressed size of those payloads, for the LZ4 ratio).
    public var byteBreakdown: (raw: Int, packed: Int, cold: Int, coldUncompressed: Int) {
        var r = 0, p = 0, c = 0, cu = 0
        for t in tables {
            for (pi, page) in t.pages.enumerated() {
                let n = pool.dataBytes(page, slots: min(pool.pageSize, t.count - pi * pool.pageSize))
                switch pool.kind(page) {
                case .raw: r += n
                case .packed: p += n
                case .cold: c += n; cu += pool.coldPayload(page)
                }
            }
        }
        return (r, p, c, cu)
    }

    /// Bytes of the pages this cache's tables point to, as allocated (a page shared with a fork counts once
    /// per owner; cold pages count their compressed payload).
    public var pageBytes: Int {
        tables.reduce(0) { a, t in a + t.pages.reduce(0) { $0 + pool.bytes($1) + (pool.kind($1) == .cold ? pool.dataBytes($1, slots: 0) : 0) } }
    }

    /// Total tokens over all (layer, head) streams.
    public var totalSlots: Int { tables.reduce(0) { $0 + $1.count } }

    /// The tokens of one stream, in order: (position, token id).
    public func slots(layer: Int, head: Int) -> [(position: Int32, token: Int32)] {
        let t = table(layer: layer, head: head)
        var out: [(Int32, Int32)] = []
        out.reserveCapacity(t.count)
        for (pi, page) in t.pages.enumerated() {
            let n = min(pool.pageSize, t.count - pi * pool.pageSize)
            for s in 0..<n { out.append((pool.positions(page)[s], pool.tokenIds(page)[s])) }
        }
        return out
    }
}

/// Chooses which pages of a stream a block of queries reads (query-aware sparse attention such as Quest).
/// A policy returns one from compression; whoever holds the cache passes it to each attention call.
public protocol PageSelector: AnyObject, Sendable {
    /// Ascending page indices of stream (layer, head), out of `pageCount`, to read for `rows` query rows
    /// `q` (`[rows][headDim]`, already scaled by 1/√headDim) of `tokens` query tokens.
    func select(layer: Int, head: Int, pageCount: Int, q: UnsafePointer<Float>, rows: Int, tokens: Int) -> [Int]
    /// Whether blocks of `tokens` query tokens at `layer` read every page by design (dense layers, dense prefill).
    func readsEveryPage(layer: Int, tokens: Int) -> Bool
    /// Share of the pages present that attention blocks have read so far (1 = dense attention).
    var readFraction: Double { get }
}

extension PageSelector {
    public func readsEveryPage(layer: Int, tokens: Int) -> Bool { false }
}
