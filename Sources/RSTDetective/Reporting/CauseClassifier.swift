/// Gives each incident its `IncidentCause` from the evidence around it on its server port, and keeps each
/// port's verdict.
///
/// An incident whose RST came from another host or a firewall (`ResetOrigin`) is `unknown`: it says nothing
/// of the server's listeners. The others are held until their evidence is in: `holdNanos` of capture time
/// after the last ACK of the handshakes that share an instant with them, enough for a dropped SYN's
/// retransmission (Linux sends it after 1 s) to show. They are then judged together, as one close would
/// have taken them:
/// 1. on Linux 3.9-4.3 with more than one listener (`--kernel`, `--listeners`), an incident whose 4-tuple
///    moves when a listener is added or removed is `reuseport_churn`;
/// 2. RST+ACK to waiting children within the shared instant, or SYNs refused just after it, are a close's
///    own footprint: `listener_closed`;
/// 3. otherwise, if every incident's ACK found connections waiting for the application and SYNs were dropped
///    around them (or their own SYNs were sent again), the accept queue was full: `accept_queue_overflow`;
/// 4. otherwise, if some incident's ACK found nobody waiting, or no SYN was dropped while SYNs that came
///    after the first reset were answered, the queue was not full, and on Linux 4.4+ the only other way a
///    listener loses a request is its close: `listener_closed`; unless a firewall may have sent the RSTs
///    (the port had a netfilter-like RST and served no handshake within a second of the group, as a REJECT
///    rule on every ACK does);
/// 5. else `unknown`.
///
/// Memory: per server port, rings of the last `ringCapacity` dropped, refused and answered SYNs and child
/// resets, and the incidents held (at most `heldLimit`, beyond which the oldest are judged at once).
struct CauseClassifier {
    /// How long after a group's last ACK its evidence is awaited.
    static let holdNanos: Int64 = 2_000_000_000
    /// Timestamps on one capture point disagree with the kernel's order by this much.
    static let slackNanos: Int64 = 1_000_000
    /// Refused SYNs this long after a group's last ACK still show that no listener was left.
    static let refusedWindowNanos: Int64 = 500_000_000
    /// SYNs dropped this long before the group's first SYN-ACK or after its last ACK count as dropped around it.
    static let dropWindowNanos: Int64 = 100_000_000
    /// Handshakes served normally this close to a group show that the port's listeners worked around it.
    static let servedWindowNanos: Int64 = 1_000_000_000
    static let ringCapacity = 1024
    static let heldLimit = 65536

    /// Capture times, the last `capacity` kept; allocated once.
    struct TimeRing {
        private var times: [Int64]
        private var next = 0
        private var filled = false

        init(capacity: Int) { times = [Int64](repeating: 0, count: capacity) }

        mutating func append(_ time: Int64) {
            times[next] = time
            next += 1
            if next == times.count {
                next = 0
                filled = true
            }
        }

        func count(from start: Int64, to end: Int64) -> Int {
            var count = 0
            for index in 0..<(filled ? times.count : next) where times[index] >= start && times[index] <= end {
                count += 1
            }
            return count
        }
    }

    private struct PortEvidence {
        var droppedSYNs = TimeRing(capacity: CauseClassifier.ringCapacity)
        var refusedSYNs = TimeRing(capacity: CauseClassifier.ringCapacity)
        var childResets = TimeRing(capacity: CauseClassifier.ringCapacity)
        var answeredSYNs = TimeRing(capacity: CauseClassifier.ringCapacity)
        /// Incident RSTs shown to be netfilter's (`ResetOrigin.firewallLike`).
        var firewallResets = 0
        var held: [Connection] = []
    }

