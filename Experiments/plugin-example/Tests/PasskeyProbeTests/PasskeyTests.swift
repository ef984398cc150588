import Foundation
import Models
import PasskeyProbe
import PolicyConformance
import Probes
import Testing

/// The plugin's probe through KVKit's probe conformance kit, on the real model's tokenizer and template.
@Suite struct PasskeyTests {
    static var modelPath: String {
        (ProcessInfo.processInfo.environment["KVKIT_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache/kvkit")
            + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    @Test func passesKVKitsProbeConformanceKit() throws {
        let model = try DecoderModel(path: Self.modelPath)
        let failures = ProbeConformance.check(PasskeyProbe(), tokenizer: model.tokenizer, chat: model.chatTemplate)
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test func registersLikeABuiltInProbe() {
        ProbeRegistry.shared.register(PasskeyProbe.info)
        #expect(ProbeRegistry.shared.probe("passkey")?.name == "passkey")
    }
}
