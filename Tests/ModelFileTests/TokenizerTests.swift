import Foundation
import KVKitTestSupport
import Testing
@testable import ModelFile

/// Tokenizer checks on the real model file against llama.cpp's own tokenization.
@Suite struct TokenizerTests {
    private static let loaded = TestSupport.loadOnce { () throws -> (GGUFFile, Tokenizer) in
        let g = try GGUFFile(path: TestSupport.modelPath)
        return (g, try Tokenizer(gguf: g))
    }
    static var gguf: GGUFFile { get throws { try loaded.get().0 } }
    static var tokenizer: Tokenizer { get throws { try loaded.get().1 } }

    @Test func matchesLlamaCppOnEveryReferencePrompt() throws {
        let anchors = try TestSupport.anchors()
        #expect(anchors.count >= 3)
        for (name, a) in anchors {
            let ids = try Self.tokenizer.encode(a.text!)
            #expect(ids == a.token_ids, "prompt \(name)")
        }
    }

    @Test func specialTokensAreAtomicAndDecodeBack() throws {
        let t = try Self.tokenizer
        #expect(t.encode("<|im_start|>") == [1])
        #expect(t.encode("<|im_end|>") == [2])
        #expect(t.encode("<|im_start|>", parseSpecial: false).count > 1)
        let text = "<|im_start|>user\nHi there!<|im_end|>\n"
        #expect(t.decode(t.encode(text)) == text)
        #expect(t.stopIds.contains(2))
    }

