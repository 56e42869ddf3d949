import Foundation

/// A classic pcap of busy-server traffic whose truth is known by construction: connections to
/// 10.78.0.1:443 from 10.77.0.0/16 (one address per connection, so 65536 of them at most), one in five reset by the server right after the client's handshake ACK (the signature),
/// the others carrying data segments whose records are all of one size, or of every size in turn.
///
/// It is the world the tool meets rather than the lab's: snap length 262144 (tcpdump's default), whole
/// MTU-sized, jumbo and GRO-sized records, and records beyond 65535 bytes written as a host with BIG TCP or
/// segmentation offload captures them (IPv4 total length 0, the length then taken from the wire).
struct SyntheticCapture {
    /// The sizes of the data records, in turn.
    let recordSizes: [Int]
    /// Whether an empty record (captured length 0) comes before each handshake.
    let emptyRecords: Bool
    /// The classic pcap.
    private(set) var data = Data()
    /// Records written.
    private(set) var records = 0
    /// The incidents, as `client_ip,client_port,server_ip,server_port`.
    private(set) var incidents: Set<String> = []

    /// The record sizes of a mixed capture: a bare ACK, an MTU frame, a jumbo frame, the largest IPv4
    /// packet, and libpcap's largest record.
    static let mixedSizes = [54, 1514, 9014, 65535, 262_144]
    private static let dataSegmentsPerConnection = 8

    /// A capture of a single data record of `recordSize` bytes, with no handshake.
    init(singleRecordOf recordSize: Int) {
        (recordSizes, emptyRecords) = ([recordSize], false)
        writeHeader()
        appendSegment(at: 0, client: 0, toServer: true, sequence: 1, ack: 1, flags: 0x18, size: recordSize)
    }

    /// A capture of at least `minimumBytes` bytes and `minimumRecords` records, and at least one incident,
    /// its data records of `recordSizes` in turn.
    init(recordSizes: [Int], emptyRecords: Bool = false, minimumBytes: Int, minimumRecords: Int = 0) {
        (self.recordSizes, self.emptyRecords) = (recordSizes, emptyRecords)
        writeHeader()
        var connection = 0
        while data.count < minimumBytes || records < minimumRecords || incidents.isEmpty {
            appendConnection(connection)
            connection += 1
        }
    }

    private mutating func writeHeader() {
        // Magic, version 2.4, zone, sigfigs, snap length 262144, LINKTYPE_ETHERNET; little-endian, µs.
        for word: UInt32 in [0xa1b2_c3d4] { append32(word) }
        append16(2)
        append16(4)
        for word: UInt32 in [0, 0, 262_144, 1] { append32(word) }
    }

    /// One connection: SYN, SYN-ACK, ACK, then the server's RST (seq = its ISN + 1, ACK flag clear), or data
    /// segments both ways. Connections are 1 ms apart, each over within 1 ms, so records are in time order.
    private mutating func appendConnection(_ index: Int) {
        let start = Int64(index) * 1000
        let clientISN = UInt32(truncatingIfNeeded: 1000 + index * 7919)
        let serverISN = UInt32(truncatingIfNeeded: 500_000 + index * 104_729)
        if emptyRecords {
            appendRecord(at: start, bytes: Data(), wireLength: 60)
        }
        appendSegment(at: start, client: index, toServer: true, sequence: clientISN, ack: 0, flags: 0x02, size: 54)
        appendSegment(
            at: start + 100, client: index, toServer: false, sequence: serverISN, ack: clientISN &+ 1, flags: 0x12,
            size: 54)
        appendSegment(
            at: start + 200, client: index, toServer: true, sequence: clientISN &+ 1, ack: serverISN &+ 1,
            flags: 0x10, size: 54)
        if index % 5 == 2 {
            appendSegment(
                at: start + 250, client: index, toServer: false, sequence: serverISN &+ 1, ack: 0, flags: 0x04,
                size: 54)
            incidents.insert("\(Self.clientAddress(index)),\(Self.clientPort(index)),10.78.0.1,443")
            return
        }
        var sequences = (client: clientISN &+ 1, server: serverISN &+ 1)
        for segment in 0..<Self.dataSegmentsPerConnection {
            let size = recordSizes[(index + segment) % recordSizes.count]
            let payload = UInt32(truncatingIfNeeded: Self.payloadLength(recordSize: size))
            let toServer = segment % 2 == 0
            let at = start + 300 + Int64(segment) * 50
            if toServer {
                appendSegment(
                    at: at, client: index, toServer: true, sequence: sequences.client, ack: sequences.server,
                    flags: 0x18, size: size)
                sequences.client &+= payload
            } else {
                appendSegment(
                    at: at, client: index, toServer: false, sequence: sequences.server, ack: sequences.client,
                    flags: 0x18, size: size)
                sequences.server &+= payload
            }
        }
    }

