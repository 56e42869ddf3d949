import Foundation
import Testing

@testable import RSTDetective

/// format from Foundation-free zlib via the `gzip` command, which every Debian machine has.
@Suite struct CompressedInputTests {
    static func gzip(_ data: Data) throws -> Data {
        try compress(data, with: "/bin/gzip", ["-c", "-n"])
    }

    /// `zstd -19`, as a user would compress a capture for Wireshark 4.2 (Debian package `zstd`).
    static func zstd(_ data: Data) throws -> Data {
        try compress(data, with: "/usr/bin/zstd", ["-q", "-19", "-c"])
    }

    static func compress(_ data: Data, with tool: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
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
    /// The record and reason of the read error that must have ended `result`'s first capture; nil, with the
    /// issue recorded, when it ended otherwise.
    static func readFailure(_ result: AnalysisResult) -> (record: Int, reason: String)? {
        guard case .readFailed(_, let record, let reason)? = result.errors.first else {
            Issue.record("expected a read error, got \(result.errors)")
            return nil
        }
        return (record, reason)
    }

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
        guard let (record, reason) = Self.readFailure(result) else { return }
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
        guard let (record, reason) = Self.readFailure(result) else { return }
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

    /// `cat a.zst b.zst` is a valid zstd file; both frames are read, as for gzip members.
    @Test func readsConcatenatedZstdFrames() throws {
        let split = 24 + 16 + 74
        let data = try Self.zstd(Self.plain.prefix(split)) + Self.zstd(Self.plain.dropFirst(split))
        #expect(data.prefix(4) == Data([0x28, 0xb5, 0x2f, 0xfd]))
        let path = try Self.temporaryFile(data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, incidents) = Fixtures.analyze([path])
        #expect(result.errors.isEmpty)
        #expect(result.packets.packets == 21)
        #expect(incidents.count == 2)
    }

    /// 8 copies of the records of `reuseport-churn.pcap` (1.1 MB; 29 KB compressed): zstd delivers a block (up
    /// to 128 KiB) only once it is whole, so a cut must come after the first blocks to leave records.
    static let churn: (data: Data, records: Int) = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("reuseport-churn.pcap")))
        let copies = Data((0..<8).flatMap { _ in data.dropFirst(24) })
        let records = Fixtures.analyze([Fixtures.path("reuseport-churn.pcap")]).result.packets.packets
        return (try! zstd(data.prefix(24) + copies), 8 * records)
    }()

    /// A zstd file cut short (in its checksum, and in its last blocks, which being repeats are short) keeps
    /// the records before the cut and ends with one error naming the record: the cut frame is said to be
    /// corrupt or cut short, even where the bytes so far end on a record boundary.
    @Test(arguments: [2, 8, 64, 256])
    func aZstdFileCutShortKeepsTheRecordsBeforeTheCut(bytesCut: Int) throws {
        let path = try Self.temporaryFile(Self.churn.data.dropLast(bytesCut))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, _) = Fixtures.analyze([path])
        guard let (record, reason) = Self.readFailure(result) else { return }
        #expect(record == result.packets.packets + 1)
        #expect(reason.hasPrefix("the zstd data is corrupt or cut short"))
        #expect(result.errors.first?.kind == .corruptZstd)
        #expect(result.packets.packets > 0)
        // Cut in the checksum, every record is there; the cut is reported all the same.
        #expect(result.packets.packets <= Self.churn.records)
    }

    /// Damaged zstd data is a read error after the good records; damage before the first whole block (here the
    /// frame header) leaves no record, and the file cannot be opened, in the same words.
    @Test func corruptZstdDataIsAReadErrorAfterTheGoodRecords() throws {
        var data = Self.churn.data
        for index in data.count - 40..<data.count - 36 { data[index] ^= 0x5a }
        var header = Self.churn.data
        header[5] ^= 0xff
        let damaged = try Self.temporaryFile(data)
        let damagedHeader = try Self.temporaryFile(header)
        defer {
            try? FileManager.default.removeItem(atPath: damaged)
            try? FileManager.default.removeItem(atPath: damagedHeader)
        }
        let (result, _) = Fixtures.analyze([damaged])
        guard let (record, reason) = Self.readFailure(result) else { return }
        #expect(record == result.packets.packets + 1)
        #expect(reason.hasPrefix("the zstd data is corrupt or cut short"))
        #expect(result.packets.packets > 0)
        #expect(result.packets.packets < Self.churn.records)
        let (opened, _) = Fixtures.analyze([damagedHeader])
        #expect(opened.errors.first?.description.contains("the zstd data is corrupt or cut short") == true)
    }
}
