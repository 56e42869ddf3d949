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

    @Test func mixedLinkTypesSayHowToSplitTheFile() {
        let (result, incidents) = Fixtures.analyze([Fixtures.path("crafted-pcapng-mixed-linktypes.pcapng")])
        guard case .mixedLinkTypes? = result.errors.first else {
            Issue.record("expected a mixed link type error, got \(result.errors)")
            return
        }
        #expect(result.errors.first?.description.contains("split it per interface") == true)
        #expect(incidents.count == 1)
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
