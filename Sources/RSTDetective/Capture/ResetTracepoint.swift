import Glibc
import Synchronization

/// Reads the Linux tracepoint `tcp:tcp_send_reset` during a live capture, so that a RST seen on the wire can
/// be joined to the kernel's own reason for sending it (`NO_SOCKET`, `TCP_FLAGS`, `TCP_ABORT_ON_CLOSE`…).
///
/// It works in a private tracefs instance (`instances/rst-detective-<pid>`), so that it neither sees nor
/// disturbs the global trace buffer or another tool's instance. The instance's `trace_clock` is `mono`
/// (`CLOCK_MONOTONIC`), and the offset `CLOCK_REALTIME - CLOCK_MONOTONIC`, measured at `open()` and again at
/// each `drain()`, turns event times into the realtime nanoseconds of pcap timestamps.
///
/// The reason field appeared in Linux 6.10, and its numbers shift between releases (6.18 inserts
/// `TCP_DISCONNECT_WITH_DATA` = 16), so the names are read from the event's format file, never built in.
/// Events are read from the text `trace_pipe` without blocking, every 50 ms, and the last `capacity` are
/// kept in fixed rings by server port; parsing a line neither allocates nor traps, whatever its bytes.
///
/// Meant for the one thread that runs the capture; it is not `Sendable`.
package final class ResetTracepoint {
    /// Why the join with the kernel's reason is not available; each description is one line starting with
    /// `kernel_reason unavailable:`.
    package enum Unavailable: Error, Sendable, Equatable, CustomStringConvertible {
        /// Not Linux: the tracepoint is a Linux kernel feature.
        case notLinux
        /// The process may not use tracefs at `path` (it needs root, or tracefs permissions).
        case permissionDenied(path: String)
        /// Neither `/sys/kernel/tracing` nor `/sys/kernel/debug/tracing` holds a mounted tracefs.
        case tracefsNotMounted(searched: [String])
        /// The kernel has no `tcp:tcp_send_reset` event: its format file at `path` does not exist.
        case eventMissing(path: String)
        /// The event's format at `path` has no `reason` field: the kernel is older than Linux 6.10.
        case noReasonField(path: String)
        /// A file could not be read (`open(2)`/`read(2)` failed with `errno`).
        case cannotRead(path: String, errno: Int32)
        /// The event's format at `path` is not the one this reader understands; `detail` says what is wrong.
        case unexpectedFormat(path: String, detail: String)
        /// The private instance directory could not be made (`mkdir(2)` failed with `errno`).
        case cannotCreateInstance(path: String, errno: Int32)
        /// Writing `value` to the tracefs control file `path` failed with `errno`.
        case cannotConfigure(path: String, value: String, errno: Int32)
        /// The instance's `trace_pipe` could not be opened (`open(2)` failed with `errno`).
        case cannotOpenPipe(path: String, errno: Int32)

        /// One line: `kernel_reason unavailable: ` and the cause.
        package var description: String {
            let cause: String
            switch self {
            case .notLinux:
                cause = "the tcp:tcp_send_reset tracepoint exists only on Linux"
            case .permissionDenied(let path):
                cause = "permission denied on '\(path)' (tracefs needs root)"
            case .tracefsNotMounted(let searched):
                cause =
                    "tracefs is not mounted at \(searched.joined(separator: " or "))"
                    + " (mount -t tracefs nodev /sys/kernel/tracing)"
            case .eventMissing(let path):
                cause = "the kernel has no tcp:tcp_send_reset tracepoint ('\(path)' does not exist)"
            case .noReasonField(let path):
                cause = "tcp:tcp_send_reset has no reason field in '\(path)' (it needs Linux 6.10 or later)"
            case .cannotRead(let path, let errno):
                cause = "cannot read '\(path)': \(Self.message(errno))"
            case .unexpectedFormat(let path, let detail):
                cause = "unexpected format in '\(path)': \(detail)"
            case .cannotCreateInstance(let path, let errno):
                cause = "cannot create the tracefs instance '\(path)': \(Self.message(errno))"
            case .cannotConfigure(let path, let value, let errno):
                cause = "cannot write '\(value)' to '\(path)': \(Self.message(errno))"
            case .cannotOpenPipe(let path, let errno):
                cause = "cannot open '\(path)': \(Self.message(errno))"
            }
            return "kernel_reason unavailable: " + cause
        }

        /// The system's text for an `errno` value (`strerror`).
        private static func message(_ errno: Int32) -> String {
            guard let text = unsafe strerror(errno) else { return "error \(errno)" }
            return unsafe String(cString: text)
        }
    }

    /// One `tcp_send_reset` event, as parsed from a `trace_pipe` line; a trivial value, so parsing allocates
    /// nothing.
    package struct Event: Sendable, Equatable {
        /// When the kernel sent the RST: `CLOCK_REALTIME` nanoseconds once converted with the clock offset
        /// (microsecond resolution, as the text trace prints).
        package var timeNanos: Int64
        /// `src`: the RST's sender. For a segment without a full socket (state `UNKNOWN`) the kernel reverses
        /// the segment's addresses, so this is the server; for a listener it is the listener's own address.
        package var source: IPAddress
        /// The port of `source`.
        package var sourcePort: UInt16
        /// `dest`: the RST's receiver, or a wildcard address for a listener.
        package var destination: IPAddress
        /// The port of `destination`; 0 when the event names only a listener.
        package var destinationPort: UInt16
        /// Whether the socket was in `TCP_LISTEN`.
        package var isListener: Bool
        /// The `enum sk_rst_reason` value, whose name is in the format's table.
        package var reason: Int

        /// Whether the event carries a full 4-tuple rather than only a listener's address.
        package var hasFourTuple: Bool { destinationPort != 0 }

        /// An event from its fields.
        package init(
            timeNanos: Int64, source: IPAddress, sourcePort: UInt16, destination: IPAddress,
            destinationPort: UInt16, isListener: Bool, reason: Int
        ) {
            self.timeNanos = timeNanos
            self.source = source
            self.sourcePort = sourcePort
            self.destination = destination
            self.destinationPort = destinationPort
            self.isListener = isListener
            self.reason = reason
        }
    }

    /// How many events and lines the reader has seen; the figures a summary reports.
    package struct Counters: Sendable, Equatable {
        /// Events parsed from the pipe.
        package var eventsRead = 0
        /// Events that a RST was joined to.
        package var eventsMatched = 0
        /// Events pushed out of the full ring before any RST was joined to them.
        package var eventsEvicted = 0
        /// Events the kernel dropped because its buffer was full (`[LOST n EVENTS]` lines).
        package var eventsLostByKernel = 0
        /// Lines that were neither an event nor a lost-events notice (damaged, or an unknown reason name).
        package var linesUnparsed = 0

        /// All zero.
        package init() {}
    }

    /// The reason names read from the event's format file, by number.
    package let reasonNames: [Int: String]
    /// The private instance directory, e.g. `/sys/kernel/tracing/instances/rst-detective-4242`.
    package let instancePath: String
    /// What has been read and joined so far.
    package private(set) var counters = Counters()
    /// The current `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    package private(set) var clockOffsetNanos: Int64

    /// The reason names and numbers of the running kernel.
    private let table: ReasonTable
    /// The events read and not yet joined to a RST.
    private var buffer: EventBuffer
    /// The instance's `trace_pipe`, opened non-blocking; -1 once closed.
    private var descriptor: Int32
    /// Bytes read from the pipe, allocated once; the first `pendingBytes` are an unfinished line from the
    /// previous read, which the next read completes.
    private var readBytes: [UInt8]
    /// How many bytes at the start of `readBytes` are an unfinished line.
    private var pendingBytes = 0

    /// Events kept when `open()` is given no capacity (about 1 MiB), in 64 rings of 256 by server port.
    package static let defaultCapacity = 16_384
    /// How far apart an event and a packet may be to be joined (the event precedes the packet by
    /// microseconds; clock steps and capture buffering need the slack).
    package static let matchWindowNanos: Int64 = 1_000_000_000
    /// The name of every instance this reader makes starts with this.
    package static let instancePrefix = "rst-detective-"
    /// How often the capture loop drains the pipe, whether packets come or not, so that a flood of resets to
    /// closed ports (a scan) does not fill the kernel's ring between drains: the events it then overwrites
    /// are lost to the join.
    package static let drainIntervalNanos: Int64 = 50_000_000
    /// Per-CPU ring size for the instance, in KiB: about 11,000 events of 96 bytes, so that one CPU's flood
    /// of 10,000 resets a second is lost only if the reader stalls for a second (tracefs's own default is
    /// 1.4 MiB; a smaller ring only saves kernel memory).
    static let bufferSizeKiB = 1024
    /// The size of `readBytes`: `trace_pipe` gives at most its own buffer's worth of whole lines per
    /// `read(2)` (8 KiB on Linux 6.18, about 40 events), whatever the size asked, so a short read does not
    /// mean the pipe is empty.
    private static let readChunkBytes = 16_384
    /// At most this many reads per `drain()` (about 20,000 events), so a storm of resets cannot hold up the
    /// capture for long; the rest waits in the kernel's ring for the next drain.
    private static let maxReadsPerDrain = 512

    private init(
        table: ReasonTable, instancePath: String, descriptor: Int32, capacity: Int, clockOffsetNanos: Int64
    ) {
        self.table = table
        self.reasonNames = table.names
        self.instancePath = instancePath
        self.descriptor = descriptor
        self.buffer = EventBuffer(capacity: capacity)
        self.readBytes = [UInt8](repeating: 0, count: Self.readChunkBytes)
        self.clockOffsetNanos = clockOffsetNanos
    }

    deinit { close() }

    /// A reader of lines from `descriptor` (for example a pipe a test writes to) that owns no tracefs
    /// instance; `close()` only closes the descriptor.
    static func reading(descriptor: Int32, reasons: ReasonTable, capacity: Int = defaultCapacity) -> ResetTracepoint {
        ResetTracepoint(
            table: reasons, instancePath: "", descriptor: descriptor, capacity: max(1, capacity),
            clockOffsetNanos: measureClockOffset())
    }

    /// Opens a private tracefs instance and starts recording `tcp:tcp_send_reset` in it.
    ///
    /// It looks for tracefs at `/sys/kernel/tracing`, then `/sys/kernel/debug/tracing`; reads the reason
    /// table from `events/tcp/tcp_send_reset/format`; removes the `rst-detective-<pid>` instances whose
    /// process is gone (`kill(pid, 0)` gives `ESRCH`); makes `instances/rst-detective-<pid>` (`mkdir`, with a
    /// `-2`, `-3`… suffix when this process already has one); sets its `trace_clock` to `mono` and its
    /// `buffer_size_kb`; enables only `tcp/tcp_send_reset` in it; and opens its `trace_pipe` with
    /// `O_NONBLOCK`. A failure after the instance was made removes it again.
    ///
    /// - Parameter capacity: How many events to keep; the oldest are dropped first.
    /// - Throws: `Unavailable`, saying why.
    package static func open(capacity: Int = defaultCapacity) throws(Unavailable) -> ResetTracepoint {
        #if !os(Linux)
            throw .notLinux
        #else
            let root = try tracefsRoot()
            let formatPath = root + "/events/tcp/tcp_send_reset/format"
            let formatText: String
            do throws(Unavailable) {
                formatText = try readFile(formatPath)
            } catch .cannotRead(_, ENOENT) {
                throw .eventMissing(path: formatPath)
            }
            let table = try ReasonTable(format: formatText, path: formatPath)
            let instance = try openInstances.withLock { live throws(Unavailable) -> String in
                removeStaleInstances(in: root + "/instances", openInThisProcess: live)
                let path = try createInstance(in: root + "/instances")
                live.insert(path)
                return path
            }
            do throws(Unavailable) {
                try write("mono", to: instance + "/trace_clock")
                // Best effort: a smaller ring only saves kernel memory.
                try? write(String(bufferSizeKiB), to: instance + "/buffer_size_kb")
                try write("1", to: instance + "/events/tcp/tcp_send_reset/enable")
                try write("1", to: instance + "/tracing_on")
                let pipePath = instance + "/trace_pipe"
                let descriptor = unsafe Glibc.open(pipePath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                guard descriptor >= 0 else { throw .cannotOpenPipe(path: pipePath, errno: errno) }
                return ResetTracepoint(
                    table: table, instancePath: instance, descriptor: descriptor, capacity: max(1, capacity),
                    clockOffsetNanos: measureClockOffset())
            } catch {
                release(instance)
                throw error
            }
        #endif
    }

    /// Reads what the pipe holds (`read(2)` on the non-blocking `trace_pipe` until `EAGAIN`, at most
    /// `maxReadsPerDrain` times; never blocks) and keeps the events, each replacing the oldest of its port's ring
    /// once that ring is full.
    ///
    /// The clock offset is measured again first, so that a step of the realtime clock affects only events
    /// read since the last drain.
    package func drain() {
        guard descriptor >= 0 else { return }
        clockOffsetNanos = Self.measureClockOffset()
        for _ in 0..<Self.maxReadsPerDrain {
            let space = readBytes.count - pendingBytes
            let offset = pendingBytes
            let descriptor = self.descriptor
            let count = unsafe readBytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                // SAFETY: `offset + space == raw.count`, so the read stays inside the array.
                return unsafe read(descriptor, base + offset, space)
            }
            guard count > 0 else { return }  // EAGAIN: nothing more for now; 0 or an error: nothing to read.
            consumeLines(upTo: offset + count)
        }
    }

    /// The reason of the event matching a RST seen on the wire from `server`:`serverPort` to
    /// `client`:`clientPort` at `timeNanos`, or nil; the event is consumed, so it is joined to one RST only.
    ///
    /// An event with a 4-tuple must have `server`:`serverPort` as its source and `client`:`clientPort` as
    /// its destination. An event naming only a listener must have `serverPort` as its port and the wildcard
    /// address or `server` as its address. Of the candidates within `matchWindowNanos`, the nearest in time
    /// wins. When none is buffered yet, the pipe is drained once and the search repeated.
    ///
    /// - Parameter timeNanos: The packet's pcap timestamp (`CLOCK_REALTIME` nanoseconds).
    /// - Returns: The reason's name, or its decimal number when the format's table has no name for it.
    /// - Complexity: O(*n*) in the events buffered.
    package func reason(
        server: IPAddress, serverPort: UInt16, client: IPAddress, clientPort: UInt16, timeNanos: Int64
    ) -> String? {
        var event = buffer.take(
            server: server, serverPort: serverPort, client: client, clientPort: clientPort, timeNanos: timeNanos,
            windowNanos: Self.matchWindowNanos)
        if event == nil {
            drain()
            event = buffer.take(
                server: server, serverPort: serverPort, client: client, clientPort: clientPort,
                timeNanos: timeNanos, windowNanos: Self.matchWindowNanos)
        }
        guard let event else { return nil }
        counters.eventsMatched += 1
        return table.name(of: event.reason)
    }

    /// Closes the pipe, disables the event and removes the instance (`rmdir`); later calls do nothing.
    /// Also called by `deinit`.
    package func close() {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
        if !instancePath.isEmpty { Self.release(instancePath) }
    }

    /// Parses the complete lines in `readBytes[0..<end]` and moves an unfinished last line to the front.
    private func consumeLines(upTo end: Int) {
        var lineStart = 0
        do {
            // A second reference to the same storage (no copy), released before the bytes are moved below.
            let storage = readBytes
            let bytes = storage.span
            for index in pendingBytes..<end where bytes[index] == UInt8(ascii: "\n") {
                let line = bytes.extracting(lineStart..<index)
                lineStart = index + 1
                if let event = Self.parse(line, reasons: table, clockOffsetNanos: clockOffsetNanos) {
                    counters.eventsRead += 1
                    if buffer.append(event) { counters.eventsEvicted += 1 }
                } else if let lost = Self.lostEvents(line) {
                    counters.eventsLostByKernel += lost
                } else if !line.isEmpty {
                    counters.linesUnparsed += 1
                }
            }
        }
        let rest = end - lineStart
        if rest == readBytes.count {
            // One line longer than the whole buffer: no event is that long, so drop it.
            counters.linesUnparsed += 1
            pendingBytes = 0
        } else {
            for index in 0..<rest { readBytes[index] = readBytes[lineStart + index] }
            pendingBytes = rest
        }
    }
}

