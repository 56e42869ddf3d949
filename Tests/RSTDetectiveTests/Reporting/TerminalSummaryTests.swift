import Foundation
import Testing

@testable import RSTDetective

@Suite struct TerminalSummaryTests {
    static func summary(_ capture: String, colour: Bool = false) -> (text: String, incidents: [Connection]) {
        let (result, incidents) = Fixtures.analyze([Fixtures.path(capture)])
        return (TerminalSummary.render(result, colour: colour), incidents)
    }

    /// Plain text has no escape; colour paints the incident count red and the hints that hold yellow.
    @Test func colourOnlyWhenAskedFor() {
        let plain = Self.summary("accept-overflow.pcap").text
        #expect(!plain.contains("\u{1B}"))
        let coloured = Self.summary("accept-overflow.pcap", colour: true).text
        #expect(coloured.contains("\u{1B}[1;31m16\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[33myes\u{1B}[0m  rst_ip_id_zero"))
        #expect(coloured.contains("\u{1B}[1mWhat this means\u{1B}[0m"))
    }

    /// The delay percentiles are those of the incidents' own ACK-to-RST times (two significant digits).
    @Test func delayPercentilesMatchTheIncidents() throws {
        let (text, incidents) = Self.summary("reuseport-churn.pcap")
        let delays = incidents.map { ($0.handshake.settledTimeNanos - $0.handshake.ackTimeNanos) / 1000 }.sorted()
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ACK to RST: ") })
        let median = delays[(delays.count - 1) / 2]
        let maximum = try #require(delays.last)
        func shown(_ label: String) throws -> Int64 {
            let field = try #require(line.components(separatedBy: label + " ").dropFirst().first)
            return try #require(Int64(field.prefix { $0.isNumber }))
        }
        #expect(abs(try shown("p50") - median) <= max(1, median / 50), "\(line), median \(median)")
        #expect(abs(try shown("max") - maximum) <= max(1, maximum / 50), "\(line), max \(maximum)")
    }

    /// The paragraph names the cause that fits: accept-queue overflow, another host; none without incidents.
    @Test func theCauseThatFits() {
        #expect(
            Self.summary("accept-overflow.pcap").text.contains(
                "Fits this capture: 16 incident(s) met a full accept queue"))
        #expect(Self.summary("other-host.pcap").text.contains("Fits this capture: most RSTs came from another host"))
        let nearMisses = Self.summary("near-misses.pcap").text
        #expect(!nearMisses.contains("What this means"))
        #expect(nearMisses.contains("near misses (server RSTs that are not the signature): 5 wrong_ack"))
    }

    /// Right-aligned numbers end in the same column on every row of a table.
    @Test func tablesAreAligned() throws {
        let lines = Self.summary("reuseport-churn.pcap").text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("Outcomes") })
        let table = lines[(start + 1)...].prefix { $0.hasPrefix("  ") }
        #expect(table.count >= 3)
        let shareEnds = table.map { row in
            (row.range(of: "%")?.upperBound).map { row.distance(from: row.startIndex, to: $0) }
        }
        #expect(Set(shareEnds.dropFirst()).count == 1, "\(table)")
    }
}
