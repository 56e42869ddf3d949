internal import CPcap
import Glibc

/// Reads a pcapng file block by block, for the files libpcap 1.10 refuses: those whose interfaces have
/// different link types or snap lengths, as dumpcap and Wireshark write them (`dumpcap -i lo -i any`).
///
/// libpcap gives one link type per handle and stops at the first interface description block that differs
/// from the first (pcap-ng.c). This reader keeps each interface of a section with its own link type, snap
/// length, `if_tsresol` and `if_tsoffset`, so that each packet is decoded with its own interface's link type.
/// It reads section header, interface description, enhanced, simple and (obsolete) packet blocks, in either
/// byte order, a new section resetting the interfaces, and skips every other block. Damage is reported as
/// libpcap reports it: a `CaptureError.readFailed` naming the record, after the records before it.
///
/// Wireshark's libwiretap reads these files too, but it is GPL-2.0, its API and soname change with every
/// Wireshark release, and it pulls in GLib; these four block types are a few hundred lines.
@safe final class PcapngReader {
    /// One packet record: its metadata, the link type of its interface, and its interface's index.
    struct Record {
        var info: PacketInfo
        var linkType: LinkType
        var interface: Int
    }

    /// What a section says of one of its interfaces (interface description block, RFC draft section 4.2).
    /// Safe: its program belongs to `FilterPrograms`, which never frees it.
    @safe private struct Interface {
        var dataLinkType: Int32
        var snapLength: Int
        var resolution: TimestampResolution
        var offsetSeconds: Int64
        /// The filter's program for this link type, or nil without a filter.
        var program: bpf_program?
        /// Whether the filter does not compile for this link type, which the decoder does not know either: its
        /// packets are filtered out, where a file of that link type alone would be refused.
        var rejectsAll = false
    }

    /// `if_tsresol`: units of 10^-exponent or 2^-exponent seconds; microseconds by default.
    private struct TimestampResolution {
        var exponent: Int
        var isBinary: Bool
    }

    private static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    private static let interfaceDescriptionType: UInt32 = 1
    private static let obsoletePacketType: UInt32 = 2
    private static let simplePacketType: UInt32 = 3
    private static let enhancedPacketType: UInt32 = 6
    private static let byteOrderMagic: UInt32 = 0x1A2B_3C4D
    /// libpcap's largest block (MAX_BLOCKSIZE_MAX in pcap-ng.c); a longer length is damage.
    private static let maximumBlockLength = 16 * 1024 * 1024
    /// libpcap's largest snap length; a snap length of 0 or above it means this (pcap_adjust_snapshot).
    private static let maximumSnapLength = 262_144
    /// LINKTYPE_RAW, the number files carry for raw IP; libpcap maps it to DLT_RAW (pcap-common.c).
    private static let linkTypeRaw: UInt16 = 101

    private let path: String
    private let filter: String?
    private let compression: String?
    private let stream: UnsafeMutablePointer<FILE>
    private let streamBuffer: UnsafeMutableRawPointer?
    /// The block being read, header and trailer included; a record's bytes point into it until the next read.
    private var block: UnsafeMutableRawBufferPointer
    private var swapped = false
    private var interfaces: [Interface] = []
    /// Packet records read, filtered or not: the number of the last record for errors.
    private(set) var recordsRead = 0

    /// Opens `path` again (through the same gzip and zstd streams as libpcap's reading) and reads past its
    /// first `skipping` packet records, which libpcap has delivered already.
    ///
    /// - Throws: `CaptureError.cannotOpen`, `.readFailed` for damage within the skipped records, or
    ///   `.badFilter` when the filter does not compile for an interface's link type.
    init(path: String, filter: String?, skipping: Int) throws(CaptureError) {
        let opened = try unsafe PacketSource.openStream(path: path)
        self.path = path
        self.filter = filter
        self.compression = unsafe opened.compression
        unsafe self.stream = opened.stream
        unsafe self.streamBuffer = opened.buffer
        unsafe self.block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        while recordsRead < skipping {
            guard try nextRecord() != nil else {
                throw .readFailed(
                    path: path, record: recordsRead + 1, reason: "the file changed while it was read: it ends early")
            }
        }
    }