// MARK: - Format file

extension ResetTracepoint {
    /// The `enum sk_rst_reason` names of one kernel, read from the `__print_symbolic(REC->reason, …)` table
    /// of the event's print format, as the kernel prints them (`{ 1, "NO_SOCKET" }`).
    struct ReasonTable: Sendable {
        /// Names by number.
        let names: [Int: String]
        /// The same pairs, with names as bytes, for matching a line without making a `String`.
        private let entries: [(number: Int, name: [UInt8])]

        /// Reads the table from the text of `events/tcp/tcp_send_reset/format`.
        ///
        /// - Throws: `Unavailable.noReasonField` when the format has no `reason` field (before Linux 6.10),
        ///   `.unexpectedFormat` when its print format lacks `src=`, `dest=` or `reason=` or the reason table.
        init(format: String, path: String) throws(Unavailable) {
            let lines = format.split(separator: "\n", omittingEmptySubsequences: true)
            let hasReasonField = lines.contains { line in
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                guard trimmed.hasPrefix("field:"), let end = trimmed.firstIndex(of: ";") else { return false }
                // `field:enum sk_rst_reason reason;`: the name is the declaration's last word.
                let declaration = trimmed[trimmed.index(trimmed.startIndex, offsetBy: 6)..<end]
                let name = declaration.split(separator: " ").last?.prefix { $0 != "[" }
                return name == "reason"
            }
            guard hasReasonField else { throw .noReasonField(path: path) }
            guard let printLine = lines.first(where: { $0.hasPrefix("print fmt:") }) else {
                throw .unexpectedFormat(path: path, detail: "no 'print fmt:' line")
            }
            for key in ["src=%pISpc", "dest=%pISpc", "reason=%s"] where !printLine.contains(key) {
                throw .unexpectedFormat(path: path, detail: "the print format has no '\(key)'")
            }
            guard let tableStart = printLine.firstRange(of: "__print_symbolic(REC->reason,") else {
                throw .unexpectedFormat(path: path, detail: "no __print_symbolic table for REC->reason")
            }
            var entries: [(number: Int, name: [UInt8])] = []
            var names: [Int: String] = [:]
            var rest = printLine[tableStart.upperBound...]
            // Entries are `{ NUMBER, "NAME" }` separated by commas, up to the closing parenthesis. A number
            // left symbolic (an enum the kernel did not resolve) cannot be mapped, so that entry is skipped.
            while let open = rest.firstIndex(where: { $0 == "{" || $0 == ")" }), rest[open] == "{" {
                guard let close = rest[open...].firstIndex(of: "}") else { break }
                let body = rest[rest.index(after: open)..<close]
                rest = rest[rest.index(after: close)...]
                let parts = body.split(separator: ",", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let numberText = Self.trimmingSpaces(parts[0])
                let nameText = Self.trimmingSpaces(parts[1])
                guard nameText.count >= 2, nameText.first == "\"", nameText.last == "\"",
                    let number = Self.number(numberText), names[number] == nil
                else { continue }
                let name = String(nameText.dropFirst().dropLast())
                names[number] = name
                entries.append((number, Array(name.utf8)))
            }
            guard !entries.isEmpty else {
                throw .unexpectedFormat(path: path, detail: "the REC->reason table has no numbered entries")
            }
            self.names = names
            self.entries = entries
        }

        /// The number whose name is `line[range]`, or nil.
        func number(named line: Span<UInt8>, _ range: Range<Int>) -> Int? {
            for entry in entries where entry.name.count == range.count {
                var equal = true
                for offset in 0..<range.count where entry.name[offset] != line[range.lowerBound + offset] {
                    equal = false
                    break
                }
                if equal { return entry.number }
            }
            return nil
        }

        /// The name of `number`, or the number in decimal when the table has none.
        func name(of number: Int) -> String { names[number] ?? String(number) }

        /// `text` without leading and trailing spaces and tabs.
        private static func trimmingSpaces(_ text: Substring) -> Substring {
            let start = text.firstIndex { $0 != " " && $0 != "\t" } ?? text.endIndex
            let end = text[start...].lastIndex { $0 != " " && $0 != "\t" }.map { text.index(after: $0) } ?? start
            return text[start..<end]
        }

        /// A decimal or `0x` hexadecimal number, as the format prints the table's values.
        private static func number(_ text: Substring) -> Int? {
            if text.hasPrefix("0x") || text.hasPrefix("0X") { return Int(text.dropFirst(2), radix: 16) }
            return Int(text)
        }
    }
}

// MARK: - Lines

extension ResetTracepoint {
    /// Parses one `trace_pipe` line (without its newline), or returns nil when it is not a whole
    /// `tcp_send_reset` event; never traps and allocates nothing, whatever the bytes.
    ///
    /// A line looks like
    /// `python3-10551 [000] ..s1. 16994.438446: tcp_send_reset: skbaddr=… skaddr=… src=127.0.0.1:1`
    /// ` dest=127.0.0.1:47590 state=UNKNOWN reason=NO_SOCKET`. The task name may hold spaces, so the line is
    /// read from the `: tcp_send_reset: ` marker: the timestamp (`seconds.fraction` of the trace clock) is
    /// the word before it, and `key=value` words follow. Addresses are `%pISpc`: `a.b.c.d:port` or
    /// `[IPv6]:port`, where IPv4 on a dual-stack socket shows as `[::ffff:a.b.c.d]`. A reason the table has
    /// no name for is printed as a number (`0x1a`, or decimal).
    ///
    /// - Parameters:
    ///   - line: The line's bytes; borrowed.
    ///   - reasons: The table that maps reason names to numbers.
    ///   - clockOffsetNanos: Added to the trace clock's time to give `Event.timeNanos`.
    static func parse(_ line: Span<UInt8>, reasons: ReasonTable, clockOffsetNanos: Int64) -> Event? {
        guard let marker = find(": tcp_send_reset: ", in: line, from: 0) else { return nil }
        var timeStart = marker
        while timeStart > 0, line[timeStart - 1] != UInt8(ascii: " ") { timeStart -= 1 }
        guard let traceNanos = timestampNanos(line, timeStart..<marker) else { return nil }
        var source: (IPAddress, UInt16)?
        var destination: (IPAddress, UInt16)?
        var isListener = false
        var reason: Int?
        var index = marker + 18  // ": tcp_send_reset: ".utf8.count
        while index < line.count {
            var end = index
            while end < line.count, line[end] != UInt8(ascii: " ") { end += 1 }
            var equals = index
            while equals < end, line[equals] != UInt8(ascii: "=") { equals += 1 }
            if equals < end {
                let key = index..<equals
                let value = (equals + 1)..<end
                if matches(line, key, "src") {
                    guard let address = socketAddress(line, value) else { return nil }
                    source = address
                } else if matches(line, key, "dest") {
                    guard let address = socketAddress(line, value) else { return nil }
                    destination = address
                } else if matches(line, key, "state") {
                    isListener = matches(line, value, "TCP_LISTEN")
                } else if matches(line, key, "reason") {
                    guard let number = reasonNumber(line, value, reasons) else { return nil }
                    reason = number
                }
            }
            index = end + 1
        }
        guard let source, let destination, let reason else { return nil }
        let (sum, overflow) = traceNanos.addingReportingOverflow(clockOffsetNanos)
        guard !overflow else { return nil }
        return Event(
            timeNanos: sum, source: source.0, sourcePort: source.1, destination: destination.0,
            destinationPort: destination.1, isListener: isListener, reason: reason)
    }

