import Testing

@testable import RSTDetective

@Suite struct TimelineTests {
    static let second: Int64 = 1_000_000_000

    @Test func eventsFallInOneSecondBins() {
        var timeline = Timeline()
        timeline.addHandshake(at: 10 * Self.second + 5)
        timeline.addHandshake(at: 12 * Self.second)
        timeline.addIncident(at: 12 * Self.second + 999_999_999)
        #expect(timeline.startNanos == 10 * Self.second)
        #expect(timeline.binNanos == Self.second)
        #expect(timeline.handshakes == [1, 0, 1])
        #expect(timeline.incidents == [0, 0, 1])
    }

    /// A capture longer than the bins widens them, two merged into one, and nothing is lost; an event
    /// before the first goes into bins added in front.
    @Test func longCapturesWidenTheBinsAndEarlyEventsGoInFront() {
        var timeline = Timeline()
        for second in 0..<1000 { timeline.addHandshake(at: Int64(second) * Self.second) }
        timeline.addIncident(at: 999 * Self.second)
        #expect(timeline.handshakes.count <= Timeline.maximumBins)
        #expect(timeline.binNanos == 8 * Self.second)
        #expect(timeline.handshakes.reduce(0, +) == 1000)
        #expect(timeline.incidents.reduce(0, +) == 1)
        #expect(timeline.handshakes.first == 8)

        timeline.addHandshake(at: -20 * Self.second)
        #expect(timeline.startNanos == -24 * Self.second)
        #expect(timeline.handshakes.first == 1)
        #expect(timeline.handshakes.reduce(0, +) == 1001)
        #expect(timeline.handshakes.count <= Timeline.maximumBins)
    }
}
