import Foundation
import KVCache
import KVKitTestSupport
import Models
import Policies
import Probes
import Testing
@testable import KVKitCLI
@testable import Runs

/// Sharing a prefill (and a batched decode) with other variants is neutral: a variant keeps the same
/// positions in every (layer, KV head) stream and gives the same answer, figures and survival alone as
/// beside every other registered policy, on the real model and two essay cases. (A KVzip run alone once
/// sliced its scores with the wrong query group because no other variant had tapped attention.)
@Suite(.serialized) struct NeutralityTests {
    /// Every registered policy at its defaults, plus settings that ask for other statistics than the
    /// defaults (their own window, their own query rows) and compositions.
    static var specs: [String] {
        PolicyRegistry.shared.names + ["snapkv:window=8", "expected-attention:sinks=0", "compose:first=snapkv,then=rkv", "adakv:base=h2o"]
    }

    static func cases() throws -> [ProbeCase] {
        let m = try Real.model
        var g = ProbeGenerator(tokenizer: m.tokenizer, chat: m.chatTemplate, haystackSeed: 11)
        g.haystackSentences = EssayHaystack.sentences(try EssayHaystack.files(in: TestSupport.home + "/" + EssayHaystack.folderName))
        return [g.make(NIAHProbe(), length: 420, depth: 0.3, sample: 0, seed: 7), g.make(NIAHProbe(), length: 360, depth: 0.8, sample: 1, seed: 7)]
    }

    static func variants() throws -> [Variant] {
        try specs.map { text in
            let spec = try PolicyRegistry.shared.parse(text)
            return Variant(spec: spec, policy: try PolicyRegistry.shared.make(spec), budget: spec.name == "full" ? .fraction(1) : .fraction(0.25))
        }
    }

    @Test func everyPolicyIsTheSameAloneAsInCompany() throws {
        let runner = Runner(model: try Real.model)
        let all = try Self.variants()
        for c in try Self.cases() {
            let together = RunnerTests.untimed(try runner.run(c, variants: all))
            let keptTogether = try runner.keptPositions(c, variants: all)
            for (i, v) in all.enumerated() {
                let alone = RunnerTests.untimed(try runner.run(c, variants: [v]))
                let name = "\(v.spec) on \(c.id)"
                // Row 0 is the full cache, then the variants in order.
                #expect(alone[0] == together[0], "full cache beside \(name)")
                #expect(
                    alone[1] == together[i + 1],
                    "\(name): alone \(alone[1].answers) \(alone[1].keptSlots), in company \(together[i + 1].answers) \(together[i + 1].keptSlots)")
                #expect(try runner.keptPositions(c, variant: v) == keptTogether[i], "\(name): kept positions differ alone and in company")
            }
        }
    }

    /// `kvkit generate --policy P` compresses the prompt exactly as a run does (same kept positions in every
    /// stream), whatever the run's company.
    @Test func generateKeepsWhatARunKeeps() throws {
        let m = try Real.model
        let runner = Runner(model: m)
        let c = try Self.cases()[0]
        let all = try Self.variants()
        let kept = try runner.keptPositions(c, variants: all)
        for (i, v) in all.enumerated() where v.policy.compresses && v.policy.evicts {
            let cache = try GenerateSession(model: m, variant: v).generate(prompt: c.context, maxTokens: 1).cache
            // Generation appended its one answer token after compressing: compare the prompt's positions.
            let got = (0..<cache.layers).map { l in
                (0..<cache.kvHeads).map { h in cache.slots(layer: l, head: h).map(\.position).filter { Int($0) < c.context.count } }
            }
            #expect(got == kept[i], "generate --policy \(v.spec) keeps other positions than run")
        }
    }
}

/// `kvkit bench-policies` as a library session: each policy compresses a fork of one prefill to the budget
/// (the same kept total as a run) and decodes on it, hot and with the LZ4 cold tier.
@Suite struct PolicyBenchTests {
    @Test func everyPolicyCompressesToTheBudgetAndDecodes() throws {
        let m = try Real.model
        var bench = PolicyBench(model: m)
        bench.repeats = 1; bench.decodeTokens = 2; bench.hotPages = 2
        let ids = PolicyBench.prompt(m, tokens: 128)
        let names = ["streaming", "kvzip", "kvcompose"]
        let r = try bench.measure(prompt: ids, policies: try names.map { ($0, try PolicyRegistry.shared.make($0)) }, budget: .fraction(0.5))
        let streams = m.config.layers * m.config.kvHeads
        #expect(r.promptTokens == 128 && r.unavailable.isEmpty && Set(r.passes.map(\.label)) == ["reconstruction", "re-read"])
        for row in r.rows {
            #expect(row.keptSlots == streams * 64, "\(row.name) kept \(row.keptSlots ?? -1)")
            #expect((row.decodeTokensPerSecond ?? 0) > 0 && (row.coldDecodeTokensPerSecond ?? 0) > 0 && row.readFraction == 1, "\(row.name)")
        }
    }
}

/// `kvkit bench-quant` as a library session: every codec packs the real pages of a prefill, round-trips
/// them through LZ4 and decodes on a fork stored with it; fp16 is the baseline of every ratio.
@Suite struct CodecBenchTests {
    @Test func everyCodecPacksDecodesAndReportsItsRatio() throws {
        let m = try Real.model
        var bench = CodecBench(model: m)
        bench.decodeTokens = 2; bench.hotPages = 2
        let codecs = try ["fp32", "fp16", "int8", "kivi2"].map {
            try CodecRegistry.shared.make($0) ?? CacheCodec(name: "fp32", keys: FP32Codec(), values: FP32Codec())
        }
        let r = try bench.measure(prompt: PolicyBench.prompt(m, tokens: 128), codecs: codecs)
        #expect(r.rows.map(\.codec) == ["fp32", "fp16", "int8", "kivi2"] && r.fullPages == m.config.layers * m.config.kvHeads * 8)
        let ratio = Dictionary(uniqueKeysWithValues: r.rows.map { ($0.codec, $0.ratioVsFP16) })
        #expect(ratio["fp32"] == 0.5 && ratio["fp16"] == 1 && ratio["int8"]! > 1.7 && ratio["kivi2"]! > 4)
        for row in r.rows {
            #expect(!row.sawNaN && row.decodeTokensPerSecond > 0 && row.coldDecodeTokensPerSecond > 0 && row.lz4Ratio > 0.9, "\(row.codec)")
        }
    }
}
