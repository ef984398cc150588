import ArgumentParser
import KVCache
import Models
import Policies
import Runs

/// Flags that choose a compression policy.
struct PolicyOptions: ParsableArguments {
    @Option(help: "Compression policy: NAME or NAME:param=value,... (see 'kvkit policies').")
    var policy: String = "full"

    @Option(parsing: .unconditional, help: "Budget per stream: a fraction in (0, 1] (0.25) or a token count (256).")
    var budget: String = "1.0"

    @Option(parsing: .unconditional, help: "Also compress every N decode steps (default: only after the prompt).")
    var compressEvery: Int?

    @Option(parsing: .unconditional, help: "Prefill the prompt N tokens at a time, compressing after each chunk.")
    var prefillChunk: Int?

    @Option(parsing: .unconditional, help: "Seed for seeded policies (random).")
    var seed: UInt64 = 0

    /// Parses the policy and budget, turning mistakes into one-line usage errors (exit 64).
    func resolve() throws -> (spec: PolicySpec, policy: any EvictionPolicy, budget: Budget) {
        do {
            let spec = try PolicyRegistry.shared.parse(policy)
            let p = try PolicyRegistry.shared.make(spec)
            let b = try Budget(parsing: budget)
            if let n = compressEvery, n < 1 { throw fail("--compress-every must be at least 1 (got \(n))", code: ExitCodes.usage) }
            if let n = prefillChunk, n < 1 { throw fail("--prefill-chunk must be at least 1 (got \(n))", code: ExitCodes.usage) }
            return (spec, p, b)
        } catch let e as PolicyError {
            throw fail(e.description, code: ExitCodes.usage)
        }
    }
}
