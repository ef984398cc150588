#ifndef KVKIT_CPUCHECK_H
#define KVKIT_CPUCHECK_H
/// The CPU's model name with its family, model and vector extensions (from /proc/cpuinfo; "unknown" elsewhere), written into buf.
void kvkit_cpu_name(char *buf, int size);
/// 1 when the CPU has what the host build's kernels use (AVX2, FMA, F16C), else 0.
int kvkit_cpu_has_avx2(void);
#endif
