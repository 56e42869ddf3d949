internal import CPcap
import Glibc

/// Sole owner of a libpcap handle capturing live on one interface; noncopyable, so it is closed exactly once.
///
/// The handle is made with `pcap_create` and activated in immediate mode (each packet is delivered as it
/// arrives), with nanosecond timestamps where the system has them. It reads in non-blocking mode and waits
/// with `poll` on its descriptor for at most the read timeout, so the caller regains control on a quiet link
/// and at once after a signal (libpcap's own timeout does not end a read in immediate mode on Linux). The filter runs in the kernel (`pcap_setfilter`). With `startSaving(to:)` every
/// packet delivered is also written to a pcap file, as `tcpdump -w` does.
@safe public struct LiveSource: ~Copyable {
    /// The interface name, as given.
    public let interface: String
    /// The interface's link type (`pcap_datalink`).
    public let linkType: LinkType
    /// The snap length in effect (`pcap_snapshot`).
    public let snapLength: Int
    /// libpcap's warning from activation (for example, promiscuous mode not supported), or nil.
    public let warning: String?
    /// Packets delivered so far.
    public private(set) var packetsDelivered = 0

    private let handle: OpaquePointer
    private let descriptor: Int32
    private let timeoutMillis: Int32
    private let nanosecondTimestamps: Bool
    private var dumper: OpaquePointer?
    /// Where `-w` writes.
    private var savePath = ""
    /// Why saving stopped: a write to the `-w` file failed (`cannotWrite`, a full disk), or its reader went
    /// away (`closedByReader`). Nil while saving, or when not saving.
    public private(set) var savingStopped: ReportError?
    private var currentHeader: UnsafeMutablePointer<pcap_pkthdr>?
    private var currentData: UnsafePointer<UInt8>?

    /// What one read of the interface gave.
    public enum Read: Sendable {
        /// A packet; its bytes are available through `withCurrentBytes` until the next read.
        case packet(PacketInfo)
        /// The read timeout passed with no packet.
        case timeout
    }

    /// libpcap's packet counters (`pcap_stats`).
    public struct Statistics: Sendable, Equatable {
        /// Packets the kernel passed to the capture (those the filter accepted).
        public var received: Int
        /// Packets dropped because the capture buffer was full.
        public var droppedByKernel: Int
        /// Packets the interface or its driver dropped.
        public var droppedByInterface: Int

        public init(received: Int = 0, droppedByKernel: Int = 0, droppedByInterface: Int = 0) {
            self.received = received
            self.droppedByKernel = droppedByKernel
            self.droppedByInterface = droppedByInterface
        }

        /// Packets lost either way.
        public var dropped: Int { droppedByKernel + droppedByInterface }
    }

