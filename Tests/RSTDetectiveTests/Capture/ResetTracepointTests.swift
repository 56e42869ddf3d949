import Foundation
import Glibc
import Testing

@testable import RSTDetective

/// The reader of `tcp:tcp_send_reset`: its format-file and line parsers, its matching rules, and (as root,
/// on Linux 6.10 or later) a real RST made on loopback.
@Suite struct ResetTracepointTests {
    typealias Event = ResetTracepoint.Event

    // MARK: Format files

    /// `/sys/kernel/tracing/events/tcp/tcp_send_reset/format` of Linux 6.18, as read on the build machine.
    static let format618 = """
        name: tcp_send_reset
        ID: 2280
        format:
        	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
        	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
        	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
        	field:int common_pid;	offset:4;	size:4;	signed:1;

        	field:const void * skbaddr;	offset:8;	size:8;	signed:0;
        	field:const void * skaddr;	offset:16;	size:8;	signed:0;
        	field:int state;	offset:24;	size:4;	signed:1;
        	field:enum sk_rst_reason reason;	offset:28;	size:4;	signed:0;
        	field:__u8 saddr[28];	offset:32;	size:28;	signed:0;
        	field:__u8 daddr[28];	offset:60;	size:28;	signed:0;

        print fmt: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s", REC->skbaddr, REC->skaddr, \
        REC->saddr, REC->daddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, "TCP_ESTABLISHED" }, \
        { TCP_SYN_SENT, "TCP_SYN_SENT" }, { TCP_SYN_RECV, "TCP_SYN_RECV" }, { TCP_FIN_WAIT1, "TCP_FIN_WAIT1" }, { \
        TCP_FIN_WAIT2, "TCP_FIN_WAIT2" }, { TCP_TIME_WAIT, "TCP_TIME_WAIT" }, { TCP_CLOSE, "TCP_CLOSE" }, { \
        TCP_CLOSE_WAIT, "TCP_CLOSE_WAIT" }, { TCP_LAST_ACK, "TCP_LAST_ACK" }, { TCP_LISTEN, "TCP_LISTEN" }, { \
        TCP_CLOSING, "TCP_CLOSING" }, { TCP_NEW_SYN_RECV, "TCP_NEW_SYN_RECV" }) : "UNKNOWN", \
        __print_symbolic(REC->reason, { 0, "NOT_SPECIFIED" }, { 1, "NO_SOCKET" }, { 2, "TCP_INVALID_ACK_SEQUENCE" \
        }, { 3, "TCP_RFC7323_PAWS" }, { 4, "TCP_TOO_OLD_ACK" }, { 5, "TCP_ACK_UNSENT_DATA" }, { 6, "TCP_FLAGS" }, \
        { 7, "TCP_OLD_ACK" }, { 8, "TCP_ABORT_ON_DATA" }, { 9, "TCP_TIMEWAIT_SOCKET" }, { 10, "INVALID_SYN" }, { \
        11, "TCP_ABORT_ON_CLOSE" }, { 12, "TCP_ABORT_ON_LINGER" }, { 13, "TCP_ABORT_ON_MEMORY" }, { 14, \
        "TCP_STATE" }, { 15, "TCP_KEEPALIVE_TIMEOUT" }, { 16, "TCP_DISCONNECT_WITH_DATA" }, { 17, \
        "MPTCP_RST_EUNSPEC" }, { 18, "MPTCP_RST_EMPTCP" }, { 19, "MPTCP_RST_ERESOURCE" }, { 20, \
        "MPTCP_RST_EPROHIBIT" }, { 21, "MPTCP_RST_EWQ2BIG" }, { 22, "MPTCP_RST_EBADPERF" }, { 23, \
        "MPTCP_RST_EMIDDLEBOX" }, { 24, "ERROR" }, { 25, "MAX" })
        """

    /// The same event before Linux 6.10 (6.6-6.9): `src`/`dest` already, but no `reason` field.
    static let format69 = """
        name: tcp_send_reset
        ID: 1445
        format:
        	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
        	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
        	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
        	field:int common_pid;	offset:4;	size:4;	signed:1;

        	field:const void * skbaddr;	offset:8;	size:8;	signed:0;
        	field:const void * skaddr;	offset:16;	size:8;	signed:0;
        	field:int state;	offset:24;	size:4;	signed:1;
        	field:__u8 saddr[28];	offset:28;	size:28;	signed:0;
        	field:__u8 daddr[28];	offset:56;	size:28;	signed:0;

        print fmt: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s", REC->skbaddr, REC->skaddr, REC->saddr, \
        REC->daddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, "TCP_ESTABLISHED" }, { \
        TCP_SYN_SENT, "TCP_SYN_SENT" }, { TCP_SYN_RECV, "TCP_SYN_RECV" }, { TCP_FIN_WAIT1, "TCP_FIN_WAIT1" }, { \
        TCP_FIN_WAIT2, "TCP_FIN_WAIT2" }, { TCP_TIME_WAIT, "TCP_TIME_WAIT" }, { TCP_CLOSE, "TCP_CLOSE" }, { \
        TCP_CLOSE_WAIT, "TCP_CLOSE_WAIT" }, { TCP_LAST_ACK, "TCP_LAST_ACK" }, { TCP_LISTEN, "TCP_LISTEN" }, { \
        TCP_CLOSING, "TCP_CLOSING" }, { TCP_NEW_SYN_RECV, "TCP_NEW_SYN_RECV" }) : "UNKNOWN"
        """

