import Logging
import Testing

@testable import RSTDetective

/// Reading ahead on other threads, in blocks and batches, must not change a single result against analysing
/// straight from libpcap's buffer on one: every settled attempt, every count and every error. (The order in which attempts that time out are reported follows the flow
/// table's slots, whose hash seed is random per run, so the attempts are compared as sets.)
@Suite struct ReadAheadTests {
    /// What a run reports, sorted, as text that differs whenever any field does.
    static func run(_ inputs: [String], readAhead: Bool, packetsPerBatch: Int = 4096, blockBytes: Int = 1 << 18) -> (
        connections: [String], packets: PacketCounts, tracker: TrackerCounters, errors: [CaptureError]
    ) {
        var connections: [String] = []
        let result = Analyzer.run(
            paths: inputs, options: AnalysisOptions(readAhead: readAhead), logger: Logger(label: "test"), stop: nil,
            packetsPerBatch: packetsPerBatch, readAheadBlockBytes: blockBytes
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
    /// and none at all; blocks of 7 and 4099 bytes put block boundaries inside records and their headers, and
    /// blocks of 256 KiB none; the merge of rotated parts crosses them too.
    @Test(arguments: GoldenCase.all())
    func everyCaptureGivesTheSameResultInEveryMode(_ golden: GoldenCase) {
        let reference = Self.run(golden.inputs, readAhead: false)
        #expect(reference.packets.packets > 0 || !reference.errors.isEmpty)
        for (packetsPerBatch, blockBytes) in [(1, 7), (3, 4099), (4096, 7), (4096, 1 << 18)] {
            let other = Self.run(golden.inputs, readAhead: true, packetsPerBatch: packetsPerBatch, blockBytes: blockBytes)
            let label = "batch \(packetsPerBatch), block \(blockBytes)"
            #expect(
                other.connections == reference.connections,
                "\(label): \(other.connections.count) attempts, \(reference.connections.count) expected")
            #expect(other.packets == reference.packets, "\(label)")
            #expect(other.tracker == reference.tracker, "\(label)")
            #expect(other.errors == reference.errors, "\(label)")
        }
    }
}
