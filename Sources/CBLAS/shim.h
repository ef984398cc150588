// cblas.h lives at /usr/include/x86_64-linux-gnu/cblas.h on Debian; pkg-config "openblas" adds its folder.
#include <cblas.h>
// Declared by OpenBLAS's cblas.h on most builds; repeated here so the thread calls are always visible.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
