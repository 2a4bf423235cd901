import AssayCore
import Testing

@Suite("Slices of a window's ρ range, shared among replicas")
struct ScoringSlicesTests {
    @Test("one slice, or a run of all slices, is the whole window with no bound on ρ")
    func wholeWindow() {
        #expect(ScoringSlices(count: 1, rates: [0.3]).rhoRange(of: 0...0) == .all)
        #expect(ScoringSlices(count: 8, rates: [0.3, 1]).rhoRange(of: 0...7) == .all)
        #expect(ScoringSlices(count: 8).rhoRange(of: 0...7) == .all)
    }

    @Test("without rates below 1 the slices are equal widths of ρ")
    func evenWidths() {
        let even = ScoringSlices(count: 4, rates: [1, 1])
        #expect(even.rhoRange(of: 1...2) == RhoRange(lower: 0.25, upper: 0.75))
        #expect(ScoringSlices(count: 4).rhoRange(of: 3...3) == RhoRange(lower: 0.75, upper: nil))
    }

    @Test("slices hold equal shares of the work: low ρ, scored by more scorers, gets narrower slices", arguments: [
        [1.0, 1, 1, 1, 1, 0.2, 0.2, 0.2, 0.2, 0.2], [0.4, 0.2, 1.0], [0.05], [0.5, 0.5], [0.0, 0.3, 0.9, 1.0],
    ])
    func equalWork(rates: [Double]) {
        for count in [2, 7, 8, 64] {
            let slices = ScoringSlices(count: count, rates: rates)
            let total = slices.work(below: 1)
            var previous = 0.0
            for index in 0..<count {
                let upper = slices.rhoRange(of: index...index).upper ?? 1
                #expect(upper > previous, "slice \(index) of \(count) is not empty")
                #expect(abs(slices.work(below: upper) - slices.work(below: previous) - total / Double(count)) < 1e-9,
                        "slice \(index) of \(count) holds 1/\(count) of the work")
                previous = upper
            }
        }
        // The bench monitor: below 0.2 a trace weighs 11, above it 6, 7 in all.
        let bench = ScoringSlices(count: 7, rates: [1, 1, 1, 1, 1, 0.2, 0.2, 0.2, 0.2, 0.2])
        #expect(abs((bench.rhoRange(of: 0...0).upper ?? 0) - 1.0 / 11) < 1e-12)
        #expect(abs((bench.rhoRange(of: 2...2).upper ?? 0) - (0.2 + 0.8 / 6)) < 1e-12)
    }

    @Test("every ρ falls in exactly one slice, and a run holds exactly its slices' ρ", arguments: [
        (8, [0.2]), (8, [1.0]), (3, [0.45, 0.1]), (64, [0.999]), (7, [0.0]),
    ])
    func partition(count: Int, rates: [Double]) {
        let slices = ScoringSlices(count: count, rates: rates)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var rhos: [Double] = [0, 1, Double.leastNonzeroMagnitude] + rates
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
        let slices = ScoringSlices(count: 8)
        #expect(slices.nextRun(unavailable: [], replicas: 1, preferred: 12345) == 0...7)
        #expect(slices.nextRun(unavailable: [], replicas: 2, preferred: 0) == 0...3)
        #expect(slices.nextRun(unavailable: [], replicas: 2, preferred: 1) == 4...7)
        #expect(slices.nextRun(unavailable: [4, 5, 6, 7], replicas: 2, preferred: 1) == 0...3, "the other half when ours is taken")
        #expect(slices.nextRun(unavailable: [], replicas: 3, preferred: 2) == 6...7)
        #expect(slices.nextRun(unavailable: [], replicas: 20, preferred: 5) == 5...5, "never less than one slice")
    }

    @Test("a run stops at a slice someone else holds; what is left is found; nothing left is nil")
    func leftovers() {
        let slices = ScoringSlices(count: 8, rates: [1])
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
        #expect(ScoringSlices(count: 0).count == 1)
        #expect(ScoringSlices(count: 1000).count == ScoringSlices.maximumCount)
    }
}

@Suite("Cutting a leased run to a replica's share")
struct ScoringSlicesShareTests {
    let slices = ScoringSlices(count: 8)

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
