import AssayCore
import AssayStore
import Foundation
import Synchronization
import Testing
@testable import AssayHTTP

/// The admin API over loopback HTTP against a real database.
@Suite struct AdminAPITests {
    @Test func getWithoutMonitorIsJSON404() async throws {
        try await withAPI { api in
            let response = try await api.client(token: nil).send("GET", "api/monitor")
            #expect(response.status == 404)
            #expect(response.headers["content-type"] == "application/json")
            #expect(response.errorMessage == "no monitor is configured")
            let error = await adminError { _ = try await api.client(token: nil).current() }
            #expect(error == .notFound("no monitor is configured"))
        }
    }

    @Test func mutationsNeedTheBearerToken() async throws {
        try await withAPI { api in
            let body = Array(validDocument.utf8)
            let missing = try await api.client(token: nil).send("PUT", "api/monitor", body: body)
            #expect(missing.status == 401)
            #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(missing.errorMessage?.contains("Authorization: Bearer") == true)

            for wrong in ["wrong", String(testToken.dropLast()) + "X", testToken + "X", String(repeating: "a", count: 300)] {
                let response = try await api.client(token: wrong).send("PUT", "api/monitor", body: body)
                #expect(response.status == 401, "token \(wrong)")
                #expect(response.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
                #expect(response.errorMessage == "the bearer token is not valid")
            }
            // Another scheme is no bearer token either.
            let basic = try await api.client(token: nil).send("PUT", "api/monitor", body: body, headers: ["Authorization": "Basic \(testToken)"])
            #expect(basic.status == 401)
            for path in ["api/monitor/pause", "api/monitor/resume"] {
                #expect(try await api.client(token: "wrong").send("POST", path).status == 401)
            }
            #expect(try await api.storedVersions() == 0)
        }
    }

    @Test func mutationsAreRefusedWithoutAConfiguredToken() async throws {
        try await withAPI(token: nil) { api in
            for token in [nil, "anything", ""] as [String?] {
                let response = try await api.client(token: token).send("PUT", "api/monitor", body: Array(validDocument.utf8))
                #expect(response.status == 403)
                #expect(response.errorMessage?.contains("ASSAY_ADMIN_TOKEN") == true)
            }
            #expect(try await api.client(token: "x").send("POST", "api/monitor/pause").status == 403)
            #expect(try await api.storedVersions() == 0)
            // Reads stay public on loopback.
            #expect(try await api.client(token: nil).send("GET", "api/monitor").status == 404)
        }
    }

    @Test func putStoresANewVersionAndGetReturnsItWithAnETag() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            let put = try await client.send("PUT", "api/monitor", body: Array(validDocument.utf8))
            #expect(put.status == 201)
            #expect(put.headers["etag"] == "\"1\"")
            let stored = try MonitorJSON.decodeVersion(put.parsed())
            #expect(stored.version == 1)
            #expect(stored.note == "api")
            #expect(stored.effectiveFromNanos == nil)
            #expect(stored.config == (try MonitorConfig.parse(Array(validDocument.utf8))))

            let get = try await api.client(token: nil).send("GET", "api/monitor")
            #expect(get.status == 200)
            #expect(get.headers["etag"] == "\"1\"")
            #expect(get.headers["content-type"] == "application/json")
            let json = try get.parsed()
            #expect(json["version"]?.int64Value == 1)
            #expect(json["effective_from"]?.isNull == true)
            #expect(json["note"]?.stringValue == "api")
            #expect(TimeParsing.rfc3339Nanoseconds(json["created_at"]?.stringValue ?? "") != nil)
            #expect(json["config"] == (try MonitorConfig.parse(Array(validDocument.utf8))).json())