    /// Opens and activates a live capture (`pcap_create`, `pcap_set_*`, `pcap_activate`, `pcap_setfilter`).
    ///
    /// - Parameters:
    ///   - interface: An interface name, or `any` for all of them (Linux cooked headers).
    ///   - snapLength: Bytes kept of each packet.
    ///   - bufferBytes: The kernel capture buffer, or nil for libpcap's default.
    ///   - promiscuous: Whether to put the interface in promiscuous mode.
    ///   - filter: A BPF expression in libpcap syntax, or nil for every packet; at most
    ///     `PacketSource.maximumFilterLength` bytes, compiling to at most `PacketSource.maximumFilterInstructions`.
    ///   - timeoutMillis: How long a read waits for a packet before returning `.timeout`.
    /// - Throws: `CaptureError.noSuchInterface`, `.permissionDenied`, `.cannotCapture` or `.badFilter`.
    public init(
        interface: String, snapLength: Int, bufferBytes: Int?, promiscuous: Bool, filter: String?,
        timeoutMillis: Int = 100
    ) throws(CaptureError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let created = unsafe errorBuffer.withUnsafeMutableBufferPointer { buffer in
            unsafe pcap_create(interface, buffer.baseAddress)
        }
        guard let handle = unsafe created else {
            throw .cannotCapture(interface: interface, reason: Self.message(errorBuffer))
        }
        unsafe pcap_set_snaplen(handle, Int32(snapLength))
        unsafe pcap_set_promisc(handle, promiscuous ? 1 : 0)
        unsafe pcap_set_timeout(handle, Int32(timeoutMillis))
        unsafe pcap_set_immediate_mode(handle, 1)
        if let bufferBytes { unsafe pcap_set_buffer_size(handle, Int32(bufferBytes)) }
        let nanoseconds = unsafe pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO)) == 0
        let status = unsafe pcap_activate(handle)
        if status < 0 {
            let detail = unsafe String(cString: pcap_geterr(handle))
            let text = unsafe String(cString: pcap_statustostr(status))
            unsafe pcap_close(handle)
            let reason = detail.isEmpty ? text : detail
            switch status {
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw .noSuchInterface(
                    interface: interface, available: (try? Self.interfaces().map(\.name)) ?? [])
            case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
                throw .permissionDenied(interface: interface, reason: reason)
            default:
                throw .cannotCapture(interface: interface, reason: reason)
            }
        }
        let warning = unsafe status > 0 ? String(cString: pcap_statustostr(status)) : nil
        let descriptor = unsafe pcap_get_selectable_fd(handle)
        let nonblocking = unsafe errorBuffer.withUnsafeMutableBufferPointer { buffer in
            unsafe pcap_setnonblock(handle, 1, buffer.baseAddress)
        }
        guard descriptor >= 0, nonblocking == 0 else {
            let reason = unsafe String(cString: pcap_geterr(handle))
            unsafe pcap_close(handle)
            throw .cannotCapture(interface: interface, reason: "cannot read without blocking: \(reason)")
        }
        if let filter {
            // Compiled on the live handle, once: libpcap generates VLAN tests for the kernel's own VLAN tag
            // handling there, which a program compiled for a capture file would not have.
            if let tooLong = FilterPrograms.lengthError(filter) {
                unsafe pcap_close(handle)
                throw .badFilter(path: interface, expression: filter, reason: tooLong)
            }
            var program = unsafe bpf_program()
            guard unsafe pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                let reason = unsafe String(cString: pcap_geterr(handle))
                unsafe pcap_close(handle)
                throw .badFilter(path: interface, expression: filter, reason: reason)
            }
            defer { unsafe pcap_freecode(&program) }
            if let tooMany = FilterPrograms.instructionsError(Int(unsafe program.bf_len)) {
                unsafe pcap_close(handle)
                throw .badFilter(path: interface, expression: filter, reason: tooMany)
            }
            guard unsafe pcap_setfilter(handle, &program) == 0 else {
                let reason = unsafe String(cString: pcap_geterr(handle))
                unsafe pcap_close(handle)
                throw .badFilter(path: interface, expression: filter, reason: reason)
            }
        }
        self.interface = interface
        unsafe self.handle = handle
        self.descriptor = descriptor
        self.timeoutMillis = Int32(timeoutMillis)
        self.nanosecondTimestamps = nanoseconds
        self.linkType = LinkType(dataLinkType: unsafe pcap_datalink(handle))
        self.snapLength = Int(unsafe pcap_snapshot(handle))
        self.warning = warning
    }

    deinit {
        if let dumper = unsafe dumper {
            unsafe pcap_dump_close(dumper)
        }
        unsafe pcap_close(handle)
    }

    /// Starts writing every packet delivered from now on to a pcap file (`pcap_dump_fopen`), in the
    /// capture's link type and timestamp precision; `-` is standard output.
    ///
    /// The file grows in place, as `tcpdump -w` writes it, but is opened as every output is (`OutputPath`):
    /// an existing FIFO, device or trusted symlink is written in place, anything else is replaced by a new
    /// file made aside, so no symlink another user planted is followed.
    ///
    /// - Throws: `ReportError` naming the file when it cannot be created or is refused.
    public mutating func startSaving(to path: String) throws(ReportError) {
        let descriptor: Int32
        if path == "-" {
            descriptor = dup(STDOUT_FILENO)
        } else if let existing = try OutputPath.openInPlace(path) {
            descriptor = existing
        } else {
            descriptor = try OutputPath.create(replacing: path)
        }
        guard let stream = unsafe fdopen(descriptor, "w") else {
            let reason = OutputPath.errorText()
            if descriptor >= 0 { close(descriptor) }
            throw .cannotWrite(path: path, reason: reason)
        }
        guard let opened = unsafe pcap_dump_fopen(handle, stream) else {
            let reason = unsafe String(cString: pcap_geterr(handle))
            unsafe fclose(stream)
            throw .cannotWrite(path: path, reason: reason)
        }
        unsafe dumper = opened
        savePath = path
    }

    /// Pushes saved packets out to the file (`pcap_dump_flush`), so that it can be read while the capture
    /// goes on.
    ///
    /// When the flush fails, saving stops for the rest of the run (as when a write of a packet fails): a
    /// regular file is cut back to its last whole record (`ftruncate`), so it never ends in a record cut in
    /// half, and `savingStopped` says why.
    public mutating func flushSaved() {
        guard let dumper = unsafe dumper else { return }
        errno = 0
        if unsafe pcap_dump_flush(dumper) != 0 { stopSaving(errno) }
    }

    /// Stops saving after a write failed with `error`: closes the file, cuts a regular file back to its last
    /// whole record, and says why in `savingStopped`.
    private mutating func stopSaving(_ error: Int32) {
        guard let dumper = unsafe dumper else { return }
        // pcap_dump_close flushes again, which fails again: what it could still write is cut off below.
        let saved = dup(unsafe fileno(pcap_dump_file(dumper)))
        unsafe pcap_dump_close(dumper)
        unsafe self.dumper = nil
        if saved >= 0 {
            // Standard output may be a file opened for appending, which does not start with this capture.
            if savePath != "-" { Self.cutToWholeRecords(saved) }
            close(saved)
        }
        let error = error == 0 ? EIO : error
        savingStopped =
            error == EPIPE
            ? .closedByReader(path: savePath)
            : .cannotWrite(path: savePath, reason: unsafe String(cString: strerror(error)))
    }

    /// Cuts the pcap file libpcap wrote at `descriptor` (in this host's byte order) after its last whole
    /// record, when it is a regular file.
    private static func cutToWholeRecords(_ descriptor: Int32) {
        var status = stat()
        guard unsafe fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return }
        let size = Int64(status.st_size)
        // The file header (24 bytes), then records: seconds, fraction, captured length, wire length (4 bytes
        // each), and the captured bytes.
        var end: Int64 = size >= 24 ? 24 : 0
        var header: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        while end + 16 <= size, unsafe pread(descriptor, &header, 16, off_t(end)) == 16,
            end + 16 + Int64(header.2) <= size
        {
            end += 16 + Int64(header.2)
        }
        _ = ftruncate(descriptor, off_t(end))
    }

    /// Reads the next packet (`pcap_next_ex`) and saves it if saving; when none is buffered, waits for one
    /// (`poll`) for at most the read timeout.
    ///
    /// - Returns: The packet, `.timeout` when none was buffered (after waiting), or nil when the capture was
    ///   broken off.
    /// - Throws: `CaptureError.readFailed` when the interface fails (for example, it went away).
    public mutating func next() throws(CaptureError) -> Read? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = unsafe pcap_next_ex(handle, &header, &data)
        switch status {
        case 1:
            break
        case 0:
            // Nothing buffered: wait for the descriptor, a signal or the timeout, then let the caller look
            // at its clocks and its stop request before reading again.
            var waiting = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = unsafe poll(&waiting, 1, timeoutMillis)
            return .timeout
        case PCAP_ERROR_BREAK:
            return nil
        default:
            throw .readFailed(
                path: interface, record: packetsDelivered + 1, reason: unsafe String(cString: pcap_geterr(handle)))
        }
        guard let header = unsafe header, let data = unsafe data else { return .timeout }
        packetsDelivered += 1
        unsafe currentHeader = header
        unsafe currentData = data
        if let dumper = unsafe dumper {
            unsafe pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), header, data)
            // pcap_dump says nothing of a failed write: the stream's error flag does, and errno still holds why.
            if unsafe ferror_unlocked(pcap_dump_file(dumper)) != 0 { stopSaving(errno) }
        }
        let timestamp = unsafe header.pointee.ts
        let fraction = Int64(timestamp.tv_usec)
        return .packet(
            PacketInfo(
                timestampNanos: Int64(timestamp.tv_sec) * 1_000_000_000
                    + (nanosecondTimestamps ? fraction : fraction * 1000),
                capturedLength: unsafe Int(header.pointee.caplen),
                wireLength: unsafe Int(header.pointee.len)))
    }

    /// Calls `body` with the bytes of the packet `next()` returned last.
    ///
    /// The bytes are borrowed from libpcap's ring buffer and are valid only during the call.
    public func withCurrentBytes<Result>(_ body: (RawSpan) -> Result) -> Result {
        guard let data = unsafe currentData, let header = unsafe currentHeader else { return body(RawSpan()) }
        // SAFETY: libpcap keeps `caplen` bytes at `data` valid until the next pcap_next_ex on this handle,
        // which cannot happen during this call.
        let span = unsafe RawSpan(_unsafeStart: UnsafeRawPointer(data), byteCount: Int(header.pointee.caplen))
        return body(span)
    }

    /// libpcap's counters so far (`pcap_stats`), or nil when it cannot give them.
    public func statistics() -> Statistics? {
        var stats = pcap_stat()
        guard unsafe pcap_stats(handle, &stats) == 0 else { return nil }
        return Statistics(
            received: Int(stats.ps_recv), droppedByKernel: Int(stats.ps_drop), droppedByInterface: Int(stats.ps_ifdrop))
    }

    /// One interface libpcap can capture on.
    public struct Interface: Sendable {
        public var name: String
        /// The system's description, often empty on Linux.
        public var description: String
        public var isUp: Bool
        public var isRunning: Bool
        public var isLoopback: Bool
        /// IPv4 and IPv6 addresses, in text form.
        public var addresses: [String]
    }

    /// The interfaces libpcap can capture on (`pcap_findalldevs`), in its order.
    ///
    /// - Throws: `CaptureError.cannotCapture` when libpcap cannot list them.
    public static func interfaces() throws(CaptureError) -> [Interface] {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        var list: UnsafeMutablePointer<pcap_if_t>?
        let status = unsafe errorBuffer.withUnsafeMutableBufferPointer { buffer in
            unsafe pcap_findalldevs(&list, buffer.baseAddress)
        }
        guard status == 0 else { throw .cannotCapture(interface: "", reason: message(errorBuffer)) }
        defer { unsafe pcap_freealldevs(list) }
        var interfaces: [Interface] = []
        var next = unsafe list
        while let device = unsafe next {
            let flags = unsafe device.pointee.flags
            var addresses: [String] = []
            var address = unsafe device.pointee.addresses
            while let entry = unsafe address {
                if let text = unsafe entry.pointee.addr.flatMap(addressText) { addresses.append(text) }
                unsafe address = unsafe entry.pointee.next
            }
            interfaces.append(
                Interface(
                    name: unsafe String(cString: device.pointee.name),
                    description: unsafe device.pointee.description.map { unsafe String(cString: $0) } ?? "",
                    isUp: flags & UInt32(PCAP_IF_UP) != 0, isRunning: flags & UInt32(PCAP_IF_RUNNING) != 0,
                    isLoopback: flags & UInt32(PCAP_IF_LOOPBACK) != 0, addresses: addresses))
            unsafe next = unsafe device.pointee.next
        }
        return interfaces
    }

    /// An IPv4 or IPv6 socket address as text (`inet_ntop`), or nil for other families.
    private static func addressText(_ address: UnsafeMutablePointer<sockaddr>) -> String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(unsafe address.pointee.sa_family)
        let converted: UnsafePointer<CChar>?
        switch family {
        case AF_INET:
            unsafe converted = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                unsafe withUnsafePointer(to: &inet.pointee.sin_addr) { source in
                    unsafe inet_ntop(AF_INET, source, &text, socklen_t(text.count))
                }
            }
        case AF_INET6:
            unsafe converted = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet6 in
                unsafe withUnsafePointer(to: &inet6.pointee.sin6_addr) { source in
                    unsafe inet_ntop(AF_INET6, source, &text, socklen_t(text.count))
                }
            }
        default:
            return nil
        }
        guard unsafe converted != nil else { return nil }
        return message(text)
    }

    private static func message(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
