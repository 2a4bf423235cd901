/// How a window's traces are divided among replicas that score it at the same time.
///
/// A window has a fixed number of *slices*, ranges of ρ set when its row is created. A
/// replica leases a *run* of adjacent slices and scores the traces whose ρ falls in it; other
/// replicas lease other runs of the same window meanwhile. A run of all slices is the whole
/// window, with no bound on ρ at all.
///
/// Slices hold equal shares of the expected work, not equal widths of ρ: sampling is nested,
/// so a trace with a low ρ is scored by more scorers than one with a high ρ. A trace counts 1
/// (it is read and marked handled) plus 1 for each scorer whose rate samples it, so with 5
/// scorers at 100% and 5 at 20%, ρ below 0.2 weighs 11 and above it 6. (A judge costs more
/// than a code check; the weights do not know by how much.)
///
/// A window whose monitor caps a scorer (`max_per_window`) has one slice: the cap keeps the
/// lowest-ρ traces of the whole window, so one replica takes them in order.
public struct ScoringSlices: Sendable, Equatable {
    /// The most slices a window may have.
    public static let maximumCount = 64

    /// Number of slices, 1 to ``maximumCount``.
    public let count: Int
    /// The sampling rates of the window's scorers, each within [0, 1].
    public let rates: [Double]

    public init(count: Int, rates: [Double] = []) {
        self.count = min(max(count, 1), Self.maximumCount)
        self.rates = rates.map { min(max($0, 0), 1) }.sorted()
    }

    /// The ρ range of the run of slices `run`: `lower` ≤ ρ < `upper`, nil for no bound. The
    /// first slice has no lower bound and the last no upper bound, so runs that together
    /// cover every slice cover every ρ, and adjacent runs share their boundary exactly.
    public func rhoRange(of run: ClosedRange<Int>) -> RhoRange {
        RhoRange(lower: run.lowerBound <= 0 ? nil : boundary(run.lowerBound),
                 upper: run.upperBound >= count - 1 ? nil : boundary(run.upperBound + 1))
    }

    /// The expected work of the traces with ρ below `rho`, per trace of the window.
    public func work(below rho: Double) -> Double {
        rates.reduce(rho) { $0 + min(rho, $1) }
    }

    /// The lower boundary of slice `index` (0 < index < count): the ρ below which lies
    /// `index / count` of the work.
    func boundary(_ index: Int) -> Double {
        let target = work(below: 1) * Double(index) / Double(count)
        // Between consecutive rates the work grows linearly, by 1 plus the rates above.
        var from = 0.0
        for (position, rate) in (rates + [1]).enumerated() where rate > from {
            if work(below: rate) >= target {
                let slope = 1 + Double(rates.count - position)
                return min(rate, from + (target - work(below: from)) / slope)
            }
            from = rate
        }
        return 1
    }

    /// The slice whose range holds `rho`.
    public func slice(containing rho: Double) -> Int {
        for index in 0..<count where rhoRange(of: index...index).contains(rho) { return index }
        return count - 1
    }

    /// The part of a leased `run` to keep now that `replicas` share the window, or nil to keep
    /// all of it: this replica's share from the run's start, and at least up to the slice its
    /// chunks have reached (`cursor`, the ρ of the last trace taken; nil before the first). A
    /// replica that leased the whole window alone hands the rest back when another one starts.
    public func keptPart(of run: ClosedRange<Int>, cursor: Double?, replicas: Int) -> ClosedRange<Int>? {
        let share = (count + max(replicas, 1) - 1) / max(replicas, 1)
        guard run.count > share else { return nil }
        var last = run.lowerBound + share - 1
        if let cursor { last = max(last, slice(containing: cursor)) }
        guard last < run.upperBound else { return nil }
        return run.lowerBound...last
    }

    /// The run a replica should lease next, or nil when every slice is leased by others or
    /// already visited.
    ///
    /// - Parameters:
    ///   - unavailable: slices leased by other replicas, or visited by this one in this round.
    ///   - replicas: replicas scoring now (at least this one); each takes about an equal share,
    ///     `count / replicas` slices, so one replica alone takes the whole window at once.
    ///   - preferred: where this replica starts looking (a hash of its name), so replicas
    ///     starting together pick different runs.
    public func nextRun(unavailable: Set<Int>, replicas: Int, preferred: Int) -> ClosedRange<Int>? {
        let share = (count + max(replicas, 1) - 1) / max(replicas, 1)
        let runs = (count + share - 1) / share
        let first = ((preferred % runs) + runs) % runs
        // Runs aligned on multiples of the share first, from this replica's preferred one ...
        for step in 0..<runs {
            let start = ((first + step) % runs) * share
            let end = min(start + share, count) - 1
            if let run = Self.freeRun(in: start...end, unavailable: unavailable) { return run }
        }
        // ... then whatever is left.
        for start in 0..<count where !unavailable.contains(start) {
            return Self.freeRun(in: start...min(start + share - 1, count - 1), unavailable: unavailable)
        }
        return nil
    }

    /// The longest run of available slices in `range` that begins at its first available one.
    static func freeRun(in range: ClosedRange<Int>, unavailable: Set<Int>) -> ClosedRange<Int>? {
        guard let start = range.first(where: { !unavailable.contains($0) }) else { return nil }
        var end = start
        while end + 1 <= range.upperBound && !unavailable.contains(end + 1) { end += 1 }
        return start...end
    }

    /// A stable number for a replica's name (FNV-1a), for ``nextRun(unavailable:replicas:preferred:)``.
    public static func preference(of owner: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in owner.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int(truncatingIfNeeded: hash >> 1)
    }
}

/// A range of ρ: `lower` ≤ ρ < `upper`; nil for no bound on that side.
public struct RhoRange: Sendable, Equatable {
    public var lower: Double?
    public var upper: Double?

    public init(lower: Double? = nil, upper: Double? = nil) {
        self.lower = lower
        self.upper = upper
    }

    /// Every ρ.
    public static let all = RhoRange()

    public func contains(_ rho: Double) -> Bool {
        if let lower, rho < lower { return false }
        if let upper, rho >= upper { return false }
        return true
    }
}
