internal import CGzip
internal import CPcap
import Glibc

/// Sole owner of a libpcap handle reading one capture file; noncopyable, so it is closed exactly once.
///
/// Reads classic pcap (either byte order, micro- or nanosecond), pcapng, gzip- and zstd-compressed forms of both,
/// and standard input (`-`). Timestamps are always delivered in nanoseconds. A pcapng file whose interfaces
/// differ in link type or snap length, which libpcap refuses, is read on from where libpcap stopped by
/// `PcapngReader`, each packet with its own interface's link type (`currentLinkType`). An optional BPF filter is applied
/// with `pcap_offline_filter`, after the record is read, so that record numbers in errors count every record
/// of the file, filtered or not.
@safe public struct PacketSource: ~Copyable {
    /// The path as the user gave it; `-` is standard input.
    public let path: String
    /// The capture's link type (`pcap_datalink`): that of its first interface.
    public let linkType: LinkType
    /// The link type of the record `next()` returned last: `linkType`, or in a pcapng file read by
    /// `PcapngReader`, that of the record's interface.
    public private(set) var currentLinkType: LinkType
    /// Records read so far, including those the filter rejected.
    public private(set) var recordsRead = 0
    /// Records the filter rejected.
    public private(set) var recordsFiltered = 0
    /// Whether the file is a classic pcap whose header gives a snap length of 0 or above libpcap's largest
    /// (262144), which libpcap reads as 262144; only uncompressed files are looked at.
    public let snapLengthIsInvalid: Bool

    static var timestampSecondsLimit: Int64 { 1 << 32 }

    /// The descriptor libpcap reads through (the file's, or the one under the gzip stream), and the file's
    /// size when it is a regular file: for `ReadProgress`.
    let fileDescriptor: Int32
    let fileSize: Int64?
    private let handle: OpaquePointer
    /// The stdio buffer of a plain file's stream, owned here because glibc ignores the size in
    /// `setvbuf` without a buffer; freed after `pcap_close` has closed the stream.
    private let streamBuffer: UnsafeMutableRawPointer?
    private var program: bpf_program
    private let hasFilter: Bool
    private var currentData: UnsafePointer<UInt8>?
    private var currentLength = 0
    /// The compression the file was read through ("gzip", "zstd"), or nil, for the words of a read error.
    private let compression: String?
    private let filter: String?
    /// Set once libpcap has refused a pcapng file's interfaces; it then reads the rest of the file.
    private var blockReader: PcapngReader?

    /// Opens a capture file (`pcap_fopen_offline_with_tstamp_precision`), decompressing it on the fly if it is
    /// gzip or zstd.
    ///
    /// - Parameters:
    ///   - path: A file path, or `-` for standard input.
    ///   - filter: A BPF expression in libpcap syntax, or nil for every packet; compiled once per link type
    ///     and kept for the next file (see `filterError(_:)`).
    ///   - readAheadBlockBytes: For a regular file, a thread of its own reads it (and decompresses it) ahead
    ///     in blocks of this many bytes (`rstd_read_ahead`), unless `RSTD_READ_AHEAD_STREAMS` files are read
    ///     ahead already; nil reads on the calling thread.
    /// - Throws: `CaptureError.cannotOpen` (also for a classic pcap whose link-type field has reserved bits
    ///   set), or `.badFilter`.
    public init(path: String, filter: String? = nil, readAheadBlockBytes: Int? = nil) throws(CaptureError) {
        let (stream, streamBuffer, snapLength, fd, size, compression) = try unsafe Self.openStream(
            path: path, readAheadBlockBytes: readAheadBlockBytes)
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let opened = unsafe errorBuffer.withUnsafeMutableBufferPointer { buffer in
            unsafe pcap_fopen_offline_with_tstamp_precision(
                stream, UInt32(PCAP_TSTAMP_PRECISION_NANO), buffer.baseAddress)
        }
        guard let handle = unsafe opened else {
            unsafe fclose(stream)
            unsafe streamBuffer?.deallocate()
            throw .cannotOpen(path: path, reason: Self.describing(Self.message(errorBuffer), compression))
        }
        let dataLinkType = unsafe pcap_datalink(handle)
        // libpcap 1.10 (sf-pcap.c) takes the upper 6 bits of a classic pcap's link-type field as the FCS length
        // and keeps the 10 reserved bits below them in the link type, which then names no link type: refused,
        // as tcpdump refuses it ("unknown data link type").
        guard dataLinkType & ~0xFFFF == 0 else {
            unsafe pcap_close(handle)
            unsafe streamBuffer?.deallocate()
            throw .cannotOpen(
                path: path,
                reason: "the link-type field gives \(dataLinkType), which is not a link type: its reserved bits "
                    + "(16 to 25) must be 0")
        }
        var program = unsafe bpf_program()
        if let filter {
            switch unsafe FilterPrograms.program(filter, dataLinkType: dataLinkType) {
            case .success(let compiled):
                unsafe program = unsafe compiled
            case .failure(let failure):
                unsafe pcap_close(handle)
                unsafe streamBuffer?.deallocate()
                throw .badFilter(path: path, expression: filter, reason: failure.reason)
            }
        }
        self.path = path
        self.fileDescriptor = fd
        self.fileSize = size
        unsafe self.handle = handle
        unsafe self.streamBuffer = streamBuffer
        self.linkType = LinkType(dataLinkType: dataLinkType)
        self.currentLinkType = linkType
        self.compression = compression
        self.filter = filter
        unsafe self.program = program
        self.hasFilter = filter != nil
        self.snapLengthIsInvalid = snapLength.map { $0 == 0 || $0 > 262_144 } ?? false
    }