    /// The event before Linux 6.6 (the `tcp_event_sk_skb` class, from include/trace/events/tcp.h).
    static let format55 = """
        name: tcp_send_reset
        ID: 1312
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
        \tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
        \tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
        \tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;
        \tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;
        \tfield:__u16 family;\toffset:32;\tsize:2;\tsigned:0;
        \tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;
        \tfield:__u8 daddr[4];\toffset:38;\tsize:4;\tsigned:0;
        \tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;
        \tfield:__u8 daddr_v6[16];\toffset:58;\tsize:16;\tsigned:0;

        print fmt: "skbaddr=%p skaddr=%p family=%s sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c \
        daddrv6=%pI6c state=%s", REC->skbaddr, REC->skaddr, __print_symbolic(REC->family, { 2, "AF_INET" }, \
        { 10, "AF_INET6" }), REC->sport, REC->dport, REC->saddr, REC->daddr, REC->saddr_v6, REC->daddr_v6, \
        __print_symbolic(REC->state, { 1, "TCP_ESTABLISHED" }, { 10, "TCP_LISTEN" })
        """

    /// A format whose reason numbers are shifted against 6.18 (one name fewer before `MPTCP_RST_EUNSPEC`), and
    /// whose state table has numbers too, printed before the reason table.
    static let formatShifted = """
        name: tcp_send_reset
        format:
        \tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
        \tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;

        print fmt: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s", REC->skbaddr, REC->skaddr, \
        REC->saddr, REC->daddr, REC->state ? __print_symbolic(REC->state, { 1, "TCP_ESTABLISHED" }, \
        { 7, "TCP_CLOSE" }, { 10, "TCP_LISTEN" }) : "UNKNOWN", __print_symbolic(REC->reason, \
        { 0, "NOT_SPECIFIED" }, { 1, "NO_SOCKET" }, { 0x2, "TCP_INVALID_ACK_SEQUENCE" }, { 6, "TCP_FLAGS" }, \
        { 10, "INVALID_SYN" }, { 15, "TCP_KEEPALIVE_TIMEOUT" }, { 16, "MPTCP_RST_EUNSPEC" }, { 24, "MAX" })
        """

    static let path = "/sys/kernel/tracing/events/tcp/tcp_send_reset/format"

    static func table(_ format: String) throws -> ResetTracepoint.ReasonTable {
        try ResetTracepoint.ReasonTable(format: format, path: path)
    }

    @Test func theReasonTableOfLinux618IsReadFromItsFormat() throws {
        let names = try Self.table(Self.format618).names
        #expect(names.count == 26)
        #expect(names[0] == "NOT_SPECIFIED")
        #expect(names[1] == "NO_SOCKET")
        #expect(names[6] == "TCP_FLAGS")
        #expect(names[10] == "INVALID_SYN")
        #expect(names[15] == "TCP_KEEPALIVE_TIMEOUT")
        #expect(names[16] == "TCP_DISCONNECT_WITH_DATA")
        #expect(names[17] == "MPTCP_RST_EUNSPEC")
        #expect(names[25] == "MAX")
        // The state table's names are not reasons.
        #expect(!names.values.contains("TCP_LISTEN"))
    }

