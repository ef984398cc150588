import ArgumentParser
import Foundation
import KVCache
import Models
import Policies
import Runs
import TensorMath

struct BenchQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-quant",
        abstract: "Per codec on the model's real K/V pages: quantize / dequantize GB/s, LZ4 pack / unpack GB/s and ratio, decode tokens/s against fp32.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length in tokens.")
    var length: Int = 1024

    @Option(help: "Codecs, comma-separated (default: every registered codec).")
    var quant: String?

    @Option(help: "Tokens decoded per codec for the tokens/s figure.")
    var decodeTokens: Int = 32

    @Option(help: "Hot pages per stream for the decode run with the LZ4 cold tier.")
    var hotPages: Int = 4

    func run() throws {
        let codecs: [CacheCodec]
        do {
            codecs = try (quant.map(splitSpecList) ?? CodecRegistry.shared.names).map {
                try CodecRegistry.shared.make($0) ?? CacheCodec(name: "fp32", keys: FP32Codec(), values: FP32Codec())
            }
        } catch let e as PolicyError { throw fail(e.description, code: ExitCodes.usage) }
        guard hotPages >= 1, decodeTokens >= 1 else { throw fail("--hot-pages and --decode-tokens must be at least 1", code: ExitCodes.usage) }
        let model = try modelOptions.load()
        let ids = PolicyBench.prompt(model, tokens: length)
        let pageSize = modelOptions.pageSize(for: codecs)
        let cache = model.makeCache(pageSize: pageSize)
        let promptLogits = try model.forward(ids, cache: cache)
        let pool = cache.pool, hd = cache.headDim
        // Every full page of the prompt's cache: real K/V rows of every layer and head.
        let pages = cache.tables.flatMap { t in t.pages.prefix(t.count / pageSize) }
        let rawBytes = Double(pages.count * pageSize * hd * 2 * 4)
        let clock = ContinuousClock()
        func best(_ f: () throws -> Void) rethrows -> Double {
            var t = Double.infinity
            for _ in 0..<3 { t = min(t, try clock.measure { try f() }.seconds) }
            return t
        }
        print(
            "prompt \(ids.count) tokens, page size \(pageSize), \(pages.count) full pages (\(formatBytes(Int(rawBytes))) of Float32 K/V), threads \(modelOptions.threads)"
        )
        print(
            "codec        bytes/token  ×fp16  quantize_GB/s  dequantize_GB/s  lz4_ratio  lz4_pack_GB/s  lz4_unpack_GB/s  decode_tok/s  vs_fp32  with_lz4_tok/s")
        var fp32Rate = 0.0
        for codec in codecs {
            let index = pool.register(codec)
            let payload = codec.payloadBytes(pageSize: pageSize, headDim: hd)
            // Quantize: every page, K and V (GB/s of Float32 input).
            var packed: [Int32] = []
            let tq = best {
                for p in packed { pool.release(p) }
                packed = pages.map { pool.pack($0, codec: index) }
            }
            // Dequantize into one page of scratch (GB/s of Float32 output).
            let scratch = PagePool.Scratch(pool)
            var sink: Float = 0
            let td = best { for p in packed { if let r = pool.read(p, scratch) { sink += r.keys[0] + r.values[0] } } }
            // LZ4: compress every packed page into the cold store, then read each back (decompress + checksum + decode).
            var cold: [Int32] = []
            let tc = try best {
                for p in cold { pool.release(p) }
                cold = try packed.map { try pool.offload($0) }
            }
            let coldBytes = cold.reduce(0) { $0 + pool.dataBytes($1, slots: pageSize) }
            let restoreScratch = PagePool.Scratch(pool)
            var back: [Int32] = []
            let tu = try best {
                for p in back { pool.release(p) }
                back = try cold.map { try pool.restore($0, restoreScratch) }
            }
            for p in packed + cold + back { pool.release(p) }
            // Decode speed: a fork stored with this codec (and again with the cold tier) answers `decodeTokens` tokens.
            func decodeRate(offload: OffloadConfig?) throws -> Double {
                let f = cache.fork()
                try f.quantize(codec.name == "fp32" ? nil : codec)
                if let offload { try f.setOffload(offload) }
                return try PolicyBench.greedyDecodeRate(model, cache: f, from: promptLogits, tokens: decodeTokens)
            }
            let rate = try decodeRate(offload: nil)
            let coldRate = try decodeRate(offload: OffloadConfig(hotPages: hotPages))
            if codec.name == "fp32" { fp32Rate = rate }
            let perToken = Double(payload) / Double(pageSize) * Double(cache.layers * cache.kvHeads)
            let fp16PerToken = Double(2 * hd * 2 * cache.layers * cache.kvHeads)
            print(
                codec.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(
                        format: " %11.0f  %5.2f  %13.2f  %15.2f  %9.2f  %13.2f  %15.2f  %12.1f  %7@  %14.1f",
                        perToken, fp16PerToken / perToken, rawBytes / tq / 1e9, rawBytes / td / 1e9,
                        Double(payload * pages.count) / Double(coldBytes), Double(payload * pages.count) / tc / 1e9,
                        Double(payload * pages.count) / tu / 1e9, rate, fp32Rate > 0 ? String(format: "%.2f×", rate / fp32Rate) : "-", coldRate))
            if sink.isNaN { print("(NaN in decoded pages)") }
        }
        print(
            "bytes/token: K/V data of one token over all \(cache.layers) layers × \(cache.kvHeads) KV heads as packed (residual excluded); LZ4 over the packed payload; unpack includes the checksum."
        )
    }
}