    /// The count of a `CPU:3 [LOST 12 EVENTS]` line, which the pipe prints when the kernel's ring overflowed.
    static func lostEvents(_ line: Span<UInt8>) -> Int? {
        guard let start = find("[LOST ", in: line, from: 0) else { return nil }
        var end = start + 6
        while end < line.count, isDigit(line[end]) { end += 1 }
        guard end < line.count, line[end] == UInt8(ascii: " "), let count = decimal(line, (start + 6)..<end, 18)
        else { return nil }
        return Int(count)
    }

    /// The trace clock's `seconds.fraction` in nanoseconds (the text trace prints microseconds).
    private static func timestampNanos(_ line: Span<UInt8>, _ range: Range<Int>) -> Int64? {
        var dot = range.lowerBound
        while dot < range.upperBound, line[dot] != UInt8(ascii: ".") { dot += 1 }
        guard dot < range.upperBound, let seconds = decimal(line, range.lowerBound..<dot, 11),
            let fraction = decimal(line, (dot + 1)..<range.upperBound, 9)
        else { return nil }
        var scale: UInt64 = 1
        for _ in 0..<(9 - (range.upperBound - dot - 1)) { scale *= 10 }
        // Eleven digits of seconds can overflow: a damaged line must not trap.
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        return Int64(exactly: whole + fraction * scale)
    }

