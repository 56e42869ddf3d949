import Glibc
import Histogram

/// The summary a person reads on standard error: what was read, the outcomes, the incidents by server port,
/// client port and bucket, the ACK-to-RST delays, where the RSTs came from, the cause hints, and a paragraph
/// on what the signature means with the cause that fits the data. Tables are aligned; with `colour`,
/// headings are bold, incidents red and the hints that hold yellow (ANSI escapes).
public struct TerminalSummary {
    private let result: AnalysisResult
    private let colour: Bool
    private var lines: [String] = []

    /// The summary of `result`, with ANSI colours when `colour`.
    public static func render(_ result: AnalysisResult, colour: Bool = false) -> String {
        var summary = TerminalSummary(result: result, colour: colour)
        summary.build()
        return summary.lines.joined(separator: "\n") + "\n"
    }

    /// Whether standard error should get colours: a terminal, and no `NO_COLOR` (no-color.org).
    public static var standardErrorWantsColour: Bool {
        unsafe isatty(STDERR_FILENO) == 1 && getenv("NO_COLOR") == nil
    }

    private init(result: AnalysisResult, colour: Bool) {
        self.result = result
        self.colour = colour
    }

    private mutating func build() {
        let report = result.report
        let packets = result.packets
        if result.interrupted {
            lines.append("interrupted: stopped reading after \(packets.packets) packets; the reports cover those")
        }
        if let live = result.live { liveLines(live) }
        let skipped = SkipReason.allCases.filter { packets.count(of: $0) > 0 }
            .map { "\(packets.count(of: $0)) \($0.metricName.dropFirst("skipped_".count))" }
        lines.append(
            "read \(packets.packets) packets from \(result.filesOpened) capture(s): \(packets.tcpPackets) TCP"
                + (skipped.isEmpty ? "" : "; skipped " + skipped.joined(separator: ", "))
                + (packets.filteredOut > 0 ? "; \(packets.filteredOut) filtered out" : ""))
        for unknown in Summary.unknownLinkTypes(packets) {
            // The tool was blind to these packets: say so, as for a kernel drop, not only in a counter.
            lines.append(
                paint("warning:", .yellow)
                    + " \(unknown.packets) packet(s) of link type \(unknown.name) not decoded: rst-detective reads "
                    + "Ethernet, Linux cooked capture, raw IP, BSD loopback, PPP, Cisco HDLC, NFLOG, IP over "
                    + "InfiniBand and 802.11 (bare, radiotap, PPI)")
        }
        let untracked = result.tracker.untrackedSYNs
        if untracked > 0 {
            // Each is a handshake, and maybe an incident, that no report shows: as loud as a kernel drop.
            lines.append(
                paint("warning:", .yellow)
                    + " \(untracked) SYN(s) not tracked because the flow table was full (--max-flows "
                    + "\(result.options.tracker.maximumFlows)): their handshakes, and any incidents among them, are in no "
                    + "report; a larger --max-flows or a shorter --handshake-timeout helps")
        }
        outcomes()
        incidents()
        guard report.incidents > 0 || report.connectionAttempts > 0 else { return }
        ports()
        buckets()
        hints()
        meaning()
    }

    // MARK: Sections

    private mutating func liveLines(_ live: LiveCounters) {
        let drops =
            live.statistics.map {
                "libpcap received \($0.received), dropped \($0.droppedByKernel) in the kernel and "
                    + "\($0.droppedByInterface) at the interface"
                    + ($0.dropped > 0 ? ": the incidents may be incomplete" : "")
            } ?? "libpcap gave no drop counts"
        lines.append(
            "captured on \(live.interface) for \(Summary.fixed(live.elapsedSeconds, digits: 1)) s: \(drops); "
                + "\(live.openHandshakes) handshake(s) still open at the end")
        switch live.kernelReasons {
        case .joined(let resets, let matched, let read, let lost, let evicted):
            lines.append(
                "kernel_reason: \(matched) of \(resets) server RSTs joined to the kernel's tcp:tcp_send_reset events "
                    + "(\(read) read, \(lost) lost by the kernel, \(evicted) pushed out unjoined)")
        case .unavailable(let why):
            lines.append(why)
        }
    }

