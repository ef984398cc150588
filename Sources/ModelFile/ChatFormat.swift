import Foundation

/// How one model family writes a conversation: the markers that open and close turns. A format is a value,
/// and formats live in an open registry (`ChatFormat.register`), so a plug-in package that adds a model
/// family adds its chat format the same way, beside the built-in ones (ChatML, Llama 3, Gemma, plain).
public struct ChatFormat: Sendable, Equatable, CustomStringConvertible {
    /// The name runs record and `--format` takes ("chatml").
    public let name: String
    /// The text that opens a turn of `role` ("user", "assistant", "system").
    public let header: @Sendable (_ role: String) -> String
    /// The end-of-turn marker the model emits to end its answer (a special token's text; "" in plain text).
    public let endOfTurn: String
    /// What follows a turn's end before the next turn opens.
    public let turnSeparator: String
    /// Whether a user turn ends with `endOfTurn` (EXAONE 3 ends it with the separator alone).
    public let userTurnEndsWithMarker: Bool
    /// Whether the format has a system turn; without one, a system message opens the first user turn.
    public let hasSystemRole: Bool
    /// Whether a file's `tokenizer.chat_template` is written in this format (nil: never recognised, only chosen).
    public let recognises: (@Sendable (_ template: String) -> Bool)?
    /// The template's default system prompt, where the format writes one literally (ChatML's).
    public let defaultSystem: (@Sendable (_ template: String) -> String?)?

    public init(
        name: String, header: @escaping @Sendable (String) -> String, endOfTurn: String, turnSeparator: String = "\n",
        userTurnEndsWithMarker: Bool = true, hasSystemRole: Bool = true, recognises: (@Sendable (String) -> Bool)?,
        defaultSystem: (@Sendable (String) -> String?)? = nil
    ) {
        self.name = name; self.header = header; self.endOfTurn = endOfTurn; self.turnSeparator = turnSeparator
        self.userTurnEndsWithMarker = userTurnEndsWithMarker; self.hasSystemRole = hasSystemRole
        self.recognises = recognises; self.defaultSystem = defaultSystem
    }

    public static func == (a: ChatFormat, b: ChatFormat) -> Bool { a.name == b.name }
    public var description: String { name }

    /// ChatML (`<|im_start|>role\n…<|im_end|>\n`: SmolLM2, Qwen); its default system prompt is the
    /// template's literal system turn, so a conversation without one matches the template.
    public static let chatml = ChatFormat(
        name: "chatml", header: { "<|im_start|>\($0)\n" }, endOfTurn: "<|im_end|>", recognises: { $0.contains("<|im_start|>") },
        defaultSystem: { t in
            guard let start = t.range(of: "<|im_start|>system\n"), let end = t.range(of: "<|im_end|>", range: start.upperBound..<t.endIndex) else {
                return nil
            }
            let s = String(t[start.upperBound..<end.lowerBound])
            return s.contains("{") ? nil : s
        })
    /// Llama 3 (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`).
    public static let llama3 = ChatFormat(
        name: "llama3", header: { "<|start_header_id|>\($0)<|end_header_id|>\n\n" }, endOfTurn: "<|eot_id|>", turnSeparator: "",
        recognises: { $0.contains("<|start_header_id|>") })
    /// Gemma turns (`<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n`); no system role.
    public static let gemma = ChatFormat(
        name: "gemma", header: { "<start_of_turn>\($0 == "assistant" ? "model" : $0)\n" }, endOfTurn: "<end_of_turn>",
        hasSystemRole: false, recognises: { $0.contains("<start_of_turn>") })
    /// Plain completion, for a base model whose file has no template (Gemma 3 270M): turns are
    /// paragraphs, and probes rely on their answer prefix.
    public static let plain = ChatFormat(name: "plain", header: { _ in "" }, endOfTurn: "", hasSystemRole: false, recognises: nil)

    private static let lock = Lock()
    nonisolated(unsafe) private static var formats: [ChatFormat] = [.chatml, .llama3, .gemma, .plain]

    /// Every registered format, built-in first, in registration order (the order templates are recognised in).
    public static var registered: [ChatFormat] { lock.withLock { formats } }
    /// Adds (or replaces, by name) a format: one line in a plug-in's `main`, beside its family's.
    public static func register(_ f: ChatFormat) {
        lock.withLock {
            if let i = formats.firstIndex(of: f) { formats[i] = f } else { formats.append(f) }
        }
    }
    /// The registered format called `name`, or nil.
    public static func named(_ name: String) -> ChatFormat? { registered.first { $0.name == name } }
    /// The registered names, for help texts and errors ("chatml|llama3|gemma|plain").
    public static var names: [String] { registered.map(\.name) }
}