    @Test(arguments: ["6.9", "5.5"])
    func aFormatWithoutReasonIsUnavailable(release: String) {
        #expect(throws: ResetTracepoint.Unavailable.noReasonField(path: Self.path)) {
            try Self.table(release == "6.9" ? Self.format69 : Self.format55)
        }
        #expect(
            ResetTracepoint.Unavailable.noReasonField(path: Self.path).description
                == "kernel_reason unavailable: tcp:tcp_send_reset has no reason field in '\(Self.path)'"
                + " (it needs Linux 6.10 or later)")
    }

    /// The numbers come from the file: the same name has another number under another kernel, and the state
    /// table (also numbered here, and printed first) is not taken for the reason table.
    @Test func shiftedNumbersFollowTheFormat() throws {
        let shifted = try Self.table(Self.formatShifted)
        #expect(
            shifted.names == [
                0: "NOT_SPECIFIED", 1: "NO_SOCKET", 2: "TCP_INVALID_ACK_SEQUENCE", 6: "TCP_FLAGS", 10: "INVALID_SYN",
                15: "TCP_KEEPALIVE_TIMEOUT", 16: "MPTCP_RST_EUNSPEC", 24: "MAX",
            ])
        let current = try Self.table(Self.format618)
        let line = Self.line(reason: "0x10")
        #expect(Self.parse(line, shifted).map { shifted.name(of: $0.reason) } == "MPTCP_RST_EUNSPEC")
        #expect(Self.parse(line, current).map { current.name(of: $0.reason) } == "TCP_DISCONNECT_WITH_DATA")
        #expect(Self.parse(Self.line(reason: "MPTCP_RST_EUNSPEC"), shifted)?.reason == 16)
        #expect(Self.parse(Self.line(reason: "MPTCP_RST_EUNSPEC"), current)?.reason == 17)
    }

    @Test func aFormatThisReaderDoesNotKnowIsNamed() {
        let noTable = Self.formatShifted.replacingOccurrences(of: "__print_symbolic(REC->reason", with: "(REC->reason")
        #expect(
            throws: ResetTracepoint.Unavailable.unexpectedFormat(
                path: Self.path, detail: "no __print_symbolic table for REC->reason")
        ) { try Self.table(noTable) }
        let noReasonText = Self.formatShifted.replacingOccurrences(of: " reason=%s", with: "")
        #expect(
            throws: ResetTracepoint.Unavailable.unexpectedFormat(
                path: Self.path, detail: "the print format has no 'reason=%s'")
        ) { try Self.table(noReasonText) }
        #expect(throws: ResetTracepoint.Unavailable.self) { try Self.table("") }
        #expect(throws: ResetTracepoint.Unavailable.self) { try Self.table("\tfield:int reason;\nprint fmt: \"") }
    }

    @Test func everyUnavailableCaseIsOneLineNamingTheCause() {
        let cases: [ResetTracepoint.Unavailable] = [
            .notLinux, .permissionDenied(path: "/sys/kernel/tracing"),
            .tracefsNotMounted(searched: ResetTracepoint.tracefsCandidates), .eventMissing(path: Self.path),
            .noReasonField(path: Self.path), .cannotRead(path: Self.path, errno: EIO),
            .unexpectedFormat(path: Self.path, detail: "x"),
            .cannotCreateInstance(path: "/sys/kernel/tracing/instances/rst-detective-1", errno: ENOSPC),
            .cannotConfigure(path: "/sys/kernel/tracing/instances/x/trace_clock", value: "mono", errno: EINVAL),
            .cannotOpenPipe(path: "/sys/kernel/tracing/instances/x/trace_pipe", errno: EBUSY),
        ]
        for unavailable in cases {
            #expect(unavailable.description.hasPrefix("kernel_reason unavailable: "))
            #expect(!unavailable.description.contains("\n"))
        }
        #expect(
            ResetTracepoint.Unavailable.tracefsNotMounted(searched: ResetTracepoint.tracefsCandidates).description
                == "kernel_reason unavailable: tracefs is not mounted at /sys/kernel/tracing or"
                + " /sys/kernel/debug/tracing (mount -t tracefs nodev /sys/kernel/tracing)")
        #expect(
            ResetTracepoint.Unavailable.cannotConfigure(path: "/t/trace_clock", value: "mono", errno: EINVAL)
                .description == "kernel_reason unavailable: cannot write 'mono' to '/t/trace_clock': Invalid argument")
    }

    // MARK: Lines

    /// Lines as this machine's Linux 6.18 printed them (trace_clock mono).
    static let noSocketV4 =
        "         python3-10551   [000] ..s1. 16994.438446: tcp_send_reset: skbaddr=00000000b75368c4"
        + " skaddr=0000000000000000 src=127.0.0.1:1 dest=127.0.0.1:47590 state=UNKNOWN reason=NO_SOCKET"
    static let noSocketV6 =
        "         python3-10551   [000] ..s1. 16994.438651: tcp_send_reset: skbaddr=00000000b75368c4"
        + " skaddr=0000000000000000 src=[::1]:1 dest=[::1]:41516 state=UNKNOWN reason=NO_SOCKET"
    static let fullSocketMapped =
        "         python3-10551   [000] ..... 16994.438776: tcp_send_reset: skbaddr=0000000000000000"
        + " skaddr=00000000b81f38a3 src=[::ffff:127.0.0.1]:18080 dest=[::ffff:127.0.0.1]:60418 state=TCP_CLOSE"
        + " reason=TCP_STATE"
    static let fullSocketV6 =
        "         python3-10551   [000] ..... 16994.539234: tcp_send_reset: skbaddr=0000000000000000"
        + " skaddr=00000000b81f38a3 src=[::1]:33076 dest=[::1]:18080 state=TCP_CLOSE reason=TCP_STATE"
    static let listenerV6 =
        "         python3-10854   [001] ..s1. 17034.921799: tcp_send_reset: skbaddr=00000000b5a66934"
        + " skaddr=000000005859ceef src=[::]:18081 dest=[::]:0 state=TCP_LISTEN reason=TCP_FLAGS"
    static let listenerV4 =
        "         python3-10854   [001] ..s1. 17034.921853: tcp_send_reset: skbaddr=00000000a8f52b73"
        + " skaddr=00000000cd61828b src=0.0.0.0:18082 dest=0.0.0.0:0 state=TCP_LISTEN reason=TCP_FLAGS"

    /// A NO_SOCKET-shaped line with the given reason text.
    static func line(reason: String) -> String {
        "  <idle>-0  [001] ..s2. 12345.678901: tcp_send_reset: skbaddr=0000000000000000 skaddr=0000000000000000"
            + " src=10.77.0.2:8086 dest=10.77.0.1:49754 state=UNKNOWN reason=\(reason)"
    }

    static func parse(_ line: String, _ table: ResetTracepoint.ReasonTable, offset: Int64 = 0) -> Event? {
        let bytes = Array(line.utf8)
        return ResetTracepoint.parse(bytes.span, reasons: table, clockOffsetNanos: offset)
    }

    static func parse618(_ line: String, offset: Int64 = 0) throws -> Event? {
        parse(line, try table(format618), offset: offset)
    }

    static func v4(_ text: String) -> IPAddress { IPAddress(text) ?? IPAddress(high: 0xdead, low: 0xbeef) }

    @Test func aNoSocketLineCarriesTheServerAsSource() throws {
        let event = try #require(try Self.parse618(Self.noSocketV4, offset: 1_000))
        #expect(
            event
                == Event(
                    timeNanos: 16_994_438_446_000 + 1_000, source: Self.v4("127.0.0.1"), sourcePort: 1,
                    destination: Self.v4("127.0.0.1"), destinationPort: 47590, isListener: false, reason: 1))
        #expect(event.hasFourTuple)
        let v6 = try #require(try Self.parse618(Self.noSocketV6))
        #expect(v6.source == IPAddress("::1") && v6.sourcePort == 1)
        #expect(v6.destination == IPAddress("::1") && v6.destinationPort == 41516)
        #expect(v6.timeNanos == 16_994_438_651_000)
    }

    @Test func aFullSocketLineCarriesItsFourTuple() throws {
        let mapped = try #require(try Self.parse618(Self.fullSocketMapped))
        // A dual-stack socket's IPv4 peer is the same `IPAddress` as the IPv4 address on the wire.
        #expect(mapped.source == Self.v4("127.0.0.1") && mapped.sourcePort == 18080)
        #expect(mapped.destination == Self.v4("127.0.0.1") && mapped.destinationPort == 60418)
        #expect(mapped.reason == 14 && !mapped.isListener)
        let v6 = try #require(try Self.parse618(Self.fullSocketV6))
        #expect(v6.sourcePort == 33076 && v6.destinationPort == 18080 && v6.reason == 14)
    }

    @Test func aListenerLineCarriesOnlyItsOwnAddress() throws {
        let v6 = try #require(try Self.parse618(Self.listenerV6))
        #expect(v6.isListener && !v6.hasFourTuple && v6.reason == 6)
        #expect(v6.source == IPAddress(high: 0, low: 0) && v6.sourcePort == 18081)
        let v4 = try #require(try Self.parse618(Self.listenerV4))
        #expect(v4.isListener && !v4.hasFourTuple && v4.source == IPAddress(ipv4: 0) && v4.sourcePort == 18082)
        #expect(ResetTracepoint.EventBuffer.isWildcard(v4.source) && ResetTracepoint.EventBuffer.isWildcard(v6.source))
    }

    @Test(arguments: [
        ("[1:2:3:4:5:6:7:8]:80", "1:2:3:4:5:6:7:8"), ("[2001:db8::1]:443", "2001:db8::1"),
        ("[fe80::5efe:10.1.2.3]:22", "fe80::5efe:a01:203"), ("[1::]:1", "1::"),
        ("[::2:3:4:5:6:7:8]:9", "0:2:3:4:5:6:7:8"),
        ("[1:2:3:4:5:6::8]:9", "1:2:3:4:5:6:0:8"), ("[::ffff:10.77.0.2]:8086", "10.77.0.2"),
        ("255.255.255.255:65535", "255.255.255.255"),
    ])
    func addressesInKernelForms(text: String, expected: String) throws {
        let line = "x-1 [000] ..... 1.000001: tcp_send_reset: src=\(text) dest=10.0.0.1:1 state=UNKNOWN reason=1"
        let event = try #require(try Self.parse618(line))
        #expect(event.source == IPAddress(expected))
    }

    @Test(arguments: [
        "[1::2::3]:1", "[1:2:3:4:5:6:7:8:9]:1", "[12345::]:1", "[1:2:3:4:5:6:7]:1", "[::ffff:1.2.3.4.5]:1",
        "[1.2.3.4::]:1", "[:1]:1", "[1:]:1", "[]:1", "[::1:1", "::1]:1", "1.2.3:1", "1.2.3.256:1", "1.2.3.4.:1",
        "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", ":1", "[::1]:123456", "(einval)", "",
        "[::%eth0]:1", "1..2.3:4",
    ])
    func malformedAddressesAreRefused(text: String) throws {
        let line = "x-1 [000] ..... 1.000001: tcp_send_reset: src=\(text) dest=10.0.0.1:1 state=UNKNOWN reason=1"
        #expect(try Self.parse618(line) == nil)
    }

    /// The kernel prints a value missing from its table as a number; it is read as hex or decimal.
    @Test func aNumericReasonIsMappedThroughTheTable() throws {
        let table = try Self.table(Self.format618)
        #expect(Self.parse(Self.line(reason: "0x1"), table)?.reason == 1)
        #expect(Self.parse(Self.line(reason: "0X1a"), table)?.reason == 26)
        #expect(Self.parse(Self.line(reason: "16"), table)?.reason == 16)
        #expect(table.name(of: 16) == "TCP_DISCONNECT_WITH_DATA")
        #expect(table.name(of: 26) == "26")
        #expect(Self.parse(Self.line(reason: "NO_SUCH_REASON"), table) == nil)
        #expect(Self.parse(Self.line(reason: "0x"), table) == nil)
        #expect(Self.parse(Self.line(reason: "0x123456789"), table) == nil)
        #expect(Self.parse(Self.line(reason: "99999999999"), table) == nil)
    }

    /// The task name may contain spaces and `:`; the timestamp is the word before the event name.
    @Test func theTimestampIsFoundWhateverTheTaskName() throws {
        let line =
            "  kworker/u8:1 my task: x-77  [003] d.s3. 7.5: tcp_send_reset: src=1.2.3.4:5 dest=6.7.8.9:10 reason=0"
        let event = try #require(try Self.parse618(line))
        #expect(event.timeNanos == 7_500_000_000)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "7.:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "7:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "7.1234567890:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "123456789012.5:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "99999999999.999999999:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "9999999999.999999:")) == nil)
        #expect(try Self.parse618(line.replacingOccurrences(of: "7.5:", with: "999999999.999999999:")) != nil)
    }

    @Test func lostEventNoticesAreCounted() {
        #expect(ResetTracepoint.lostEvents(Array("CPU:3 [LOST 12 EVENTS]".utf8).span) == 12)
        #expect(ResetTracepoint.lostEvents(Array("CPU:3 [LOST EVENTS]".utf8).span) == nil)
        #expect(ResetTracepoint.lostEvents(Array("CPU:3 [LOST 12".utf8).span) == nil)
    }

    /// Every truncation of a real line is refused, and no line of bytes makes the parser trap.
    @Test func truncatedAndGarbageLinesAreRefusedWithoutTrapping() throws {
        let table = try Self.table(Self.format618)
        for line in [Self.noSocketV4, Self.fullSocketMapped, Self.listenerV6] {
            let bytes = Array(line.utf8)
            for length in 0..<bytes.count {
                let prefix = Array(bytes[..<length])
                #expect(ResetTracepoint.parse(prefix.span, reasons: table, clockOffsetNanos: 0) == nil)
            }
            #expect(ResetTracepoint.parse(bytes.span, reasons: table, clockOffsetNanos: 0) != nil)
            // Each byte replaced by bytes that matter to the grammar, and by arbitrary ones.
            for index in bytes.indices {
                for replacement in Array(" :.=[]0x\u{0}\u{ff}fF9".utf8) {
                    var damaged = bytes
                    damaged[index] = replacement
                    _ = ResetTracepoint.parse(damaged.span, reasons: table, clockOffsetNanos: 0)
                }
            }
        }
        var generator = SplitMix64(state: 7)
        let alphabet = Array("0123456789abcdefx.:[]= tcp_send_reset: src=dest=reason=NO_SOCKET\u{0}".utf8)
        for _ in 0..<20_000 {
            let count = Int(generator.next() % 160)
            let garbage = (0..<count).map { _ in
                generator.next() % 4 == 0
                    ? UInt8(truncatingIfNeeded: generator.next())
                    : alphabet[Int(generator.next() % UInt64(alphabet.count))]
            }
            _ = ResetTracepoint.parse(garbage.span, reasons: table, clockOffsetNanos: .max)
            _ = ResetTracepoint.lostEvents(garbage.span)
        }
        #expect(try Self.parse618(Self.noSocketV4, offset: .max) == nil)
    }

    // MARK: Matching

    static let server = v4("10.77.0.2")
    static let client = v4("10.77.0.1")
    static let second: Int64 = 1_000_000_000

    static func event(
        _ time: Int64, source: IPAddress = server, sourcePort: UInt16 = 8086, destination: IPAddress = client,
        destinationPort: UInt16 = 49754, reason: Int = 1
    ) -> Event {
        Event(
            timeNanos: time, source: source, sourcePort: sourcePort, destination: destination,
            destinationPort: destinationPort, isListener: destinationPort == 0, reason: reason)
    }

    static func take(_ buffer: inout ResetTracepoint.EventBuffer, at time: Int64, clientPort: UInt16 = 49754) -> Event?
    {
        buffer.take(
            server: server, serverPort: 8086, client: client, clientPort: clientPort, timeNanos: time,
            windowNanos: ResetTracepoint.matchWindowNanos)
    }

    @Test func aFourTupleEventMatchesOnlyItsOwnRSTAndOnlyOnce() {
        var buffer = ResetTracepoint.EventBuffer(capacity: 8)
        _ = buffer.append(Self.event(100 * Self.second))
        #expect(Self.take(&buffer, at: 100 * Self.second, clientPort: 49755) == nil)
        #expect(
            buffer.take(
                server: Self.client, serverPort: 49754, client: Self.server, clientPort: 8086,
                timeNanos: 100 * Self.second, windowNanos: ResetTracepoint.matchWindowNanos) == nil)
        #expect(
            buffer.take(
                server: Self.v4("10.77.0.3"), serverPort: 8086, client: Self.client, clientPort: 49754,
                timeNanos: 100 * Self.second, windowNanos: ResetTracepoint.matchWindowNanos) == nil)
        #expect(Self.take(&buffer, at: 100 * Self.second + 20_000)?.reason == 1)
        #expect(Self.take(&buffer, at: 100 * Self.second + 20_000) == nil)
        #expect(buffer.count == 0)
    }

    @Test func aListenerEventMatchesItsPortOnAnyOrItsOwnAddress() {
        var buffer = ResetTracepoint.EventBuffer(capacity: 8)
        let anyV6 = IPAddress(high: 0, low: 0)
        _ = buffer.append(Self.event(Self.second, source: anyV6, destination: anyV6, destinationPort: 0, reason: 6))
        _ = buffer.append(
            Self.event(
                Self.second, source: IPAddress(ipv4: 0), destination: IPAddress(ipv4: 0),
                destinationPort: 0, reason: 10))
        _ = buffer.append(Self.event(Self.second, source: Self.v4("10.77.0.9"), destinationPort: 0, reason: 7))
        _ = buffer.append(Self.event(Self.second, sourcePort: 8087, destination: anyV6, destinationPort: 0))
        // Any client port: a listener event names no client.
        #expect(Self.take(&buffer, at: Self.second, clientPort: 1)?.reason == 6)
        #expect(Self.take(&buffer, at: Self.second, clientPort: 2)?.reason == 10)
        #expect(Self.take(&buffer, at: Self.second) == nil)  // 10.77.0.9 and port 8087 are other listeners
        #expect(buffer.count == 2)
        _ = buffer.append(Self.event(Self.second, source: Self.server, destinationPort: 0, reason: 11))
        #expect(Self.take(&buffer, at: Self.second)?.reason == 11)
    }

    @Test func theNearestEventWithinOneSecondWins() {
        var buffer = ResetTracepoint.EventBuffer(capacity: 8)
        let time = 50 * Self.second
        _ = buffer.append(Self.event(time - 900_000_000, reason: 2))
        _ = buffer.append(Self.event(time - 30_000, reason: 3))
        _ = buffer.append(Self.event(time + 400_000_000, reason: 4))
        _ = buffer.append(Self.event(time + Self.second + 1, reason: 5))
        _ = buffer.append(Self.event(time - Self.second - 1, reason: 6))
        #expect(Self.take(&buffer, at: time)?.reason == 3)
        #expect(Self.take(&buffer, at: time)?.reason == 4)
        #expect(Self.take(&buffer, at: time)?.reason == 2)
        #expect(Self.take(&buffer, at: time) == nil)
        #expect(Self.take(&buffer, at: time + Self.second)?.reason == 5)
        #expect(Self.take(&buffer, at: .min) == nil)
        #expect(Self.take(&buffer, at: .max) == nil)
    }

    @Test func theRingKeepsTheNewestEvents() {
        var buffer = ResetTracepoint.EventBuffer(capacity: 3)
        var evicted = 0
        for reason in 0..<5 where buffer.append(Self.event(Self.second + Int64(reason), reason: reason)) {
            evicted += 1
        }
        #expect(evicted == 2 && buffer.count == 3)
        #expect(Self.take(&buffer, at: Self.second)?.reason == 2)
    }

    /// A flood of events from one port (clients retrying a closed one) pushes out only the events of the ports
    /// that share its ring; an incident's event on another port stays to be joined. Flooding the whole buffer
    /// did push it out before the rings were split by port.
    @Test func aFloodFromOnePortKeepsTheEventsOfTheOthers() throws {
        var buffer = ResetTracepoint.EventBuffer(capacity: ResetTracepoint.defaultCapacity)
        let flooding = try #require(
            (1...65535).map(UInt16.init).first { buffer.ringStart($0) != buffer.ringStart(8086) })
        let sharing = try #require(
            (1...65535).map(UInt16.init).first { $0 != 8086 && buffer.ringStart($0) == buffer.ringStart(8086) })
        _ = buffer.append(Self.event(100 * Self.second, destinationPort: 49754))
        _ = buffer.append(Self.event(100 * Self.second, destinationPort: 49755))
        var evicted = 0
        for index in 0..<(4 * ResetTracepoint.defaultCapacity) {
            let time = 100 * Self.second + Int64(index)
            if buffer.append(Self.event(time, sourcePort: flooding, destinationPort: 1)) { evicted += 1 }
        }
        #expect(evicted == 4 * ResetTracepoint.defaultCapacity - ResetTracepoint.EventBuffer.bucketSlots)
        #expect(Self.take(&buffer, at: 100 * Self.second)?.destinationPort == 49754)
        // A port that shares the incident's ring pushes its events out, as the one ring did for every port.
        for index in 0..<ResetTracepoint.EventBuffer.bucketSlots {
            _ = buffer.append(Self.event(100 * Self.second + Int64(index), sourcePort: sharing, destinationPort: 1))
        }
        #expect(Self.take(&buffer, at: 100 * Self.second, clientPort: 49755) == nil)
    }

    /// `drain()` joins lines split across reads, counts what it cannot read, and `reason()` names the match.
    @Test func drainingAPipeReadsWholeLinesOnly() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        defer { Glibc.close(descriptors[1]) }
        _ = fcntl(descriptors[0], F_SETFL, fcntl(descriptors[0], F_GETFL) | O_NONBLOCK)
        let reader = ResetTracepoint.reading(descriptor: descriptors[0], reasons: try Self.table(Self.format618))
        defer { reader.close() }
        func send(_ text: String) {
            let bytes = Array(text.utf8)
            #expect(write(descriptors[1], bytes, bytes.count) == bytes.count)
        }
        reader.drain()  // nothing there: returns at once
        let text = Self.noSocketV4 + "\n" + Self.listenerV4 + "\nCPU:1 [LOST 3 EVENTS]\ngarbage\n\n"
        let split = text.utf8.count - 200
        send(String(decoding: Array(text.utf8)[..<split], as: UTF8.self))
        reader.drain()
        #expect(reader.counters.eventsRead == 1)
        send(String(decoding: Array(text.utf8)[split...], as: UTF8.self))
        reader.drain()
        #expect(
            reader.counters
                == {
                    var counters = ResetTracepoint.Counters()
                    counters.eventsRead = 2
                    counters.eventsLostByKernel = 3
                    counters.linesUnparsed = 1
                    return counters
                }())
        let offset = reader.clockOffsetNanos
        let time = 16_994_438_446_000 + offset + 15_000
        let loopback = Self.v4("127.0.0.1")
        #expect(
            reader.reason(server: loopback, serverPort: 1, client: loopback, clientPort: 47590, timeNanos: time)
                == "NO_SOCKET")
        #expect(
            reader.reason(server: loopback, serverPort: 1, client: loopback, clientPort: 47590, timeNanos: time)
                == nil)
        #expect(
            reader.reason(
                server: Self.v4("192.0.2.1"), serverPort: 18082, client: loopback, clientPort: 1,
                timeNanos: 17_034_921_853_000 + offset) == "TCP_FLAGS")
        #expect(reader.counters.eventsMatched == 2)
    }

    // MARK: The kernel

    static let isRoot = getuid() == 0

    /// Opens the tracepoint, or cancels the test with the reason when this kernel cannot give it.
    static func openOrCancel() throws -> ResetTracepoint {
        do {
            return try ResetTracepoint.open()
        } catch {
            switch error {
            case .notLinux, .tracefsNotMounted, .eventMissing, .noReasonField:
                try Test.cancel(Comment(rawValue: error.description))
            default:
                throw error
            }
        }
    }

    static func instances() -> [String] {
        let directory = ResetTracepoint.tracefsCandidates.map { $0 + "/instances" }
            .first { FileManager.default.fileExists(atPath: $0) }
        return directory.flatMap { try? FileManager.default.contentsOfDirectory(atPath: $0) } ?? []
    }

    static func ownInstances() -> [String] {
        instances().filter { ResetTracepoint.instanceOwner($0) == getpid() }
    }
}