    private mutating func outcomes() {
        let report = result.report
        let attempts = report.connectionAttempts
        lines.append(
            "\(attempts) connection attempts; \(report.handshakesCompleted) handshakes completed (the client's ACK seen)"
        )
        guard attempts > 0 else { return }
        var rows: [[String]] = []
        for outcome in Outcome.allCases where report.count(of: outcome) > 0 {
            let count = report.count(of: outcome)
            let note =
                outcome == .resetAfterHandshake ? "the incidents" : outcome.isNearMiss ? "near miss" : ""
            let countText = outcome == .resetAfterHandshake ? paint(String(count), .red) : String(count)
            rows.append([outcome.name, countText, Self.percent(count, attempts), note])
        }
        section("Outcomes", header: ["outcome", "attempts", "share", ""], rows: rows, rightAligned: [1, 2])
        let nearMisses = Outcome.allCases.filter { $0.isNearMiss && report.count(of: $0) > 0 }
            .map { "\(report.count(of: $0)) \($0.name)" }
        if !nearMisses.isEmpty {
            lines.append("near misses (server RSTs that are not the signature): " + nearMisses.joined(separator: ", "))
        }
    }

    private mutating func incidents() {
        let report = result.report
        var line =
            "incidents (SYN, SYN-ACK, ACK, then a server RST answering that ACK): "
            + paint(String(report.incidents), report.incidents > 0 ? .red : .plain)
        if report.handshakesCompleted > 0 {
            line +=
                " of \(report.handshakesCompleted) handshakes (\(Self.percent(report.incidents, report.handshakesCompleted)))"
        }
        if let first = report.firstIncidentNanos, let last = report.lastIncidentNanos {
            line += ", first \(Timestamp.iso8601(nanos: first)), last \(Timestamp.iso8601(nanos: last))"
        }
        lines.append("")
        lines.append(line)
        guard report.incidents > 0 else { return }
        let delays = report.resetDelays
        lines.append(
            "ACK to RST: p50 \(Summary.microseconds(delays.valueAtPercentile(50))), p90 \(Summary.microseconds(delays.valueAtPercentile(90))), "
                + "p99 \(Summary.microseconds(delays.valueAtPercentile(99))), max \(Summary.microseconds(delays.max)) "
                + "(the kernel answers at once: about one round trip from the client's side)")
        lines.append(
            "RST origin: "
                + ResetOrigin.allCases.map { "\(report.count(of: $0)) \($0.rawValue)" }.joined(separator: ", "))
    }

    private mutating func ports() {
        let report = result.report
        guard report.incidents > 0 else { return }
        let servers = report.serverPorts().filter { $0.incidents > 0 }.sorted { $0.incidents > $1.incidents }
        let verdicts = report.causeVerdicts
        section(
            "Incidents by server port", header: ["server port", "incidents", "handshakes", "rate", "cause"],
            rows: servers.prefix(10).map {
                [
                    String($0.port), String($0.incidents), String($0.handshakes),
                    Self.percent($0.incidents, $0.handshakes), verdicts[$0.port]?.cause ?? "",
                ]
            },
            rightAligned: [0, 1, 2, 3])
        for server in servers.prefix(10) {
            guard let evidence = verdicts[server.port]?.evidence, !evidence.isEmpty else { continue }
            wrap(evidence, first: "  \(server.port): ", rest: "    ")
        }
        let clients = report.clientPorts().filter { $0.incidents > 0 }.sorted {
            ($0.incidents, $1.port) > ($1.incidents, $0.port)
        }
        section(
            "Top client ports (of \(clients.count) with incidents)",
            header: ["client port", "incidents", "handshakes"],
            rows: clients.prefix(5).map { [String($0.port), String($0.incidents), String($0.handshakes)] },
            rightAligned: [0, 1, 2])
    }

