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
        var session = GenerateSession(model: model, variant: Variant(spec: spec, policy: policy, budget: budget, codec: codecs[0]))
        session.offload = try storage.offloadConfig()
        session.coldStore = try storage.coldStore()
        session.compressEvery = policyOptions.compressEvery
        session.prefillChunk = policyOptions.prefillChunk
        session.seed = policyOptions.seed
        session.pageSize = modelOptions.pageSize(for: codecs)
        let text = raw ? user : model.chatTemplate.prompt(user: user, system: system)
        var ids = model.tokenizer.encode(text, addBOS: true)
        if let n = truncatePrompt {
            guard n >= 1 else { throw fail("--truncate-prompt must be at least 1 (got \(n))", code: ExitCodes.usage) }
            ids = Array(ids.prefix(n))
        }
        var pending: [UInt8] = [], started = false
        let out = FileHandle.standardOutput
        var writeError: Error?
        func emit(_ bytes: [UInt8]) {
            guard writeError == nil else { return }
            do { try out.write(contentsOf: Data(bytes)) } catch { writeError = error }
        }
        let outcome: GenerateSession.Outcome
        do {
            outcome = try session.generate(prompt: ids, maxTokens: maxTokens) { token in
                started = true
                if model.tokenizer.stopIds.contains(token) { return }
                pending += model.tokenizer.bytes(of: token)
                // Emit only complete UTF-8 sequences so multi-byte characters split across tokens print whole.
                var cut = pending.count
                while cut > 0 && cut > pending.count - 4 && (pending[cut - 1] & 0xC0) == 0x80 { cut -= 1 }
                if cut > 0 && pending[cut - 1] >= 0xC0 { cut -= 1 }
                if cut > 0 { emit(Array(pending[..<cut])); pending.removeFirst(cut) }
            }
        } catch let e as KVCacheError {
            emit(pending + [0x0A]); throw fail(e.description, code: ExitCodes.ioError)
        } catch let e as RunError {
            // The session checks its settings first (`GenerateSession.check`): a usage error comes before any output.
            if started { emit(pending + [0x0A]) }
            throw fail(e.description, code: e.exitCode)
        }
        emit(pending + [0x0A])
        if let writeError {
            throw fail("cannot write the answer to standard output (\(RunDirectory.reason(writeError))); the answer is incomplete", code: ExitCodes.ioError)
        }
        let g = outcome.generation, cache = outcome.cache
        let stats = """
            prompt \(g.promptTokens) tokens, generated \(g.tokens.count)\(g.stoppedAtEOS ? " (end of turn)" : "")
            prefill \(String(format: "%.1f", g.prefillTokensPerSecond)) tok/s, decode \(String(format: "%.1f", g.decodeTokensPerSecond)) tok/s, threads \(modelOptions.threads)
            policy \(spec) budget \(budget): \(g.compressions) compression(s), \(String(format: "%.1f", g.compressSeconds * 1000)) ms\(outcome.lastCompression.map { ", last kept \($0.slotsAfter) of \($0.slotsBefore) slots" } ?? "")
            \(storageLine(cache))\(readLine(g.reads))KV cache: \(cache.totalSlots) slots over \(cache.layers * cache.kvHeads) streams (mean \(cache.totalSlots / (cache.layers * cache.kvHeads)) tokens), live \(formatBytes(cache.liveTokenBytes)), pages \(formatBytes(cache.pageBytes)), pool allocated \(formatBytes(cache.pool.allocatedBytes)), peak pages \(formatBytes(g.peakKVPageBytes))\(cache.windows.contains { $0 != nil } ? ", freed by sliding windows \(formatBytes(cache.windowFreedBytes))" : "")
            """
        FileHandle.standardError.write(Data((stats + "\n").utf8))
        if let path = report {
            let r = GenerateReport(outcome, session: session, threads: modelOptions.threads, peakResident: ProcessMemory.peakResidentBytes())
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            do { try enc.encode(r).write(to: URL(fileURLWithPath: path)) } catch {
                throw fail("cannot write --report \(path) (\((error as NSError).localizedDescription)); the answer above is complete", code: ExitCodes.ioError)
            }
        }
    }
}

private func storageLine(_ c: PagedKVCache) -> String {
    guard c.codec != nil || c.offload != nil else { return "" }
    let b = c.byteBreakdown
    var s = "pages: \(c.codec?.name ?? "fp32")"
    if let r = c.codec?.residual, r > 0 { s += " (last \(r) tokens in full precision)" }
    s += ", K/V data \(formatBytes(c.kvDataBytes)), \(String(format: "%.2f", GenerateReport.ratioVsFP16(c)))× smaller than fp16"
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
