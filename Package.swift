// swift-tools-version:6.1
import PackageDescription

// Layering (each arrow is "depends on"):
//   CLI `assay` → AssayPipeline → AssayStore → Postgres → CLibPQ
//                               ↘ Kafka → CRdKafka       ↘ DedicatedThreads
//                 AssayCore (pure domain, no I/O) is used by Store and Pipeline.
let package = Package(
    name: "assay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "assay", targets: ["assay"]),
        .executable(name: "assay-bench", targets: ["assay-bench"]),
        .executable(name: "assay-chaos", targets: ["assay-chaos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The admin API. Default traits off: no swift-configuration; HummingbirdTesting is not
        // used (it pulls async-http-client and NIO-SSL), tests call the server over loopback.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        // Runtime library only: the OTLP Swift code is generated once and committed (make proto).
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        // `/metrics` in the Prometheus text format, behind swift-metrics.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Test-only: DeployTests parse the compose and Kubernetes YAML with a real parser.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // C libraries, found through pkg-config.
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // Runs blocking C calls on threads we own, never on Swift's cooperative pool.
        .target(name: "DedicatedThreads"),

        // Thin wrappers over the C libraries.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                "DedicatedThreads",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                "DedicatedThreads",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Pure domain: trace model, decoders. No I/O.
        .target(name: "AssayCore"),

        // OTLP trace decoding (protobuf + JSON), semantic mapping and in-memory assembly. Pure, no I/O.
        .target(
            name: "AssayOTLP",
            dependencies: ["AssayCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),

        // Scorers: text extraction from traces, deterministic code scorers (and, later, LLM judges).
        .target(name: "AssayScoring", dependencies: ["AssayCore"]),

        // Metric families (all `assay_…`), the Prometheus registry behind `/metrics`, and the
        // pure regression rule (two-proportion test against a trailing baseline).
        .target(
            name: "AssayMetrics",
            dependencies: [
                "AssayCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // The OpenAI-compatible HTTP judge (URLSession), with concurrency limits, per-window
        // budgets, retries and a response cache.
        .target(
            name: "AssayJudgeHTTP",
            dependencies: [
                "AssayCore",
                "AssayMetrics",
                "AssayScoring",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The admin API (monitor get/update, pause/resume, health) served by `assay serve`.
        .target(
            name: "AssayHTTP",
            dependencies: [
                "AssayCore",
                "AssayScoring",
                "AssayStore",
                "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Schema migrations and repositories on PostgreSQL.
        .target(
            name: "AssayStore",
            dependencies: [
                "AssayCore",
                "AssayOTLP",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Long-running services: ingest (and later windows, scoring, outbox).
        .target(
            name: "AssayPipeline",
            dependencies: [
                "AssayCore",
                "AssayMetrics",
                "AssayOTLP",
                "AssayJudgeHTTP",
                "AssayScoring",
                "AssayStore",
                "Kafka",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // A throwaway PostgreSQL cluster (initdb + pg_ctl) for `assay demo` and the tests.
        .target(
            name: "LocalPostgres",
            dependencies: [
                "DedicatedThreads",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Helpers shared by test targets (JSON Schema checks, fixtures); never linked into `assay`.
        .target(
            name: "AssayTestSupport",
            dependencies: ["AssayCore", "DedicatedThreads"]
        ),

        .executableTarget(
            name: "assay",
            dependencies: [
                "AssayCore",
                "AssayMetrics",
                "AssayHTTP",
                "AssayOTLP",
                "AssayScoring",
                "AssayStore",
                "AssayPipeline",
                "Kafka",
                "LocalPostgres",
                "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // `make bench`: ingest and scoring against the Kafka and PostgreSQL limits (not a test).
        .executableTarget(
            name: "assay-bench",
            dependencies: [
                "AssayCore", "AssayStore", "DedicatedThreads", "Kafka", "LocalPostgres", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/AssayBench"
        ),

        // `make chaos`: replicas, a broker process and PostgreSQL under injected faults.
        .executableTarget(
            name: "assay-chaos",
            dependencies: [
                "AssayCore", "AssayStore", "AssayTestSupport", "DedicatedThreads", "Kafka", "LocalPostgres", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/AssayChaos"
        ),

        .testTarget(
            name: "AssayCoreTests",
            dependencies: ["AssayCore", "AssayTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "AssayScoringTests",
            dependencies: ["AssayScoring", "AssayCore", "AssayTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "AssayJudgeHTTPTests",
            dependencies: [
                "AssayJudgeHTTP", "AssayScoring", "AssayCore", "AssayTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AssayHTTPTests",
            dependencies: [
                "AssayHTTP", "AssayCore", "AssayStore", "Postgres", "LocalPostgres",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AssayOTLPTests",
            dependencies: ["AssayOTLP", "AssayCore", "AssayScoring", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "AssayPipelineTests",
            dependencies: ["AssayPipeline", "AssayCore", "AssayStore", "AssayTestSupport", "Kafka", "Postgres"]
        ),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["AssayTestSupport", "Kafka"]
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "LocalPostgres"]
        ),
        .testTarget(
            name: "AssayIntegrationTests",
            dependencies: [
                "AssayCore", "AssayMetrics", "AssayOTLP", "AssayStore", "AssayPipeline", "AssayTestSupport", "DedicatedThreads", "Kafka", "Postgres", "LocalPostgres",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "AssayMetricsTests",
            dependencies: [
                "AssayMetrics", "AssayCore", "AssayJudgeHTTP", "AssayScoring", "AssayTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // deploy/, docs/ and the CLI kept in step: manifests may only use flags `assay serve` has.
        .testTarget(
            name: "DeployTests",
            dependencies: [
                "AssayCore", "AssayTestSupport", "DedicatedThreads", "LocalPostgres",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
