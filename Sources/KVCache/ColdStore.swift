import CLZ4
import Foundation

/// Where the LZ4-compressed payloads of cold pages live: process memory, or one append-only file in a
/// directory the user chose (`--offload-dir`). Freed blobs of the file are not reused (the file is a log
/// and is deleted with the store); memory blobs are returned to the system.
public final class ColdStore: @unchecked Sendable {
    public let path: String?
    private let fd: Int32
    private var end: Int64 = 0
    private let lock = NSLock()

    /// An in-memory store.
    public init() { path = nil; fd = -1 }

    /// A store backed by a new file in `directory` (created if missing).
    public init(directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw KVCacheError.coldStore("cannot create --offload-dir \(directory): \(error.localizedDescription)")
        }
        let p = (directory as NSString).appendingPathComponent("kvkit-cold-\(getpid())-\(UUID().uuidString.prefix(8)).lz4")
        let f = open(p, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        guard f >= 0 else {
            throw KVCacheError.coldStore("cannot write in --offload-dir \(directory) (\(String(cString: strerror(errno)))); choose a writable folder")
        }
        path = p; fd = f; owned = true
    }

    /// A store writing into an existing file or device that it neither creates nor deletes (tests use
    /// `/dev/full` to see a full disk).
    init(existing p: String) throws {
        let f = open(p, O_RDWR)
        guard f >= 0 else { throw KVCacheError.coldStore("cannot open \(p): \(String(cString: strerror(errno)))") }
        path = p; fd = f; owned = false
    }

    /// Whether the file is this store's own (deleted with it).
    private var owned = false

    deinit {
        if fd >= 0 { close(fd); if owned, let path { unlink(path) } }
    }

    public var inFile: Bool { fd >= 0 }

    /// Bytes written to the file so far (file stores).
    public var fileBytes: Int64 { lock.lock(); defer { lock.unlock() }; return end }

    /// Appends a blob to the file and returns its offset.
    func append(_ p: UnsafeRawPointer, _ n: Int) throws -> Int64 {
        lock.lock(); defer { lock.unlock() }
        var done = 0
        while done < n {
            let w = pwrite(fd, p + done, n - done, off_t(end + Int64(done)))
            guard w > 0 else {
                throw KVCacheError.coldStore(
                    "cannot write the offload file \(path ?? "") (\(String(cString: strerror(errno)))); free space there or choose another --offload-dir")
            }
            done += w
        }
        let at = end
        end += Int64(n)
        return at
    }

    /// Reads `n` bytes at `offset`; false when the file is shorter (truncated).
    func read(_ offset: Int64, _ n: Int, into p: UnsafeMutableRawPointer) -> Bool {
        var done = 0
        while done < n {
            let r = pread(fd, p + done, n - done, off_t(offset + Int64(done)))
            if r <= 0 { return false }
            done += r
        }
        return true
    }
}

/// LZ4 block compression of page payloads, and the checksum that guards them.
enum LZ4Block {
    static func bound(_ n: Int) -> Int { Int(LZ4_compressBound(Int32(n))) }

    /// Compresses `n` bytes into `dst` (capacity `bound(n)`); returns the compressed size.
    static func compress(_ src: UnsafeRawPointer, _ n: Int, into dst: UnsafeMutableRawPointer, capacity: Int) -> Int {
        Int(LZ4_compress_default(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self), Int32(n), Int32(capacity)))
    }

    /// Decompresses into exactly `n` bytes; false when the block is malformed or of another size.
    static func decompress(_ src: UnsafeRawPointer, _ c: Int, into dst: UnsafeMutableRawPointer, _ n: Int) -> Bool {
        LZ4_decompress_safe(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self), Int32(c), Int32(n)) == Int32(n)
    }
}

/// A 64-bit checksum of a byte range: four multiply-rotate lanes over 8-byte words (the structure of
/// xxHash64, with its primes) and a final avalanche. Fast enough (several GB/s) to check every cold page
/// on every read; it detects accidental corruption and truncation, not tampering.
@inline(__always) func checksum64(_ p: UnsafeRawPointer, _ n: Int) -> UInt64 {
    let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F, p3: UInt64 = 0x1656_67B1_9E37_79F9
    @inline(__always) func round(_ acc: UInt64, _ w: UInt64) -> UInt64 {
        let a = acc &+ w &* p2
        return ((a << 31) | (a >> 33)) &* p1
    }
    var a0 = p1 &+ p2, a1 = p2, a2: UInt64 = 0, a3 = 0 &- p1
    var i = 0
    while i + 32 <= n {
        a0 = round(a0, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        a1 = round(a1, p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
        a2 = round(a2, p.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
        a3 = round(a3, p.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
        i += 32
    }
    var h = ((a0 << 1) | (a0 >> 63)) &+ ((a1 << 7) | (a1 >> 57)) &+ ((a2 << 12) | (a2 >> 52)) &+ ((a3 << 18) | (a3 >> 46))
    h = h &+ UInt64(n)
    while i < n {
        h = (h ^ (UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &* p3)) &* p1
        i += 1
    }
    h ^= h >> 33; h = h &* p2; h ^= h >> 29; h = h &* p3; h ^= h >> 32
    return h
}
