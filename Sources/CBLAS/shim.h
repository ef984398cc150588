// cblas.h lives at /usr/include/x86_64-linux-gnu/cblas.h on Debian; pkg-config "openblas" adds its folder.
#include <cblas.h>
// Declared by OpenBLAS's cblas.h on most builds; repeated here so the thread calls are always visible.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// The kernel set OpenBLAS chose for this CPU ("Haswell", "SkylakeX", …; OPENBLAS_CORETYPE overrides it).
char *openblas_get_corename(void);
// LAPACK's symmetric positive-definite solve (OpenBLAS ships LAPACK; Debian's headers declare it only in lapack.h).
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb, int *info);
