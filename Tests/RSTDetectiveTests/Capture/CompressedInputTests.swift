import Foundation
import Testing

@testable import RSTDetective

/// format from Foundation-free zlib via the `gzip` command, which every Debian machine has.
@Suite struct CompressedInputTests {
    static func gzip(_ data: Data) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-c", "-n"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(data)
        try input.fileHandleForWriting.close()
        let compressed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return compressed
    }

    static func temporaryFile(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString).pcap.gz")
            .path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    static let plain = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("crafted-pcap-le-usec.pcap")))

    /// `cat a.gz b.gz` is a valid gzip file; both members are read.
    @Test func readsConcatenatedMembers() throws {
        let split = 24 + 16 + 74
        let data = try Self.gzip(Self.plain.prefix(split)) + Self.gzip(Self.plain.dropFirst(split))
        let path = try Self.temporaryFile(data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, incidents) = Fixtures.analyze([path])
        #expect(result.errors.isEmpty)
        #expect(result.packets.packets == 21)
        #expect(incidents.count == 2)
    }

    /// Corrupt deflate data ends the capture with an error naming the record; the records inflated before
    /// it are analysed. (The gzip CRC comes only at the end, so bytes just before the damage may already be
    /// garbage; libpcap then names that record.)
    @Test func corruptCompressedDataIsAReadErrorAfterTheGoodRecords() throws {
        let large = Data((0..<20).flatMap { _ in Self.plain.dropFirst(24) })
        var data = try Self.gzip(Self.plain.prefix(24) + large)
        for index in data.count - 40..<data.count - 36 { data[index] ^= 0x5a }
        let path = try Self.temporaryFile(data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, _) = Fixtures.analyze([path])
        guard case .readFailed(_, let record, let reason)? = result.errors.first else {
            Issue.record("expected a read error, got \(result.errors)")
            return
        }
        #expect(record == result.packets.packets + 1)
        #expect(result.packets.packets > 100)
        #expect(result.packets.packets < 21 * 20)
        #expect(!reason.isEmpty)
    }

    /// A member cut short exactly at a record boundary (a non-final stored deflate block, then nothing)
    /// still reads as damage, not as a complete capture; the records before it are kept.
    @Test func aMemberCutAtARecordBoundaryIsAnError() throws {
        let length = UInt16(Self.plain.count)
        var member: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        member += [0x00, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)]
        let path = try Self.temporaryFile(Data(member) + Self.plain)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, incidents) = Fixtures.analyze([path])
        guard case .readFailed(_, let record, let reason)? = result.errors.first else {
            Issue.record("expected a read error, got \(result.errors)")
            return
        }
        #expect(record == 22)
        #expect(reason.hasPrefix("the gzip data is corrupt or cut short"))
        #expect(incidents.count == 2)
    }

    @Test func aCompressedFileCutShortIsATruncatedCapture() throws {
        let data = try Self.gzip(Self.plain)
        let path = try Self.temporaryFile(data.prefix(data.count * 2 / 3))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, _) = Fixtures.analyze([path])
        guard case .readFailed(_, _, let reason)? = result.errors.first else {
            Issue.record("expected a read error, got \(result.errors)")
            return
        }
        #expect(reason.contains("truncated dump file") || reason.hasPrefix("the gzip data is corrupt or cut short"))
        #expect(result.packets.packets > 0)
        #expect(result.packets.packets < 21)
    }
}
