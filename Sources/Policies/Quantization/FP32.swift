import KVCache

/// `fp32` — the reference: Float32 rows copied as they are (4 bytes per value, no error).
public struct FP32Codec: PageCodec {
    public var name: String { "fp32" }
    public init() {}
    public func packedBytes(rows: Int, headDim: Int) -> Int { rows * headDim * 4 }
    public func encode(_ x: UnsafePointer<Float>, rows: Int, headDim: Int, into out: UnsafeMutableRawPointer) {
        out.copyMemory(from: x, byteCount: rows * headDim * 4)
    }
    public func decode(_ p: UnsafeRawPointer, rows: Int, headDim: Int, into x: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(x).copyMemory(from: p, byteCount: rows * headDim * 4)
    }

    public static let info = CodecInfo(
        name: "fp32", summary: "Float32 pages (reference, no error)", paper: "—",
        settings: ResidualSettings.self
    ) { s in
        CacheCodec(name: "fp32", keys: FP32Codec(), values: FP32Codec(), residual: s.residual)
    }
}
