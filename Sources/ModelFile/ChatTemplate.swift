import Foundation

/// ChatML prompts (`<|im_start|>role\n…<|im_end|>\n`), the template SmolLM2 ships in its GGUF.
/// KVKit renders ChatML directly rather than interpreting Jinja; the default system prompt is read
/// from the file's `tokenizer.chat_template` so a conversation without one matches the model's template.
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

    /// The prompt text, ending with the assistant header when `addGenerationPrompt` (default).
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if messages.first?.role != "system", let sys = defaultSystem {
            out += "<|im_start|>system\n\(sys)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
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
