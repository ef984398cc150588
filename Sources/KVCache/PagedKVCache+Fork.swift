/// Copy-on-write forks and slot selection with compaction.
///
/// A fork shares every page with its parent by reference count. Nothing is copied until one side writes:
/// `append` into a shared, partly filled last page copies that page first, and `keep` builds each new
/// page only where its contents change, reusing (sharing) pages whose slots are kept unchanged. So one
/// prefill can serve many policies, each paying only for the pages its eviction touches.
extension PagedKVCache {
    /// A new cache sharing every page with this one (each page's reference count goes up by one).
    public func fork() -> PagedKVCache {
        let f = PagedKVCache(layers: layers, kvHeads: kvHeads, headDim: headDim, group: group, pageSize: pageSize, pool: pool)
        f.replaceTables(tables)
        for t in tables { for p in t.pages { pool.retain(p) } }
        f.nextPosition = nextPosition
        f.windows = windows
        f.windowFreedBytes = windowFreedBytes
        f.observations = observations
        f.inherit(codec: codec, index: codecSlot, offload: offload)
        return f
    }

    /// Keeps only the slots at `indices` (ascending, each < count) of stream (layer, head), packed in order;
    /// emptied pages return to the pool. Pages whose contents do not change are kept as they are (still
    /// shared with any fork); changed pages are written fresh, never in place, so forks are unaffected.
    public func keep(layer: Int, head: Int, indices: [Int]) {
        let idx = layer * kvHeads + head
        let old = tables[idx]
        let ps = pool.pageSize, hd = headDim
        precondition(zip(indices, indices.dropFirst()).allSatisfy { $0 < $1 }, "kept indices must be ascending")
        precondition(indices.last.map { $0 < old.count } ?? true, "kept index out of range")
        if indices.count == old.count { return }  // ascending and in range: every slot is kept
        var new = PageTable()
        var start = 0
        // Source rows of packed and cold pages are decoded one page at a time (the last one is cached).
        let scratch = PagePool.Scratch(pool)
        var decodedPage: Int32 = -1
        var decoded: (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)?
        func rows(_ sp: Int32) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)? {
            if sp != decodedPage { decoded = pool.read(sp, scratch); decodedPage = sp }
            return decoded
        }
        while start < indices.count {
            let end = min(start + ps, indices.count)
            let dp = start / ps
            // Unchanged page: the destination page would hold exactly the source page's slots, in place.
            if dp < old.pages.count, indices[start] == dp * ps, indices[end - 1] == dp * ps + (end - start - 1),
                end - start == min(ps, old.count - dp * ps)
            {
                pool.retain(old.pages[dp])
                new.pages.append(old.pages[dp])
            } else {
                let page = pool.allocate()
                for (k, src) in indices[start..<end].enumerated() {
                    let sp = old.pages[src / ps], ss = src % ps
                    if let r = rows(sp) {
                        (pool.keys(page) + k * hd).update(from: r.keys + ss * hd, count: hd)
                        (pool.values(page) + k * hd).update(from: r.values + ss * hd, count: hd)
                    } else {  // a corrupt cold page: zero rows, and the error is thrown at the next integrity check
                        (pool.keys(page) + k * hd).update(repeating: 0, count: hd)
                        (pool.values(page) + k * hd).update(repeating: 0, count: hd)
                    }
                    pool.positions(page)[k] = pool.positions(sp)[ss]
                    pool.tokenIds(page)[k] = pool.tokenIds(sp)[ss]
                }
                new.pages.append(page)
            }
            start = end
        }
        new.count = indices.count
        for p in old.pages { pool.release(p) }
        setTable(idx, new)
        if codec != nil || offload != nil { sealRecordingFailure(stream: idx) }
        observations?.keep(stream: idx, indices: indices)
    }

    /// Drops the slots at `indices` (any order) of stream (layer, head).
    public func drop(layer: Int, head: Int, indices: Set<Int>) {
        let n = count(layer: layer, head: head)
        keep(layer: layer, head: head, indices: (0..<n).filter { !indices.contains($0) })
    }

    /// Pages held by this cache's tables, counted once each (a page shared with a fork is counted here too).
    public var uniquePages: Int { Set(tables.flatMap(\.pages)).count }

    /// Pages this cache shares with some other owner (a fork).
    public var sharedPages: Int { Set(tables.flatMap(\.pages)).filter { pool.refCount($0) > 1 }.count }
}
