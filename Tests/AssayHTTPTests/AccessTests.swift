import AssayStore
import Postgres
import Testing
@testable import AssayHTTP

/// Token comparison, access rules and header parsing; no server needed.
@Suite struct AccessTests {
    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals(Array("secret".utf8), Array("secret".utf8)))
        #expect(ConstantTime.equals([], []))
        #expect(!ConstantTime.equals(Array("secret".utf8), Array("secreT".utf8)))
        #expect(!ConstantTime.equals(Array("secret".utf8), Array("Secret".utf8)))
        // Different lengths, including a prefix and zero padding that matches the padded buffer.
        #expect(!ConstantTime.equals(Array("secret".utf8), Array("secret1".utf8)))
        #expect(!ConstantTime.equals(Array("secret".utf8), Array("secret".utf8) + [0]))
        #expect(!ConstantTime.equals([], [0]))
        #expect(!ConstantTime.equals(Array("secret".utf8), []))
        let long = [UInt8](repeating: 7, count: 1000)
        #expect(ConstantTime.equals(long, long))
        #expect(!ConstantTime.equals(long, long + [7]))
    }

    @Test func constantTimeComparisonHasNoEarlyExit() {
        let token = Array("0123456789abcdef0123456789abcdef".utf8)
        var firstByteWrong = token
        firstByteWrong[0] = UInt8(ascii: "X")
        var lastByteWrong = token
        lastByteWrong[token.count - 1] = UInt8(ascii: "X")
        let candidates: [[UInt8]] = [token, firstByteWrong, lastByteWrong, [], Array(token.prefix(1)), token + token]
        // The same number of bytes is examined whatever the input, its length, or where it differs.
        for candidate in candidates {
            #expect(ConstantTime.compare(token, candidate).bytesExamined == ConstantTime.paddedWidth)
            #expect(ConstantTime.compare(candidate, token).bytesExamined == ConstantTime.paddedWidth)
        }
        #expect(ConstantTime.compare(token, token).equal)
        #expect(!ConstantTime.compare(token, firstByteWrong).equal)
        #expect(!ConstantTime.compare(token, lastByteWrong).equal)
        // Past the padded width, the longer input decides the work.
        let long = [UInt8](repeating: 1, count: ConstantTime.paddedWidth + 10)
        #expect(ConstantTime.compare(token, long).bytesExamined == ConstantTime.paddedWidth + 10)
    }

    @Test func bearerTokens() {
        #expect(AdminAccessPolicy.bearerToken("Bearer abc") == "abc")
        #expect(AdminAccessPolicy.bearerToken("bearer   abc  ") == "abc")
        #expect(AdminAccessPolicy.bearerToken("BEARER abc") == "abc")
        #expect(AdminAccessPolicy.bearerToken("Basic abc") == nil)
        #expect(AdminAccessPolicy.bearerToken("Bearer ") == nil)
        #expect(AdminAccessPolicy.bearerToken("Bearerabc") == nil)
        #expect(AdminAccessPolicy.bearerToken(nil) == nil)
    }

    @Test func loopbackHosts() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
            #expect(AdminAccessPolicy.isLoopback(host), "\(host)")
        }
        for host in ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "127.0.0", "127.0.0.1.5", "127.0.0.256", "example.com", "", "1.127.0.0"] {
            #expect(!AdminAccessPolicy.isLoopback(host), "\(host)")
        }
    }

    @Test func readsArePublicOnlyOnLoopback() {
        let loopback = AdminAccessPolicy(adminToken: "t0ken", bindHost: "127.0.0.1")
        #expect(loopback.readsArePublic)
        #expect(loopback.decide(.read, authorization: nil) == .allowed)
        #expect(loopback.decide(.read, authorization: "Bearer wrong") == .allowed)
        #expect(loopback.decide(.mutation, authorization: "Bearer t0ken") == .allowed)
        guard case .unauthorized = loopback.decide(.mutation, authorization: nil) else {
            Issue.record("a mutation without a token must be unauthorized")
            return
        }

        let exposed = AdminAccessPolicy(adminToken: "t0ken", bindHost: "0.0.0.0")
        #expect(!exposed.readsArePublic)
        #expect(exposed.decide(.read, authorization: "Bearer t0ken") == .allowed)
        #expect(exposed.decide(.read, authorization: nil) == .unauthorized("this route needs a bearer token: send Authorization: Bearer <ASSAY_ADMIN_TOKEN>"))
        #expect(exposed.decide(.read, authorization: "Bearer t0ke") == .unauthorized("the bearer token is not valid"))

        // No token configured: mutations are refused everywhere, reads off loopback too.
        let noToken = AdminAccessPolicy(adminToken: nil, bindHost: "10.1.2.3")
        guard case .forbidden(let message) = noToken.decide(.mutation, authorization: "Bearer anything") else {
            Issue.record("mutations must be forbidden without a configured token")
            return
        }
        #expect(message.contains("ASSAY_ADMIN_TOKEN"))
        guard case .forbidden = noToken.decide(.read, authorization: nil) else {
            Issue.record("off-loopback reads must be forbidden without a configured token")
            return
        }
        // An empty token is no token.
        guard case .forbidden = AdminAccessPolicy(adminToken: "", bindHost: "127.0.0.1").decide(.mutation, authorization: "Bearer ") else {
            Issue.record("an empty configured token must disable mutations")
            return
        }
        #expect(AdminAccessPolicy(adminToken: nil, bindHost: "localhost").decide(.read, authorization: nil) == .allowed)
    }

    @Test func ifMatchHeaders() throws {
        #expect(try IfMatch.expectedVersion(nil) == nil)
        #expect(try IfMatch.expectedVersion("3") == 3)
        #expect(try IfMatch.expectedVersion("\"3\"") == 3)
        #expect(try IfMatch.expectedVersion("W/\"12\"") == 12)
        #expect(try IfMatch.expectedVersion("  7 ") == 7)
        for malformed in ["", "*", "abc", "0", "-3", "3.0", "\"3", "\"1\", \"2\"", "99999999999999999999"] {
            #expect(throws: MonitorAdminError.self, "\(malformed)") { try IfMatch.expectedVersion(malformed) }
        }
        #expect(IfMatch.etag(42) == "\"42\"")
    }

    @Test func listenAddresses() throws {
        let cases: [(String, String, Int)] = [
            ("127.0.0.1:8080", "127.0.0.1", 8080), ("0.0.0.0:0", "0.0.0.0", 0),
            ("localhost:9000", "localhost", 9000), ("[::1]:8080", "::1", 8080),
        ]
        for (text, host, port) in cases {
            let address = try AdminServer.Configuration.address(parsing: text)
            #expect(address.host == host, "\(text)")
            #expect(address.port == port, "\(text)")
        }
        for bad in ["8080", ":8080", "host:", "host:65536", "host:-1", "::1:8080", "[::1]8080", "[::1", "host:80a"] {
            #expect(throws: AdminServer.AddressError.self, "\(bad)") { try AdminServer.Configuration.address(parsing: bad) }
        }
    }

    @Test func apiBaseURLs() throws {
        #expect(try MonitorAdminClient.baseURL(parsing: "http://127.0.0.1:8080").absoluteString == "http://127.0.0.1:8080")
        #expect(try MonitorAdminClient.baseURL(parsing: "https://assay.internal/admin").absoluteString == "https://assay.internal/admin")
        for bad in ["127.0.0.1:8080", "ftp://host", "http://", "http://host?x=1", "not a url"] {
            #expect(throws: MonitorAdminError.self, "\(bad)") { try MonitorAdminClient.baseURL(parsing: bad) }
        }
    }

    @Test func descriptionsNeverShowTheToken() async throws {
        let token = "very-secret-token-value"
        let configuration = AdminServer.Configuration(host: "0.0.0.0", port: 9000, adminToken: token)
        // Nothing connects: the pool opens connections on first use.
        let pool = try PostgresPool(configuration: PostgresConfiguration(url: "postgresql://nobody@127.0.0.1:1/none"), size: 1, name: "describe")
        let server = AdminServer(configuration: configuration, pool: pool, schema: .default, readiness: { [:] }, logger: quietLogger)
        let client = MonitorAdminClient(baseURL: try MonitorAdminClient.baseURL(parsing: "http://127.0.0.1:9000"), token: token)
        let policy = AdminAccessPolicy(adminToken: token, bindHost: "127.0.0.1")
        let texts = [
            String(describing: configuration), String(reflecting: configuration), String(describing: server), String(reflecting: server),
            String(describing: client), String(reflecting: client), String(describing: policy), String(reflecting: policy),
        ]
        for text in texts {
            #expect(!text.contains(token), "\(text)")
        }
        #expect(String(reflecting: server).contains("<redacted>"))
        await pool.shutdown()
    }
}
