// swift-tools-version:6.0
// KVKit: a research kit for KV-cache compression. Libraries follow the data path:
// model file + tokenizer -> tensor math -> paged cache + attention kernel -> model -> CLI.
import PackageDescription

let package = Package(
    name: "KVKit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KVKit", targets: ["PluginRegistry", "ModelFile", "TensorMath", "KVCache", "Policies", "Probes", "Models", "Runs"]),
        .library(name: "KVKitCLI", targets: ["KVKitCLI"]),
        .library(name: "PolicyConformance", targets: ["PolicyConformance"]),
        .executable(name: "kvkit", targets: ["kvkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 of the model file for every run's config.json.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        // YAML study configs for `kvkit sweep` (the maintained Swift YAML package, over libyaml).
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // `make docs`: the DocC articles for plug-in authors, built and link-checked in CI.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // System libraries: `make setup` installs the Debian packages; `providers` only prints a hint.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),

        // GGUF reader (memory-mapped), dequantization, byte-level BPE tokenizer, chat template.
        .target(name: "ModelFile"),
        // The one registry every plug-in kind uses (policies, codecs, probes) and their typed parameters.
        .target(name: "PluginRegistry"),
        // The CPU's name, and the host build's load-time check that the CPU has the kernels' instructions (C,
        // compiled for the baseline CPU: exit 69 with one line instead of SIGILL mid-run).
        .target(name: "CPUCheck"),
        // Kernels for CPU extensions the build was not made for (AVX-512 VNNI, AVX-512 F attention), chosen at run time by CPUID: C
        // with clang's per-function `target` attribute, which Swift lacks.
        .target(name: "CKernels"),
        // Float32 vector and matrix kernels over OpenBLAS, thread control.
        .target(name: "TensorMath", dependencies: ["CBLAS", "CPUCheck", "CKernels"]),
        // Paged K/V storage (page pool, per-(layer, KV head) page tables, codec pages, LZ4 cold tier) and the attention kernel.
        .target(name: "KVCache", dependencies: ["TensorMath", "CLZ4", "CKernels"]),
        // Compression policies (eviction now; quantization and retention later), their registry and the compressor.
        .target(name: "Policies", dependencies: ["KVCache", "TensorMath", "PluginRegistry"]),
        // The conformance kit policy authors' tests call (budget, pinned slots, determinism, fork safety).
        .target(name: "PolicyConformance", dependencies: ["Policies", "KVCache", "TensorMath", "Probes", "ModelFile"]),
        // Needle and multi-hop probe generators, haystacks, bring-your-own probe files.
        .target(name: "Probes", dependencies: ["ModelFile", "TensorMath", "PluginRegistry"]),
        // Decoder forward pass (every registered family) reading weights from a GGUF file and K/V through KVCache.
        .target(name: "Models", dependencies: ["ModelFile", "TensorMath", "KVCache", "CKernels"]),
        // Runs probes against policies (one prefill per case, a fork per policy × budget) and reports results.
        .target(
            name: "Runs",
            dependencies: [
                "Probes", "Policies", "Models", "KVCache", "ModelFile", "TensorMath",
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Yams", package: "Yams"),
            ]),
        // The `kvkit` commands as a library, so plugin packages can call the same entry point.
        .target(
            name: "KVKitCLI",
            dependencies: [
                "ModelFile", "TensorMath", "KVCache", "Policies", "Probes", "Runs", "Models",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "kvkit", dependencies: ["KVKitCLI"]),
        // Where the real model and ../shared/reference live, and readers for the reference files.
        .target(name: "KVKitTestSupport", dependencies: ["TensorMath"]),

        .testTarget(name: "ModelFileTests", dependencies: ["ModelFile", "KVKitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "KVCacheTests", dependencies: ["KVCache", "TensorMath", "KVKitTestSupport"]),
        .testTarget(name: "PoliciesTests", dependencies: ["Policies", "PolicyConformance", "KVCache", "TensorMath", "KVKitTestSupport"]),
        .testTarget(
            name: "ModelTests", dependencies: ["Models", "ModelFile", "KVCache", "TensorMath", "Policies", "Probes", "Runs", "KVKitCLI", "KVKitTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
