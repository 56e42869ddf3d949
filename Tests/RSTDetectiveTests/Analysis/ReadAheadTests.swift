import Logging
import Testing

@testable import RSTDetective

/// Reading ahead on a second thread, in batches, must not change a single result against analysing straight
/// from libpcap's buffer on one: every settled attempt and every count. (The order in which attempts that time out are reported follows the flow
/// table's slots, whose hash seed is random per run, so the attempts are compared as sets.)
@Suite struct ReadAheadTests {
    /// What a run reports, sorted, as text that differs whenever any field does.
    static func run(_ inputs: [String], readAhead: Bool, packetsPerBatch: Int) -> (
        connections: [String], packets: PacketCounts, tracker: TrackerCounters, errors: [CaptureError]
    ) {
        var connections: [String] = []
        let result = Analyzer.run(
            paths: inputs, options: AnalysisOptions(readAhead: readAhead), logger: Logger(label: "test"), stop: nil,
            packetsPerBatch: packetsPerBatch
        ) { connection in
            connections.append("\(connection.handshake)")
        }
        // The peak counts attempts past their deadline that the sweep has not reached yet, which depends on
        // the flow table's seed; it measures memory, not traffic.
        var tracker = result.tracker
        tracker.peakOpenHandshakes = 0
        return (connections.sorted(), result.packets, tracker, result.errors)
    }

    /// Batches of 1, 3 and 4096 packets put batch boundaries inside every handshake of the small captures,
    /// and none at all; the merge of rotated parts crosses them too.
    @Test(arguments: GoldenCase.all())
    func everyCaptureGivesTheSameResultInEveryMode(_ golden: GoldenCase) {
        let reference = Self.run(golden.inputs, readAhead: false, packetsPerBatch: 4096)
        #expect(reference.packets.packets > 0 || !reference.errors.isEmpty)
        for (readAhead, packetsPerBatch) in [(true, 1), (true, 3), (true, 4096)] {
            let other = Self.run(golden.inputs, readAhead: readAhead, packetsPerBatch: packetsPerBatch)
            #expect(
                other.connections == reference.connections,
                "readAhead \(readAhead), batch \(packetsPerBatch): \(other.connections.count) attempts, \(reference.connections.count) expected"
            )
            #expect(other.packets == reference.packets, "readAhead \(readAhead), batch \(packetsPerBatch)")
            #expect(other.tracker == reference.tracker, "readAhead \(readAhead), batch \(packetsPerBatch)")
            #expect(other.errors == reference.errors, "readAhead \(readAhead), batch \(packetsPerBatch)")
        }
    }
}
