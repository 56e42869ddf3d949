import Foundation
import Testing

@testable import RSTDetective

@Suite struct ReportingTests {
    @Test func timestampsAreISO8601WithMicroseconds() {
        #expect(Timestamp.iso8601(nanos: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp.iso8601(nanos: 1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z")
        #expect(Timestamp.iso8601(nanos: -1_000) == "1969-12-31T23:59:59.999999Z")
    }

    @Test func addressesPrintInRFC5952Form() throws {
        #expect(try #require(IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001")).description == "2001:db8::1")
        #expect(try #require(IPAddress("2001:db8:0:1:1:1:1:1")).description == "2001:db8:0:1:1:1:1:1")
        #expect(try #require(IPAddress("2001:DB8::0:1")).description == "2001:db8::1")
        #expect(try #require(IPAddress("10.0.0.1")).description == "10.0.0.1")
        // RFC 5952 §4: the longest zero run is compressed, the first of equal runs, never a single group.
        let cases = [
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("::2:3", "::2:3"), ("fe80::ABCD:0:0:1", "fe80::abcd:0:0:1"),
            ("2001:db8:0:1:0:1:0:1", "2001:db8:0:1:0:1:0:1"),
        ]
        for (input, canonical) in cases {
            #expect(try #require(IPAddress(input)).text(isIPv6: true) == canonical)
        }
        #expect(IPAddress("10.0.0.256") == nil)
        let mapped = try #require(IPAddress("::ffff:10.0.0.1"))
        #expect(mapped.text(isIPv6: true) == "::ffff:10.0.0.1")
        #expect(mapped.text(isIPv6: false) == "10.0.0.1")
    }

    @Test func historyRecordsEachLetterOncePerDirection() {
        var history = History()
        history.record(.syn, hasPayload: false, fromClient: true)
        history.record(.syn, hasPayload: false, fromClient: true)
        history.record([.syn, .ack], hasPayload: false, fromClient: false)
        history.record(.ack, hasPayload: false, fromClient: true)
        history.record([.ack, .psh], hasPayload: true, fromClient: true)
        history.record(.ack, hasPayload: false, fromClient: false)
        history.record([.fin, .ack], hasPayload: true, fromClient: false)
        history.record(.rst, hasPayload: false, fromClient: false)
        #expect(history.description == "ShADafr")
    }

    @Test func csvFieldsAreQuotedPerRFC4180AndFilesAppearOnlyOnCommit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("out.csv").path
        let file = try ReportFile(path: path)
        file.writeRecord(["plain", "with,comma", "with \"quote\"", "line\nbreak", "crlf\r\nbreak"])
        #expect(!FileManager.default.fileExists(atPath: path))
        try file.commit()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "plain,\"with,comma\",\"with \"\"quote\"\"\",\"line\nbreak\",\"crlf\r\nbreak\"\r\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.csv"])
    }

    @Test func anUncommittedReportLeavesNothingBehind() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let file = try ReportFile(path: directory.appendingPathComponent("out.csv").path)
            file.write("half")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    /// A streaming report grows in NAME.partial; the final name holds only published copies, each whole,
    /// and at commit the partial file becomes the report.
    @Test func aStreamingReportPublishesWholeCopies() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("live.csv").path
        func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
        do {
            let file = try ReportFile(path: path, streaming: true)
            file.writeRecord(["header"])
            file.writeRecord(["one"])
            file.flush()
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(try read(path + ".partial") == "header\r\none\r\n")
            try file.publish()
            #expect(try read(path) == "header\r\none\r\n")
            file.writeRecord(["two"])
            file.flush()
            #expect(try read(path) == "header\r\none\r\n")
            try file.publish()
            #expect(try read(path) == "header\r\none\r\ntwo\r\n")
            file.writeRecord(["three"])
            // Not committed, as when the process dies: the last copy and the partial file are kept.
        }
        #expect(try read(path) == "header\r\none\r\ntwo\r\n")
        #expect(try read(path + ".partial") == "header\r\none\r\ntwo\r\nthree\r\n")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == [
                "live.csv", "live.csv.partial",
            ])
        let file = try ReportFile(path: path, streaming: true)
        file.writeRecord(["header"])
        try file.commit()
        #expect(try read(path) == "header\r\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["live.csv"])
    }

    @Test func summaryListsEveryOutcomeAndSkipReason() {
        let (result, _) = Fixtures.analyze([Fixtures.path("crafted-skips.pcap")])
        let names = Summary.metrics(result).map(\.name)
        for required in ["packets", "tcp_packets", "handshakes_completed", "incidents"] {
            #expect(names.contains(required))
        }
        for outcome in Outcome.allCases { #expect(names.contains(outcome.metricName)) }
        for reason in SkipReason.allCases { #expect(names.contains(reason.metricName)) }
        #expect(Set(names).count == names.count)
    }
}

@Suite struct JSONLinesTests {
    @Test func stringsAreEscapedAsRFC8259Says() {
        #expect(Connection.jsonString("a\"b\\c\nd\u{1}é") == "\"a\\\"b\\\\c\\nd\\u0001é\"")
        #expect(Connection.jsonString("") == "\"\"")
    }
}