    deinit {
        unsafe fclose(stream)
        unsafe streamBuffer?.deallocate()
        unsafe block.deallocate()
    }

    /// The bytes of the record `nextRecord()` returned last, valid until the next call.
    var currentData: UnsafePointer<UInt8>? {
        guard currentLength >= 0 else { return nil }
        return unsafe UnsafePointer(block.baseAddress!.advanced(by: currentOffset).assumingMemoryBound(to: UInt8.self))
    }
    private var currentOffset = 0
    private var currentLength = -1

    /// Whether `record` passes the filter (`pcap_offline_filter` with its interface's program).
    func passesFilter(_ record: Record) -> Bool {
        guard !interfaces[record.interface].rejectsAll else { return false }
        guard let program = unsafe interfaces[record.interface].program, let data = unsafe currentData else {
            return true
        }
        // BPF programs of capture files look at the bytes and the two lengths only; the time is given as libpcap
        // would give it all the same (seconds and nanoseconds, the fraction never negative).
        let nanos = record.info.timestampNanos
        let fraction = (nanos % 1_000_000_000 + 1_000_000_000) % 1_000_000_000
        var header = pcap_pkthdr()
        header.ts = timeval(tv_sec: Int((nanos - fraction) / 1_000_000_000), tv_usec: Int(fraction))
        header.caplen = UInt32(record.info.capturedLength)
        header.len = UInt32(truncatingIfNeeded: record.info.wireLength)
        return unsafe withUnsafePointer(to: program) { program in
            unsafe pcap_offline_filter(program, &header, data) != 0
        }
    }

    /// Reads blocks up to the next packet record.
    ///
    /// - Returns: The record, or nil at the end of the file.
    /// - Throws: `CaptureError.readFailed` for a truncated or damaged block, or `.badFilter`; the records
    ///   before it have been returned.
    func nextRecord() throws(CaptureError) -> Record? {
        currentLength = -1
        while true {
            guard let type = try readBlock() else { return nil }
            switch type {
            case Self.sectionHeaderType:
                try readSectionHeader()
            case Self.interfaceDescriptionType:
                try readInterface()
            case Self.enhancedPacketType, Self.obsoletePacketType:
                return try readPacket(obsolete: type == Self.obsoletePacketType)
            case Self.simplePacketType:
                return try readSimplePacket()
            default:
                continue
            }
        }
    }

    private var blockLength = 0

