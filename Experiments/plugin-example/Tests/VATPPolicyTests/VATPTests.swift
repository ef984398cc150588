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
}
