/// The figures of a whole run that point at a cause of the incidents, gathered one settled attempt at a time
/// in memory bounded by the server ports with incidents.
public struct CauseEvidence: Sendable {
    /// Incidents on one server port each within this of the previous one are a burst.
    public static let burstGapNanos: Int64 = 5_000_000
    /// The fewest incidents that make a burst.
    public static let burstMinimum = 3

    private struct Run {
        var lastNanos: Int64
        var startNanos: Int64
        var length: Int
    }

    /// The current run of incidents per server port.
    private var runs: [UInt16: Run] = [:]
    /// Runs of at least `burstMinimum` incidents.
    public private(set) var bursts = 0
    public private(set) var incidentsInBursts = 0
    public private(set) var largestBurst: (length: Int, serverPort: UInt16, startNanos: Int64)?
    public private(set) var incidents = 0
    public private(set) var listenerCloses = 0
    /// Incidents, and handshakes completed normally, whose SYN or SYN-ACK was sent again before the ACK.
    public private(set) var incidentsAfterRetransmit = 0
    public private(set) var handshakesAfterRetransmit = 0
    public private(set) var handshakes = 0
    /// Sums of `HandshakeRecord.awaitingServerAtAck` over the incidents and over the handshakes completed
    /// normally, and its largest value at an incident.
    public private(set) var awaitingAtIncidentsSum = 0
    public private(set) var awaitingAtHandshakesSum = 0
    public private(set) var synAcks = 0
    public private(set) var cookieLikeSynAcks = 0
    public private(set) var cookieLikeIncidents = 0
    /// IPv4 incident RSTs, and those with IP ID 0.
    public private(set) var ipv4IncidentResets = 0
    public private(set) var zeroIPIDIncidentResets = 0

    public init() {}

    mutating func add(_ connection: Connection) {
        let record = connection.handshake
        if record.synAckTimeNanos != 0 {
            synAcks += 1
            if record.synAckLooksLikeCookie { cookieLikeSynAcks += 1 }
        }
        if record.outcome == .listenerClose { listenerCloses += 1 }
        guard record.handshakeCompleted else { return }
        let retransmitted = record.synRetransmits > 0 || record.synAckRetransmits > 0
        guard connection.isIncident else {
            if record.outcome == .completed {
                handshakes += 1
                awaitingAtHandshakesSum += record.awaitingServerAtAck
                if retransmitted { handshakesAfterRetransmit += 1 }
            }
            return
        }
        incidents += 1
        awaitingAtIncidentsSum += record.awaitingServerAtAck
        if retransmitted { incidentsAfterRetransmit += 1 }
        if record.synAckLooksLikeCookie { cookieLikeIncidents += 1 }
        if !record.isIPv6, let reset = record.reset {
            ipv4IncidentResets += 1
            if reset.fingerprint.ipID == 0 { zeroIPIDIncidentResets += 1 }
        }
        countRun(port: record.serverPort, at: record.settledTimeNanos)
    }

    private mutating func countRun(port: UInt16, at time: Int64) {
        var run = Run(lastNanos: time, startNanos: time, length: 1)
        if let previous = runs[port], time &- previous.lastNanos <= Self.burstGapNanos {
            run = Run(lastNanos: time, startNanos: previous.startNanos, length: previous.length + 1)
        }
        runs[port] = run
        if run.length == Self.burstMinimum {
            bursts += 1
            incidentsInBursts += Self.burstMinimum
        } else if run.length > Self.burstMinimum {
            incidentsInBursts += 1
        }
        if run.length >= Self.burstMinimum, run.length > largestBurst?.length ?? 0 {
            largestBurst = (run.length, port, run.startNanos)
        }
    }

    /// `part` over `whole` (a share, or a mean of a sum), or 0 when `whole` is 0.
    static func ratio(_ part: Int, _ whole: Int) -> Double { whole == 0 ? 0 : Double(part) / Double(whole) }
}