            // The next version takes effect at a window boundary in the future.
            let second = try await client.update(document: Array(document(named: "renamed").utf8), expectedVersion: nil)
            #expect(second.version.version == 2)
            #expect(second.created)
            let effective = try #require(second.version.effectiveFromNanos)
            #expect(effective % 60_000_000_000 == 0)
            let current = try await client.current()
            #expect(current.version == 2)
            #expect(current.config.name == "renamed")
        }
    }

    @Test func aStaleIfMatchIsAConflict() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            _ = try await client.update(document: Array(validDocument.utf8), expectedVersion: nil)
            _ = try await client.update(document: Array(document(named: "second").utf8), expectedVersion: 1)

            let stale = try await client.send("PUT", "api/monitor", body: Array(document(named: "third").utf8), headers: ["If-Match": "\"1\""])
            #expect(stale.status == 409)
            #expect(stale.errorMessage?.contains("expected version 1, but the current version is 2") == true)
            let error = await adminError { _ = try await client.update(document: Array(document(named: "third").utf8), expectedVersion: 1) }
            #expect(error?.status == 409)
            #expect(try await api.storedVersions() == 2)

            // Every accepted spelling of the current version.
            var expected: Int64 = 2
            for header in ["2", "\"3\"", "W/\"4\""] {
                let response = try await client.send("PUT", "api/monitor", body: Array(document(named: "v\(expected + 1)").utf8), headers: ["If-Match": header])
                #expect(response.status == 201, "If-Match: \(header)")
                expected += 1
                #expect(response.headers["etag"] == "\"\(expected)\"")
            }
            for malformed in ["abc", "*", "\"1\", \"2\"", "0", "-1"] {
                let response = try await client.send("PUT", "api/monitor", body: Array(validDocument.utf8), headers: ["If-Match": malformed])
                #expect(response.status == 400, "If-Match: \(malformed)")
                #expect(response.errorMessage?.contains("If-Match") == true)
            }
            #expect(try await api.storedVersions() == 5)
        }
    }

    @Test func changingTheDestinationIsAConflictWithAClearMessage() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            _ = try await client.update(document: Array(validDocument.utf8), expectedVersion: nil)
            let response = try await client.send("PUT", "api/monitor", body: Array(document(named: "moved", schema: "elsewhere").utf8))
            #expect(response.status == 409)
            #expect(response.errorMessage == "destination.schema is fixed once set: it is assay; an update cannot change it to elsewhere")
            #expect(response.errorPath == "destination.schema")
            let error = await adminError { _ = try await client.update(document: Array(document(named: "moved", schema: "elsewhere").utf8), expectedVersion: nil) }
            #expect(error == .conflict("destination.schema is fixed once set: it is assay; an update cannot change it to elsewhere", path: "destination.schema"))
            #expect(try await api.storedVersions() == 1)
        }
    }

    @Test(arguments: [
        // (document, the first issue's path, a fragment of its message)
        (#"{"name": "m", "destination": {"schema": "assay"}, "scorers": [], "colour": "red"}"#, "colour", "unknown field"),
        (#"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "no_error", "sample_rate": 1.5}]}"#,
         "scorers[0].sample_rate", "between 0 and 1"),
        (#"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "no_error", "filter": "tags.env = "}]}"#,
         "scorers[0].filter", ""),
        (#"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "no_error"}, {"name": "b", "kind": "latency", "params": {"max_ms": -1}}]}"#,
         "scorers[1].params.max_ms", ""),
        (#"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "latency", "params": {"max_ms": 10, "typo": 1}}]}"#,
         "scorers[0].params.typo", "unknown parameter"),
    ])
    func anInvalidDocumentIs400NamingThePath(document: String, path: String, fragment: String) async throws {
        try await withAPI { api in
            let response = try await api.client(token: testToken).send("PUT", "api/monitor", body: Array(document.utf8))
            #expect(response.status == 400)
            #expect(response.errorPath == path)
            let json = try response.parsed()
            let message = try #require(json["error"]?.stringValue)
            #expect(fragment.isEmpty || message.contains(fragment), "\(message)")
            #expect(json["issues"]?[0]?["path"]?.stringValue == path)
            #expect(try await api.storedVersions() == 0)
        }
    }

    @Test func everyIssueIsListedAndNonJSONIsRefused() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            let document = #"{"name": "", "destination": {"schema": "assay"}, "window": "soon", "scorers": [{"name": "a", "kind": "nope"}]}"#
            let error = await adminError { _ = try await client.update(document: Array(document.utf8), expectedVersion: nil) }
            guard case .invalidDocument(let issues)? = error else {
                Issue.record("expected an invalid document, got \(String(describing: error))")
                return
            }
            #expect(Set(issues.map(\.path)) == ["name", "window", "scorers[0].kind"])

            let notJSON = try await client.send("PUT", "api/monitor", body: Array("{not json".utf8))
            #expect(notJSON.status == 400)
            #expect(notJSON.errorMessage?.contains("not valid JSON") == true)
            let empty = try await client.send("PUT", "api/monitor", body: [])
            #expect(empty.status == 400)
        }
    }

    @Test func anOversizedBodyIs413() async throws {
        try await withAPI(maxBodyBytes: 1024) { api in
            let client = api.client(token: testToken)
            // Valid JSON, padded past the cap with whitespace.
            let padded = validDocument + String(repeating: " ", count: 2048)
            let response = try await client.send("PUT", "api/monitor", body: Array(padded.utf8))
            #expect(response.status == 413)
            #expect(response.errorMessage?.contains("1024 bytes") == true)
            #expect(try await api.storedVersions() == 0)
            // At the cap it is accepted.
            let exact = validDocument + String(repeating: " ", count: 1024 - validDocument.utf8.count)
            #expect(try await client.send("PUT", "api/monitor", body: Array(exact.utf8)).status == 201)
        }
    }

    @Test func aStreamedBodyIsCutOffAtTheCap() async throws {
        // No Content-Length: the bytes are counted as they arrive.
        func chunks(_ sizes: [Int]) -> AsyncStream<[UInt8]> {
            AsyncStream { continuation in
                for size in sizes { continuation.yield([UInt8](repeating: 32, count: size)) }
                continuation.finish()
            }
        }
        await #expect(throws: MonitorAdminError.payloadTooLarge("the request body is larger than 1000 bytes")) {
            _ = try await AdminResponse.collect(chunks([600, 600]), contentLength: nil, limit: 1000)
        }
        #expect(try await AdminResponse.collect(chunks([600, 400]), contentLength: nil, limit: 1000).count == 1000)
        // A declared length over the cap is refused before any byte is read.
        await #expect(throws: MonitorAdminError.payloadTooLarge("the request body is larger than 1000 bytes")) {
            _ = try await AdminResponse.collect(chunks([]), contentLength: "1001", limit: 1000)
        }
    }

    @Test func versionsAreListedNewestFirst() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            _ = try await client.update(document: Array(validDocument.utf8), expectedVersion: nil)
            _ = try await client.update(document: Array(document(named: "two").utf8), expectedVersion: nil)
            _ = try await client.setPaused(true, expectedVersion: nil)

            let response = try await api.client(token: nil).send("GET", "api/monitor/versions")
            #expect(response.status == 200)
            let list = try #require(response.parsed()["versions"]?.arrayValue)
            #expect(list.map { $0["version"]?.int64Value } == [3, 2, 1])
            #expect(list.map { $0["paused"]?.boolValue } == [true, false, false])
            #expect(list[2]["effective_from"]?.isNull == true)
            #expect(list[0]["note"]?.stringValue == "api")
            #expect(list[0]["scorers"] == .array(["no_pii", "fast_enough"]))
            #expect(list.allSatisfy { $0["created_at"]?.stringValue != nil })

            let limited = try await client.versions(limit: 2)
            #expect(limited.map(\.version) == [3, 2])
            #expect(try await client.send("GET", "api/monitor/versions", query: "limit=0").status == 400)
            #expect(try await client.send("GET", "api/monitor/versions", query: "limit=x").status == 400)
        }
    }

    @Test func pauseAndResumeWriteVersions() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            let nothing = try await client.send("POST", "api/monitor/pause")
            #expect(nothing.status == 409)
            #expect(nothing.errorMessage?.contains("nothing to pause") == true)

            _ = try await client.update(document: Array(validDocument.utf8), expectedVersion: nil)
            let paused = try await client.send("POST", "api/monitor/pause")
            #expect(paused.status == 201)
            #expect(paused.headers["etag"] == "\"2\"")
            let pausedVersion = try MonitorJSON.decodeVersion(paused.parsed())
            #expect(pausedVersion.version == 2)
            #expect(pausedVersion.config.paused)
            #expect(pausedVersion.config.name == "prod-chatbot")

            // Already paused: nothing is written.
            let again = try await client.send("POST", "api/monitor/pause")
            #expect(again.status == 200)
            #expect(try MonitorJSON.decodeVersion(again.parsed()).version == 2)
            #expect(try await api.storedVersions() == 2)

            // A stale If-Match is refused, the current one accepted.
            #expect(try await client.send("POST", "api/monitor/resume", headers: ["If-Match": "1"]).status == 409)
            let resumed = try await client.setPaused(false, expectedVersion: 2)
            #expect(resumed.created)
            #expect(resumed.version.version == 3)
            #expect(!resumed.version.config.paused)
            #expect(try await client.current().config.paused == false)
        }
    }

    @Test func healthAndReadiness() async throws {
        let failing = Mutex<String?>(nil)
        try await withAPI(readiness: { ["postgres": nil, "kafka": failing.withLock { $0 }] }) { api in
            let client = api.client(token: nil)
            let health = try await client.send("GET", "healthz")
            #expect(health.status == 200)
            #expect(try health.parsed() == .object(["status": "ok"]))

            let ready = try await client.send("GET", "readyz")
            #expect(ready.status == 200)
            #expect(try ready.parsed()["status"]?.stringValue == "ready")
            #expect(try ready.parsed()["checks"]?["kafka"]?["status"]?.stringValue == "ok")

            failing.withLock { $0 = "no broker reachable at localhost:9092" }
            let notReady = try await client.send("GET", "readyz")
            #expect(notReady.status == 503)
            let json = try notReady.parsed()
            #expect(json["status"]?.stringValue == "not ready")
            #expect(json["checks"]?["kafka"]?["status"]?.stringValue == "failing")
            #expect(json["checks"]?["kafka"]?["error"]?.stringValue == "no broker reachable at localhost:9092")
            #expect(json["checks"]?["postgres"]?["status"]?.stringValue == "ok")
        }
    }

    @Test func unknownRoutesAre404AndWrongMethods405() async throws {
        try await withAPI { api in
            let client = api.client(token: testToken)
            let unknown = try await client.send("GET", "api/nothing")
            #expect(unknown.status == 404)
            #expect(unknown.headers["content-type"] == "application/json")
            #expect(unknown.errorMessage?.contains("no such route") == true)

            let wrong = try await client.send("DELETE", "api/monitor")
            #expect(wrong.status == 405)
            #expect(wrong.headers["allow"] == "GET, PUT")
            #expect(wrong.errorMessage?.contains("not allowed") == true)
            #expect(try await client.send("GET", "api/monitor/pause").status == 405)
        }
    }

    @Test func offLoopbackReadsNeedTheTokenAndReadinessHidesDetails() async throws {
        try await withAPI(host: "0.0.0.0", readiness: { ["kafka": "broker kafka-0.internal:9092 down"] }) { api in
            let anonymous = api.client(token: nil)
            let read = try await anonymous.send("GET", "api/monitor")
            #expect(read.status == 401)
            #expect(read.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(try await anonymous.send("GET", "api/monitor/versions").status == 401)
            #expect(try await api.client(token: "wrong").send("GET", "api/monitor").status == 401)
            #expect(try await api.client(token: testToken).send("GET", "api/monitor").status == 404)

            // Probes stay public; failure details only with the token.
            #expect(try await anonymous.send("GET", "healthz").status == 200)
            let hidden = try await anonymous.send("GET", "readyz")
            #expect(hidden.status == 503)
            #expect(try hidden.parsed()["checks"]?["kafka"] == .object(["status": "failing"]))
            let shown = try await api.client(token: testToken).send("GET", "readyz")
            #expect(try shown.parsed()["checks"]?["kafka"]?["error"]?.stringValue == "broker kafka-0.internal:9092 down")
        }
    }

    @Test func requestsAreLoggedWithoutTokensOrBodies() async throws {
        let capture = LogCapture()
        try await withAPI(logger: capture.logger()) { api in
            let client = api.client(token: testToken)
            _ = try await client.update(document: Array(validDocument.utf8), expectedVersion: nil)
            _ = try await api.client(token: "wrong-token-value").send("PUT", "api/monitor", body: Array(validDocument.utf8))
        }
        let records = capture.records
        let requests = records.filter { $0.contains("admin API request") }
        #expect(requests.contains { $0.contains("http.method=PUT") && $0.contains("http.status=201") && $0.contains("http.latency_ms=") })
        #expect(requests.contains { $0.contains("http.status=401") && $0.contains("http.path=/api/monitor") })
        #expect(records.contains { $0.contains("admin API listening") })
        for record in records {
            #expect(!record.contains(testToken))
            #expect(!record.contains("wrong-token-value"))
            #expect(!record.contains("fast_enough"), "a body was logged: \(record)")
        }
    }
}

