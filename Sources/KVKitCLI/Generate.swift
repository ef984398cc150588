import ArgumentParser
import Foundation
import KVCache
import Models
import Runs

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate an answer greedily, streaming it, then print speed and KV-cache bytes.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var policyOptions: PolicyOptions
    @OptionGroup var storage: StorageOptions

    @Option(help: "The user message.")
    var prompt: String?

    @Option(help: "Read the user message from this file instead of --prompt.")
    var promptFile: String?

    @Option(help: "Also write the run's figures (tokens, speed, KV bytes, peak memory) as JSON to this file.")
    var report: String?

    @Option(help: "System prompt (default: the model's own, from its chat template).")
    var system: String?

    @Option(parsing: .unconditional, help: "Maximum tokens to generate (1 to 1,048,576, and within the model's context).")
    var maxTokens: Int = 64

    @Flag(help: "Send the prompt as raw text, without the chat template.")
    var raw = false

    @Option(parsing: .unconditional, help: "Keep only the first N prompt tokens (for experiments at an exact length).")
    var truncatePrompt: Int?

    func validate() throws {
        guard (1...(1 << 20)).contains(maxTokens) else { throw ValidationError("--max-tokens must be from 1 to 1048576 (got \(maxTokens))") }
        guard (prompt == nil) != (promptFile == nil) else { throw ValidationError("give exactly one of --prompt TEXT or --prompt-file PATH") }
    }

    func run() throws {
        var user = prompt ?? ""
        if let f = promptFile {
            guard let s = try? String(contentsOfFile: f, encoding: .utf8) else {
                throw fail("cannot read prompt file \(f) as UTF-8 text; check the path", code: ExitCodes.noInput)
            }
            user = s
        }
        let (spec, policy, budget) = try policyOptions.resolve()
        let codecs = try storage.codecs()
        guard codecs.count == 1 else { throw fail("generate takes one --quant codec (got \(codecs.count)); 'kvkit run' sweeps several", code: ExitCodes.usage) }
        let codec = codecs[0], offload = try storage.offloadConfig()
        let coldStore = try storage.coldStore()
        // An unwritable --report fails now, before the model runs, not after the answer; an existing
        // report is opened without truncating it, so a run that fails later leaves it as it was.
        if let path = report {
            let fd = open(path, O_WRONLY | O_CREAT, 0o644)
            guard fd >= 0 else {
                throw fail("cannot write --report \(path) (\(String(cString: strerror(errno)))); choose a writable path", code: ExitCodes.cantCreate)
            }
            close(fd)
        }
        let model = try modelOptions.load()
        let text = raw ? user : model.chatTemplate.prompt(user: user, system: system)
        var ids = model.tokenizer.encode(text, addBOS: true)
        if let n = truncatePrompt {
            guard n >= 1 else { throw fail("--truncate-prompt must be at least 1 (got \(n))", code: ExitCodes.usage) }
            ids = Array(ids.prefix(n))
        }
        guard !ids.isEmpty else { throw fail("the prompt is empty", code: ExitCodes.usage) }
        let needed = ids.count + maxTokens
        guard needed <= model.config.contextLength else {
            throw fail(
                "prompt (\(ids.count) tokens) plus --max-tokens \(maxTokens) exceeds the model's context of \(model.config.contextLength); shorten the prompt or lower --max-tokens",
                code: ExitCodes.usage)
        }
        let pageSize = modelOptions.pageSize(for: [codec])
        let cache = model.makeCache(pageSize: pageSize)
        cache.pool.coldStore = coldStore
        var pending: [UInt8] = []
        let out = FileHandle.standardOutput
        var writeError: Error?
        func emit(_ bytes: [UInt8]) {
            guard writeError == nil else { return }
            do { try out.write(contentsOf: Data(bytes)) } catch { writeError = error }
        }
        let statsBox = StatsBox()
        let hooks = policyOptions.hooks(model: model, policy: policy, budget: budget, stats: statsBox, promptTokens: ids.count, codec: codec, offload: offload)
        let g: Generation
        do {
            g = try model.generate(prompt: ids, cache: cache, maxTokens: maxTokens, hooks: hooks) { token in
                if model.tokenizer.stopIds.contains(token) { return }
                pending += model.tokenizer.bytes(of: token)
                // Emit only complete UTF-8 sequences so multi-byte characters split across tokens print whole.
                var cut = pending.count
                while cut > 0 && cut > pending.count - 4 && (pending[cut - 1] & 0xC0) == 0x80 { cut -= 1 }
                if cut > 0 && pending[cut - 1] >= 0xC0 { cut -= 1 }
                if cut > 0 { emit(Array(pending[..<cut])); pending.removeFirst(cut) }
            }
        } catch let e as KVCacheError { emit(pending + [0x0A]); throw fail(e.description, code: ExitCodes.ioError) }
        emit(pending + [0x0A])
        if let writeError {
            throw fail("cannot write the answer to standard output (\(RunDirectory.reason(writeError))); the answer is incomplete", code: ExitCodes.ioError)
        }
        let stats = """
            prompt \(g.promptTokens) tokens, generated \(g.tokens.count)\(g.stoppedAtEOS ? " (end of turn)" : "")
            prefill \(String(format: "%.1f", g.prefillTokensPerSecond)) tok/s, decode \(String(format: "%.1f", g.decodeTokensPerSecond)) tok/s, threads \(modelOptions.threads)
            policy \(spec) budget \(budget): \(g.compressions) compression(s), \(String(format: "%.1f", g.compressSeconds * 1000)) ms\(statsBox.last.map { ", last kept \($0.slotsAfter) of \($0.slotsBefore) slots" } ?? "")
            \(storageLine(cache))\(readLine(g.reads))KV cache: \(cache.totalSlots) slots over \(cache.layers * cache.kvHeads) streams (mean \(cache.totalSlots / (cache.layers * cache.kvHeads)) tokens), live \(formatBytes(cache.liveTokenBytes)), pages \(formatBytes(cache.pageBytes)), pool allocated \(formatBytes(cache.pool.allocatedBytes)), peak pages \(formatBytes(g.peakKVPageBytes))\(cache.windows.contains { $0 != nil } ? ", freed by sliding windows \(formatBytes(cache.windowFreedBytes))" : "")
            """
        FileHandle.standardError.write(Data((stats + "\n").utf8))
        if let path = report {
            let r = GenerateReport(
                promptTokens: g.promptTokens, generatedTokens: g.tokens.count, threads: modelOptions.threads,
                pageSize: pageSize, prefillTokensPerSecond: g.prefillTokensPerSecond,
                decodeTokensPerSecond: g.decodeTokensPerSecond, kvLiveTokenBytes: cache.liveTokenBytes,
                kvPageBytes: cache.pageBytes, kvPoolAllocatedBytes: cache.pool.allocatedBytes,
                weightBytes: model.weightBytes, modelFileBytes: model.file.file.size,
                prefillChunk: model.prefillChunk, peakResidentBytes: ProcessMemory.peakResidentBytes(),
                policy: spec.description, budget: budget.description, keptSlots: cache.totalSlots,
                peakKVPageBytes: g.peakKVPageBytes, compressions: g.compressions, readFraction: g.reads?.readFraction ?? 1,
                quant: cache.codec?.name ?? "fp32", kvDataBytes: cache.kvDataBytes, ratioVsFP16: ratioVsFP16(cache),
                hotBytes: cache.byteBreakdown.raw + cache.byteBreakdown.packed, coldBytes: cache.byteBreakdown.cold,
                coldUncompressedBytes: cache.byteBreakdown.coldUncompressed,
                answer: model.tokenizer.decode(g.tokens.filter { !model.tokenizer.stopIds.contains($0) }))
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            do { try enc.encode(r).write(to: URL(fileURLWithPath: path)) } catch {
                throw fail("cannot write --report \(path) (\((error as NSError).localizedDescription)); the answer above is complete", code: ExitCodes.ioError)
            }
        }
    }
}

