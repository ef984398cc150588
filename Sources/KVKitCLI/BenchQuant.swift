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
        var bench = CodecBench(model: model)
        bench.pageSize = modelOptions.pageSize(for: codecs)
        bench.decodeTokens = decodeTokens; bench.hotPages = hotPages
        let r = try bench.measure(prompt: ids, codecs: codecs)
        print(
            "prompt \(r.promptTokens) tokens, page size \(bench.pageSize), \(r.fullPages) full pages (\(formatBytes(r.float32Bytes)) of Float32 K/V), threads \(modelOptions.threads)"
        )
        print(
            "codec        bytes/token  ×fp16  quantize_GB/s  dequantize_GB/s  lz4_ratio  lz4_pack_GB/s  lz4_unpack_GB/s  decode_tok/s  vs_fp32  with_lz4_tok/s")
        let fp32Rate = r.rows.first { $0.codec == "fp32" }?.decodeTokensPerSecond ?? 0
        for row in r.rows {
            print(
                row.codec.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(
                        format: " %11.0f  %5.2f  %13.2f  %15.2f  %9.2f  %13.2f  %15.2f  %12.1f  %7@  %14.1f",
                        row.bytesPerToken, row.ratioVsFP16, row.quantizeGBs, row.dequantizeGBs, row.lz4Ratio, row.lz4PackGBs, row.lz4UnpackGBs,
                        row.decodeTokensPerSecond, fp32Rate > 0 ? String(format: "%.2f×", row.decodeTokensPerSecond / fp32Rate) : "-",
                        row.coldDecodeTokensPerSecond))
            if row.sawNaN { print("(NaN in decoded pages)") }
        }
        print(
            "bytes/token: K/V data of one token over all \(r.layers) layers × \(r.kvHeads) KV heads as packed (residual excluded); LZ4 over the packed payload; unpack includes the checksum."
        )
    }
}
