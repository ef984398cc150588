import KVCache

/// `kivi2` / `kivi4` — KIVI (Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV
/// Cache", ICML 2024). Keys are quantized per channel (one (scale, min) per channel over `group` tokens:
/// key outliers sit in fixed channels), values per token (one pair per `group` channels), both
/// asymmetric with zero points; the most recent `residual` tokens (default 128) stay in full precision
/// until their page leaves that window. Defaults follow the paper: group 32, residual 128.
///
/// Here a key group is the rows of one page, so the key group equals the page size when `group` does
/// (`kvkit` sets the page size to the group for KIVI unless `--page-size` is given). Error ≤ half a step
/// of the group's range: (max − min)/6 at 2 bits, /30 at 4 bits, plus Float16 rounding of scale and min.
public enum KIVICodec {
    /// KIVI's settings; the defaults are the paper's.
    public struct Settings: Configurable {
        @Parameter("group", 2...4096, "tokens per key (scale, min) per channel; channels per value pair") public var group = 32
        @Parameter("residual", 0...1_000_000, "most recent tokens kept in full precision") public var residual = 128
        public init() {}
    }

    static func make(bits: Int, _ s: Settings) -> CacheCodec {
        let defaults = Settings(), g = s.group, r = s.residual
        var name = "kivi\(bits)"
        let extra = [g != defaults.group ? "group=\(g)" : nil, r != defaults.residual ? "residual=\(r)" : nil].compactMap { $0 }
        if !extra.isEmpty { name += ":" + extra.joined(separator: ",") }
        return CacheCodec(
            name: name,
            keys: AffineCodec(name: "kivi\(bits)-keys:group=\(g)", bits: bits, axis: .channel, group: g),
            values: AffineCodec(name: "kivi\(bits)-values:group=\(g)", bits: bits, axis: .token, group: g),
            residual: r, preferredPageSize: g)
    }

    public static let info2 = CodecInfo(
        name: "kivi2", summary: "KIVI 2-bit: keys per channel, values per token, full-precision residual",
        paper: "Liu et al. 2024 (arXiv:2402.02750)", settings: Settings.self
    ) { make(bits: 2, $0) }
    public static let info4 = CodecInfo(
        name: "kivi4", summary: "KIVI 4-bit: keys per channel, values per token, full-precision residual",
        paper: "Liu et al. 2024 (arXiv:2402.02750)", settings: Settings.self
    ) { make(bits: 4, $0) }
}