    /// Whether `path` names a regular file (`stat`), which, unlike standard input, a pipe or a FIFO, can be
    /// opened and read more than once.
    public static func isRegularFile(_ path: String) -> Bool {
        guard path != "-" else { return false }
        var status = stat()
        return unsafe stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    /// The longest BPF expression taken, in UTF-8 bytes. libpcap's optimiser needs far more than the text
    /// suggests: on a 2-core VM, `tcp and ` repeated 12,000 times (96 KB) took 15 s and 3.8 GB, and 500
    /// `host` terms (9 KB) 39 s, while the slowest 4096 bytes found (about 180 `portrange` terms) take a few
    /// seconds. A hand-written filter is a few hundred bytes.
    public static let maximumFilterLength = 4096

    /// The most BPF instructions a compiled filter may have: the Linux kernel's limit for a socket filter
    /// (`BPF_MAXINSNS` in linux/bpf_common.h), which a live capture's filter must fit.
    public static let maximumFilterInstructions = 4096

    /// Checks that `expression` is within `maximumFilterLength` and compiles for Ethernet
    /// (`pcap_open_dead`, `pcap_compile`) to at most `maximumFilterInstructions`, so that a typo is reported
    /// once, before any capture is read. The program is kept for the Ethernet files read later.
    ///
    /// - Returns: libpcap's message, or the bound passed, when it is refused; nil when it compiles.
    public static func filterError(_ expression: String) -> String? {
        guard case .failure(let failure) = unsafe FilterPrograms.program(expression, dataLinkType: DLT_EN10MB) else {
            return nil
        }
        return failure.reason
    }

    /// Why `expression` is longer than `maximumFilterLength`, or nil; no compiling involved.
    public static func filterLengthError(_ expression: String) -> String? {
        FilterPrograms.lengthError(expression)
    }

    deinit {
        // The filter's program belongs to FilterPrograms, which keeps it for the next file.
        unsafe pcap_close(handle)
        unsafe streamBuffer?.deallocate()
    }

    /// Reads the next record that passes the filter (`pcap_next_ex`, `pcap_offline_filter`).
    ///
    /// - Returns: The record's metadata, or nil at the end of the file. Its bytes are available through
    ///   `withCurrentBytes` until the next call.
    /// - Throws: `CaptureError.readFailed` for a damaged file, or `.mixedLinkTypes` for standard input or a
    ///   pipe whose interfaces libpcap refuses; the records before it have been delivered.
    @inline(__always)
    public mutating func next() throws(CaptureError) -> PacketInfo? {
        // The reading thread's loop: its cold paths (the block reader, the end, an error) are calls, so
        // that this inlines into `deliver` with a small frame.
        if blockReader != nil { return try nextBlock() }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while true {
            let status = unsafe pcap_next_ex(handle, &header, &data)
            guard status == 1, let header = unsafe header, let data = unsafe data else {
                return try nextAfterFailedRead(status: status)
            }
            recordsRead += 1
            if hasFilter, unsafe pcap_offline_filter(&program, header, data) == 0 {
                recordsFiltered += 1
                continue
            }
            let timestamp = unsafe header.pointee.ts
            unsafe currentData = data
            currentLength = unsafe Int(header.pointee.caplen)
            // pcapng timestamps can name any second; clamping to ±2^32 s (1834 to 2106) keeps every
            // difference and deadline of two timestamps far from Int64's limits.
            let seconds = min(max(Int64(timestamp.tv_sec), -Self.timestampSecondsLimit), Self.timestampSecondsLimit)
            let nanos = min(max(Int64(timestamp.tv_usec), 0), 999_999_999)
            return PacketInfo(
                timestampNanos: seconds * 1_000_000_000 + nanos,
                capturedLength: currentLength,
                wireLength: unsafe Int(header.pointee.len))
        }
    }

    /// What `next()` gives when `pcap_next_ex` returned `status` without a packet: nil at the end, or, for a
    /// pcapng file whose interfaces libpcap refuses, the next record read by a `PcapngReader`.
    @inline(never)
    private mutating func nextAfterFailedRead(status: Int32) throws(CaptureError) -> PacketInfo? {
        guard status != PCAP_ERROR_BREAK else { return nil }
        let error = readError()
        // A regular file can be read again, by a reader that takes every interface as it is.
        guard case .mixedLinkTypes = error, fileSize != nil else { throw error }
        blockReader = try PcapngReader(path: path, filter: filter, skipping: recordsRead)
        return try nextBlock()
    }

    /// `next()` through `PcapngReader`.
    @inline(never)
    private mutating func nextBlock() throws(CaptureError) -> PacketInfo? {
        guard let reader = blockReader else { return nil }
        defer { recordsRead = reader.recordsRead }
        while let record = try reader.nextRecord() {
            guard reader.passesFilter(record) else {
                recordsFiltered += 1
                continue
            }
            unsafe currentData = reader.currentData
            currentLength = record.info.capturedLength
            currentLinkType = record.linkType
            return record.info
        }
        return nil
    }

    /// Calls `body` with the bytes of the record `next()` returned last.
    ///
    /// The bytes are borrowed from libpcap's buffer and are valid only during the call.
    public func withCurrentBytes<Result>(_ body: (RawSpan) -> Result) -> Result {
        guard let data = unsafe currentData else {
            return body(RawSpan())
        }
        // SAFETY: libpcap keeps `caplen` bytes at `data` valid until the next pcap_next_ex on this handle,
        // which cannot happen during this call.
        let span = unsafe RawSpan(_unsafeStart: UnsafeRawPointer(data), byteCount: currentLength)
        return body(span)
    }

    /// Where `deliver(_:andFollowingTo:before:stop:)` stopped.
    enum DeliveryEnd {
        /// The sink is full; the records delivered are all that were read.
        case sinkFull
        /// The capture ended, or failed (the error is thrown).
        case ended
        /// This record was read but not delivered: it is not before the bound, or a stop was requested. Its bytes stay available until the next read.
        case held(PacketInfo)
    }

    /// A bound on the timestamps a delivery takes: records before `nanos`, or also at it when `inclusive`.
    struct Bound {
        var nanos: Int64
        var inclusive: Bool

        func admits(_ timestampNanos: Int64) -> Bool {
            timestampNanos < nanos || (inclusive && timestampNanos == nanos)
        }
    }

    /// Delivers `current` (the record `next()` returned last) to `sink`, then reads and delivers the records
    /// after it while they are within `bound`, the sink has room, and no stop is requested.
    ///
    /// - Throws: `CaptureError.readFailed` or `.mixedLinkTypes`; the records before it were delivered.
    @inline(__always)
    mutating func deliver<Sink: PacketSink>(
        _ current: PacketInfo, andFollowingTo sink: inout Sink, before bound: Bound, stop: StopRequest?
    ) throws(CaptureError) -> DeliveryEnd {
        var info = current
        while true {
            guard let data = unsafe currentData else { return .ended }
            // SAFETY: libpcap keeps `caplen` bytes at `data` valid until the next pcap_next_ex on this handle,
            // which cannot happen during the call. (Through `withCurrentBytes`, the closure cost 30
            // instructions a packet: measured with callgrind.)
            let bytes = unsafe RawSpan(_unsafeStart: UnsafeRawPointer(data), byteCount: info.capturedLength)
            sink.take(info, bytes, currentLinkType)
            guard !sink.isFull else { return .sinkFull }
            guard let next = try next() else { return .ended }
            info = next
            guard bound.admits(info.timestampNanos), stop?.isRequested != true else { return .held(info) }
        }
    }

    private func readError() -> CaptureError {
        let reason = Self.describing(unsafe String(cString: pcap_geterr(handle)), compression)
        let record = recordsRead + 1
        if reason.contains("of the first interface") {
            return .mixedLinkTypes(path: path, record: record, reason: reason)
        }
        return .readFailed(path: path, record: record, reason: reason)
    }

    /// libpcap's `reason`, saying so when the gzip or zstd stream failed it: only that stream fails a read with
    /// EBADMSG, which libpcap words "error reading dump file: Bad message".
    static func describing(_ reason: String, _ compression: String?) -> String {
        guard let compression, reason.hasSuffix(unsafe String(cString: strerror(EBADMSG))) else { return reason }
        return "the \(compression) data is corrupt or cut short (\(reason))"
    }

    /// Opens `path` as a stdio stream. A regular file that does not start with the gzip or zstd magic number
    /// is read by stdio directly, with a large buffer; compressed files, standard input and pipes go through a
    /// stream that decompresses gzip and zstd and otherwise passes bytes through as soon as they arrive. With
    /// `readAheadBlockBytes`, a regular file's stream is read ahead on a thread of its own (`rstd_read_ahead`),
    /// unless `RSTD_READ_AHEAD_STREAMS` files are read ahead already.
    ///
    /// - Returns: The stream, its buffer, for a regular classic pcap file the snap length its header gives
    ///   (before libpcap adjusts it), the descriptor under the stream, the size of a regular file, and the
    ///   compression the stream undoes ("gzip", "zstd"), or nil.
    static func openStream(path: String, readAheadBlockBytes: Int? = nil) throws(CaptureError) -> (
        stream: UnsafeMutablePointer<FILE>, buffer: UnsafeMutableRawPointer?, snapLength: UInt32?, fd: Int32,
        size: Int64?, compression: String?
    ) {
        let fd = unsafe path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .cannotOpen(path: path, reason: unsafe String(cString: strerror(errno)))
        }
        var status = stat()
        var magic: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        let isRegular = unsafe fstat(fd, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
        let size = isRegular ? Int64(status.st_size) : nil
        let isPlainFile =
            unsafe isRegular
            && withUnsafeMutableBytes(of: &magic) { bytes in
                let count = unsafe pread(fd, bytes.baseAddress, 4, 0)
                return unsafe rstd_compression_of(bytes.baseAddress, max(count, 0)) == Int32(RSTD_PLAIN.rawValue)
            }
        var compression = Int32(RSTD_PLAIN.rawValue)
        let stream = unsafe isPlainFile ? fdopen(fd, "rb") : rstd_stream_fdopen(fd, &compression)
        guard let stream = unsafe stream else {
            let reason = unsafe String(cString: strerror(errno))
            close(fd)
            throw .cannotOpen(path: path, reason: reason)
        }
        let name: String? =
            switch compression {
            case Int32(RSTD_GZIP.rawValue): "gzip"
            case Int32(RSTD_ZSTD.rawValue): "zstd"
            default: nil
            }
        let snapLength = isPlainFile ? Self.classicSnapLength(fd) : nil
        // The thread reads whole blocks past the stream's own buffer, which then stays small.
        if isRegular, let readAheadBlockBytes, let ahead = unsafe rstd_read_ahead(stream, readAheadBlockBytes) {
            return unsafe (ahead, nil, snapLength, fd, size, name)
        }
        guard isPlainFile else { return unsafe (stream, nil, nil, fd, size, name) }
        // libpcap reads each record with two small freads; a large buffer keeps the syscalls few.
        let bufferSize = 1 << 18
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        unsafe setvbuf(stream, buffer.assumingMemoryBound(to: CChar.self), _IOFBF, bufferSize)
        return unsafe (stream, buffer, snapLength, fd, size, nil)
    }

    /// The snap length in a classic pcap file header (magic, version, zone, sigfigs, snaplen, linktype), in
    /// the byte order its magic number gives, or nil for any other file.
    private static func classicSnapLength(_ fd: Int32) -> UInt32? {
        var header: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0, 0)
        guard unsafe pread(fd, &header, 24, 0) == 24 else { return nil }
        switch header.0 {
        case 0xa1b2_c3d4, 0xa1b2_3c4d: return header.4
        case 0xd4c3_b2a1, 0x4d3c_b2a1: return header.4.byteSwapped
        default: return nil
        }
    }

    private static func message(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
