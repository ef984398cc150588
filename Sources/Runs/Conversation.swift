import KVCache
import Models
import Probes
import TensorMath

/// What one cache answered to a case's turns.
struct TurnOutcome {
    var answers: [String] = []; var scores: [Double] = []; var firstLogits: [Float] = []
    /// This conversation's share of the forward passes' wall time (a pass shared by several
    /// conversations is split by their rows).
    var seconds = 0.0
    /// Per layer: attention outputs of the first forward pass after the context (the question tokens;
    /// in query-aware mode the first answer token), `[rows × heads·headDim]`.
    var firstAttention: [[Float]] = []
    /// Compressions while answering, and their time.
    var recompressions = 0
    var recompressSeconds = 0.0
    var recompressedSlots: Int?
    /// Fraction of the earlier turns' answer tokens still cached at the end (nil: one turn).
    var ownAnswerSurvival: Double?
}

/// One cache answering a case's turns, advanced one forward pass at a time, so that the forks of a
/// case (one per policy × budget) can share every pass: `Runner.askAll` feeds all of them in one
/// batched forward, which reads the weights once per step instead of once per fork.
final class Conversation {
    let fork: Runner.Fork
    private(set) var outcome = TurnOutcome()
    /// Tokens for the next forward pass; empty once every turn is answered.
    private(set) var input: [Int32] = []
    var done: Bool { input.isEmpty }

    private let runner: Runner
    private let probe: ProbeCase
    /// How this case's answers are read, scored and settled.
    private let reader: any Probe
    private var turn = 0
    private var answer: [Int32] = []
    private var previous: String?
    private var tapping = false
    private var captured: [[Float]]
    /// Positions of the answer tokens fed back into the cache, by turn.
    private var answerPositions: [(turn: Int, position: Int32)] = []
    /// Tokens appended since the last compression, and whether the next pass opens a later turn.
    private var appendedSinceCompression = 0
    private var opensTurn = false

    /// `fork.promptLogits`: the logits after the prompt that filled the cache (query-aware mode answers from them).
    init(_ probe: ProbeCase, fork: Runner.Fork, runner: Runner) {
        self.probe = probe; self.fork = fork; self.runner = runner
        reader = ProbeRegistry.shared.probe(probe.probe) ?? FileProbe()
        captured = Array(repeating: [], count: runner.model.config.layers)
        // Query-aware: the question is already in the cache; the first answer token comes from its logits.
        if runner.queryAware {
            receive(fork.promptLogits)
        } else {
            input = runner.turnTokens(probe.turns[0], index: 0, previous: nil)
            tapping = true
        }
    }

    /// The attention tap for the next pass: only the first pass after the context is recorded.
    var tap: AttentionTap? {
        guard tapping else { return nil }
        return { [unowned self] layer, p, rows, width in captured[layer] = Array(UnsafeBufferPointer(start: p, count: rows * width)) }
    }

    /// Takes the logits of the last pass's final row and decides the next input.
    func receive(_ logits: [Float], seconds: Double = 0) {
        outcome.seconds += seconds
        let tokenizer = runner.model.tokenizer
        if turn == 0 && answer.isEmpty { outcome.firstLogits = logits }
        if tapping { outcome.firstAttention = captured; tapping = false }
        let next = Int32(logits.withUnsafeBufferPointer { Vector.argmax($0) })
        answer.append(next)
        let turnSpec = probe.turns[turn]
        let limit = runner.maxAnswerTokens(for: turnSpec)
        var stop = tokenizer.stopIds.contains(next) || answer.count == limit
        if !stop {
            let text = tokenizer.decode(answer)
            // A single-value answer ends at its first line break after some content, a list may span lines.
            if turnSpec.answers.count == 1, tokenizer.decode([next]).contains("\n"),
                !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            {
                stop = true
            }
            // Stop decoding once more tokens could not change the score.
            if reader.isSettled(text, turn: turnSpec) { stop = true }
        }
        if !stop {
            input = [next]
            answerPositions.append((turn, Int32(fork.cache.nextPosition)))
            // Query-aware runs record attention at the first answer token's pass.
            tapping = turn == 0 && answer.count == 1 && outcome.firstAttention.isEmpty
            return
        }
        let text = tokenizer.decode(answer.filter { !tokenizer.stopIds.contains($0) })
        outcome.answers.append(text)
        outcome.scores.append(reader.score(text, turn: turnSpec))
        previous = reader.previousValue(text, turn: turnSpec)
        turn += 1
        guard turn < probe.turns.count else { input = []; finish(); return }
        // Feed the last answer token, close the answer if the model did not, open the next user turn.
        answerPositions.append((turn - 1, Int32(fork.cache.nextPosition)))
        input = [next]
        let chat = runner.model.chatTemplate
        if !tokenizer.stopIds.contains(next) { input += tokenizer.encode(chat.endOfTurn) }
        input += tokenizer.encode(chat.turnSeparator) + runner.turnTokens(probe.turns[turn], index: turn, previous: previous)
        answer = []
        // Between turns: the question's own queries are the next compression's observation window.
        if let r = fork.recompress, r.betweenTurns {
            opensTurn = true
            r.observe(fork.cache, until: fork.cache.nextPosition + input.count)
        }
    }

    /// After a pass of `appended` tokens: compresses the fork back to its budget when its schedule says so
    /// (the pass opened a later turn, or `every` tokens were appended since the last compression).
    func recompressIfDue(appended: Int) throws {
        guard let r = fork.recompress else { return }
        appendedSinceCompression += appended
        let due = (opensTurn && r.betweenTurns) || r.every.map { appendedSinceCompression >= $0 } ?? false
        opensTurn = false
        guard due, !done else { return }
        let t = ContinuousClock.now
        try r.apply(fork.cache)
        outcome.recompressions += 1
        outcome.recompressedSlots = fork.cache.totalSlots
        outcome.recompressSeconds += (ContinuousClock.now - t).seconds
        appendedSinceCompression = 0
        if let every = r.every { r.observe(fork.cache, until: fork.cache.nextPosition + every) }
    }

    /// Once every turn is answered: how much of the model's own earlier answers the cache still holds.
    private func finish() {
        let earlier = Set(answerPositions.filter { $0.turn < probe.turns.count - 1 }.map(\.position))
        guard probe.turns.count > 1, !earlier.isEmpty else { return }
        let cache = fork.cache
        var kept = 0
        for l in 0..<cache.layers {
            for h in 0..<cache.kvHeads { kept += cache.slots(layer: l, head: h).reduce(0) { $0 + (earlier.contains($1.position) ? 1 : 0) } }
        }
        outcome.ownAnswerSurvival = Double(kept) / Double(earlier.count * cache.layers * cache.kvHeads)
    }
}