/// A likely cause of the incidents, with the packets' evidence for or against it.
public struct CauseHint: Sendable, Equatable {
    /// The hint's name in summary.csv (`hint_NAME`).
    public var name: String
    /// Whether the evidence points at this cause.
    public var holds: Bool
    /// One sentence giving the figures, whether or not the hint holds.
    public var evidence: String

    /// Every hint for a run, in a fixed order. Each says only what the packets show, and what it would
    /// take for the cause to show. A listener close and an accept-queue overflow are no longer hints: each
    /// incident has its `IncidentCause`, and each server port its `PortCauseVerdict`.
    public static func hints(_ report: AnalysisReport) -> [CauseHint] {
        let evidence = report.evidence
        return [
            syncookies(evidence), reusePortChurn(report), kernelEra(evidence),
        ]
    }

    /// SYN-ACKs that look like Linux syncookies: the SYN queue overflowed.
    static func syncookies(_ evidence: CauseEvidence) -> CauseHint {
        let text =
            "\(evidence.cookieLikeSynAcks) of \(evidence.synAcks) SYN-ACKs (\(evidence.cookieLikeIncidents) "
            + "of the incidents') lack the window scale and SACK-permitted options their SYN offered without "
            + "timestamps, as a syncookie does; with timestamps a syncookie does not show"
        return CauseHint(name: "syncookies", holds: evidence.cookieLikeSynAcks > 0, evidence: text)
    }

    /// Reuseport churn on Linux 3.9–4.3: incidents on the 4-tuples that move to another listener when one
    /// is added or removed, beyond their share of all handshakes (a one-sided binomial z-score above 3).
    static func reusePortChurn(_ report: AnalysisReport) -> CauseHint {
        let model = report.bucketModel
        guard model.listeners > 1, report.handshakesCompleted > 0 else {
            return CauseHint(
                name: "reuseport_churn", holds: false,
                evidence: "not assessed: give the number of listeners (--listeners) and the kernel (--kernel)")
        }
        let expected = CauseEvidence.ratio(report.handshakesMovingOnChurn, report.handshakesCompleted)
        let incidents = report.incidents
        let moving = report.incidentsMovingOnChurn
        let spread = (Double(incidents) * expected * (1 - expected)).squareRoot()
        let z = spread > 0 ? (Double(moving) - Double(incidents) * expected) / spread : 0
        var text =
            "\(moving) of \(incidents) incidents (\(percent(CauseEvidence.ratio(moving, incidents)))) are on 4-tuples that "
            + "move when a listener is added or removed, against \(percent(expected)) of all handshakes "
            + "(z = \(Summary.fixed(z, digits: 1)); \(model.listeners) listeners, \(model.modelName))"
        if let uniformity = report.bucketUniformity {
            text +=
                "; incidents \(uniformity.isConcentrated ? "are" : "are not") concentrated in some buckets "
                + "(p = \(Summary.probability(uniformity.pValue)))"
        }
        return CauseHint(name: "reuseport_churn", holds: incidents > 0 && z > 3, evidence: text)
    }

    /// Which kernel era sent the RSTs: IP ID 0 since Linux 4.20 (and from netfilter), hashed before.
    static func kernelEra(_ evidence: CauseEvidence) -> CauseHint {
        let zero = evidence.zeroIPIDIncidentResets
        let total = evidence.ipv4IncidentResets
        let text: String
        if total == 0 {
            text = "no IPv4 incident RST to read an IP ID from"
        } else {
            text =
                "\(zero) of \(total) IPv4 incident RSTs have IP ID 0 (Linux 4.20 or later, or netfilter), "
                + "\(total - zero) a non-zero one (a kernel before 4.20 hashes it, or another stack)"
        }
        return CauseHint(name: "rst_ip_id_zero", holds: total > 0 && zero == total, evidence: text)
    }

    private static func percent(_ value: Double) -> String { Summary.fixed(value * 100, digits: 1) + "%" }
}
