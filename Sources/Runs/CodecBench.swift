import Foundation
import KVCache
import Models

/// `kvkit bench-quant` as a library session: per codec, on the real K/V pages of one prefill, the speed
/// of packing and unpacking pages, of the LZ4 cold tier, and of greedy decoding on a fork stored with the
/// codec (hot, and with the cold tier). The command line prints the report.
public struct CodecBench {
    public let model: any LanguageModel
    public var pageSize = 16
    public var decodeTokens = 32
    /// Hot pages per stream for the decode run with the cold tier.
    public var hotPages = 4

    public init(model: any LanguageModel) { self.model = model }

    /// One codec's figures (bytes per token over every layer and KV head as packed; GB/s of Float32 in or
    /// out for the codec, of packed bytes for LZ4).
    public struct Row: Sendable {
        public let codec: String
        public let bytesPerToken: Double, ratioVsFP16: Double
        public let quantizeGBs: Double, dequantizeGBs: Double
        public let lz4Ratio: Double, lz4PackGBs: Double, lz4UnpackGBs: Double
        public let decodeTokensPerSecond: Double, coldDecodeTokensPerSecond: Double
        /// Whether a decoded page held a NaN.
        public let sawNaN: Bool
    }

    public struct Report: Sendable {
        public let promptTokens: Int, fullPages: Int, float32Bytes: Int, layers: Int, kvHeads: Int
        public let rows: [Row]
    }

    /// Measures `codecs` on the cache of `prompt` (best of 3 for each timing).
    public func measure(prompt ids: [Int32], codecs: [CacheCodec]) throws -> Report {
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
        var rows: [Row] = []
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
            let perToken = Double(payload) / Double(pageSize) * Double(cache.layers * cache.kvHeads)
            let fp16PerToken = Double(2 * hd * 2 * cache.layers * cache.kvHeads)
            let lz4 = Double(payload * pages.count)
            rows.append(
                Row(
                    codec: codec.name, bytesPerToken: perToken, ratioVsFP16: fp16PerToken / perToken, quantizeGBs: rawBytes / tq / 1e9,
                    dequantizeGBs: rawBytes / td / 1e9, lz4Ratio: lz4 / Double(coldBytes), lz4PackGBs: lz4 / tc / 1e9, lz4UnpackGBs: lz4 / tu / 1e9,
                    decodeTokensPerSecond: rate, coldDecodeTokensPerSecond: coldRate, sawNaN: sink.isNaN))
        }
        return Report(
            promptTokens: ids.count, fullPages: pages.count, float32Bytes: Int(rawBytes), layers: cache.layers, kvHeads: cache.kvHeads, rows: rows)
    }
}
