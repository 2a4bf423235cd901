import AssayCore
import Testing

@Suite("Slices of a window's ρ range, shared among replicas")
struct ScoringSlicesTests {
    @Test("one slice, or a run of all slices, is the whole window with no bound on ρ")
    func wholeWindow() {
        #expect(ScoringSlices(count: 1, maximumRate: 0.3).rhoRange(of: 0...0) == .all)
        #expect(ScoringSlices(count: 8, maximumRate: 0.3).rhoRange(of: 0...7) == .all)
        #expect(ScoringSlices(count: 8, maximumRate: 1).rhoRange(of: 0...7) == .all)
    }

    @Test("below a largest rate of 1, the first slices split [0, rate) evenly and the last holds the rest")
    func splitWhereTheWorkIs() {
        let slices = ScoringSlices(count: 5, maximumRate: 0.2)
        func near(_ range: RhoRange, _ lower: Double?, _ upper: Double?) -> Bool {
            func same(_ a: Double?, _ b: Double?) -> Bool {
                switch (a, b) {
                case (nil, nil): return true
                case let (a?, b?): return abs(a - b) < 1e-12
                default: return false
                }
            }
            return same(range.lower, lower) && same(range.upper, upper)
        }
        #expect(near(slices.rhoRange(of: 0...0), nil, 0.05))
        #expect(near(slices.rhoRange(of: 1...2), 0.05, 0.15))
        #expect(near(slices.rhoRange(of: 3...3), 0.15, 0.2))
        #expect(slices.rhoRange(of: 3...3).upper == 0.2, "the last scored slice ends exactly at the rate")
        #expect(slices.rhoRange(of: 4...4) == RhoRange(lower: 0.2, upper: nil))
        let even = ScoringSlices(count: 4, maximumRate: 1)
        #expect(even.rhoRange(of: 1...2) == RhoRange(lower: 0.25, upper: 0.75))
    }

    @Test("every ρ falls in exactly one slice, and a run holds exactly its slices' ρ", arguments: [
        (8, 0.2), (8, 1.0), (3, 0.45), (64, 0.999), (7, 0.0),
    ])
    func partition(count: Int, rate: Double) {
        let slices = ScoringSlices(count: count, maximumRate: rate)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var rhos: [Double] = [0, 1, rate, Double.leastNonzeroMagnitude]
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            rhos.append(Sampler.rho(bits: state))
        }
        for rho in rhos {
            let holders = (0..<slices.count).filter { slices.rhoRange(of: $0...$0).contains(rho) }
            #expect(holders.count == 1, "ρ \(rho) is in slices \(holders)")
            if let holder = holders.first, holder + 1 < slices.count {
                #expect(slices.rhoRange(of: holder...(holder + 1)).contains(rho))
                #expect(!slices.rhoRange(of: (holder + 1)...(slices.count - 1)).contains(rho))
            }
        }
    }

    @Test("one replica takes every slice at once; two take halves, each from its preferred half")
    func shares() {
        let slices = ScoringSlices(count: 8, maximumRate: 1)
        #expect(slices.nextRun(unavailable: [], replicas: 1, preferred: 12345) == 0...7)
        #expect(slices.nextRun(unavailable: [], replicas: 2, preferred: 0) == 0...3)
        #expect(slices.nextRun(unavailable: [], replicas: 2, preferred: 1) == 4...7)
        #expect(slices.nextRun(unavailable: [4, 5, 6, 7], replicas: 2, preferred: 1) == 0...3, "the other half when ours is taken")
        #expect(slices.nextRun(unavailable: [], replicas: 3, preferred: 2) == 6...7)
        #expect(slices.nextRun(unavailable: [], replicas: 20, preferred: 5) == 5...5, "never less than one slice")
    }

    @Test("a run stops at a slice someone else holds; what is left is found; nothing left is nil")
    func leftovers() {
        let slices = ScoringSlices(count: 8, maximumRate: 0.5)
        #expect(slices.nextRun(unavailable: [2], replicas: 1, preferred: 0) == 0...1)
        #expect(slices.nextRun(unavailable: [0, 1, 2], replicas: 1, preferred: 0) == 3...7)
        #expect(slices.nextRun(unavailable: [0, 1, 2, 3, 5, 6, 7], replicas: 2, preferred: 0) == 4...4)
        #expect(slices.nextRun(unavailable: Set(0..<8), replicas: 1, preferred: 3) == nil)
    }

    @Test("a replica's preference depends only on its name")
    func preference() {
        #expect(ScoringSlices.preference(of: "replica-a") == ScoringSlices.preference(of: "replica-a"))
        #expect(ScoringSlices.preference(of: "replica-a") >= 0)
        let spread = Set((0..<16).map { ScoringSlices.preference(of: "assay-\($0)") % 2 })
        #expect(spread == [0, 1], "names spread over both halves")
    }

    @Test("the slice count is kept between 1 and the maximum")
    func bounds() {
        #expect(ScoringSlices(count: 0, maximumRate: 1).count == 1)
        #expect(ScoringSlices(count: 1000, maximumRate: 1).count == ScoringSlices.maximumCount)
    }
}

@Suite("Cutting a leased run to a replica's share")
struct ScoringSlicesShareTests {
    let slices = ScoringSlices(count: 8, maximumRate: 1)

    @Test("alone, a replica keeps its whole run; once another scores, it keeps its share from the run's start")
    func share() {
        #expect(slices.keptPart(of: 0...7, cursor: nil, replicas: 1) == nil)
        #expect(slices.keptPart(of: 0...7, cursor: nil, replicas: 2) == 0...3)
        #expect(slices.keptPart(of: 0...7, cursor: 0.1, replicas: 4) == 0...1)
        #expect(slices.keptPart(of: 0...3, cursor: 0.2, replicas: 2) == nil, "already its share")
    }

    @Test("never hands back the slice its chunks have reached, or one before it")
    func keepsWhatItReached() {
        #expect(slices.slice(containing: 0.55) == 4)
        #expect(slices.slice(containing: 0) == 0 && slices.slice(containing: 1) == 7)
        #expect(slices.keptPart(of: 0...7, cursor: 0.55, replicas: 2) == 0...4)
        #expect(slices.keptPart(of: 0...7, cursor: 0.9, replicas: 2) == nil, "past the last slice's start: nothing left to give")
        #expect(slices.keptPart(of: 2...7, cursor: 0.3, replicas: 4) == 2...3)
    }
}
