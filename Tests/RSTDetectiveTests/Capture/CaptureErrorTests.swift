import Foundation
import Testing

@testable import RSTDetective

@Suite struct CaptureErrorTests {
    @Test func aMissingFileIsNamedWithTheSystemsReason() {
        let (result, _) = Fixtures.analyze(["/nonexistent/x.pcap"])
        #expect(result.errors.map(\.description) == ["cannot open '/nonexistent/x.pcap': No such file or directory"])
    }

    @Test func aFileThatIsNotACaptureIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString).pcap").path
        try "not a capture at all".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, _) = Fixtures.analyze([path])
        #expect(result.errors == [.cannotOpen(path: path, reason: "unknown file format")])
    }

    /// The damaged record is named, and the incidents before it are kept.
    @Test func aTruncatedFileKeepsEverythingBeforeTheDamage() {
        let path = Fixtures.path("crafted-truncated.pcap")
        let (result, incidents) = Fixtures.analyze([path])
        guard case .readFailed(let errorPath, let record, let reason)? = result.errors.first else {
            Issue.record("expected a read error, got \(result.errors)")
            return
        }
        #expect(errorPath == path)
        #expect(record == result.packets.packets + 1)
        #expect(reason.contains("truncated dump file"))
        #expect(incidents.count == 2)
    }

    /// libpcap stops at the second interface (a RAW one, mid-file); the rest is read by `PcapngReader`, each
    /// packet with its own interface's link type, and the records are numbered on.
    @Test func mixedLinkTypesAreReadWhole() {
        let (result, incidents) = Fixtures.analyze([Fixtures.path("crafted-pcapng-mixed-linktypes.pcapng")])
        #expect(result.errors.isEmpty)
        #expect(result.packets.packets == 16)
        #expect(result.packets.tcpPackets == 16)
        #expect(incidents.count == 1)
    }

    /// Standard input and pipes cannot be read again, so there the refusal stays, saying what to do.
    @Test func mixedLinkTypesOnAPipeSayToSaveAFile() {
        let error = CaptureError.mixedLinkTypes(
            path: "-", record: 6, reason: "an interface has a type 101 different from the type of the first interface")
        #expect(error.description.hasPrefix("'-' record 6: an interface has a type 101"))
        #expect(error.description.hasSuffix("save it to a file first"))
        #expect(error.kind == .mixedLinkTypes)
    }

    /// A damaged file does not stop the others.
    @Test func theOtherFilesAreStillAnalysed() {
        let (result, incidents) = Fixtures.analyze(["/nonexistent.pcap", Fixtures.path("crafted-pcap-le-usec.pcap")])
        #expect(result.errors.count == 1)
        #expect(incidents.count == 2)
    }

    @Test func aFilterNarrowsTheInputAndIsCounted() {
        let path = Fixtures.path("crafted-pcap-le-usec.pcap")
        let (result, incidents) = Fixtures.analyze([path], options: AnalysisOptions(filter: "ip6"))
        #expect(incidents.map { $0.handshake.isIPv6 } == [true])
        #expect(result.packets.filteredOut > 0)
        #expect(result.packets.packets + result.packets.filteredOut == 21)
        #expect(PacketSource.filterError("tcp port") != nil)
        #expect(PacketSource.filterError("tcp port 80") == nil)
    }
}