    /// `a.b.c.d:port` or `[IPv6]:port`.
    private static func socketAddress(_ line: Span<UInt8>, _ range: Range<Int>) -> (IPAddress, UInt16)? {
        guard !range.isEmpty else { return nil }
        var colon = range.upperBound - 1
        while colon > range.lowerBound, line[colon] != UInt8(ascii: ":") { colon -= 1 }
        guard colon > range.lowerBound, let port = decimal(line, (colon + 1)..<range.upperBound, 5),
            port <= UInt64(UInt16.max)
        else { return nil }
        let address: IPAddress?
        if line[range.lowerBound] == UInt8(ascii: "[") {
            guard line[colon - 1] == UInt8(ascii: "]"), colon - 1 > range.lowerBound else { return nil }
            address = ipv6(line, (range.lowerBound + 1)..<(colon - 1))
        } else {
            address = ipv4(line, range.lowerBound..<colon).map { IPAddress(ipv4: $0) }
        }
        guard let address else { return nil }
        return (address, UInt16(port))
    }

    /// Dotted-quad IPv4 in host order.
    private static func ipv4(_ line: Span<UInt8>, _ range: Range<Int>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var index = range.lowerBound
        while index < range.upperBound {
            var end = index
            while end < range.upperBound, line[end] != UInt8(ascii: ".") { end += 1 }
            guard octets < 4, let octet = decimal(line, index..<end, 3), octet <= 255 else { return nil }
            value = value << 8 | UInt32(octet)
            octets += 1
            guard end < range.upperBound else { break }
            index = end + 1
            guard index < range.upperBound else { return nil }  // a trailing dot
        }
        return octets == 4 ? value : nil
    }

