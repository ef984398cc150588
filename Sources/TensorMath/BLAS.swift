import CBLAS

/// Float32 matrix products over OpenBLAS. Matrices are row-major; a weight `W` is `[out][in]`
/// (GGML order: `in` contiguous), so a linear layer is `Y[T][out] = X[T][in] · Wᵀ`.
public enum BLAS {
    /// `y[rows][out] = x[rows][inDim] · w[out][inDim]ᵀ` (overwrites y). One row uses sgemv:
    /// OpenBLAS sgemm with M = 1 is 5–10× slower than sgemv on this machine.
    public static func linear(
        _ x: UnsafePointer<Float>, rows: Int, inDim: Int,
        _ w: UnsafePointer<Float>, outDim: Int, _ y: UnsafeMutablePointer<Float>
    ) {
        if rows == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outDim), Int32(inDim), 1, w, Int32(inDim), x, 1, 0, y, 1)
        } else {
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outDim), Int32(inDim),
                1, x, Int32(inDim), w, Int32(inDim), 0, y, Int32(outDim))
        }
    }

    /// General `C[m][n] = alpha · A[m][k] · op(B) + beta · C`, with `B` given as `[n][k]` when `transB`
    /// and `[k][n]` otherwise; leading dimensions are explicit so tiles of larger buffers can be used.
    public static func gemm(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int, transB: Bool,
        beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C[m][n] = Aᵀ · B + beta · C` with `A` given as `[k][m]` and `B` as `[k][n]` (sums of outer
    /// products of k rows, such as a covariance).
    public static func gemmTransA(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
            1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// Thread control for OpenBLAS and KVKit's own parallel loops. Set once from `--threads`.
public enum Threads {
    nonisolated(unsafe) private static var current = 1

    /// Sets both OpenBLAS's thread count and the width of `parallelFor`.
    public static func set(_ n: Int) {
        current = max(1, n)
        openblas_set_num_threads(Int32(current))
    }

    /// A width for this task only (see `with(_:_:)`); nil: the process-wide setting.
    @TaskLocal static var scoped: Int?

    /// The width of KVKit's own parallel loops (and of the attention kernel's split decisions).
    public static var count: Int { scoped ?? current }

    /// Runs `body` with `n` threads for KVKit's own loops in this task only, leaving the process-wide
    /// setting alone: tests check both widths this way while other suites in the same process go on
    /// with theirs (a global switch made their results depend on the interleaving).
    public static func with<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        try $scoped.withValue(max(1, n)) { try body() }
    }

    /// Runs `body(i)` for i in 0..<n on up to `Threads.count` threads. OpenBLAS is set to one thread
    /// inside, so BLAS calls made by `body` do not oversubscribe the cores.
    public static func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        let width = count
        if width <= 1 || n <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(current)) }
        let workers = min(width, n)
        withoutActuallyEscaping(body) { body in
            if WorkerPool.shared.run(n, helpers: workers - 1, body) { return }
            let box = UnsafeSendable(body)
            let next = AtomicCounter()
            DispatchWorkers.run(workers) {
                while true {
                    let i = next.increment()
                    if i >= n { break }
                    box.value(i)
                }
            }
        }
    }
}
