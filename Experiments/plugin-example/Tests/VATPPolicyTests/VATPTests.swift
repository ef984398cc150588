import KVCache
import PolicyConformance
import Policies
import Testing
import VATPPolicy

@Suite struct VATPTests {
    @Test func passesKVKitsConformanceKit() {
        #expect(PolicyConformance.check(VATPPolicy()).isEmpty)
    }

    @Test func registersAndParsesLikeABuiltInPolicy() throws {
        PolicyRegistry.shared.register(VATPPolicy.info)
        let p = try PolicyRegistry.shared.make("vatp:window=8,sinks=2") as! VATPPolicy
        #expect(p.window == 8 && p.sinks == 2)
    }

    /// The wrappers take a plug-in's policy as a part like a built-in one, and check it the same way.
    @Test func wrappersTakeThePlugInAsAPart() throws {
        PolicyRegistry.shared.register(VATPPolicy.info)
        #expect(PolicyName.accepted.contains("vatp"))
        let composed = try PolicyRegistry.shared.make("compose:first=streaming,then=vatp") as! ComposePolicy
        #expect(composed.then.rawValue == "vatp" && composed.needs.windows.contains(VATPPolicy().window))
        let ada = try PolicyRegistry.shared.make("adakv:base=vatp") as! AdaKVPolicy
        #expect(ada.base.name == "vatp")
    }
}