    /// RFC 4291 §2.2 text: up to eight hex groups, at most one `::`, optionally ending in a dotted quad.
    private static func ipv6(_ line: Span<UInt8>, _ range: Range<Int>) -> IPAddress? {
        var groups = InlineArray<8, UInt16>(repeating: 0)
        var count = 0
        var gap = -1
        var index = range.lowerBound
        if range.count >= 2, line[index] == UInt8(ascii: ":"), line[index + 1] == UInt8(ascii: ":") {
            gap = 0
            index += 2
        }
        while index < range.upperBound {
            var end = index
            var hasDot = false
            while end < range.upperBound, line[end] != UInt8(ascii: ":") {
                if line[end] == UInt8(ascii: ".") { hasDot = true }
                end += 1
            }
            if hasDot {
                // An embedded IPv4 address ends the text and fills two groups.
                guard end == range.upperBound, count <= 6, let v4 = ipv4(line, index..<end) else { return nil }
                groups[count] = UInt16(truncatingIfNeeded: v4 >> 16)
                groups[count + 1] = UInt16(truncatingIfNeeded: v4)
                count += 2
                break
            }
            guard count < 8, end - index >= 1, end - index <= 4, let group = hex(line, index..<end) else {
                return nil
            }
            groups[count] = group
            count += 1
            if end == range.upperBound { break }
            index = end + 1
            if index < range.upperBound, line[index] == UInt8(ascii: ":") {
                guard gap < 0 else { return nil }
                gap = count
                index += 1
            } else if index == range.upperBound {
                return nil  // a trailing single colon
            }
        }
        if gap >= 0 {
            guard count < 8 else { return nil }
            let shift = 8 - count
            var from = count - 1
            while from >= gap {
                groups[from + shift] = groups[from]
                groups[from] = 0
                from -= 1
            }
        } else {
            guard count == 8 else { return nil }
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for position in 0..<4 { high = high << 16 | UInt64(groups[position]) }
        for position in 4..<8 { low = low << 16 | UInt64(groups[position]) }
        return IPAddress(high: high, low: low)
    }

    /// A reason name from the table, or the number the kernel prints for a value the table lacks.
    private static func reasonNumber(_ line: Span<UInt8>, _ range: Range<Int>, _ reasons: ReasonTable) -> Int? {
        guard !range.isEmpty else { return nil }
        if range.count > 2, line[range.lowerBound] == UInt8(ascii: "0"),
            line[range.lowerBound + 1] | 0x20 == UInt8(ascii: "x")
        {
            guard range.count <= 2 + 8, let value = hexWide(line, (range.lowerBound + 2)..<range.upperBound) else {
                return nil
            }
            return Int(value)
        }
        if let value = decimal(line, range, 10) { return Int(value) }
        return reasons.number(named: line, range)
    }

    /// The start of `word` in `line` at or after `start`, or nil.
    private static func find(_ word: String, in line: Span<UInt8>, from start: Int) -> Int? {
        let length = word.utf8.count
        guard line.count >= length, start <= line.count - length else { return nil }
        for candidate in start...(line.count - length) where matches(line, candidate..<(candidate + length), word) {
            return candidate
        }
        return nil
    }

    /// Whether `line[range]` is exactly `word` (ASCII; small literals iterate without allocating).
    private static func matches(_ line: Span<UInt8>, _ range: Range<Int>, _ word: String) -> Bool {
        guard range.count == word.utf8.count else { return false }
        var index = range.lowerBound
        for byte in word.utf8 {
            guard line[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// Whether `byte` is an ASCII decimal digit.
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// All-digit decimal of 1 to `maxDigits` digits (at most 18, so it cannot overflow).
    private static func decimal(_ line: Span<UInt8>, _ range: Range<Int>, _ maxDigits: Int) -> UInt64? {
        guard !range.isEmpty, range.count <= min(maxDigits, 18) else { return nil }
        var value: UInt64 = 0
        for index in range {
            guard isDigit(line[index]) else { return nil }
            value = value * 10 + UInt64(line[index] - UInt8(ascii: "0"))
        }
        return value
    }

    /// One to four hex digits.
    private static func hex(_ line: Span<UInt8>, _ range: Range<Int>) -> UInt16? {
        guard range.count <= 4, let value = hexWide(line, range) else { return nil }
        return UInt16(value)
    }

    /// One to eight hex digits.
    private static func hexWide(_ line: Span<UInt8>, _ range: Range<Int>) -> UInt32? {
        guard !range.isEmpty, range.count <= 8 else { return nil }
        var value: UInt32 = 0
        for index in range {
            let byte = line[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

// MARK: - Matching

extension ResetTracepoint {
    /// Fixed rings of the last events, allocated once, in which each event can be joined to one RST.
    ///
    /// The slots are split into rings by the event's server port (`bucketSlots` each, or one ring when the
    /// capacity is smaller), so that a flood of resets from one port, such as clients retrying a closed
    /// one, pushes out only events of the ports that share its ring, not the rare event of an incident.
    struct EventBuffer {
        /// Each slot's source port, or `empty`: scanned first, as 4 bytes a slot, before any event is read.
        private var ports: [UInt32]
        private var slots: [Event]
        /// Each ring's next slot to write, as an offset in the ring.
        private var next: [Int]
        /// Slots per ring.
        private let ringSize: Int
        private static let empty = UInt32.max
        /// Slots per ring when the capacity allows several rings.
        static let bucketSlots = 256

        /// `capacity` slots (at least 1), in rings of `bucketSlots`, allocated here once.
        init(capacity: Int) {
            let count = max(1, capacity)
            let rings = max(1, count / Self.bucketSlots)
            ringSize = rings == 1 ? count : Self.bucketSlots
            next = [Int](repeating: 0, count: rings)
            ports = [UInt32](repeating: Self.empty, count: rings * ringSize)
            slots = [Event](
                repeating: Event(
                    timeNanos: 0, source: IPAddress(high: 0, low: 0), sourcePort: 0,
                    destination: IPAddress(high: 0, low: 0), destinationPort: 0, isListener: false, reason: 0),
                count: rings * ringSize)
        }

        /// Events buffered and not yet consumed.
        ///
        /// - Complexity: O(capacity).
        var count: Int { ports.reduce(0) { $0 + ($1 == Self.empty ? 0 : 1) } }

        /// The first slot of the ring that keeps the events of server port `port` (Fibonacci hashing).
        func ringStart(_ port: UInt16) -> Int {
            let rings = next.count
            guard rings > 1 else { return 0 }
            return Int((UInt32(port) &* 0x9E37_79B9) >> 16) % rings * ringSize
        }

        /// Keeps `event`, replacing the oldest one of its port's ring; returns whether an unconsumed event was
        /// pushed out.
        mutating func append(_ event: Event) -> Bool {
            let start = ringStart(event.sourcePort)
            let ring = start / ringSize
            let slot = start + next[ring]
            let evicted = ports[slot] != Self.empty
            ports[slot] = UInt32(event.sourcePort)
            slots[slot] = event
            next[ring] = (next[ring] + 1) % ringSize
            return evicted
        }

        /// Removes and returns the event nearest in time (within `windowNanos`) to a RST from
        /// `server`:`serverPort` to `client`:`clientPort` at `timeNanos`; see `ResetTracepoint.reason`.
        ///
        /// - Complexity: O(`bucketSlots`), reading 4 bytes per slot whose port differs.
        mutating func take(
            server: IPAddress, serverPort: UInt16, client: IPAddress, clientPort: UInt16, timeNanos: Int64,
            windowNanos: Int64
        ) -> Event? {
            var best: (slot: Int, distance: Int64)?
            let port = UInt32(serverPort)
            let start = ringStart(serverPort)
            for slot in start..<(start + ringSize) where ports[slot] == port {
                let event = slots[slot]
                let matchesSocket: Bool
                if event.hasFourTuple {
                    matchesSocket =
                        event.source == server && event.destination == client && event.destinationPort == clientPort
                } else {
                    matchesSocket = event.source == server || Self.isWildcard(event.source)
                }
                guard matchesSocket else { continue }
                let (difference, overflow) = event.timeNanos.subtractingReportingOverflow(timeNanos)
                guard !overflow, difference.magnitude <= windowNanos.magnitude else { continue }
                let distance = Int64(difference.magnitude)
                if best.map({ distance < $0.distance }) ?? true { best = (slot, distance) }
            }
            guard let best else { return nil }
            ports[best.slot] = Self.empty
            return slots[best.slot]
        }

        /// `::` or `0.0.0.0` (which `IPAddress` maps to `::ffff:0.0.0.0`).
        static func isWildcard(_ address: IPAddress) -> Bool {
            address == IPAddress(high: 0, low: 0) || address == IPAddress(ipv4: 0)
        }
    }
}

// MARK: - tracefs

extension ResetTracepoint {
    /// The instances this process has open, so that one named after this pid but not in the set is known
    /// to be a dead process's.
    private static let openInstances = Mutex<Set<String>>([])

    /// The directories where tracefs is looked for, in order.
    static let tracefsCandidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    /// The first candidate holding a mounted tracefs (it has an `instances` directory).
    private static func tracefsRoot() throws(Unavailable) -> String {
        for root in tracefsCandidates {
            if unsafe access(root + "/instances", F_OK) == 0 { return root }
            if errno == EACCES || errno == EPERM { throw .permissionDenied(path: root) }
        }
        throw .tracefsNotMounted(searched: tracefsCandidates)
    }

    /// The whole of a small file (`open`, `read`).
    static func readFile(_ path: String) throws(Unavailable) -> String {
        let descriptor = unsafe Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == EACCES || errno == EPERM { throw .permissionDenied(path: path) }
            throw .cannotRead(path: path, errno: errno)
        }
        defer { _ = Glibc.close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = unsafe chunk.withUnsafeMutableBytes { raw in unsafe read(descriptor, raw.baseAddress, raw.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path: path, errno: errno)
            }
            if count == 0 { break }
            contents += chunk[0..<count]
        }
        return String(decoding: contents, as: UTF8.self)
    }

    /// Writes `value` to a tracefs control file (`open`, `write`), as `echo value > path` does.
    private static func write(_ value: String, to path: String) throws(Unavailable) {
        let descriptor = unsafe Glibc.open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotConfigure(path: path, value: value, errno: errno) }
        defer { _ = Glibc.close(descriptor) }
        let bytes = Array((value + "\n").utf8)
        let written = unsafe bytes.withUnsafeBytes { raw in unsafe Glibc.write(descriptor, raw.baseAddress, raw.count) }
        guard written == bytes.count else {
            throw .cannotConfigure(path: path, value: value, errno: written < 0 ? errno : EIO)
        }
    }

    /// Makes `instances/rst-detective-<pid>` (`mkdir`), or `-2`, `-3`… when this process already has one.
    private static func createInstance(in instances: String) throws(Unavailable) -> String {
        let base = instances + "/" + instancePrefix + String(getpid())
        var path = base
        for attempt in 2...17 {
            if unsafe mkdir(path, 0o750) == 0 { return path }
            guard errno == EEXIST else {
                if errno == EACCES || errno == EPERM { throw .permissionDenied(path: instances) }
                throw .cannotCreateInstance(path: path, errno: errno)
            }
            path = base + "-" + String(attempt)
        }
        throw .cannotCreateInstance(path: path, errno: EEXIST)
    }

    /// Removes an instance this process made and forgets it.
    private static func release(_ path: String) {
        removeInstance(path)
        openInstances.withLock { live in _ = live.remove(path) }
    }

    /// Disables the event and removes the instance (`rmdir`). The kernel refuses (`EBUSY`) while a file of
    /// the instance is open anywhere, as it is for a moment in a child that another thread forks before the
    /// child closes its copies of the descriptors; that is retried for up to a second. Other errors are
    /// ignored, as nothing can be done.
    private static func removeInstance(_ path: String) {
        try? write("0", to: path + "/events/tcp/tcp_send_reset/enable")
        for _ in 0..<100 {
            guard unsafe rmdir(path) != 0, errno == EBUSY else { return }
            usleep(10_000)
        }
    }

    /// The process id in an instance name this reader made (`rst-detective-<pid>` or `…-<pid>-<n>`), or nil.
    static func instanceOwner(_ name: String) -> Int32? {
        guard name.hasPrefix(instancePrefix) else { return nil }
        let digits = name.dropFirst(instancePrefix.count).prefix { $0 != "-" }
        return Int32(digits)
    }

    /// Removes the instances left by processes of this reader that are gone (`kill(pid, 0)` gives
    /// `ESRCH`), for example after `kill -9`, and those named after this process's pid that it did not make
    /// (a container often gives every run the same pid). A pid reused by another live process keeps its
    /// instance until that process ends too.
    private static func removeStaleInstances(in instances: String, openInThisProcess: Set<String>) {
        guard let directory = unsafe opendir(instances) else { return }
        var stale: [String] = []
        while let entry = unsafe readdir(directory) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { raw in
                unsafe String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = instanceOwner(name), pid > 0 else { continue }
            if pid == getpid() {
                if !openInThisProcess.contains(instances + "/" + name) { stale.append(name) }
            } else if kill(pid, 0) != 0, errno == ESRCH {
                stale.append(name)
            }
        }
        _ = unsafe closedir(directory)
        for name in stale { removeInstance(instances + "/" + name) }
    }

    /// `CLOCK_REALTIME - CLOCK_MONOTONIC` in nanoseconds, read between two realtime readings to halve the
    /// error.
    static func measureClockOffset() -> Int64 {
        func now(_ clock: clockid_t) -> Int64 {
            var time = timespec()
            _ = unsafe clock_gettime(clock, &time)
            return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
        }
        let before = now(CLOCK_REALTIME)
        let monotonic = now(CLOCK_MONOTONIC)
        let after = now(CLOCK_REALTIME)
        return before + (after - before) / 2 - monotonic
    }
}