/// Figures of one `kvkit generate` run, for scripts and tests.
struct GenerateReport: Codable {
    var promptTokens: Int, generatedTokens: Int, threads: Int, pageSize: Int
    var prefillTokensPerSecond: Double, decodeTokensPerSecond: Double
    var kvLiveTokenBytes: Int, kvPageBytes: Int, kvPoolAllocatedBytes: Int
    var weightBytes: Int, modelFileBytes: Int, prefillChunk: Int
    var peakResidentBytes: Int?
    var policy: String, budget: String, keptSlots: Int, peakKVPageBytes: Int, compressions: Int
    /// Fraction of the pages the kernel read during decoding (1 unless a read-side policy such as quest chose pages).
    var readFraction: Double
    /// The codec of full pages, K/V data bytes as stored and the ratio of their fp16 size to that.
    var quant: String, kvDataBytes: Int, ratioVsFP16: Double
    /// Of the K/V data: hot, cold (compressed) and the cold data uncompressed.
    var hotBytes: Int, coldBytes: Int, coldUncompressedBytes: Int
    var answer: String
}

private func ratioVsFP16(_ c: PagedKVCache) -> Double { Double(c.totalSlots * 2 * c.headDim * 2) / Double(max(c.kvDataBytes, 1)) }

private func storageLine(_ c: PagedKVCache) -> String {
    guard c.codec != nil || c.offload != nil else { return "" }
    let b = c.byteBreakdown
    var s = "pages: \(c.codec?.name ?? "fp32")"
    if let r = c.codec?.residual, r > 0 { s += " (last \(r) tokens in full precision)" }
    s += ", K/V data \(formatBytes(c.kvDataBytes)), \(String(format: "%.2f", ratioVsFP16(c)))× smaller than fp16"
    if c.offload != nil {
        s += "; hot \(formatBytes(b.raw + b.packed)), cold \(formatBytes(b.cold))"
        if b.cold > 0 { s += " (LZ4 \(String(format: "%.2f", Double(b.coldUncompressed) / Double(b.cold)))×)" }
    }
    return s + "\n"
}

private func readLine(_ reads: (any PageSelector)?) -> String {
    guard let reads else { return "" }
    return "pages read while decoding: \(String(format: "%.1f", reads.readFraction * 100))%\n"
}

enum ProcessMemory {
    /// Peak resident set size of this process (VmHWM), nil where /proc is unavailable.
    static func peakResidentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = line.split(separator: " ").compactMap({ Int($0) }).first
        else { return nil }
        return kb * 1024
    }
}
