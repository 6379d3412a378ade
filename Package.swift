// swift-tools-version: 6.0
// SwiftVLM — vision-language models on the CPU, in Swift.
//
// Layering (dependencies flow one way):
//   CVLM (C kernels, image codecs; naive + runtime-dispatched SIMD)
//     -> VLMTensor (tensors, ops, safetensors I/O)
//       -> VLMLayers (linear, norms, attention, transformer blocks, strict weight loading)
//         -> VLMTokenizers, VLMImage (text and pixel front ends)
//           -> VLMModels (CLIP, ...; one file per model)
//             -> VLMTraining (backward passes, contrastive training), VLMIndex (vector storage and search),
//                VLMScenes (synthetic data)
//               -> SwiftVLM (pipelines: embed, classify, similarity, search)
//                 -> VLMServer (HTTP API, Hummingbird)
//               -> vlm (thin CLI)
//   VLMMilvus (Milvus vector-store backend over gRPC; depends on VLMIndex only). Only the executable and the
//   Milvus tests link it, so gRPC/SwiftProtobuf stay out of every other target.
import PackageDescription

let package = Package(
    name: "SwiftVLM",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SwiftVLM", targets: ["SwiftVLM"]),
        .executable(name: "vlm", targets: ["vlm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3" ..< "5.0.0"),
    ],
    targets: [
        .target(
            name: "CVLM",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png"), .linkedLibrary("m"), .linkedLibrary("pthread")]
        ),
        .target(name: "VLMTensor", dependencies: ["CVLM"]),
        .target(name: "VLMLayers", dependencies: ["VLMTensor"]),
        .target(name: "VLMTokenizers"),
        .target(name: "VLMImage", dependencies: ["CVLM", "VLMTensor"]),
        .target(name: "VLMModels", dependencies: ["VLMLayers", "VLMTokenizers", "VLMImage"]),
        .target(name: "VLMIndex", dependencies: ["VLMTensor", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "VLMScenes", dependencies: ["VLMImage"]),
        .target(name: "VLMTraining", dependencies: ["VLMModels"]),
        .target(name: "SwiftVLM", dependencies: ["VLMModels", "VLMIndex", "VLMScenes", "VLMTraining"]),
        .target(
            name: "VLMMilvus",
            dependencies: [
                "VLMIndex",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Proto"]
        ),
        .target(name: "VLMServer", dependencies: ["SwiftVLM", .product(name: "Hummingbird", package: "hummingbird")]),
        .executableTarget(
            name: "vlm",
            dependencies: ["SwiftVLM", "VLMServer", "VLMMilvus", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "vlm-bench-kernels", dependencies: ["VLMTensor"], path: "Benchmarks/KernelBench"),
        .executableTarget(name: "vlm-bench-precision", dependencies: ["VLMModels"], path: "Benchmarks/PrecisionBench"),
        // Fuzz targets over every parser of outside input: replays a corpus in the normal build; Scripts/fuzz.sh
        // builds it with libFuzzer and the address sanitizer.
        .executableTarget(name: "vlm-fuzz", dependencies: ["VLMImage", "VLMModels", "VLMTokenizers", "VLMServer"], path: "Fuzz",
                          exclude: ["corpus", "lsan.supp", "c"]),
        .target(name: "VLMTestSupport", dependencies: ["VLMTensor", "CVLM"], path: "Sources/VLMTestSupport"),
        .testTarget(name: "VLMTensorTests", dependencies: ["VLMTensor", "VLMTestSupport", "CVLM"]),
        .testTarget(name: "VLMTokenizersTests", dependencies: ["VLMTokenizers", "VLMTestSupport"]),
        .testTarget(name: "VLMImageTests", dependencies: ["VLMImage", "VLMTestSupport"]),
        .testTarget(name: "VLMModelsTests", dependencies: ["SwiftVLM", "VLMModels", "VLMTestSupport"]),
        .testTarget(name: "VLMIndexTests", dependencies: ["VLMIndex", "VLMTestSupport"]),
        .testTarget(name: "VLMMilvusTests", dependencies: ["VLMMilvus", "VLMIndex", "VLMTestSupport",
                                                         .product(name: "NIOCore", package: "swift-nio"),
                                                         .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "VLMTrainingTests", dependencies: ["VLMTraining", "VLMTestSupport"]),
        .testTarget(name: "VLMScenesTests", dependencies: ["VLMScenes", "VLMTestSupport"]),
        .testTarget(name: "VLMServerTests", dependencies: [
            "VLMServer", "VLMMilvus", "VLMTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "VLMCLITests", dependencies: ["VLMTestSupport", "vlm", "vlm-fuzz"]),
    ],
    swiftLanguageModes: [.v5]
)
