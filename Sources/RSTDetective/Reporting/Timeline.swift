/// Completed handshakes and incidents over capture time, in at most `maximumBins` bins: when the capture
/// outgrows them, the bins double in width, two merged into one, so memory stays fixed however long it is.
public struct Timeline: Sendable, Equatable {
    /// The most bins kept.
    public static let maximumBins = 240

    /// Capture time at which bin 0 starts; nil before the first event.
    public private(set) var startNanos: Int64?
    /// The width of each bin, a power of two times one second.
    public private(set) var binNanos: Int64 = 1_000_000_000
    /// Handshakes completed (client ACK seen) per bin, by the time of the ACK.
    public private(set) var handshakes: [Int] = []
    /// Incidents per bin, by the time of the RST.
    public private(set) var incidents: [Int] = []

    public init() {}

    /// Counts a completed handshake at the time of its ACK.
    mutating func addHandshake(at timeNanos: Int64) {
        let bin = self.bin(for: timeNanos)
        handshakes[bin] += 1
    }

    /// Counts an incident at the time of its RST.
    mutating func addIncident(at timeNanos: Int64) {
        let bin = self.bin(for: timeNanos)
        incidents[bin] += 1
    }

    /// The bin of `timeNanos`, adding bins before or after, and widening them, as needed.
    private mutating func bin(for timeNanos: Int64) -> Int {
        guard var start = startNanos else {
            // Bin 0 starts on a whole second.
            let remainder = timeNanos % binNanos
            startNanos = timeNanos - (remainder < 0 ? remainder + binNanos : remainder)
            handshakes = [0]
            incidents = [0]
            return 0
        }
        if timeNanos < start {
            // Earlier than bin 0 (an attempt settled after a later one): bins go in front.
            var missing = Int((start &- timeNanos &+ binNanos &- 1) / binNanos)
            while handshakes.count + missing > Self.maximumBins {
                widen()
                missing = Int((start &- timeNanos &+ binNanos &- 1) / binNanos)
            }
            start = start &- Int64(missing) &* binNanos
            startNanos = start
            handshakes.insert(contentsOf: repeatElement(0, count: missing), at: 0)
            incidents.insert(contentsOf: repeatElement(0, count: missing), at: 0)
        }
        while (timeNanos &- start) / binNanos >= Int64(Self.maximumBins) { widen() }
        let bin = Int((timeNanos &- start) / binNanos)
        if bin >= handshakes.count {
            handshakes.append(contentsOf: repeatElement(0, count: bin + 1 - handshakes.count))
            incidents.append(contentsOf: repeatElement(0, count: bin + 1 - incidents.count))
        }
        return bin
    }

    /// Doubles the bin width, merging bins two by two from bin 0.
    private mutating func widen() {
        binNanos &*= 2
        handshakes = Self.merged(handshakes)
        incidents = Self.merged(incidents)
    }

    private static func merged(_ bins: [Int]) -> [Int] {
        stride(from: 0, to: bins.count, by: 2).map { bins[$0] + (($0 + 1) < bins.count ? bins[$0 + 1] : 0) }
    }
}