    private mutating func buckets() {
        let report = result.report
        guard report.incidents > 0 else { return }
        let model = report.bucketModel
        let all = report.buckets()
        let expected = BucketUniformity.expectedIncidents(
            incidents: all.map(\.incidents), handshakes: all.map(\.handshakes))
        let top = zip(all, expected).filter { $0.0.incidents > 0 }.sorted { $0.0.incidents > $1.0.incidents }.prefix(5)
        section(
            "Top buckets (\(model.listeners) listener(s); \(model.modelName); secret \(Connection.hex(model.secret)))",
            header: ["bucket", "incidents", "handshakes", "expected"],
            rows: top.map {
                [String($0.0.bucket), String($0.0.incidents), String($0.0.handshakes), Summary.fixed($0.1, digits: 1)]
            },
            rightAligned: [0, 1, 2, 3])
        guard model.listeners > 1 else { return }
        lines.append(
            "what-if churn: \(report.incidentsMovingOnChurn) of \(report.incidents) incidents "
                + "(\(Self.percent(report.incidentsMovingOnChurn, report.incidents))) would go to another listener "
                + "if one were added or removed, against \(Self.percent(report.handshakesMovingOnChurn, report.handshakesCompleted)) "
                + "of all \(report.handshakesCompleted) completed handshakes.")
        lines.append("  " + model.churnMeaning)
        if let uniformity = report.bucketUniformity {
            lines.append(
                "incidents \(uniformity.isConcentrated ? "are" : "are not") concentrated in some buckets "
                    + "(chi-square \(Summary.fixed(uniformity.statistic, digits: 2)) against handshakes per bucket, "
                    + "\(uniformity.degreesOfFreedom) degrees of freedom, p = \(Summary.probability(uniformity.pValue))"
                    + (uniformity.smallestExpected < 5 ? "; approximate: some buckets expect fewer than 5" : "")
                    + ")")
        }
    }

    private mutating func hints() {
        let report = result.report
        let hints = CauseHint.hints(report)
        guard report.incidents > 0 || hints.contains(where: \.holds) else { return }
        lines.append("")
        lines.append(paint("Cause hints", .bold) + " (what the packets show; yes means the evidence points that way)")
        for hint in hints {
            let verdict = hint.holds ? paint("yes", .yellow) : paint("no ", .dim)
            wrap("\(hint.name): \(hint.evidence)", first: "  \(verdict)  ", rest: "       ")
        }
    }

    private mutating func meaning() {
        let report = result.report
        guard report.incidents > 0 else { return }
        lines.append("")
        lines.append(paint("What this means", .bold))
        wrap(
            "Each incident is a connection the client saw succeed and then fail with \"connection reset by "
                + "peer\", which the server's application never saw: the server kernel answered the handshake ACK "
                + "as if no listener held the connection. Linux does that when the ACK reaches a listener without "
                + "the half-open connection: on 3.9-4.3 with SO_REUSEPORT, a listener added or removed between SYN "
                + "and ACK; on any kernel, the listener that held it closed (a restart or reload with "
                + "net.ipv4.tcp_migrate_req=0), or a full accept queue with net.ipv4.tcp_abort_on_overflow=1. A "
                + "firewall's REJECT or another host on the path sends the same packet.", first: "  ", rest: "  ")
        wrap(fit(), first: "  " + paint("Fits this capture:", .bold) + " ", rest: "  ")
    }

