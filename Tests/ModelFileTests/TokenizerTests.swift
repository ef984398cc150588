import Foundation
import KVKitTestSupport
import Testing
@testable import ModelFile

/// Tokenizer checks on the real model file against llama.cpp's own tokenization.
@Suite struct TokenizerTests {
    static let gguf: GGUFFile = {
        do { return try GGUFFile(path: TestSupport.modelPath) }
        catch { fatalError("real model missing at \(TestSupport.modelPath): run 'make setup' (\(error))") }
    }()
    static let tokenizer = try! Tokenizer(gguf: gguf)

    @Test func matchesLlamaCppOnEveryReferencePrompt() throws {
        let anchors = try TestSupport.anchors()
        #expect(anchors.count >= 3)
        for (name, a) in anchors {
            let ids = Self.tokenizer.encode(a.text!)
            #expect(ids == a.token_ids, "prompt \(name)")
        }
    }

    @Test func specialTokensAreAtomicAndDecodeBack() {
        let t = Self.tokenizer
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
    func roundTripsText(text: String) {
        let ids = Self.tokenizer.encode(text)
        #expect(Self.tokenizer.decode(ids) == text)
    }

    @Test func digitsAreSplitOneByOne() {
        // The smollm pre-tokenizer splits every digit off alone: " 68259" → " " + five digits.
        let ids = Self.tokenizer.encode(" 68259")
        #expect(ids == [216, 38, 40, 34, 37, 41])
    }

    @Test func chatTemplateUsesTheModelsDefaultSystemPrompt() {
        let tmpl = ChatTemplate(gguf: Self.gguf)
        #expect(tmpl.defaultSystem == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        #expect(tmpl.prompt(user: "Hi") == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(tmpl.prompt(user: "Hi", system: "Be brief.").hasPrefix("<|im_start|>system\nBe brief.<|im_end|>\n"))
    }
}
