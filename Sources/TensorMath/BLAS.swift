import CBLAS

/// Float32 matrix products over OpenBLAS. Matrices are row-major; a weight `W` is `[out][in]`
/// (GGML order: `in` contiguous), so a linear layer is `Y[T][out] = X[T][in] · Wᵀ`.
public enum BLAS {
    /// The kernel set OpenBLAS runs on this machine ("Haswell", "SkylakeX", …; the environment's
    /// `OPENBLAS_CORETYPE` overrides its choice). Different kernel sets sum in different orders, so runs
    /// record it and a resume does not mix two (`RunConfig.blas`).
    public static let coreName: String = String(cString: openblas_get_corename())

    /// A note for speed figures when OpenBLAS runs AVX2 kernels (`core` "Haswell" or "Zen") on a CPU whose
    /// extensions (`cpu`, as `KernelBuild.cpu` names them) include AVX-512, e.g. because the environment sets
    /// `OPENBLAS_CORETYPE`: sgemm (the prefill of the non-K-quant layers) is then slower than the CPU allows.
    /// KVKit leaves the setting alone; nil when there is nothing to say.
    public static func coreNote(core: String = coreName, cpu: String = KernelBuild.cpu) -> String? {
        guard ["haswell", "zen"].contains(core.lowercased()), cpu.contains("avx512f") else { return nil }
        return
            "note: OpenBLAS runs its \(core) (AVX2) kernels on this AVX-512 CPU (OPENBLAS_CORETYPE?); prefill figures are sgemm-bound below what the CPU allows (docs/speed.md)"
    }

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

/// Double-precision least squares: the normal equations of a ridge regression (sums over rows, then one
/// LAPACK `dposv` solve), for fits such as KVzap's per-layer score predictor.
public enum Ridge {
    /// `g[d][d] += Xᵀ·X` and `xy[m][d] += Yᵀ·X` for `n` rows `x[n][d]`, `y[n][m]` (row-major).
    public static func accumulate(
        _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, rows n: Int, d: Int, m: Int,
        gram g: UnsafeMutablePointer<Double>, cross xy: UnsafeMutablePointer<Double>
    ) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1, x, Int32(d), x, Int32(d), 1, g, Int32(d))
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(d), Int32(n), 1, y, Int32(m), x, Int32(d), 1, xy, Int32(d))
    }

    /// Solves `A·wᵢ = bᵢ` for the `m` right-hand sides `b[m][d]` in place (A symmetric positive definite,
    /// `a[d][d]`, overwritten by its Cholesky factor). False when A is not positive definite.
    public static func solve(_ a: inout [Double], d: Int, _ b: inout [Double], m: Int) -> Bool {
        var n = Int32(d), nrhs = Int32(m), lda = Int32(d), ldb = Int32(d), info: Int32 = 0
        var uplo = CChar(UInt8(ascii: "L"))
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in dposv_(&uplo, &n, &nrhs, ap.baseAddress!, &lda, bp.baseAddress!, &ldb, &info) }
        }
        return info == 0
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