/// The client and the database implementation behave alike (what `assay monitor` relies on).
@Suite struct MonitorAdminTests {
    @Test func databaseAndAPIAgree() async throws {
        try await withAPI { api in
            let database = api.databaseAdmin()
            let client = api.client(token: testToken)
            let error = await adminError { _ = try await database.current() }
            #expect(error == .notFound("no monitor is configured"))

            let written = try await database.update(document: Array(validDocument.utf8), expectedVersion: nil)
            #expect(written.version.note == "cli")
            let throughAPI = try await client.current()
            #expect(throughAPI == written.version)
            #expect(MonitorJSON.version(throughAPI).serialized() == MonitorJSON.version(written.version).serialized())

            let paused = try await client.setPaused(true, expectedVersion: nil)
            #expect(try await database.current() == paused.version)
            #expect(try await database.versions(limit: 10) == (try await client.versions(limit: 10)))

            let unchanged = try await database.setPaused(true, expectedVersion: nil)
            #expect(!unchanged.created)
            let stale = await adminError { _ = try await database.update(document: Array(validDocument.utf8), expectedVersion: 1) }
            #expect(stale?.status == 409)
            let moved = await adminError { _ = try await database.update(document: Array(document(named: "m", schema: "other").utf8), expectedVersion: nil) }
            #expect(moved?.path == "destination.schema")
        }
    }