    /// Whether listener changes reset moved ACKs under the bucket model (3.9-4.3, more than one listener).
    let churnApplies: Bool
    private var ports: [UInt16: PortEvidence] = [:]
    /// The verdicts so far, per server port.
    private(set) var verdicts: [UInt16: PortCauseVerdict] = [:]
    /// Incidents held for a verdict.
    private(set) var heldCount = 0
    /// No held incident's evidence is in before this capture time: until then `release` returns at once.
    private(set) var nextReleaseNanos = Int64.max

    init(bucketModel: ReusePortBucket) {
        churnApplies = bucketModel.listeners > 1 && bucketModel.churnResetsMovedACKs
    }

    /// A SYN sent again before any SYN-ACK: the first was dropped at `firstSYNNanos`. No allocation once the
    /// port has a ring.
    mutating func synDropped(serverPort: UInt16, at firstSYNNanos: Int64) {
        ports[serverPort, default: PortEvidence()].droppedSYNs.append(firstSYNNanos)
    }

    /// Takes the evidence of a settled attempt that is not an incident.
    mutating func observe(_ record: HandshakeRecord) {
        if record.synAckTimeNanos != 0, record.synRetransmits == 0 {
            ports[record.serverPort, default: PortEvidence()].answeredSYNs.append(record.synTimeNanos)
        }
        switch record.outcome {
        case .refused:
            ports[record.serverPort, default: PortEvidence()].refusedSYNs.append(record.synTimeNanos)
        case .listenerClose, .appAbort:
            // A listener's close resets its waiting children; a lone one looks like an application abort.
            if let reset = record.reset {
                ports[record.serverPort, default: PortEvidence()].childResets.append(reset.timeNanos)
            }
        case .ackDropped:
            verdicts[record.serverPort, default: PortCauseVerdict()].addDroppedACK()
        default:
            break
        }
    }

    /// Holds an incident until its evidence is in. One whose RST another host or a firewall sent (its
    /// `ResetOrigin`) tells nothing of the server's listeners: it is `unknown` at once.
    mutating func hold(_ connection: Connection, deliver: (Connection) -> Void) {
        let port = connection.handshake.serverPort
        if let origin = connection.provenance?.origin, origin == .otherHost || origin == .firewallLike {
            if origin == .firewallLike { ports[port, default: PortEvidence()].firewallResets += 1 }
            var judged = connection
            judged.cause = .unknown
            verdicts[port, default: PortCauseVerdict()].add(.unknown, count: 1)
            deliver(judged)
            return
        }
        ports[port, default: PortEvidence()].held.append(connection)
        heldCount += 1
        nextReleaseNanos = min(nextReleaseNanos, connection.handshake.ackTimeNanos &+ Self.holdNanos)
        if ports[port]!.held.count > Self.heldLimit { judge(port: port, upTo: .max, onlyOne: true, deliver: deliver) }
    }

    /// Judges and delivers the held incidents whose evidence is in by `clockNanos` (`.max`: all of them, at
    /// the end of the input).
    mutating func release(upTo clockNanos: Int64, deliver: (Connection) -> Void) {
        guard clockNanos >= nextReleaseNanos else { return }
        nextReleaseNanos = .max
        for port in ports.keys.sorted() where !(ports[port]?.held.isEmpty ?? true) {
            judge(port: port, upTo: clockNanos, onlyOne: false, deliver: deliver)
            for connection in ports[port]!.held {
                nextReleaseNanos = min(nextReleaseNanos, connection.handshake.ackTimeNanos &+ Self.holdNanos)
            }
        }
    }

