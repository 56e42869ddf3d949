import Foundation
import Testing

@testable import RSTDetective

/// pcapng files libpcap 1.10 refuses (interfaces of different link types or snap lengths), built block by block
/// around the 21 Ethernet frames of `crafted-pcap-le-usec.pcap`, so that each option and byte order is known.
/// The real captures of this kind are the golden `mixed-interfaces.pcapng` (mergecap) and its zstd copy.
@Suite struct PcapngReaderTests {
    /// The frames of `crafted-pcap-le-usec.pcap` with their times in microseconds.
    static let frames: [(micros: UInt64, bytes: Data)] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("crafted-pcap-le-usec.pcap")))
        func word(_ offset: Int) -> UInt64 {
            UInt64(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) })
        }
        var frames: [(UInt64, Data)] = []
        var offset = 24
        while offset + 16 <= data.count {
            let length = Int(word(offset + 8))
            frames.append(
                (word(offset) * 1_000_000 + word(offset + 4), data.subdata(in: offset + 16..<offset + 16 + length)))
            offset += 16 + length
        }
        return frames
    }()

    /// Writes pcapng blocks in one byte order.
    struct Writer {
        var bigEndian: Bool
        var data = Data()

        func bytes<T: FixedWidthInteger>(_ value: T) -> Data {
            withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { Data($0) }
        }

        mutating func block(_ type: UInt32, _ body: Data) {
            let padded = body + Data(count: (4 - body.count % 4) % 4)
            let length = UInt32(12 + padded.count)
            data += bytes(type) + bytes(length) + padded + bytes(length)
        }

        mutating func sectionHeader() {
            block(0x0A0D_0D0A, bytes(UInt32(0x1A2B_3C4D)) + bytes(UInt16(1)) + bytes(UInt16(0)) + bytes(Int64(-1)))
        }

        /// An interface description block with `if_tsresol` (option 9) and `if_tsoffset` (14) when given.
        mutating func interface(linkType: UInt16, snapLength: UInt32, resolution: UInt8? = nil, offset: Int64? = nil) {
            var body = bytes(linkType) + bytes(UInt16(0)) + bytes(snapLength)
            if let resolution { body += bytes(UInt16(9)) + bytes(UInt16(1)) + Data([resolution, 0, 0, 0]) }
            if let offset { body += bytes(UInt16(14)) + bytes(UInt16(8)) + bytes(offset) }
            body += bytes(UInt32(0))
            block(1, body)
        }

        mutating func packet(interface: UInt32, units: UInt64, _ frame: Data) {
            let header = bytes(interface) + bytes(UInt32(units >> 32)) + bytes(UInt32(truncatingIfNeeded: units))
            block(6, header + bytes(UInt32(frame.count)) + bytes(UInt32(frame.count)) + frame)
        }
    }

    static let offsetSeconds: Int64 = 100
    static let lastSeconds: UInt64 = 2_000_000_000

    /// Interface 0: Ethernet, nanoseconds, 100 s offset; 1: link type 147 (a user type) and another snap length;
    /// 2: Ethernet in units of 2^-10 s. The frames go on 0, two of them again on 1 (microseconds, 200 s later),
    /// then an ARP frame on 2.
    static func capture(bigEndian: Bool) -> Data {
        var writer = Writer(bigEndian: bigEndian)
        writer.sectionHeader()
        writer.interface(linkType: 1, snapLength: 65535, resolution: 9, offset: offsetSeconds)
        writer.interface(linkType: 147, snapLength: 128)
        writer.interface(linkType: 1, snapLength: 65535, resolution: 0x80 | 10)
        for frame in frames { writer.packet(interface: 0, units: frame.micros * 1000, frame.bytes) }
        for frame in frames.prefix(2) { writer.packet(interface: 1, units: frame.micros + 200_000_000, frame.bytes) }
        let arp = Data(repeating: 0xff, count: 6) + Data(count: 6) + Data([0x08, 0x06]) + Data(count: 46)
        writer.packet(interface: 2, units: lastSeconds * 1024 + 512, arp)
        return writer.data
    }

    static func temporaryFile(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rstd-\(UUID().uuidString).pcapng")
            .path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [false, true])
    func readsEveryInterfaceWithItsOwnLinkTypeAndClock(bigEndian: Bool) throws {
        let path = try Self.temporaryFile(Self.capture(bigEndian: bigEndian))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, incidents) = Fixtures.analyze([path])
        #expect(result.errors.isEmpty)
        #expect(result.packets.packets == 24)
        #expect(result.packets.count(of: .unknownLinkType) == 2)
        #expect(result.packets.count(of: .nonIP) == 1)
        #expect(incidents.count == 2)
        let first = try #require(Self.frames.first)
        #expect(result.packets.firstPacketNanos == Int64(first.micros) * 1000 + Self.offsetSeconds * 1_000_000_000)
        #expect(result.packets.lastPacketNanos == Int64(Self.lastSeconds) * 1_000_000_000 + 500_000_000)
    }

    /// The filter is compiled for each interface's link type; the records it rejects are counted, with those of
    /// the link type it cannot be compiled for (147), which the decoder does not know either.
    @Test func theFilterAppliesPerInterface() throws {
        let path = try Self.temporaryFile(Self.capture(bigEndian: false))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (result, incidents) = Fixtures.analyze([path], options: AnalysisOptions(filter: "ip6"))
        #expect(result.errors.isEmpty)
        #expect(incidents.map { $0.handshake.isIPv6 } == [true])
        #expect(result.packets.packets + result.packets.filteredOut == 24)
        #expect(result.packets.count(of: .unknownLinkType) == 0)
    }

    /// A block whose two lengths differ, and a file cut inside a block, end the file with one error naming the
    /// record; the records before it are analysed.
    @Test func damagedBlocksAreReadErrorsAfterTheGoodRecords() throws {
        var data = Self.capture(bigEndian: false)
        // The trailing length of the 22nd packet block, the first on interface 1, after every frame of interface 0.
        var writer = Writer(bigEndian: false)
        writer.sectionHeader()
        writer.interface(linkType: 1, snapLength: 65535, resolution: 9, offset: Self.offsetSeconds)
        writer.interface(linkType: 147, snapLength: 128)
        writer.interface(linkType: 1, snapLength: 65535, resolution: 0x80 | 10)
        for frame in Self.frames { writer.packet(interface: 0, units: frame.micros * 1000, frame.bytes) }
        writer.packet(interface: 1, units: 0, Self.frames[0].bytes)
        data[writer.data.count - 4] ^= 0x40
        let damaged = try Self.temporaryFile(data)
        let cut = try Self.temporaryFile(data.prefix(writer.data.count - 6))
        defer {
            try? FileManager.default.removeItem(atPath: damaged)
            try? FileManager.default.removeItem(atPath: cut)
        }
        for (path, kind) in [(damaged, CaptureError.Kind.badBlockLength), (cut, .truncated)] {
            let (result, incidents) = Fixtures.analyze([path])
            guard case .readFailed(let errorPath, let record, _)? = result.errors.first else {
                Issue.record("expected a read error, got \(result.errors)")
                continue
            }
            #expect(errorPath == path)
            #expect(record == 22)
            #expect(result.errors.first?.kind == kind)
            #expect(result.packets.packets == 21)
            #expect(incidents.count == 2)
        }
    }
}
