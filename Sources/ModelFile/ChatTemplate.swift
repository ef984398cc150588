import Foundation

/// How a model's prompts are written: the only place that knows a format's markers. Probes and the runner
/// ask it for turn openings and endings, so no format literal appears anywhere else.
///
/// The format is recognised from the file's `tokenizer.chat_template` by the registered formats
/// (`ChatFormat.registered`; KVKit renders the format directly rather than interpreting Jinja); a file with
/// no template is a base model (plain text).
public struct ChatTemplate: Sendable {
    public typealias Format = ChatFormat
    public var format: ChatFormat
    public var defaultSystem: String?
    /// Whether the format was chosen by the user (`--format`) rather than recognised from the file.
    public var given = false

    /// A template no registered format recognises, met without a format given: a one-line error naming the
    /// fix (falling back to plain text would change every prompt, and look like a compression effect).
    public struct UnknownTemplate: Error, CustomStringConvertible {
        public let opening: String
        public var description: String {
            "the model file's chat template (\(opening)) is not one KVKit renders ("
                + ChatFormat.registered.filter { $0.recognises != nil }.map(\.name).joined(separator: ", ") + "); pass --format "
                + ChatFormat.names.joined(separator: "|") + " to say how prompts are written"
        }
    }

    public init(defaultSystem: String?, format: ChatFormat = .chatml) { self.defaultSystem = defaultSystem; self.format = format }

    /// The format of the file's `tokenizer.chat_template`, or `format` when given (a file without a template
    /// is a base model: plain text). Throws `UnknownTemplate` for a template no registered format recognises.
    public init(gguf: GGUFFile, format given: ChatFormat? = nil) throws {
        let t = gguf.metadata["tokenizer.chat_template"]?.string
        if let given {
            format = given
            self.given = true
        } else if let t {
            guard let f = ChatFormat.registered.first(where: { $0.recognises?(t) == true }) else {
                throw UnknownTemplate(opening: "\"" + t.shownOnOneLine(limit: 40) + "\"")
            }
            format = f
        } else {
            format = .plain
        }
        defaultSystem = t.flatMap { format.defaultSystem?($0) }
    }

    /// The format as a run records it: "chatml", or "plain (--format)" when the user chose it.
    public var recorded: String { format.name + (given ? " (--format)" : "") }

    public struct Message: Sendable {
        public var role: String, content: String
        public init(role: String, content: String) { self.role = role; self.content = content }
    }

    /// The text that opens a turn of `role` ("user", "assistant", "system").
    public func header(_ role: String) -> String { format.header(role) }
    /// The marker that ends a turn (a special token the model emits when it ends its answer; empty in plain text).
    public var endOfTurn: String { format.endOfTurn }
    /// The marker that closes a turn of `role` (EXAONE 3 closes user turns with the separator alone).
    public func endOfTurn(_ role: String) -> String { role == "user" && !format.userTurnEndsWithMarker ? "" : format.endOfTurn }
    /// What follows the end-of-turn marker before the next turn opens.
    public var turnSeparator: String { format.turnSeparator }
    /// A whole closed turn.
    public func turn(_ role: String, _ content: String) -> String { header(role) + content + endOfTurn(role) + turnSeparator }

    /// The start of a conversation up to where the first user message's text begins (the default system
    /// turn, if any, then the user header): probes put their context here and leave the turn open.
    public func openingOfFirstUserTurn() -> String {
        (defaultSystem.map { turn("system", $0) } ?? "") + header("user")
    }

    /// Closes an open user turn and opens the assistant's answer.
    public var userToAssistant: String { endOfTurn("user") + turnSeparator + header("assistant") }

    /// The prompt text, ending with the assistant header when `addGenerationPrompt` (default). Gemma has no
    /// system role: a system message opens the first user turn, as Gemma's template does.
    public func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        var pendingSystem: String?
        if messages.first?.role != "system", let sys = defaultSystem { out += turn("system", sys) }
        for m in messages {
            if m.role == "system" && !format.hasSystemRole { pendingSystem = m.content; continue }
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
