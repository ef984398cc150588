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
}