    /// Generation stops at the file's EOS and its end-of-turn and end-of-message ids where it names them,
    /// and at the end-of-turn texts llama.cpp treats so; an ordinary token never stops it.
    @Test func stopIdsComeFromTheFilesEndOfTurnIds() throws {
        let t = Tokenizer(
            tokens: ["a", "b", "<stop-here>", "<|im_end|>", "c"], types: [1, 1, 3, 3, 1], merges: [], pre: .gpt2,
            eos: 0, bos: nil, addBOS: false, endOfGeneration: [2])
        #expect(t.stopIds == [0, 2, 3])
        var w = GGUFWriter()
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, ["a", "b", "<stop-here>", "<|im_end|>", "c"].map { .string($0) }))
        w.set("tokenizer.ggml.pre", .string("gpt2"))
        w.set("tokenizer.ggml.merges", .array(elementType: 8, [.string("a b")]))
        w.set("tokenizer.ggml.eos_token_id", .uint32(0))
        w.set("tokenizer.ggml.eot_token_id", .uint32(4))
        w.addTensor("t", shape: [1], floats: [0])
        let fromFile = try Tokenizer(gguf: try GGUFFile(path: tempFile(w.encoded())))
        #expect(fromFile.stopIds == [0, 3, 4])
    }

    @Test(arguments: [
        "Hello, world! It's 2026; isn't it?",
        "  leading spaces and\ttabs\n\nnew lines   ",
        "Unicode: naïve café, 東京, emoji 🚀 and ∑ math.",
        "numbers 1234567 and 3.14159 and -42",
        "don't we'll they've I'm you'd she's",
    ])
    func roundTripsText(text: String) throws {
        let ids = try Self.tokenizer.encode(text)
        #expect(try Self.tokenizer.decode(ids) == text)
    }

    @Test func digitsAreSplitOneByOne() throws {
        // The smollm pre-tokenizer splits every digit off alone: " 68259" → " " + five digits.
        let ids = try Self.tokenizer.encode(" 68259")
        #expect(ids == [216, 38, 40, 34, 37, 41])
    }

    @Test func chatTemplateUsesTheModelsDefaultSystemPrompt() throws {
        let tmpl = try ChatTemplate(gguf: try Self.gguf)
        #expect(tmpl.defaultSystem == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        #expect(
            tmpl.prompt(user: "Hi")
                == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        )
        #expect(tmpl.prompt(user: "Hi", system: "Be brief.").hasPrefix("<|im_start|>system\nBe brief.<|im_end|>\n"))
    }

    /// The format is recognised from the file's template; each renders its own turns, and a file without
    /// a template (a base model) gets plain completion text. A template KVKit does not know is a one-line
    /// error naming `--format`, and renders as the format given.
    @Test func promptFormatsFollowTheFilesTemplate() throws {
        func template(_ t: String?, format: ChatTemplate.Format? = nil) throws -> ChatTemplate {
            var w = GGUFWriter()
            if let t { w.set("tokenizer.chat_template", .string(t)) }
            w.addTensor("t", shape: [1], floats: [0])
            return try ChatTemplate(gguf: try GGUFFile(path: tempFile(w.encoded())), format: format)
        }
        let llama3 = try template("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}")
        #expect(llama3.format == .llama3)
        #expect(llama3.prompt(user: "Hi") == "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        let gemma = try template("{{ '<start_of_turn>' + role + '\n' }}")
        #expect(gemma.format == .gemma)
        #expect(gemma.prompt(user: "Hi", system: "Be brief.") == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        let plain = try template(nil)
        #expect(plain.format == .plain && plain.prompt(user: "Hi") == "Hi\n" && plain.userToAssistant == "\n")
        let unknown = "{% for m in messages %}[INST]\n{{ m.content }}[/INST]{% endfor %}"
        do { _ = try template(unknown); Issue.record("an unknown template was accepted") } catch let e as ChatTemplate.UnknownTemplate {
            #expect(e.description.contains("--format chatml|llama3|gemma|plain") && !e.description.contains("\n"))
        }
        let chosen = try template(unknown, format: .plain)
        #expect(chosen.format == .plain && chosen.given && chosen.recorded == "plain (--format)")
        #expect(try template("{{ '<|im_start|>' }}").recorded == "chatml")
    }

    /// Chat formats and pre-tokenizers are open registries: a plug-in's format is recognised from a file's
    /// template, renders its turns, is accepted by name and adds its end-of-turn marker to the stop tokens;
    /// a plug-in's pre-tokenizer is selected by the file's `tokenizer.ggml.pre` and splits words its way.
    @Test func aPlugInsChatFormatAndPreTokenizerAreUsedLikeBuiltIns() throws {
        let turns = ChatFormat(name: "test-turns", header: { "<|turn|>\($0): " }, endOfTurn: "<|/turn|>", recognises: { $0.contains("<|turn|>") })
        ChatFormat.register(turns)
        #expect(ChatFormat.named("test-turns") == turns && ChatFormat.names.prefix(4) == ["chatml", "llama3", "gemma", "plain"])
        var w = GGUFWriter()
        w.set("tokenizer.chat_template", .string("{% for m in messages %}<|turn|>{{ m.role }}: {{ m.content }}<|/turn|>\n{% endfor %}"))
        w.set("tokenizer.ggml.model", .string("gpt2"))
        let vocab = ["a", "b", " ", "<|/turn|>", "<|turn|>"]
        w.set("tokenizer.ggml.tokens", .array(elementType: 8, vocab.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(elementType: 5, [1, 1, 1, 3, 3].map { .int32($0) }))
        w.set("tokenizer.ggml.merges", .array(elementType: 8, [.string("a b")]))
        w.set("tokenizer.ggml.eos_token_id", .uint32(0))
        w.set("tokenizer.ggml.pre", .string("test-spaces"))
        w.addTensor("t", shape: [1], floats: [0])
        let path = try tempFile(w.encoded())
        let chat = try ChatTemplate(gguf: try GGUFFile(path: path))
        #expect(chat.format == turns && chat.recorded == "test-turns")
        #expect(chat.prompt(user: "Hi") == "<|turn|>user: Hi<|/turn|>\n<|turn|>assistant: ")
        // An unregistered pre-tokenizer name is a one-line error listing the registered ones.
        do { _ = try Tokenizer(gguf: try GGUFFile(path: path)); Issue.record("an unknown pre-tokenizer was accepted") } catch {
            #expect("\(error)".contains("'test-spaces' is not supported") && "\(error)".contains("qwen2") && !"\(error)".contains("\n"))
        }
        // Words are runs of non-spaces, each space a word of its own.
        Tokenizer.PreTokenizer.register(
            .init(
                name: "spaces", ggufNames: ["test-spaces"],
                rule: .custom { cp, piece in
                    var out: [Range<Int>] = [], start = piece.lowerBound
                    for i in piece where cp[i] == " " {
                        if i > start { out.append(start..<i) }
                        out.append(i..<(i + 1)); start = i + 1
                    }
                    if start < piece.upperBound { out.append(start..<piece.upperBound) }
                    return out
                }))
        let t = try Tokenizer(gguf: try GGUFFile(path: path))
        #expect(t.preTokenizer.name == "spaces" && t.preTokenize("ab a  b") == ["ab", " ", "a", " ", " ", "b"])
        #expect(t.stopIds == [0, 3])  // EOS and the registered format's end-of-turn marker
        // llama.cpp reads these files' pre-tokenizer names as SmolLM2's (digits alone, then GPT-2's regex).
        for name in ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone"] { #expect(Tokenizer.PreTokenizer.selected(by: name) == .smollm) }
    }
}