/// Tests against the running kernel, one at a time, as each makes a tracefs instance.
@Suite(.serialized) struct ResetTracepointKernelTests {
    typealias Tests = ResetTracepointTests

    /// A SYN to a closed port on 127.0.0.1 is answered with RST+ACK, which the kernel reports as NO_SOCKET with
    /// the SYN's addresses reversed.
    @Test(.enabled(if: Tests.isRoot, "needs root, to use tracefs"))
    func aRealResetToAClosedPortIsNoSocket() throws {
        let reader = try Tests.openOrCancel()
        #expect(reader.reasonNames[1] == "NO_SOCKET")
        #expect(FileManager.default.fileExists(atPath: reader.instancePath))
        let clock = try ResetTracepoint.readFile(reader.instancePath + "/trace_clock")
        #expect(clock.contains("[mono]"))
        let (serverPort, clientPort) = try Loopback.refusedConnection()
        let sent = Loopback.realtimeNanos()
        var reason: String?
        for _ in 0..<50 where reason == nil {
            reader.drain()
            reason = reader.reason(
                server: IPAddress(ipv4: 0x7f00_0001), serverPort: serverPort, client: IPAddress(ipv4: 0x7f00_0001),
                clientPort: clientPort, timeNanos: sent)
            if reason == nil { usleep(20_000) }
        }
        #expect(reason == "NO_SOCKET", "counters \(reader.counters)")
        #expect(reader.counters.linesUnparsed == 0)
        let path = reader.instancePath
        reader.close()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(Tests.ownInstances().isEmpty)
    }

