import AssayCore
import AssayPipeline
import AssayStore
import Foundation
import Logging
import Postgres
import ServiceLifecycle
import Testing

/// Several replicas scoring one window at once, through leases of its slices.
@Suite("Scoring one window from several replicas", .serialized)
struct ScoringSlicesIntegrationTests {
    static let second: Int64 = 1_000_000_000
    static let width = 10 * second
    static let start: Int64 = 1_770_000_000_000_000_000  // a multiple of the 10 s width

    @Test("slice leases: a run stops at slices others hold; the window's own lease blocks new ones; an expired lease is taken over and its holder's commit refused")
    func leases() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = ScoringStore()
            let start = Self.start
            try await env.pool.withConnection { try store.closeWindows([start], widthNanos: Self.width, configVersion: 1, slices: 8, on: $0) }
            func claim(_ run: ClosedRange<Int>, _ owner: String, lease: Int = 60) async throws -> ClaimedWindow? {
                try await env.pool.withConnection { try store.claimSlices(run, windowStartNanos: start, owner: owner, leaseSeconds: lease, on: $0) }
            }
            func view(_ owner: String) async throws -> SliceView? {
                try await env.pool.withConnection { try store.sliceView(windowStartNanos: start, owner: owner, activeWithinSeconds: 10, on: $0) }
            }

            let a = try #require(try await claim(0...3, "a"))
            #expect(a.slices == 0...3 && a.sliceCount == 8 && !a.isOpen)
            let b = try #require(try await claim(2...5, "b"))
            #expect(b.slices == 4...5, "the slices a holds are skipped")
            #expect(try await claim(0...1, "b") == nil)
            #expect(try await claim(1...7, "c")?.slices == 6...7, "the first free slice, and those after it without a gap")
            try await env.pool.withConnection { _ = try $0.execute("DELETE FROM window_slice_leases WHERE lease_owner = 'c'") }
            let leasedByB = try await env.pool.withConnection { try $0.query("SELECT slice FROM window_slice_leases WHERE lease_owner = 'b' ORDER BY 1").map { try $0.int(0) } }
            #expect(leasedByB == [4, 5], "the slices b could not take without a gap were handed back")

            try await env.pool.withConnection { connection in
                try store.heartbeat(owner: "a", on: connection)
                try store.heartbeat(owner: "b", on: connection)
            }
            #expect(try await view("b") == SliceView(count: 8, heldByOthers: [0, 1, 2, 3], replicas: 2, windowLeasedByOther: false))

            // Finishing needs the window's own lease, and no slice leased by anyone else.
            let finisher = try #require(try await env.pool.withConnection { try store.claimWindow(startNanos: start, owner: "a", leaseSeconds: 60, on: $0) })
            #expect(finisher.slices == nil && finisher.sliceCount == 8)
            #expect(try await view("b")?.windowLeasedByOther == true)
            #expect(try await claim(6...7, "b") == nil, "no slice is leased while the window is being finished")
            #expect(try await env.pool.withConnection { try store.canFinish(finisher, owner: "a", on: $0) } == false, "b holds 4...5")
            try await env.pool.withConnection { connection in
                try store.releaseLease(b, owner: "b", on: connection)
            }
            #expect(try await env.pool.withConnection { try store.canFinish(finisher, owner: "a", on: $0) } == true, "a's own slices do not count")
            try await env.pool.withConnection { try store.releaseLease(finisher, owner: "a", on: $0) }
            try await env.pool.withConnection { try store.releaseLease(a, owner: "a", on: $0) }
            #expect(try await view("b")?.heldByOthers == [])

