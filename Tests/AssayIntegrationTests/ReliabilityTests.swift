import AssayCore
import Foundation
import Kafka
import Testing

@Suite("Reliability", .serialized)
struct ReliabilityTests {
    /// Every kind of hostile message, each sent to every partition at once.
    static func poisonKinds() throws -> [(reason: String, value: [UInt8]?, contentType: String?)] {
        var random = SplitMix64(seed: 3)
        let garbage = (0..<(2 * 1024 * 1024)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        var nested = #"{"stringValue":"deep"}"#
        for _ in 0..<200 { nested = #"{"arrayValue":{"values":[\#(nested)]}}"# }
        let deepOTLP = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"051581bf3cb55c13","name":"x","startTimeUnixNano":"1770000000000000000","endTimeUnixNano":"1770000000100000000","attributes":[{"key":"k","value":\#(nested)}]}]}]}]}"#
        let zeroID = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"051581bf3cb55c13","name":"x","startTimeUnixNano":"1770000000000000000"}]}]}]}"#
        return [
            ("invalid_json", try fixture("invalid-json.json"), nil),
            ("invalid_shape", try fixture("wrong-shape-mlflow.json"), nil),
            ("empty_payload", [], nil),
            ("tombstone", nil, nil),
            ("too_large", garbage, nil),
            ("invalid_protobuf", [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01], "application/x-protobuf"),
            ("limit_exceeded", Array(deepOTLP.utf8), "application/json"),
            ("invalid_shape", Array(zeroID.utf8), nil),
            ("unsupported_format", Array("[1,2,3]".utf8), nil),
            ("event_time_out_of_range", try fixture("mlflow-future-request-time.json"), nil),
        ]
    }

    @Test("each poison kind on every partition at once: all dead letters, the replica never crashes, good traces behind them are stored")
    func poisonEverywhere() async throws {
        try await Environment.with(partitions: 4) { env in
            let kinds = try Self.poisonKinds()
            var messages: [ProducerMessage] = []
            for partition in 0..<Int32(4) {
                for kind in kinds {
                    messages.append(ProducerMessage(topic: "traces", partition: partition, value: kind.value,
                                                    headers: kind.contentType.map { [(name: "content-type", value: Array($0.utf8))] } ?? []))
                }
            }
            let (good, ids) = syntheticMessages(count: 200, seed: 23)
            try await env.publish(messages + good, maxMessageBytes: 4 * 1024 * 1024)
            let replica = try ServeProcess(environment: env, replica: "hostile")
            let expectedLetters = kinds.count * 4
            _ = try await env.waitUntil("everything durable", query: { connection in
                let row = try connection.query("SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM traces)")[0]
                return [try row.int(0), try row.int(1)]
            }, done: { $0 == [expectedLetters, 200] })
            #expect(replica.process.isRunning, "the replica is still up: \(replica.log.suffix(1500))")
            await replica.terminate()
            #expect(replica.process.terminationStatus == 0, "clean exit on SIGTERM")
            let reasons = try await env.pool.withConnection { connection in
                try connection.query("SELECT reason, count(*) FROM dead_letters GROUP BY 1").map { (try $0.string(0), try $0.int(1)) }
            }
            var expected: [String: Int] = [:]
            for kind in kinds { expected[kind.reason, default: 0] += 4 }
            #expect(Dictionary(uniqueKeysWithValues: reasons) == expected)
            #expect(Set(try await env.storedTraceIDs().keys) == ids)
        }
    }

    @Test("SIGTERM: the replica exits 0 within its shutdown deadline, with Kafka's committed offsets at the stored ones and the log end")
    func gracefulShutdownCommits() async throws {
        try await Environment.with(partitions: 4) { env in
            let (good, ids) = syntheticMessages(count: 600, seed: 29)
            try await env.publish(good)
            let replica = try ServeProcess(environment: env, replica: "leaving", extraArguments: ["--shutdown-deadline-seconds", "10"])
            _ = try await env.waitUntil("every trace stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 == 600 })
            let ends = try await env.endOffsets()
            let stopping = ContinuousClock.now
            await replica.terminate()
            let took = stopping.duration(to: .now)
            #expect(replica.process.terminationStatus == 0, "clean exit: \(replica.log.suffix(1500))")
            #expect(took < .seconds(10 + 5), "stopped within the deadline plus the cancellation grace: \(took)")
            #expect(replica.log.contains("partitions revoked"), "left the group")
            #expect(try await env.storedOffsets(group: "assay") == ends)
            let committed = try await env.kafkaCommittedOffsets(group: "assay")
            for (partition, end) in ends {
                #expect(committed[partition] == .some(end), "Kafka's committed offset of partition \(partition)")
            }
            #expect(Set(try await env.storedTraceIDs().keys) == ids)
        }
    }

    @Test("SIGTERM with the broker down: the replica stops waiting for Kafka and exits 0 within its deadline, every trace kept")
    func shutdownDuringBrokerOutage() async throws {
        try await Environment.with(partitions: 4) { env in
            let (good, ids) = syntheticMessages(count: 300, seed: 31)
            try await env.publish(good)
            // librdkafka alone would wait up to the 45 s session timeout for a coordinator to
            // take the last commit and the leave, past the 20 s deadline; the shutdown then
            // ended in service-lifecycle's crash.
            let replica = try ServeProcess(environment: env, replica: "outage",
                                           extraArguments: ["--session-timeout-ms", "45000", "--shutdown-deadline-seconds", "20"])
            _ = try await env.waitUntil("every trace stored", query: { try $0.query("SELECT count(*) FROM traces")[0].int(0) }, done: { $0 == 300 })
            try env.cluster.setBrokerDown(1)
            let noticed = ContinuousClock.now.advanced(by: .seconds(60))
            while !replica.log.contains("_ALL_BROKERS_DOWN") && ContinuousClock.now < noticed {
                try await Task.sleep(for: .milliseconds(100))  // polls the log file for librdkafka's report
            }
            #expect(replica.log.contains("_ALL_BROKERS_DOWN"), "the replica saw every broker down: \(replica.log.suffix(1500))")
            await replica.terminate()
            #expect(replica.process.terminationReason == .exit && replica.process.terminationStatus == 0,
                    "clean exit: \(replica.log.suffix(2500))")
            #expect(replica.log.contains("left without leaving the Kafka group"), "gave up on the coordinator")
            #expect(Set(try await env.storedTraceIDs().keys) == ids)
        }
    }
}
