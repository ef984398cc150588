import ArgumentParser
import Foundation
import KVCache
import Policies

/// Flags that choose how cache pages are stored: codec (`--quant`) and the LZ4 cold tier (`--offload`).
struct StorageOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Page codec: fp32 (none), \(CodecRegistry.shared.names.filter { $0 != "fp32" }.joined(separator: ", ")), NAME:param=value or KEYS/VALUES such as int4/fp16 (see 'kvkit policies')."
        ))
    var quant: String = "fp32"

    @Option(help: "Move pages beyond --hot-pages per stream to a compressed store: lz4.")
    var offload: String?

    @Option(help: "With --offload: pages per (layer, KV head) stream kept hot (most recent first).")
    var hotPages: Int = 4

    @Option(help: "With --offload: keep cold pages in a file in this folder instead of memory.")
    var offloadDir: String?

    /// The codecs `--quant` lists (nil = fp32), mistakes as one-line usage errors.
    func codecs() throws -> [CacheCodec?] {
        do {
            let items = splitSpecList(quant)
            guard !items.contains(where: \.isEmpty) else { throw PolicyError.badQuant("--quant has an empty item; write e.g. fp16,int8,kivi2") }
            return try items.map { try CodecRegistry.shared.make($0) }
        } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
    }

    /// The offload settings, or nil; a cold store in `--offload-dir` is created in `pool`.
    func offloadConfig() throws -> OffloadConfig? {
        guard let offload else {
            if offloadDir != nil { throw fail("--offload-dir needs --offload lz4", code: ExitCodes.usage) }
            return nil
        }
        guard offload == "lz4" else { throw fail("--offload '\(offload)' is unknown; the cold tier supports: lz4", code: ExitCodes.usage) }
        guard hotPages >= 1 else { throw fail("--hot-pages must be at least 1 (got \(hotPages)): the page being written stays hot", code: ExitCodes.usage) }
        return OffloadConfig(hotPages: hotPages)
    }

    /// The cold store for `--offload-dir` (memory when not given).
    func coldStore() throws -> ColdStore {
        guard let dir = offloadDir else { return ColdStore() }
        do { return try ColdStore(directory: dir) } catch let e as KVCacheError { throw fail(e.description, code: ExitCodes.cantCreate) }
    }
}