            // A lease that ran out is taken over; its old holder's next commit is refused.
            let stale = try #require(try await claim(0...0, "a", lease: 0))
            let taken = try #require(try await claim(0...0, "b"))
            #expect(taken.slices == 0...0)
            var chunk = ChunkResult()
            chunk.deltas["no_error"] = SummaryDelta()
            let toCommit = chunk
            #expect(throws: ScoringStoreError.leaseLost(windowStartNanos: start)) {
                try env.pool.withConnectionBlocking { try store.commitChunk(toCommit, window: stale, owner: "a", leaseSeconds: 60, on: $0) }
            }

            // Leaving the scoring replicas takes a replica out of the count at once.
            try await env.pool.withConnection { try store.leaveScoringReplicas(owner: "a", on: $0) }
            #expect(try await view("b")?.replicas == 1)
        }
    }

    @Test("a replica scores only the slices it can lease, leaves the window unfinished while another replica holds the rest, and finishes it once they are handed back")
    func replicaLeavesOthersSlices() async throws {
        try await Environment.with(partitions: 1) { env in
            let store = ScoringStore()
            let (start, width) = (Self.start, Self.width)
            let monitor = try scoringTestMonitor()
            _ = try await env.pool.withConnection { try MonitorStore(schema: .default).saveIfChanged(monitor, note: "v1", nowNanos: 0, on: $0) }
            _ = try await env.pool.withConnection { try IngestStore(groupID: "g").write(StoreTests.batch(try StoreTests.traces(400, seed: 23), firstOffset: 0), on: $0) }
            // Every trace in one window, and the window closed with 8 slices; another replica
            // ("other") holds slices 4...7: the upper half of the work, ρ ≥ 0.3667 (rates 1,
            // 0.4 and 0.2 weigh the low ρ more).
            try await env.pool.withConnection { connection in
                _ = try connection.execute("UPDATE traces SET request_time_ns = $1::bigint + 1000000000", [.text(String(start))])
                try store.closeWindows([start], widthNanos: width, configVersion: 1, slices: 8, on: connection)
            }
            let other = try #require(try await env.pool.withConnection { try store.claimSlices(4...7, windowStartNanos: start, owner: "other", leaseSeconds: 600, on: $0) })
            #expect(other.slices == 4...7)
            let rates = ScoringPlan(config: monitor).rates
            let split = try #require(ScoringSlices(count: 8, rates: rates).rhoRange(of: 4...7).lower)
            #expect(abs(split - (0.2 + 0.5 / 3)) < 1e-12)
            let rhos = try await env.storedRhos()
            let below = rhos.values.filter { $0 < split }.count
            #expect(below > 80 && below < 220)

            var configuration = ScoringConfiguration(owner: "r1")
            configuration.idleTimeout = .seconds(1)
            configuration.tick = .milliseconds(100)
            configuration.chunkSize = 40
            configuration.scoringSlices = 8
            let scoring = ScoringService(configuration: configuration, pool: env.pool, logger: quietLogger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: scoring)], logger: quietLogger))
            let running = Task { try await group.run() }

            let scoredBelow = try await env.waitUntil("r1 scored every trace of its slices", query: { connection in
                try connection.query("SELECT count(*) FROM traces WHERE rho < $1 AND scored_at IS NOT NULL", [.text(String(split))])[0].int(0)
            }, done: { $0 == below })
            #expect(scoredBelow == below)
            let meanwhile = try await env.pool.withConnection { connection in
                let row = try connection.query("""
                    SELECT (SELECT count(*) FROM traces WHERE rho >= $2 AND scored_at IS NOT NULL),
                           (SELECT state FROM windows WHERE window_start_ns = $1),
                           (SELECT count(*) FROM outbox WHERE schema_name = 'window-summary/v1')
                    """, [.text(String(start)), .text(String(split))])[0]
                return (try row.int(0), try row.string(1), try row.int(2))
            }
            #expect(meanwhile.0 == 0, "nothing of the other replica's slices was touched")
            #expect(meanwhile.1 == "closed", "the window is not finished while slices are held")
            #expect(meanwhile.2 == 0)

            // The other replica hands its slices back without scoring them: r1 takes them.
            try await env.pool.withConnection { try store.releaseLease(other, owner: "other", on: $0) }
            _ = try await env.waitUntil("the window scored", query: { connection in
                try connection.query("SELECT state FROM windows WHERE window_start_ns = $1", [.text(String(start))])[0].string(0)
            }, done: { $0 == "scored" })
            await group.triggerGracefulShutdown()
            try await running.value

            let (pairs, _) = try await env.storedAssessments()
            for (scorer, rate) in [("no_error", 1.0), ("fast_enough", 0.4), ("no_pii", 0.2)] {
                let sampled = rhos.filter { Sampler.isSampled(rho: $0.value, rate: rate) }.map(\.key)
                #expect(sampled.allSatisfy { pairs["\($0)|\(scorer)"] == 1 }, "\(scorer): each sampled trace assessed once")
                #expect(pairs.filter { $0.key.hasSuffix("|\(scorer)") }.count == sampled.count, "\(scorer): nothing else")
            }
            let summaries = try await env.pool.withConnection { connection in
                try connection.query("SELECT scorer_name, eligible, revision FROM window_summaries WHERE window_start_ns = $1 ORDER BY 1", [.text(String(start))])
                    .map { "\(try $0.string(0))=\(try $0.int(1))@\(try $0.int(2))" }
            }
            #expect(summaries == ["fast_enough=400@1", "no_error=400@1", "no_pii=400@1"], "each summary counts every trace and was published once")
            #expect(scoring.currentStatistics.tracesHandled == 400)
            #expect(scoring.currentStatistics.windowsScored == 1)
            let replicasLeft = try await env.count("scoring_replicas")
            #expect(replicasLeft == 0, "r1 left the scoring replicas when it stopped")
        }
    }
}
