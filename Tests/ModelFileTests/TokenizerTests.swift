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
        let tmpl = ChatTemplate(gguf: try Self.gguf)
        #expect(tmpl.defaultSystem == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        #expect(tmpl.prompt(user: "Hi") == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(tmpl.prompt(user: "Hi", system: "Be brief.").hasPrefix("<|im_start|>system\nBe brief.<|im_end|>\n"))
    }

    /// The format is recognised from the file's template; each renders its own turns, and a file without
    /// a template (a base model) gets plain completion text.
    @Test func promptFormatsFollowTheFilesTemplate() throws {
        func template(_ t: String?) throws -> ChatTemplate {
            var w = GGUFWriter()
            if let t { w.set("tokenizer.chat_template", .string(t)) }
            w.addTensor("t", shape: [1], floats: [0])
            return ChatTemplate(gguf: try GGUFFile(path: tempFile(w.encoded())))
        }
        let llama3 = try template("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}")
        #expect(llama3.format == .llama3)
        #expect(llama3.prompt(user: "Hi") == "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        let gemma = try template("{{ '<start_of_turn>' + role + '\n' }}")
        #expect(gemma.format == .gemma)
        #expect(gemma.prompt(user: "Hi", system: "Be brief.") == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        let plain = try template(nil)
        #expect(plain.format == .plain && plain.prompt(user: "Hi") == "Hi\n" && plain.userToAssistant == "\n")
        #expect(try template("{% some other template %}").format == .plain)
    }
}