    @Test func theCLIFlowUpdatesFromAFileAndPrintsJSON() async throws {
        try await withAPI { api in
            // What `assay monitor update --file F --database-url U` then `get --json` do.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).json")
            try Data(validDocument.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let bytes = try Array(Data(contentsOf: file))
            _ = try MonitorDocument.validate(bytes)
            let write = try await api.databaseAdmin().update(document: bytes, expectedVersion: nil)
            #expect(MonitorFormatting.human(write, action: "update") == "stored version 1 (effective from the start of history)")

            let json = try JSONParser().parse(MonitorJSON.version(try await api.databaseAdmin().current()).serialized())
            #expect(json["version"]?.int64Value == 1)
            #expect(json["note"]?.stringValue == "cli")
            #expect(json["config"]?["scorers"]?[0]?["filter"]?.stringValue == "tags.env = 'prod'")

            let human = MonitorFormatting.human(try await api.databaseAdmin().current())
            #expect(human.contains("monitor prod-chatbot, version 1"))
            #expect(human.contains("effective from: the start of history"))
            #expect(human.contains("no_pii       pii      rate 0.4  filter: tags.env = 'prod'"), "\(human)")
            #expect(human.contains("fast_enough  latency  rate 1.0 (monitor)  params: {\"max_ms\":5000}"), "\(human)")
            #expect(human.contains("window:         1m (allowed lateness 10s)"))
        }
    }

    @Test func validationErrorsListEveryIssueWithItsPath() throws {
        let document = #"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "latency", "sample_rate": 2, "params": {"max_ms": 0}}]}"#
        #expect(throws: MonitorAdminError.invalidDocument([.init(path: "scorers[0].sample_rate", message: "must be between 0 and 1")])) {
            _ = try MonitorDocument.validate(Array(document.utf8))
        }
        let paramsOnly = #"{"name": "m", "destination": {"schema": "assay"}, "scorers": [{"name": "a", "kind": "latency", "params": {"max_ms": 0, "x": 1}}]}"#
        do {
            _ = try MonitorDocument.validate(Array(paramsOnly.utf8))
            Issue.record("expected an error")
        } catch {
            let text = error.description
            #expect(text.hasPrefix("invalid monitor document (2 issues):"))
            #expect(text.contains("  scorers[0].params.max_ms: "))
            #expect(text.contains("  scorers[0].params.x: unknown parameter"))
        }
    }

