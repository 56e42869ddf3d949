/// Why the server kernel answered a handshake ACK with a RST, as the packets around the incident show it:
/// the `cause` column of incidents.csv.
///
/// Each cause leaves its own footprint (Tests/Captures/causes/README.md has the lab that checks them):
/// - a listener that closes at an instant T takes every handshake it owned whose SYN-ACK left before T and
///   whose ACK came after it, so the incidents' [SYN-ACK, ACK] intervals share T; it resets its accepted-
///   but-unserved children with RST+ACK at T, and while no listener is left new SYNs are refused;
/// - a full accept queue (`tcp_abort_on_overflow=1`) resets ACKs only while completed connections wait for
///   the application, and drops every SYN meanwhile, so the clients send their SYNs again;
/// - reuseport churn on Linux 3.9-4.3 resets the ACKs whose 4-tuple the listener change moved.
public enum IncidentCause: UInt8, CaseIterable, Sendable {
    case listenerClosed
    case acceptQueueOverflow
    case reusePortChurn
    /// The packets support no cause well enough to name it.
    case unknown

    /// The cause as reports print it.
    public var name: String {
        switch self {
        case .listenerClosed: "listener_closed"
        case .acceptQueueOverflow: "accept_queue_overflow"
        case .reusePortChurn: "reuseport_churn"
        case .unknown: "unknown"
        }
    }
}

/// The causes of one server port's incidents so far, and the evidence behind them in one sentence.
public struct PortCauseVerdict: Sendable {
    /// A listener close as the packets place it: the instant its handshakes share, and how many it took.
    public struct Close: Sendable, Equatable {
        /// The middle of the instants every incident's [SYN-ACK, ACK] interval holds.
        public var instantNanos: Int64
        /// Half the width of those instants: the close happened within this of `instantNanos`.
        public var uncertaintyNanos: Int64
        /// In-flight handshakes reset.
        public var incidents: Int
        /// Accepted-but-unserved children reset with RST+ACK at that instant, and SYNs refused after it.
        public var childResets: Int
        public var refusedSYNs: Int
    }

    /// Incidents per cause, indexed by `IncidentCause.rawValue`.
    public private(set) var counts = [Int](repeating: 0, count: IncidentCause.allCases.count)
    /// The closes found, in time order; only the first `closesKept` are kept.
    public private(set) var closes: [Close] = []
    /// Closes found beyond `closesKept`.
    public private(set) var closesNotKept = 0
    /// The overflow incidents' first and last ACK, and SYNs dropped around them.
    public private(set) var overflowSpan: (firstNanos: Int64, lastNanos: Int64)?
    public private(set) var droppedSYNsAtOverflows = 0
    /// Handshake ACKs dropped with the SYN-ACK sent again (`ack_dropped`): a full accept queue with
    /// `tcp_abort_on_overflow=0`.
    public private(set) var droppedACKs = 0

    static let closesKept = 3

    /// Incidents with `cause`.
    public func count(of cause: IncidentCause) -> Int { counts[Int(cause.rawValue)] }

    /// Incidents with a verdict.
    public var incidents: Int { counts.reduce(0, +) }

    /// The port's cause: the one cause of all its incidents, `mixed` when they have several, `unknown` when
    /// none could be named; empty without incidents.
    public var cause: String {
        let named = IncidentCause.allCases.filter { $0 != .unknown && count(of: $0) > 0 }
        if named.count > 1 { return "mixed" }
        if let only = named.first { return only.name }
        return incidents > 0 ? IncidentCause.unknown.name : ""
    }

    mutating func add(_ cause: IncidentCause, count: Int) {
        counts[Int(cause.rawValue)] += count
    }

    mutating func addClose(_ close: Close) {
        if closes.count < Self.closesKept { closes.append(close) } else { closesNotKept += 1 }
    }

    mutating func addOverflow(firstNanos: Int64, lastNanos: Int64, droppedSYNs: Int) {
        let span = overflowSpan ?? (firstNanos, lastNanos)
        overflowSpan = (min(span.firstNanos, firstNanos), max(span.lastNanos, lastNanos))
        droppedSYNsAtOverflows += droppedSYNs
    }

    mutating func addDroppedACK() { droppedACKs += 1 }

    /// One sentence with the figures behind `cause`.
    public var evidence: String {
        var parts: [String] = []
        let closed = count(of: .listenerClosed)
        if closed > 0 {
            var text = "listener_closed \(closed): \(closes.count + closesNotKept) close(s), "
            text += closes.map { close in
                "at \(Timestamp.iso8601(nanos: close.instantNanos)) ± "
                    + "\(Summary.fixed(Double(close.uncertaintyNanos) / 1e6, digits: 1)) ms taking "
                    + "\(close.incidents) in-flight handshake(s)"
                    + (close.childResets > 0 ? ", \(close.childResets) waiting child(ren) reset" : "")
                    + (close.refusedSYNs > 0 ? ", \(close.refusedSYNs) SYN(s) refused after it" : "")
            }.joined(separator: "; ")
            if closesNotKept > 0 { text += "; \(closesNotKept) more" }
            parts.append(text)
        }
        let overflowed = count(of: .acceptQueueOverflow)
        if overflowed > 0, let span = overflowSpan {
            parts.append(
                "accept_queue_overflow \(overflowed): ACKs reset from \(Timestamp.iso8601(nanos: span.firstNanos)) "
                    + "to \(Timestamp.iso8601(nanos: span.lastNanos)) while completed connections waited for the "
                    + "application, with \(droppedSYNsAtOverflows) SYN(s) dropped around them")
        }
        let churned = count(of: .reusePortChurn)
        if churned > 0 {
            parts.append("reuseport_churn \(churned): on 4-tuples that move when a listener is added or removed")
        }
        let unknown = count(of: .unknown)
        if unknown > 0 {
            parts.append(
                "unknown \(unknown): the packets show neither a close (refused SYNs, reset children, or handshakes "
                    + "served around them) nor a full queue (SYNs dropped while connections waited), or the RST "
                    + "came from another host or a firewall")
        }
        if droppedACKs > 0 {
            parts.append(
                "\(droppedACKs) handshake ACK(s) dropped and the SYN-ACK sent again: the accept queue overflowed "
                    + "with tcp_abort_on_overflow=0, which drops instead of resetting")
        }
        return parts.joined(separator: "; ")
    }
}
