import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hands a non-Sendable value (a closure, a pointer) to a fork-join region whose caller waits for
/// every worker, so the value outlives all uses.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ v: T) { value = v }
}

/// A shared work index for dynamic scheduling; a mutex is enough at the granularity of our work items.
final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func increment() -> Int {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        let v = value
        value += 1
        return v
    }
}

enum DispatchWorkers {
    /// Runs `work` on `n` threads and waits for all of them.
    static func run(_ n: Int, _ work: @escaping @Sendable () -> Void) {
        DispatchQueue.concurrentPerform(iterations: n) { _ in work() }
    }
}
