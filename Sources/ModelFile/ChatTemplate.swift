import Foundation

/// How a model's prompts are written: the only place that knows a format's markers. Probes and the runner
/// ask it for turn openings and endings, so no format literal appears anywhere else.
///
/// ChatML (`<|im_start|>role\n…<|im_end|>\n`) is the template SmolLM2 ships in its GGUF. KVKit renders the
/// format directly rather than interpreting Jinja; the default system prompt is read from the file's
/// `tokenizer.chat_template` so a conversation without one matches the model's template.
public struct ChatTemplate: Sendable {
    public var defaultSystem: String?

    public init(defaultSystem: String?) { self.defaultSystem = defaultSystem }

    public init(gguf: GGUFFile) {
        defaultSystem = nil
        if let t = gguf.metadata["tokenizer.chat_template"]?.string,
           let start = t.range(of: "<|im_start|>system\n"),
           let end = t.range(of: "<|im_end|>", range: start.upperBound..<t.endIndex) {
            let s = String(t[start.upperBound..<end.lowerBound])
            if !s.contains("{") { defaultSystem = s }
        }
    }

    public struct Message: Sendable {
        public var role: String, content: String
        public init(role: String, content: String) { self.role = role; self.content = content }
    }

    /// The text that opens a turn of `role`.
    public func header(_ role: String) -> String { "<|im_start|>\(role)\n" }
    /// The marker that ends a turn (a special token the model emits when it ends its answer).
    public var endOfTurn: String { "<|im_end|>" }
    /// What follows the end-of-turn marker before the next turn opens.
    public var turnSeparator: String { "\n" }
    /// A whole closed turn.
    public func turn(_ role: String, _ content: String) -> String { header(role) + content + endOfTurn + turnSeparator }

    /// The start of a conversation up to where the first user message's text begins (the default system
    /// turn, if any, then the user header): probes put their context here and leave the turn open.
    public func openingOfFirstUserTurn() -> String {
        (defaultSystem.map { turn("system", $0) } ?? "") + header("user")
    }

    /// Closes an open user turn and opens the assistant's answer.
    public var userToAssistant: String { endOfTurn + turnSeparator + header("assistant") }

    /// The prompt text, ending with the assistant header when `addGenerationPrompt` (default).
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if messages.first?.role != "system", let sys = defaultSystem { out += turn("system", sys) }
        for m in messages { out += turn(m.role, m.content) }
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
