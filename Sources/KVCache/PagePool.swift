/// A pool of fixed-size K/V pages with a free list and per-page reference counts.
///
/// Page layout (one allocation, 64-byte aligned), for `pageSize` slots of one KV head:
///   K          [pageSize][headDim] Float32
///   V          [pageSize][headDim] Float32
///   positions  [pageSize] Int32   original token position (RoPE was applied at this position)
///   tokenIds   [pageSize] Int32
/// Why pages: a (layer, KV head) stream grows and shrinks by whole pages, so eviction can return memory
/// to the pool and forks can share pages by reference count; the free list is a LIFO stack so the most
/// recently freed (cache-warm) page is reused first.
public final class PagePool: @unchecked Sendable {
    public let headDim: Int
    public let pageSize: Int
    /// Bytes of one page: K and V data plus the per-slot position and token id.
    public let pageBytes: Int

    private var storage: [UnsafeMutableRawPointer] = []  // page id → memory
    private var refCounts: [Int32] = []                  // page id → owners; 0 = on the free list
    private var freeList: [Int32] = []

    public init(headDim: Int, pageSize: Int) {
        precondition(headDim > 0 && pageSize > 0, "page geometry must be positive")
        self.headDim = headDim
        self.pageSize = pageSize
        pageBytes = pageSize * (2 * headDim * MemoryLayout<Float>.size + 2 * MemoryLayout<Int32>.size)
    }

    deinit { for p in storage { p.deallocate() } }

    /// Pages ever created (held by the pool, in use or free).
    public var capacityPages: Int { storage.count }
    /// Pages with at least one owner.
    public var livePages: Int { storage.count - freeList.count }
    /// Bytes the pool has allocated from the system (in use or on the free list).
    public var allocatedBytes: Int { storage.count * pageBytes }
    /// Bytes of pages that some cache holds.
    public var liveBytes: Int { livePages * pageBytes }

    /// A page with reference count 1, from the free list or newly allocated.
    public func allocate() -> Int32 {
        if let id = freeList.popLast() {
            refCounts[Int(id)] = 1
            return id
        }
        storage.append(UnsafeMutableRawPointer.allocate(byteCount: pageBytes, alignment: 64))
        refCounts.append(1)
        return Int32(storage.count - 1)
    }

    public func retain(_ id: Int32) {
        precondition(refCounts[Int(id)] > 0, "retain of a free page")
        refCounts[Int(id)] += 1
    }

    /// Drops one owner; the page returns to the free list when none is left.
    public func release(_ id: Int32) {
        precondition(refCounts[Int(id)] > 0, "page \(id) released twice")
        refCounts[Int(id)] -= 1
        if refCounts[Int(id)] == 0 { freeList.append(id) }
    }

    public func refCount(_ id: Int32) -> Int { Int(refCounts[Int(id)]) }

    /// The free list, for audits in tests.
    var freePages: [Int32] { freeList }


    /// Copies a whole page (data and slot metadata).
    public func copyPage(from src: Int32, to dst: Int32) {
        storage[Int(dst)].copyMemory(from: storage[Int(src)], byteCount: pageBytes)
    }

    // MARK: Slot access

    @inline(__always) public func keys(_ id: Int32) -> UnsafeMutablePointer<Float> {
        storage[Int(id)].assumingMemoryBound(to: Float.self)
    }
    @inline(__always) public func values(_ id: Int32) -> UnsafeMutablePointer<Float> {
        storage[Int(id)].assumingMemoryBound(to: Float.self) + pageSize * headDim
    }
    @inline(__always) public func positions(_ id: Int32) -> UnsafeMutablePointer<Int32> {
        (storage[Int(id)] + 2 * pageSize * headDim * MemoryLayout<Float>.size).assumingMemoryBound(to: Int32.self)
    }
    @inline(__always) public func tokenIds(_ id: Int32) -> UnsafeMutablePointer<Int32> {
        positions(id) + pageSize
    }
}