    /// A flood of resets, 10,000 at about 10,000 a second from one thread (as a scan of closed ports makes
    /// them, on one CPU), is read whole when drained at the capture loop's interval. The first design took
    /// one `read(2)` (at most 8 KiB, about 40 events) per drain, once a second, from a 256 KiB ring: it read
    /// 43 of these and the kernel lost 7,172; in a loaded test run a live capture's incidents lost their
    /// reasons with them.
    @Test(.enabled(if: Tests.isRoot, "needs root, to use tracefs"))
    func aFloodOfResetsIsReadWithoutLoss() throws {
        let reader = try Tests.openOrCancel()
        defer { reader.close() }
        let flood = 10_000
        // A port bound and never listening, kept bound so that no client is given it: each SYN gets a RST.
        let closed = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(closed) }
        let port = try #require(Loopback.bind(closed, port: 0))
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var refused = 0
        DispatchQueue.global().async {
            let start = DispatchTime.now().uptimeNanoseconds
            var target = Loopback.address(port: port)
            for index in 0..<flood {
                if index % 100 == 0 {
                    let due = start + UInt64(index) * 100_000
                    let now = DispatchTime.now().uptimeNanoseconds
                    if due > now { usleep(useconds_t((due - now) / 1000)) }
                }
                let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                if connected != 0, errno == ECONNREFUSED { refused += 1 }
                Glibc.close(client)
            }
            finished.signal()
        }
        let interval = DispatchTimeInterval.nanoseconds(Int(ResetTracepoint.drainIntervalNanos))
        while finished.wait(timeout: .now() + interval) == .timedOut { reader.drain() }
        reader.drain()
        #expect(refused == flood)
        #expect(reader.counters.eventsLostByKernel == 0, "\(reader.counters)")
        #expect(reader.counters.eventsRead >= flood, "\(reader.counters)")
    }

    /// An instance left by a process that is gone is removed; a second reader in one process gets its own.
    @Test(.enabled(if: Tests.isRoot, "needs root, to use tracefs"))
    func staleInstancesAreRemovedAndReadersDoNotShareOne() throws {
        let probe = try Tests.openOrCancel()
        let instances = (probe.instancePath as NSString).deletingLastPathComponent
        var deadPID: Int32 = 4_194_000
        while kill(deadPID, 0) == 0 || errno != ESRCH { deadPID -= 1 }
        let stale = instances + "/" + ResetTracepoint.instancePrefix + String(deadPID)
        #expect(mkdir(stale, 0o750) == 0)
        // As if an earlier process with this pid (a container's usual pid) had been killed.
        let ownStale = instances + "/" + ResetTracepoint.instancePrefix + String(getpid()) + "-9"
        #expect(mkdir(ownStale, 0o750) == 0)
        let second = try ResetTracepoint.open()
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(!FileManager.default.fileExists(atPath: ownStale))
        #expect(FileManager.default.fileExists(atPath: probe.instancePath))
        #expect(second.instancePath != probe.instancePath)
        #expect(Set(Tests.ownInstances()).count == 2)
        probe.close()
        second.close()
        second.close()
        _ = rmdir(stale)
        _ = rmdir(ownStale)
        #expect(Tests.ownInstances().isEmpty)
    }
}

/// Real sockets on loopback.
enum Loopback {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func realtimeNanos() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// 127.0.0.1:`port` as a `sockaddr_in`.
    static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    static func bind(_ socket: Int32, port: UInt16) -> UInt16? {
        var address = address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return named == 0 ? UInt16(bigEndian: address.sin_port) : nil
    }

    /// Connects from 127.0.0.1 to a port of 127.0.0.1 where nothing listens, and returns both ports once the
    /// kernel refused it. The client is bound first, so its port survives the refusal.
    static func refusedConnection() throws -> (serverPort: UInt16, clientPort: UInt16) {
        let placeholder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard let serverPort = bind(placeholder, port: 0) else { throw Failure(description: "bind: \(errno)") }
        Glibc.close(placeholder)  // bound, never listening: the port is now closed
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(client) }
        guard let clientPort = bind(client, port: 0) else { throw Failure(description: "bind: \(errno)") }
        var target = address(port: serverPort)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected != 0, errno == ECONNREFUSED else {
            throw Failure(description: "expected ECONNREFUSED from 127.0.0.1:\(serverPort), got \(connected)/\(errno)")
        }
        return (serverPort, clientPort)
    }
}