    /// Judges the port's held incidents group by group, oldest ACK first: a group is the held incidents whose
    /// SYN-ACK came before the oldest ACK, so that their intervals share an instant.
    private mutating func judge(port: UInt16, upTo clockNanos: Int64, onlyOne: Bool, deliver: (Connection) -> Void) {
        while var held = ports[port]?.held, !held.isEmpty {
            held.sort { $0.handshake.ackTimeNanos < $1.handshake.ackTimeNanos }
            let firstACK = held[0].handshake.ackTimeNanos
            // The oldest is always in its own group, even when its SYN-ACK is stamped after its ACK (clocks of
            // merged captures, damaged timestamps): each pass must take at least one incident.
            let inGroup = held.indices.map {
                $0 == 0 || held[$0].handshake.synAckTimeNanos <= firstACK &+ Self.slackNanos
            }
            let group = zip(held, inGroup).filter(\.1).map(\.0)
            let lastACK = group.map(\.handshake.ackTimeNanos).max() ?? firstACK
            guard onlyOne || lastACK &+ Self.holdNanos <= clockNanos else { return }
            ports[port]!.held = zip(held, inGroup).filter { !$0.1 }.map(\.0)
            heldCount -= group.count
            for connection in decide(group, port: port) { deliver(connection) }
            if onlyOne { return }
        }
    }

    /// The causes of one group of incidents that share an instant.
    private mutating func decide(_ group: [Connection], port: UInt16) -> [Connection] {
        let evidence = ports[port]!
        let latestSynAck = group.map(\.handshake.synAckTimeNanos).max()!
        let earliestSynAck = group.map(\.handshake.synAckTimeNanos).min()!
        let firstACK = group.map(\.handshake.ackTimeNanos).min()!
        let lastACK = group.map(\.handshake.ackTimeNanos).max()!
        let children = evidence.childResets.count(
            from: latestSynAck &- Self.slackNanos, to: firstACK &+ Self.slackNanos)
        let refused = evidence.refusedSYNs.count(
            from: latestSynAck &- Self.slackNanos, to: lastACK &+ Self.refusedWindowNanos)
        // SYNs dropped around the group, and the group's own SYNs sent again before they got through.
        let dropped =
            evidence.droppedSYNs.count(
                from: earliestSynAck &- Self.dropWindowNanos, to: lastACK &+ Self.dropWindowNanos)
            + group.map { Int($0.handshake.synRetransmits) }.reduce(0, +)
        let leastWaiting = group.map(\.handshake.awaitingServerAtAck).min()!
        let answeredAfter = evidence.answeredSYNs.count(from: firstACK &+ 1, to: lastACK &+ Self.dropWindowNanos)
        let servedAround = evidence.answeredSYNs.count(
            from: earliestSynAck &- Self.servedWindowNanos, to: lastACK &+ Self.servedWindowNanos)
        let physical: IncidentCause
        if children > 0 || refused > 0 {
            physical = .listenerClosed
        } else if leastWaiting > 0, dropped > 0 {
            physical = .acceptQueueOverflow
        } else if servedAround > 0 || evidence.firewallResets == 0,
            leastWaiting == 0 || (dropped == 0 && answeredAfter > 0)
        {
            physical = .listenerClosed
        } else {
            physical = .unknown
        }
        var verdict = verdicts[port, default: PortCauseVerdict()]
        var judged = group
        var churned = 0
        for index in judged.indices {
            let moved = churnApplies && judged[index].choice.movesOnChurn
            judged[index].cause = moved ? .reusePortChurn : physical
            if moved { churned += 1 }
        }
        verdict.add(.reusePortChurn, count: churned)
        let rest = group.count - churned
        if rest > 0 {
            verdict.add(physical, count: rest)
            switch physical {
            case .listenerClosed:
                verdict.addClose(
                    PortCauseVerdict.Close(
                        instantNanos: latestSynAck / 2 + firstACK / 2,
                        uncertaintyNanos: max(0, firstACK - latestSynAck) / 2,
                        incidents: rest, childResets: children, refusedSYNs: refused))
            case .acceptQueueOverflow:
                verdict.addOverflow(firstNanos: firstACK, lastNanos: lastACK, droppedSYNs: dropped)
            default:
                break
            }
        }
        verdicts[port] = verdict
        return judged.sorted { $0.handshake.settledTimeNanos < $1.handshake.settledTimeNanos }
    }
}
