/// How a multi-hop link is worded. Each was measured with the full cache (docs/probes-and-runs.md); `magic` is the default.
public enum MultihopWording: String, CaseIterable, Codable, Sendable {
    /// "The special magic number for 4821933 is: 7719204." (every hop after the first keyed by a number)
    case magic
    /// "In the code book, 4821933 maps to 7719204." (the same number-keyed chain, another phrasing)
    case codebook
    /// Word keys until the last hop: "The next key after silver-fox is: amber-owl." … "The special magic
    /// number for amber-owl is: 7719204." (each link's answer is the next link's key, as a word)
    case words
}

/// The chain the multi-hop probes share: key0 → k1 → … → k_hops (each answer is the next link's key),
/// plus a distractor chain, as shuffled needles labelled `hop1…` and `distractor1…`. Number keys (magic,
/// codebook) or word keys with a number at the end (words).
struct Chains {
    let chain: [String]
    let needles: [(text: String, label: String)]
    let linkLabels: [String]
    let wording: MultihopWording
    let hops: Int

    init(_ d: inout ProbeDraw) {
        let hops = d.hops, wording = d.wording, wordKeys = wording == .words
        func chainKeys(_ first: Int) -> [String] {
            (0...hops).map { h in h == 0 ? d.keys[first] : (wordKeys && h < hops ? d.keys[first + 2 * h] : d.number()) }
        }
        let chain = chainKeys(0), distractor = chainKeys(1)
        func link(_ from: String, _ to: String, last: Bool) -> String {
            switch wording {
            case .magic: return d.fact(from, to)
            case .codebook: return " In the code book, \(from) maps to \(to)."
            case .words: return last ? d.fact(from, to) : " The next key after \(from) is: \(to)."
            }
        }
        let links = (0..<hops).map { (text: link(chain[$0], chain[$0 + 1], last: $0 == hops - 1), label: "hop\($0 + 1)") }
        let dlinks = (0..<hops).map { (text: link(distractor[$0], distractor[$0 + 1], last: $0 == hops - 1), label: "distractor\($0 + 1)") }
        self.chain = chain
        needles = (links + dlinks).shuffled(using: &d.rng)
        linkLabels = links.map(\.label)
        self.wording = wording; self.hops = hops
    }

    /// The question (and answer prefix) for hop `h` about `key`.
    func question(_ key: String, hop h: Int) -> (String, String) {
        switch wording {
        case .magic: return ("What is the special magic number for \(key)?", "The special magic number for \(key) is:")
        case .codebook: return ("In the code book, what does \(key) map to?", "In the code book, \(key) maps to")
        case .words:
            return h == hops - 1
                ? ("What is the special magic number for \(key)?", "The special magic number for \(key) is:")
                : ("What is the next key after \(key)?", "The next key after \(key) is:")
        }
    }
}
