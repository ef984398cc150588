#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory map of a whole file. The 93 MB model is never copied: tensors are read in place.
/// Immutable after init and unmapped in deinit, so sharing it across threads is safe.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer
    public let size: Int

    public init(path: String) throws {
        // Non-blocking: opening a FIFO must not wait for a writer (it is refused below as not a regular file).
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw GGUFError.truncated(what: "header", offset: 0, fileSize: 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.base = UnsafeRawPointer(p)
        self.size = size
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// A bounds-checked little-endian cursor over a mapped file: every read is checked before it is made.
struct ByteCursor {
    let base: UnsafeRawPointer
    let size: Int
    var offset: Int

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, offset <= size, n <= size - offset else {
            throw GGUFError.truncated(what: what(), offset: offset, fileSize: size)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let n = try read(UInt64.self, what())
        guard n <= UInt64(size - offset) else { throw GGUFError.truncated(what: what(), offset: offset, fileSize: size) }
        let len = Int(n)
        defer { offset += len }
        return String(decoding: UnsafeRawBufferPointer(start: base + offset, count: len), as: UTF8.self)
    }
}