    @Test func historyFormatting() {
        let rows = MonitorFormatting.human([
            MonitorVersionSummary(version: 2, createdAtMillis: 1_770_123_653_476, effectiveFromNanos: 1_770_123_660_000_000_000, note: "api", paused: true, scorers: ["a", "b"]),
            MonitorVersionSummary(version: 1, createdAtMillis: 1_770_123_600_000, effectiveFromNanos: nil, note: nil, paused: false, scorers: []),
        ])
        #expect(rows == """
            VERSION  CREATED                   EFFECTIVE FROM        NOTE  PAUSED  SCORERS
            2        2026-02-03T13:00:53.476Z  2026-02-03T13:01:00Z  api   yes     a, b
            1        2026-02-03T13:00:00.000Z  the start of history  -     no      -
            """)
        #expect(MonitorFormatting.human([MonitorVersionSummary]()) == "no monitor is configured")
    }

    @Test func errorResponsesDecodeToTheErrorsTheyCameFrom() {
        let errors: [MonitorAdminError] = [
            .notFound("no monitor is configured"),
            .invalidDocument([.init(path: "a", message: "x"), .init(path: "", message: "y")]),
            .badRequest("If-Match must be ..."),
            .conflict("destination.schema is fixed", path: "destination.schema"),
            .conflict("stale", path: nil),
            .unauthorized("no token"),
            .forbidden("disabled"),
            .payloadTooLarge("too big"),
            .unavailable("down"),
            .failed(status: 500, message: "internal"),
        ]
        for error in errors {
            let body = MonitorJSON.error(error).serializedUTF8()
            #expect(MonitorJSON.decodeError(status: error.status, body: body) == error)
        }
    }
}