    /// The TCP payload of a record of `recordSize` bytes: Ethernet(14) + IPv4(20) + TCP(20) + payload.
    static func payloadLength(recordSize: Int) -> Int { max(0, recordSize - 54) }

    static func clientAddress(_ index: Int) -> String { "10.77.\(index >> 8 & 0xff).\(index & 0xff)" }
    static func clientPort(_ index: Int) -> Int { 20000 + index % 40000 }

    /// A TCP segment of `size` bytes on the wire and in the record, between the client of connection `client`
    /// and the server, at `micros` after the capture's start.
    private mutating func appendSegment(
        at micros: Int64, client: Int, toServer: Bool, sequence: UInt32, ack: UInt32, flags: UInt8, size: Int
    ) {
        var frame = Data(capacity: size)
        let clientMAC: [UInt8] = [2, 0, 0, 0, 0, 1]
        let serverMAC: [UInt8] = [2, 0, 0, 0, 0, 2]
        frame += toServer ? serverMAC + clientMAC : clientMAC + serverMAC
        frame += [0x08, 0x00]
        let clientIP: [UInt8] = [10, 77, UInt8(client >> 8 & 0xff), UInt8(client & 0xff)]
        let serverIP: [UInt8] = [10, 78, 0, 1]
        // IPv4 total length 0 beyond 65535, as a capture before segmentation offload shows it.
        let totalLength = size - 14 <= 0xffff ? UInt16(size - 14) : 0
        frame += [0x45, 0] + Self.be16(totalLength) + [0, 0, 0x40, 0, 64, 6, 0, 0]
        frame += toServer ? clientIP + serverIP : serverIP + clientIP
        let ports = Self.be16(UInt16(Self.clientPort(client))) + Self.be16(443)
        frame += toServer ? ports : Array(ports[2...] + ports[..<2])
        frame +=
            Self.be32(sequence) + Self.be32(ack) + [0x50, flags] + Self.be16(flags == 0x04 ? 0 : 501) + [0, 0, 0, 0]
        frame.append(Data(count: size - frame.count))
        appendRecord(at: micros, bytes: frame, wireLength: size)
    }

    private mutating func appendRecord(at micros: Int64, bytes: Data, wireLength: Int) {
        let time = 1_700_000_000_000_000 + micros
        append32(UInt32(time / 1_000_000))
        append32(UInt32(time % 1_000_000))
        append32(UInt32(bytes.count))
        append32(UInt32(wireLength))
        data += bytes
        records += 1
    }

    private mutating func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { data += $0 } }
    private mutating func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data += $0 } }
    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    private static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xffff)) }

    /// The records' byte ranges, for cutting a capture into rotated parts.
    func recordRanges() -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var offset = 24
        while offset + 16 <= data.count {
            let captured = data.subdata(in: offset + 8..<offset + 12).withUnsafeBytes {
                Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)))
            }
            ranges.append(offset..<offset + 16 + captured)
            offset += 16 + captured
        }
        return ranges
    }
}
