// Compiled for the baseline CPU whatever the Swift code is built for (Swift's -target-cpu does not reach C
// targets), so this check runs on any x86-64 CPU. A host build (make: -DKVKIT_AVX2, passed to C code too)
// checks at load time, before any Swift code runs, that the CPU has AVX2, FMA and F16C: on one without them
// it stops with one line and exit 69 (EX_UNAVAILABLE) instead of SIGILL in the middle of a run.
#include "CPUCheck.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

int kvkit_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

void kvkit_cpu_name(char *buf, int size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                v += 1; while (*v == ' ' || *v == '\t') v++;
                v[strcspn(v, "\n")] = 0;
                snprintf(buf, size, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

#ifdef KVKIT_AVX2
__attribute__((constructor)) static void kvkit_require_avx2(void) {
    if (getenv("KVKIT_FAKE_NO_AVX2") != NULL || !kvkit_cpu_has_avx2()) {
        fputs("kvkit: this binary was built for AVX2, FMA and F16C (make's host build) and this CPU lacks them; "
              "rebuild on this machine with 'make build', or build the portable kernels with 'KVKIT_PORTABLE=1 make build'\n", stderr);
        _exit(69);
    }
}
#endif
