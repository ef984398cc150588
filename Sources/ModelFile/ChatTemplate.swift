import Foundation

/// How a model's prompts are written: the only place that knows a format's markers. Probes and the runner
/// ask it for turn openings and endings, so no format literal appears anywhere else.
///
/// The format is recognised from the file's `tokenizer.chat_template` (KVKit renders the format directly
/// rather than interpreting Jinja): ChatML (`<|im_start|>role\n…<|im_end|>\n`: SmolLM2, Qwen), Llama 3
/// (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`), Gemma turns
/// (`<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n`), and plain completion for a base model
/// whose file has no template (Gemma 3 270M): turns are paragraphs, and probes rely on their answer prefix.
/// ChatML's default system prompt is read from the template, so a conversation without one matches it.
public struct ChatTemplate: Sendable {
    public enum Format: String, Sendable, CaseIterable { case chatml, llama3, gemma, plain }
    public var format: Format
    public var defaultSystem: String?
    /// Whether the format was chosen by the user (`--format`) rather than recognised from the file.
    public var given = false

    /// A template KVKit does not render, met without a format given: a one-line error naming the fix
    /// (falling back to plain text would change every prompt, and look like a compression effect).
    public struct UnknownTemplate: Error, CustomStringConvertible {
        public let opening: String
        public var description: String {
            "the model file's chat template (\(opening)) is not one KVKit renders (ChatML, Llama 3, Gemma); pass --format "
                + Format.allCases.map(\.rawValue).joined(separator: "|") + " to say how prompts are written"
        }
    }

    public init(defaultSystem: String?, format: Format = .chatml) { self.defaultSystem = defaultSystem; self.format = format }

    /// The format of the file's `tokenizer.chat_template`, or `format` when given (a file without a template
    /// is a base model: plain text). Throws `UnknownTemplate` for a template KVKit does not recognise.
    public init(gguf: GGUFFile, format given: Format? = nil) throws {
        defaultSystem = nil
        let t = gguf.metadata["tokenizer.chat_template"]?.string
        // ChatML's default system prompt is the template's literal system turn (SmolLM2's, Qwen's).
        func readDefaultSystem() {
            guard let t, let start = t.range(of: "<|im_start|>system\n"), let end = t.range(of: "<|im_end|>", range: start.upperBound..<t.endIndex) else {
                return
            }
            let s = String(t[start.upperBound..<end.lowerBound])
            if !s.contains("{") { defaultSystem = s }
        }
        if let given {
            format = given
            self.given = true
            if given == .chatml { readDefaultSystem() }
            return
        }
        guard let t else { format = .plain; return }
        if t.contains("<|im_start|>") {
            format = .chatml
            readDefaultSystem()
        } else if t.contains("<|start_header_id|>") {
            format = .llama3
        } else if t.contains("<start_of_turn>") {
            format = .gemma
        } else {
            throw UnknownTemplate(opening: "\"" + t.shownOnOneLine(limit: 40) + "\"")
        }
    }

    /// The format as a run records it: "chatml", or "plain (--format)" when the user chose it.
    public var recorded: String { format.rawValue + (given ? " (--format)" : "") }

    public struct Message: Sendable {
        public var role: String, content: String
        public init(role: String, content: String) { self.role = role; self.content = content }
    }

    /// The text that opens a turn of `role` ("user", "assistant", "system").
    public func header(_ role: String) -> String {
        switch format {
        case .chatml: return "<|im_start|>\(role)\n"
        case .llama3: return "<|start_header_id|>\(role)<|end_header_id|>\n\n"
        case .gemma: return "<start_of_turn>\(role == "assistant" ? "model" : role)\n"
        case .plain: return ""
        }
    }
    /// The marker that ends a turn (a special token the model emits when it ends its answer; empty in plain text).
    public var endOfTurn: String {
        switch format {
        case .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .gemma: return "<end_of_turn>"
        case .plain: return ""
        }
    }
    /// What follows the end-of-turn marker before the next turn opens.
    public var turnSeparator: String {
        switch format {
        case .chatml, .gemma, .plain: return "\n"
        case .llama3: return ""
        }
    }
    /// A whole closed turn.
    public func turn(_ role: String, _ content: String) -> String { header(role) + content + endOfTurn + turnSeparator }

    /// The start of a conversation up to where the first user message's text begins (the default system
    /// turn, if any, then the user header): probes put their context here and leave the turn open.
    public func openingOfFirstUserTurn() -> String {
        (defaultSystem.map { turn("system", $0) } ?? "") + header("user")
    }

    /// Closes an open user turn and opens the assistant's answer.
    public var userToAssistant: String { endOfTurn + turnSeparator + header("assistant") }

    /// The prompt text, ending with the assistant header when `addGenerationPrompt` (default). Gemma has no
    /// system role: a system message opens the first user turn, as Gemma's template does.
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        var pendingSystem: String?
        if messages.first?.role != "system", let sys = defaultSystem { out += turn("system", sys) }
        for m in messages {
            if m.role == "system" && (format == .gemma || format == .plain) { pendingSystem = m.content; continue }
            let content = pendingSystem.map { $0 + "\n\n" + m.content } ?? m.content
            pendingSystem = nil
            out += turn(m.role, content)
        }
        if addGenerationPrompt { out += header("assistant") }
        return out
    }

    /// One user turn with an optional system prompt.
    public func prompt(user: String, system: String? = nil) -> String {
        var msgs: [Message] = []
        if let s = system { msgs.append(Message(role: "system", content: s)) }
        msgs.append(Message(role: "user", content: user))
        return render(msgs)
    }
}
