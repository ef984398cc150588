#!/usr/bin/env bash
# The Swift flags of a host build: on an x86-64 CPU with AVX2, FMA and F16C (every x86 server since 2013),
# code generation for Haswell and KVKit's AVX2 integer decode kernels (Sources/Models/IntKernelsAVX2.swift);
# elsewhere nothing (baseline x86-64 with the portable SSE2 kernels, or arm64). As llama.cpp builds for the
# host CPU (GGML_NATIVE). KVKIT_PORTABLE=1 forces the portable build. Every make target passes the same
# flags, so build, test and bench share one .build.
[ "${KVKIT_PORTABLE:-0}" = 1 ] && exit 0
[ "$(uname -m)" = x86_64 ] || exit 0
flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
for f in avx2 fma f16c; do case " $flags " in *" $f "*) ;; *) exit 0 ;; esac; done
echo "-Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DKVKIT_AVX2 -Xcc -DKVKIT_AVX2"