    /// Reads one whole block into `block` and checks its two lengths.
    ///
    /// - Returns: The block type, or nil at the end of the file.
    private func readBlock() throws(CaptureError) -> UInt32? {
        let got = read(8, at: 0)
        guard unsafe got > 0 || ferror(stream) != 0 else { return nil }
        guard got == 8 else { throw shortRead() }
        var type = load32(0)
        var headerLength = 8
        if unsafe block.loadUnaligned(fromByteOffset: 0, as: UInt32.self) == Self.sectionHeaderType {
            // The byte-order magic after the length says how every number of the section is stored.
            guard read(4, at: 8) == 4 else { throw shortRead() }
            let magic = unsafe block.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            if magic == Self.byteOrderMagic {
                swapped = false
            } else if magic == Self.byteOrderMagic.byteSwapped {
                swapped = true
            } else {
                throw failure(
                    "a section header block has the byte-order magic 0x\(String(magic, radix: 16)), not 0x1a2b3c4d")
            }
            type = Self.sectionHeaderType
            headerLength = 12
        }
        let length = Int(load32(4))
        let minimum = type == Self.sectionHeaderType ? 28 : 12
        guard length >= minimum, length % 4 == 0, length <= Self.maximumBlockLength else {
            throw failure(
                "block total length \(length) is not a multiple of 4 from \(minimum) to \(Self.maximumBlockLength)")
        }
        if unsafe block.count < length {
            let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 8)
            unsafe larger.copyMemory(from: UnsafeRawBufferPointer(rebasing: block[0..<headerLength]))
            unsafe block.deallocate()
            unsafe block = larger
        }
        guard read(length - headerLength, at: headerLength) == length - headerLength else { throw shortRead() }
        guard Int(load32(length - 4)) == length else {
            throw failure("block total length \(length) differs from the length \(load32(length - 4)) at its end")
        }
        blockLength = length
        return type
    }

    /// Section header block: version 1, then a section of interfaces of its own.
    private func readSectionHeader() throws(CaptureError) {
        let major = load16(12)
        guard major == 1 else {
            throw failure("a section header block gives pcapng version \(major).\(load16(14)), not 1.x")
        }
        interfaces.removeAll()
    }

    /// Interface description block: link type, snap length, and the options `if_tsresol` and `if_tsoffset`.
    private func readInterface() throws(CaptureError) {
        guard blockLength >= 20 else {
            throw failure("an interface description block's length \(blockLength) is below 20")
        }
        let fileLinkType = load16(8)
        let dataLinkType = fileLinkType == Self.linkTypeRaw ? DLT_RAW : Int32(fileLinkType)
        var snapLength = Int(load32(12))
        if snapLength == 0 || snapLength > Self.maximumSnapLength { snapLength = Self.maximumSnapLength }
        var interface = unsafe Interface(
            dataLinkType: dataLinkType, snapLength: snapLength,
            resolution: TimestampResolution(exponent: 6, isBinary: false), offsetSeconds: 0, program: nil)
        var offset = 16
        let end = blockLength - 4
        while offset + 4 <= end {
            let code = load16(offset)
            let length = Int(load16(offset + 2))
            let value = offset + 4
            guard value + length <= end else {
                throw failure("an interface option of length \(length) runs past the end of its block")
            }
            switch code {
            case 0:
                offset = end
                continue
            case 9 where length >= 1:
                let byte = unsafe block.load(fromByteOffset: value, as: UInt8.self)
                let resolution = TimestampResolution(exponent: Int(byte & 0x7f), isBinary: byte & 0x80 != 0)
                guard resolution.exponent <= (resolution.isBinary ? 63 : 19) else {
                    throw failure("an interface's if_tsresol 0x\(String(byte, radix: 16)) is finer than 64 bits hold")
                }
                interface.resolution = resolution
            case 14 where length >= 8:
                interface.offsetSeconds = Int64(bitPattern: load64(value))
            default:
                break
            }
            offset = value + (length + 3) & ~3
        }
        if let filter {
            switch unsafe FilterPrograms.program(filter, dataLinkType: dataLinkType) {
            case .success(let program): unsafe interface.program = program
            case .failure(let failure):
                guard case .other = LinkType(dataLinkType: dataLinkType) else {
                    throw .badFilter(path: path, expression: filter, reason: failure.reason)
                }
                interface.rejectsAll = true
            }
        }
        interfaces.append(interface)
    }

    /// Enhanced packet block, or the obsolete packet block (a 16-bit interface and a drop count).
    private func readPacket(obsolete: Bool) throws(CaptureError) -> Record {
        guard blockLength >= 32 else { throw failure("a packet block's length \(blockLength) is below 32") }
        let index = Int(obsolete ? UInt32(load16(8)) : load32(8))
        guard index < interfaces.count else {
            throw failure(
                "a packet names interface \(index), which no interface description block of its section gives")
        }
        let interface = interfaces[index]
        let capturedLength = Int(load32(20))
        guard capturedLength <= blockLength - 32 else {
            throw failure("block total length \(blockLength) is too small for a captured length of \(capturedLength)")
        }
        let units = UInt64(load32(12)) << 32 | UInt64(load32(16))
        return record(
            at: 28, capturedLength: capturedLength, wireLength: Int(load32(24)), interface: index,
            timestampNanos: Self.nanos(units, interface))
    }

    /// Simple packet block: interface 0, no timestamp (0, as libpcap gives it).
    private func readSimplePacket() throws(CaptureError) -> Record {
        guard blockLength >= 16 else { throw failure("a simple packet block's length \(blockLength) is below 16") }
        guard !interfaces.isEmpty else {
            throw failure("a simple packet block comes before any interface description block of its section")
        }
        let wireLength = Int(load32(8))
        let capturedLength = min(wireLength, blockLength - 16)
        return record(at: 12, capturedLength: capturedLength, wireLength: wireLength, interface: 0, timestampNanos: 0)
    }

    private func record(at offset: Int, capturedLength: Int, wireLength: Int, interface: Int, timestampNanos: Int64)
        -> Record
    {
        // libpcap cuts a record longer than its interface's snap length to it.
        recordsRead += 1
        currentOffset = offset
        currentLength = min(capturedLength, interfaces[interface].snapLength)
        return Record(
            info: PacketInfo(timestampNanos: timestampNanos, capturedLength: currentLength, wireLength: wireLength),
            linkType: LinkType(dataLinkType: interfaces[interface].dataLinkType), interface: interface)
    }

    /// A timestamp in `interface`'s units since the epoch, plus its offset, in nanoseconds, with the seconds
    /// clamped as `PacketSource` clamps libpcap's.
    private static func nanos(_ units: UInt64, _ interface: Interface) -> Int64 {
        let exponent = interface.resolution.exponent
        var seconds: UInt64
        var fraction: UInt64
        if interface.resolution.isBinary {
            seconds = exponent == 0 ? units : units >> exponent
            let remainder = exponent == 0 ? 0 : units & (1 << exponent &- 1)
            // remainder * 10^9 / 2^exponent, in 128 bits.
            let (high, low) = remainder.multipliedFullWidth(by: 1_000_000_000)
            fraction = exponent == 0 ? 0 : high << (64 - exponent) | low >> exponent
        } else {
            var perSecond: UInt64 = 1
            for _ in 0..<exponent { perSecond *= 10 }
            seconds = units / perSecond
            fraction = units % perSecond
            if exponent <= 9 {
                for _ in exponent..<9 { fraction *= 10 }
            } else {
                for _ in 9..<exponent { fraction /= 10 }
            }
        }
        let limit = PacketSource.timestampSecondsLimit
        let (shifted, overflow) = Int64(clamping: seconds).addingReportingOverflow(interface.offsetSeconds)
        let total = overflow ? (interface.offsetSeconds > 0 ? limit : -limit) : min(max(shifted, -limit), limit)
        return total * 1_000_000_000 + Int64(fraction)
    }

    private func read(_ count: Int, at offset: Int) -> Int {
        unsafe fread(block.baseAddress!.advanced(by: offset), 1, count, stream)
    }

    // The loads below read within the block; each caller has checked the offset against `blockLength`
    // (readBlock checks every length it takes, and each block reader its own minimum length first).

    private func load16(_ offset: Int) -> UInt16 {
        let raw = unsafe block.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return swapped ? raw.byteSwapped : raw
    }

    private func load32(_ offset: Int) -> UInt32 {
        let raw = unsafe block.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return swapped ? raw.byteSwapped : raw
    }

    private func load64(_ offset: Int) -> UInt64 {
        let raw = unsafe block.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        return swapped ? raw.byteSwapped : raw
    }

    /// A read that ended early: the file ends inside a block, or the read failed (corrupt gzip or zstd data).
    private func shortRead() -> CaptureError {
        guard unsafe ferror(stream) != 0 else { return failure("truncated pcapng file: the file ends inside a block") }
        let reason = "error reading the file: \(unsafe String(cString: strerror(errno)))"
        return failure(PacketSource.describing(reason, compression))
    }

    private func failure(_ reason: String) -> CaptureError {
        .readFailed(path: path, record: recordsRead + 1, reason: reason)
    }
}
