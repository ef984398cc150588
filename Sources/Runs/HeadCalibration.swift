import Foundation
import TensorMath
import KVCache
import ModelFile
import Models
import Policies
import Probes

/// DuoAttention's head classification, on the fly (Xiao et al. 2024, arXiv:2410.10819): which (layer, KV
/// head) streams retrieve from far back and which only need attention sinks and recent tokens. The paper
/// learns a gate per head on synthetic passkey data; KVKit measures the same property directly on the
/// model: over a few synthetic needle cases (KVKit's generated haystack, one needle at depths 0.2, 0.5 and
/// 0.8, the question in the prompt), the share of the question's attention each head puts on the needle's
/// tokens. Computed once per model file and weight storage (the arithmetic differs in the last bits) and
/// kept in `$KVKIT_HOME/duo-heads-<sha256 prefix>[-storage][-avx2].json` (the host build's own file).
public enum HeadCalibration {
    /// Bumped when the measurement changes, so an old cached file is recomputed.
    static let version = 1
    public static let depths = [0.2, 0.5, 0.8]
    public static let length = 1024

    struct Cached: Codable { let version: Int; let sha256: String; let length: Int; let depths: [Double]; let scores: [[Float]] }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var memo: [String: [[Float]]] = [:]

    /// `[layer][kvHead]` retrieval scores in [0, 1] for `model`, from memory, the cache file, or measured.
    public static func scores(model: any LanguageModel) throws -> [[Float]] {
        let file = ModelIdentity(model: model).sha256
        let storage = (model.weightsRecord.map { "-" + $0 } ?? "-f32") + (KernelBuild.name.map { "-" + $0 } ?? "")
        let sha = file + storage
        lock.lock(); defer { lock.unlock() }
        if let m = memo[sha] { return m }
        let path = ModelLocation.kvkitHome + "/duo-heads-\(file.prefix(16))\(storage).json"
        if let data = FileManager.default.contents(atPath: path), let c = try? JSONDecoder().decode(Cached.self, from: data),
           c.version == version, c.sha256 == sha, c.scores.count == model.config.layers, c.scores.allSatisfy({ $0.count == model.config.kvHeads }) {
            memo[sha] = c.scores
            return c.scores
        }
        let s = try measure(model: model)
        memo[sha] = s
        // A cache that cannot be written is only a lost shortcut: the scores are measured again next time.
        if let data = try? JSONEncoder().encode(Cached(version: version, sha256: sha, length: length, depths: depths, scores: s)) {
            try? FileManager.default.createDirectory(atPath: ModelLocation.kvkitHome, withIntermediateDirectories: true)
            try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        return s
    }

    /// The measurement itself (no cache).
    public static func measure(model: any LanguageModel) throws -> [[Float]] {
        let L = model.config.layers, H = model.config.kvHeads, G = model.config.heads / H
        let n = min(length, model.config.contextLength / 2)
        var total = [[Float]](repeating: [Float](repeating: 0, count: H), count: L)
        let generator = ProbeGenerator(tokenizer: model.tokenizer, chat: model.chatTemplate, haystackSeed: 7)
        for (i, depth) in depths.enumerated() {
            guard let c = generator.make("niah", length: n, depth: depth, sample: i, seed: 7), let turn = c.turns.first else { continue }
            let q = model.tokenizer.encode("\n\n" + turn.question + model.chatTemplate.userToAssistant + turn.answerPrefix)
            let prompt = c.context + q
            let cache = model.makeCache(pageSize: 16)
            Compressor.prepare(cache, needs: ObservationNeeds(window: q.count), promptEnd: prompt.count)
            try model.forward(prompt, cache: cache)
            let needle = Set(c.needles.flatMap { Int32($0.start)..<Int32($0.end) })
            guard let obs = cache.observations, let window = obs.window(size: q.count) else { continue }
            for l in 0..<L {
                for h in 0..<H {
                    let slots = cache.slots(layer: l, head: h), w = window[l * H + h]
                    var onNeedle: Float = 0
                    for (s, slot) in slots.enumerated() where needle.contains(slot.position) { for g in 0..<G { onNeedle += w[s * G + g] } }
                    total[l][h] += onNeedle / Float(q.count * G) / Float(depths.count)
                }
            }
        }
        return total
    }
}
