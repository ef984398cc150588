// swift-tools-version:6.0
// Plugins outside KVKit: one Swift file adds a policy (VATP), one a policy with an attention statistic of its
// own (Scissorhands), one a probe (passkey), one a model family (EXAONE, with its chat format); the executable registers them and runs KVKit's own command line, so `plugin-kvkit run --policy vatp --probe passkey`
// works like `kvkit`.
import PackageDescription

let package = Package(
    name: "plugin-example",
    platforms: [.macOS(.v14)],
    dependencies: [
        // In your own package: .package(url: "<KVKit's repository>", from: "…")
        .package(name: "KVKit", path: "../..")
    ],
    targets: [
        .target(name: "VATPPolicy", dependencies: [.product(name: "KVKit", package: "KVKit")]),
        .target(name: "PasskeyProbe", dependencies: [.product(name: "KVKit", package: "KVKit")]),
        .target(name: "ExaoneFamily", dependencies: [.product(name: "KVKit", package: "KVKit")]),
        .target(name: "ScissorhandsPolicy", dependencies: [.product(name: "KVKit", package: "KVKit")]),
        .executableTarget(
            name: "plugin-kvkit",
            dependencies: [
                "VATPPolicy", "PasskeyProbe", "ExaoneFamily", "ScissorhandsPolicy", .product(name: "KVKitCLI", package: "KVKit"),
                .product(name: "KVKit", package: "KVKit"),
            ]),
        .testTarget(
            name: "VATPPolicyTests",
            dependencies: [
                "VATPPolicy", .product(name: "PolicyConformance", package: "KVKit"), .product(name: "KVKit", package: "KVKit"),
            ]),
        .testTarget(
            name: "PasskeyProbeTests",
            dependencies: [
                "PasskeyProbe", .product(name: "PolicyConformance", package: "KVKit"), .product(name: "KVKit", package: "KVKit"),
            ]),
        .testTarget(name: "ExaoneFamilyTests", dependencies: ["ExaoneFamily", .product(name: "KVKit", package: "KVKit")]),
        .testTarget(
            name: "ScissorhandsPolicyTests",
            dependencies: [
                "ScissorhandsPolicy", .product(name: "PolicyConformance", package: "KVKit"), .product(name: "KVKit", package: "KVKit"),
            ]),
    ],
    swiftLanguageModes: [.v5]
)
