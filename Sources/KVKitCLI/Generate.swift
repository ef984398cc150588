import ArgumentParser
import Foundation
import KVCache
import LlamaModel

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate an answer greedily, streaming it, then print speed and KV-cache bytes.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The user message.")
    var prompt: String

    @Option(help: "System prompt (default: the model's own, from its chat template).")
    var system: String?

    @Option(help: "Maximum tokens to generate.")
    var maxTokens: Int = 64

    @Flag(help: "Send the prompt as raw text, without the chat template.")
    var raw = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1 (got \(maxTokens))") }
    }

    func run() throws {
        let model = try modelOptions.load()
        let text = raw ? prompt : model.chatTemplate.prompt(user: prompt, system: system)
        let ids = model.tokenizer.encode(text)
        guard !ids.isEmpty else { throw fail("the prompt is empty", code: ExitCodes.usage) }
        let needed = ids.count + maxTokens
        guard needed <= model.config.contextLength else {
            throw fail("prompt (\(ids.count) tokens) plus --max-tokens \(maxTokens) exceeds the model's context of \(model.config.contextLength); shorten the prompt or lower --max-tokens", code: ExitCodes.usage)
        }
        let cache = model.makeCache(pageSize: modelOptions.pageSize)
        var pending: [UInt8] = []
        let out = FileHandle.standardOutput
        let g = try model.generate(prompt: ids, cache: cache, maxTokens: maxTokens) { token in
            if model.tokenizer.stopIds.contains(token) { return }
            pending += model.tokenizer.bytes(of: token)
            // Emit only complete UTF-8 sequences so multi-byte characters split across tokens print whole.
            var cut = pending.count
            while cut > 0 && cut > pending.count - 4 && (pending[cut - 1] & 0xC0) == 0x80 { cut -= 1 }
            if cut > 0 && pending[cut - 1] >= 0xC0 { cut -= 1 }
            if cut > 0 { out.write(Data(pending[..<cut])); pending.removeFirst(cut) }
        }
        if !pending.isEmpty { out.write(Data(pending)) }
        print("")
        let stats = """
        prompt \(g.promptTokens) tokens, generated \(g.tokens.count)\(g.stoppedAtEOS ? " (end of turn)" : "")
        prefill \(String(format: "%.1f", g.prefillTokensPerSecond)) tok/s, decode \(String(format: "%.1f", g.decodeTokensPerSecond)) tok/s, threads \(modelOptions.threads)
        KV cache: \(cache.totalSlots / (cache.layers * cache.kvHeads)) tokens, live \(formatBytes(cache.liveTokenBytes)), pages \(formatBytes(cache.pageBytes)), pool allocated \(formatBytes(cache.pool.allocatedBytes))
        """
        FileHandle.standardError.write(Data((stats + "\n").utf8))
    }
}