    /// The cause the evidence points at, strongest first, or what would tell.
    private func fit() -> String {
        let report = result.report
        let hints = Dictionary(uniqueKeysWithValues: CauseHint.hints(report).map { ($0.name, $0.holds) })
        let incidents = report.incidents
        let verdicts = report.causeVerdicts.values
        func judged(_ cause: IncidentCause) -> Int { verdicts.map { $0.count(of: cause) }.reduce(0, +) }
        if report.count(of: .otherHost) * 2 > incidents {
            return "most RSTs came from another host (TTL or MAC differ from the SYN-ACK's): a load balancer, an "
                + "ECMP change or anycast sent the ACK to a machine without the connection."
        }
        if report.count(of: .firewallLike) * 2 > incidents {
            return "most RSTs look like a netfilter REJECT (the client's TOS not echoed, or no flow label): look at "
                + "the firewall rules that match established-looking ACKs."
        }
        if hints["reuseport_churn"] == true {
            return "incidents gather on the 4-tuples that move when a listener is added or removed: reuseport "
                + "churn (Linux 3.9-4.3). Stop adding and removing listeners while serving, or move to 4.6 or later."
        }
        let closed = judged(.listenerClosed)
        let overflowed = judged(.acceptQueueOverflow)
        var advice: [String] = []
        if closed > 0 {
            advice.append(
                "\(closed) incident(s) were handshakes in flight when a listener closed (a worker restart or "
                    + "reload): drain before closing, or set net.ipv4.tcp_migrate_req=1 (Linux 5.14 or later) so "
                    + "that they move to another listener.")
        }
        if overflowed > 0 {
            advice.append(
                "\(overflowed) incident(s) met a full accept queue with net.ipv4.tcp_abort_on_overflow=1: raise "
                    + "the listen backlog and net.core.somaxconn, accept faster, or set tcp_abort_on_overflow=0 so "
                    + "that the client retransmits instead.")
        }
        if !advice.isEmpty { return advice.joined(separator: " ") }
        return "no cause stands out: the RSTs come from the server's own host, but neither a close nor a full "
            + "accept queue shows around them. Compare the incident times with listener changes (restarts, "
            + "reloads, scaling) and with the server's ListenOverflows counter (nstat -az TcpExtListenOverflows)."
    }

    // MARK: Formatting

    /// The width paragraphs are wrapped to.
    private static var width: Int { 100 }

    /// `text` in lines of at most `width` columns, broken at spaces: the first after `first`, the others
    /// after `rest`.
    private mutating func wrap(_ text: String, first: String, rest: String) {
        var line = first
        var lineWidth = Self.visibleWidth(first)
        var empty = true
        for word in text.split(separator: " ") {
            if !empty, lineWidth + 1 + word.count > Self.width {
                lines.append(line)
                line = rest
                lineWidth = Self.visibleWidth(rest)
                empty = true
            }
            if !empty {
                line += " "
                lineWidth += 1
            }
            line += word
            lineWidth += word.count
            empty = false
        }
        lines.append(line)
    }

    private enum Style: String {
        case plain = ""
        case bold = "1"
        case dim = "2"
        case red = "1;31"
        case yellow = "33"
    }

    private func paint(_ text: String, _ style: Style) -> String {
        guard colour, style != .plain else { return text }
        return "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m"
    }

    /// A heading and an aligned table; columns in `rightAligned` are padded on the left.
    private mutating func section(_ title: String, header: [String], rows: [[String]], rightAligned: Set<Int>) {
        guard !rows.isEmpty else { return }
        lines.append("")
        lines.append(paint(title, .bold))
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { Self.visibleWidth($0[column]) }.max() ?? 0 }
        for (index, row) in all.enumerated() {
            let cells = row.indices.map { column -> String in
                let padding = String(repeating: " ", count: widths[column] - Self.visibleWidth(row[column]))
                return rightAligned.contains(column) ? padding + row[column] : row[column] + padding
            }
            var line = "  " + cells.joined(separator: "   ")
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(index == 0 ? paint(line, .dim) : line)
        }
    }

    /// Characters that take a column: ANSI escapes do not.
    private static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for scalar in text.unicodeScalars {
            if scalar == "\u{1B}" {
                inEscape = true
            } else if inEscape {
                if scalar == "m" { inEscape = false }
            } else {
                width += 1
            }
        }
        return width
    }

    static func percent(_ part: Int, _ whole: Int) -> String {
        guard whole > 0 else { return "0%" }
        let tenths = (part * 1000 + whole / 2) / whole
        return "\(tenths / 10).\(tenths % 10)%"
    }
}
