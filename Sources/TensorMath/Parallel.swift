import CKernels
import CPUCheck
import Dispatch
import Foundation
import Synchronization
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

/// Persistent worker threads for `Threads.parallelFor`: a decode step makes ~200 short parallel calls
/// (each weight matrix, each attention layer), and waking dispatch workers for each cost more than the
/// work itself. Workers spin briefly on an epoch counter after a job (the next call usually comes within
/// microseconds), then sleep on a condition variable; the caller takes items too. One job at a time:
/// a call made while the pool is busy (a nested or concurrent `parallelFor`) runs on dispatch workers.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let epoch = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleep = NSCondition()
    // Written by the caller before `epoch` is bumped (release), read by workers after they see it (acquire).
    private var job: UnsafeSendable<(Int) -> Void>?
    private var items = 0
    private var threads = 0

    /// Runs `body(i)` for i in 0..<n on the caller and `helpers` pool threads; false (nothing run) when
    /// the pool is already running a job.
    func run(_ n: Int, helpers: Int, _ body: @escaping (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while threads < helpers { start() }
        job = UnsafeSendable(body)
        items = n
        next.store(0, ordering: .relaxed)
        pending.store(threads, ordering: .relaxed)
        epoch.add(1, ordering: .releasing)
        sleep.lock(); sleep.broadcast(); sleep.unlock()
        work(body, n)
        while pending.load(ordering: .acquiring) > 0 { spinHint() }
        job = nil
        return true
    }

    private func work(_ body: (Int) -> Void, _ n: Int) {
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= n { return }
            body(i)
        }
    }

    private func start() {
        threads += 1
        let seen = epoch.load(ordering: .acquiring)
        Thread.detachNewThread { [self] in
            var last = seen
            while true {
                var spins = 0
                while epoch.load(ordering: .acquiring) == last {
                    spins += 1
                    if spins < 20_000 { spinHint(); continue }
                    sleep.lock()
                    while epoch.load(ordering: .acquiring) == last { sleep.wait() }
                    sleep.unlock()
                }
                last = epoch.load(ordering: .acquiring)
                if let job { work(job.value, items) }
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}

@inline(__always) private func spinHint() {
    #if arch(x86_64)
        _ = 0  // a plain loop iteration; Swift has no portable pause intrinsic
    #endif
}

/// Which kernels this binary was built with: "avx2" for the host build (`scripts/host-flags.sh` passes
/// `-DKVKIT_AVX2`: AVX2 integer decode and attention kernels), nil for the portable build. The two give
/// the same results up to Float32 summation order, so runs record it and caches made from model outputs
/// (duo's head scores) are kept apart by it.
public enum KernelBuild {
    #if KVKIT_AVX2
        public static let name: String? = "avx2"
    #else
        public static let name: String? = nil
    #endif
    /// Whether the host build's K-quant products take the AVX-512 VNNI kernels (C functions compiled for that
    /// extension, chosen here by CPUID; `KVKIT_KERNELS=avx2` declines them). Their results are bitwise the AVX2
    /// kernels', so runs record them (`runtime`) without comparing them on resume. Settable for tests and
    /// `kvkit bench --kernels`.
    #if KVKIT_AVX2
        nonisolated(unsafe) public static var vnni512 = kvkit_has_avx512vnni() != 0
    #else
        public static let vnni512 = false
    #endif
    /// The kernels chosen at run time ("avx512-vnni"), nil where none is.
    public static var runtime: String? { vnni512 ? "avx512-vnni" : nil }
    /// The kernels in words, for benchmarks and run configs.
    public static var description: String {
        (name.map { "\($0) (host build)" } ?? "portable") + (runtime.map { " + \($0) integer products and AVX-512 attention (chosen by CPUID)" } ?? "")
    }
    /// The CPU's model name (/proc/cpuinfo), as every speed figure and run config names it. A host build
    /// on a CPU without AVX2/FMA/F16C never gets here: `CPUCheck` stops it at load with exit 69.
    public static let cpu: String = {
        var buf = [CChar](repeating: 0, count: 256)
        kvkit_cpu_name(&buf, Int32(buf.count))
        return String(cString: buf)
    }()
}
