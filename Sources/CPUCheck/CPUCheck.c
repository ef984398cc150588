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

// The model name, family and model, and the vector extensions that decide which kernels are fastest
// ("AMD EPYC (family 26, model 2; avx2 avx512f avx512_vnni avx_vnni)"): virtual machines often report a
// bare "AMD EPYC", which alone does not say whether llama.cpp's VNNI kernels or only AVX2 ones could run.
void kvkit_cpu_name(char *buf, int size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192], name[256] = "unknown", family[32] = "", model[32] = "", ext[128] = "";
    int seenName = 0, seenFlags = 0;
    while (fgets(line, sizeof line, f) && !(seenName && seenFlags)) {
        char *v = strchr(line, ':');
        if (!v) continue;
        v += 1; while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        if (strncmp(line, "model name", 10) == 0 && !seenName) { snprintf(name, sizeof name, "%s", v); seenName = 1; }
        else if (strncmp(line, "cpu family", 10) == 0 && !family[0]) snprintf(family, sizeof family, "%s", v);
        else if (strncmp(line, "model\t", 6) == 0 && !model[0]) snprintf(model, sizeof model, "%s", v);
        else if (strncmp(line, "flags", 5) == 0 && !seenFlags) {
            static const char *wanted[] = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"};
            for (unsigned i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
                size_t n = strlen(wanted[i]);
                for (char *p = strstr(v, wanted[i]); p; p = strstr(p + 1, wanted[i])) {
                    if ((p == v || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) {
                        size_t used = strlen(ext);
                        snprintf(ext + used, sizeof ext - used, "%s%s", used ? " " : "", wanted[i]);
                        break;
                    }
                }
            }
            seenFlags = 1;
        }
    }
    fclose(f);
    if (family[0]) snprintf(buf, size, "%s (family %s, model %s; %s)", name, family, model[0] ? model : "?", ext[0] ? ext : "no avx2");
    else snprintf(buf, size, "%s", name);
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
