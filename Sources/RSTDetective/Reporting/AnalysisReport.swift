public import Histogram

/// The aggregate view of every settled attempt: outcome counts and incidents per client port, server
/// port and reuseport bucket. Fixed-size tables indexed by port keep recording free of allocation.
public struct AnalysisReport: HandshakeObserver {
    /// The bucket model that assigns hashes and buckets.
    public let bucketModel: ReusePortBucket
    /// Attempts per outcome, indexed by `Outcome.rawValue`.
    public private(set) var outcomeCounts = [Int](repeating: 0, count: Outcome.allCases.count)
    /// Attempts whose handshake ACK was seen.
    public private(set) var handshakesCompleted = 0
    public private(set) var firstIncidentNanos: Int64?
    public private(set) var lastIncidentNanos: Int64?
    private(set) var clientPortHandshakes = [UInt32](repeating: 0, count: 65536)
    private(set) var clientPortIncidents = [UInt32](repeating: 0, count: 65536)
    private(set) var serverPortHandshakes = [UInt32](repeating: 0, count: 65536)
    private(set) var serverPortIncidents = [UInt32](repeating: 0, count: 65536)
    private(set) var bucketHandshakes: [Int]
    private(set) var bucketIncidents: [Int]
    /// Completed handshakes whose 4-tuple would go to another listener if one were added or removed.
    public private(set) var handshakesMovingOnChurn = 0
    /// Incidents whose 4-tuple would go to another listener if one were added or removed.
    public private(set) var incidentsMovingOnChurn = 0
    /// Completed handshakes and incidents over capture time.
    public private(set) var timeline = Timeline()
    /// Microseconds from the handshake ACK to the RST, over the incidents (up to an hour, two significant
    /// digits).
    public private(set) var resetDelays = Histogram<UInt64>(
        highestTrackableValue: Self.longestResetDelayMicros, numberOfSignificantValueDigits: .two)
    /// The first `incidentSampleLimit` incidents, for reports that list them (the HTML page).
    public private(set) var incidentSample: [Connection] = []
    /// What the cause hints are drawn from.
    public private(set) var evidence = CauseEvidence()
    /// Judges each incident's cause; incidents wait in it until their evidence is in.
    private var causes: CauseClassifier
    /// Incidents per provenance verdict, indexed as `ResetOrigin.allCases`.
    public private(set) var originCounts = [Int](repeating: 0, count: ResetOrigin.allCases.count)
    /// RST+ACK aborts held for `listenerCloseBurstNanos`, until it is known whether another one on the same
    /// server port joins them into a burst.
    private var pendingAborts: [HandshakeRecord] = []
    /// The latest settle time seen.
    private var clockNanos = Int64.min
    private let onConnection: (Connection) -> Void

    /// Two RST+ACK aborts on one server port this close together are one listener's close: the kernel
    /// resets all the children in its accept queue in one loop (`inet_csk_listen_stop`), microseconds apart.
    public static let listenerCloseBurstNanos: Int64 = 1_000_000
    /// How many incidents `incidentSample` keeps.
    public static let incidentSampleLimit = 1000
    static let longestResetDelayMicros: UInt64 = 3_600_000_000

    /// - Parameters:
    ///   - bucketModel: How hashes and buckets are computed.
    ///   - onConnection: Called once per settled attempt, for streaming output: an incident with its cause,
    ///     once the evidence around it is in (`CauseClassifier.holdNanos` of capture time after its ACK, or
    ///     at `flush`), any other attempt as it settles.
    public init(bucketModel: ReusePortBucket, onConnection: @escaping (Connection) -> Void = { _ in }) {
        self.bucketModel = bucketModel
        self.bucketHandshakes = [Int](repeating: 0, count: bucketModel.listeners)
        self.bucketIncidents = [Int](repeating: 0, count: bucketModel.listeners)
        self.onConnection = onConnection
        self.causes = CauseClassifier(bucketModel: bucketModel)
    }

    /// The cause verdict of each server port with incidents or dropped handshake ACKs, so far: final after
    /// `flush`.
    public var causeVerdicts: [UInt16: PortCauseVerdict] { causes.verdicts }

    /// Incidents waiting for their cause.
    public var incidentsAwaitingCause: Int { causes.heldCount }

    /// The capture time from which a held incident's evidence is in: a packet at or after it should move the
    /// clock on (`advance(to:)`), so that the incident is judged and delivered without waiting for another
    /// attempt to settle (a quiet pipe, the end of a burst).
    package var incidentsHeldUntilNanos: Int64 { causes.nextReleaseNanos }

    /// Connection attempts settled.
    public var connectionAttempts: Int { outcomeCounts.reduce(0, +) }

    /// Incidents (attempts with the signature).
    public var incidents: Int { outcomeCounts[Int(Outcome.resetAfterHandshake.rawValue)] }

    /// Incidents whose RST got the verdict `origin`.
    public func count(of origin: ResetOrigin) -> Int {
        ResetOrigin.allCases.firstIndex(of: origin).map { originCounts[$0] } ?? 0
    }

    /// Attempts with `outcome`.
    public func count(of outcome: Outcome) -> Int { outcomeCounts[Int(outcome.rawValue)] }

    /// Takes a settled attempt. An `appAbort` is held for `listenerCloseBurstNanos` and becomes
    /// `listenerClose` if another abort on the same server port comes within that time of it.
    public mutating func record(_ handshake: HandshakeRecord) {
        if handshake.settledTimeNanos > clockNanos { clockNanos = handshake.settledTimeNanos }
        releaseAborts(before: clockNanos &- Self.listenerCloseBurstNanos)
        releaseIncidents()
        guard handshake.outcome == .appAbort, let reset = handshake.reset else {
            deliver(handshake)
            return
        }
        var abort = handshake
        for index in pendingAborts.indices {
            let other = pendingAborts[index]
            guard other.serverPort == abort.serverPort, let otherReset = other.reset,
                abs(otherReset.timeNanos &- reset.timeNanos) <= Self.listenerCloseBurstNanos
            else { continue }
            pendingAborts[index].outcome = .listenerClose
            abort.outcome = .listenerClose
        }
        pendingAborts.append(abort)
    }

    /// A SYN sent again before any SYN-ACK: evidence of a full queue for the cause of nearby incidents.
    public mutating func synRetransmitted(serverPort: UInt16, firstSYNNanos: Int64) {
        causes.synDropped(serverPort: serverPort, at: firstSYNNanos)
    }

    /// Moves the clock on without an attempt (a quiet live link), delivering the aborts and incidents held
    /// long enough.
    public mutating func advance(to nowNanos: Int64) {
        if nowNanos > clockNanos { clockNanos = nowNanos }
        releaseAborts(before: clockNanos &- Self.listenerCloseBurstNanos)
        releaseIncidents()
    }

    /// Delivers the aborts and incidents still held, the incidents judged on all the evidence: call at the
    /// end of the input.
    public mutating func flush() {
        releaseAborts(before: .max)
        clockNanos = .max
        releaseIncidents()
    }

    private mutating func releaseIncidents() {
        var judged: [Connection] = []
        causes.release(upTo: clockNanos) { judged.append($0) }
        for connection in judged { deliverJudged(connection) }
    }

    /// An incident with its cause, to the sample and the caller.
    private mutating func deliverJudged(_ connection: Connection) {
        if incidentSample.count < Self.incidentSampleLimit { incidentSample.append(connection) }
        onConnection(connection)
    }

    private mutating func releaseAborts(before time: Int64) {
        while let first = pendingAborts.first, (first.reset?.timeNanos ?? .min) < time {
            deliver(pendingAborts.removeFirst())
        }
    }

    private mutating func deliver(_ handshake: HandshakeRecord) {
        outcomeCounts[Int(handshake.outcome.rawValue)] += 1
        let hash = bucketModel.hash(
            client: handshake.client, clientPort: handshake.clientPort, server: handshake.server,
            serverPort: handshake.serverPort, isIPv6: handshake.isIPv6)
        let connection = Connection(handshake: handshake, hash: hash, choice: bucketModel.choice(forHash: hash))
        if handshake.handshakeCompleted {
            count(connection)
        }
        if connection.isIncident, let origin = connection.provenance?.origin,
            let index = ResetOrigin.allCases.firstIndex(of: origin)
        {
            originCounts[index] += 1
        }
        evidence.add(connection)
        guard connection.isIncident else {
            causes.observe(handshake)
            onConnection(connection)
            return
        }
        var judged: [Connection] = []
        causes.hold(connection) { judged.append($0) }
        for connection in judged { deliverJudged(connection) }
    }

    private mutating func count(_ connection: Connection) {
        let handshake = connection.handshake
        let bucket = connection.choice.bucket
        let moves = connection.choice.movesOnChurn
        handshakesCompleted += 1
        timeline.addHandshake(at: handshake.ackTimeNanos)
        if moves { handshakesMovingOnChurn += 1 }
        clientPortHandshakes[Int(handshake.clientPort)] &+= 1
        serverPortHandshakes[Int(handshake.serverPort)] &+= 1
        bucketHandshakes[bucket] += 1
        guard connection.isIncident else { return }
        if moves { incidentsMovingOnChurn += 1 }
        clientPortIncidents[Int(handshake.clientPort)] &+= 1
        serverPortIncidents[Int(handshake.serverPort)] &+= 1
        bucketIncidents[bucket] += 1
        timeline.addIncident(at: handshake.settledTimeNanos)
        let delayMicros = max(0, (handshake.settledTimeNanos - handshake.ackTimeNanos) / 1000)
        _ = resetDelays.record(min(UInt64(delayMicros), Self.longestResetDelayMicros))
        if firstIncidentNanos == nil { firstIncidentNanos = handshake.settledTimeNanos }
        lastIncidentNanos = handshake.settledTimeNanos
    }

    /// Ports with at least one completed handshake or incident, ascending.
    public func clientPorts() -> [(port: UInt16, incidents: Int, handshakes: Int)] {
        Self.rows(clientPortIncidents, clientPortHandshakes)
    }

    /// Server ports with at least one completed handshake or incident, ascending.
    public func serverPorts() -> [(port: UInt16, incidents: Int, handshakes: Int)] {
        Self.rows(serverPortIncidents, serverPortHandshakes)
    }

    /// Every bucket 0..<N, zeros included.
    public func buckets() -> [(bucket: Int, incidents: Int, handshakes: Int)] {
        bucketHandshakes.indices.map { ($0, bucketIncidents[$0], bucketHandshakes[$0]) }
    }

    /// The chi-square test of incidents over buckets against handshakes, or nil when it does not apply.
    public var bucketUniformity: BucketUniformity? {
        BucketUniformity(incidents: bucketIncidents, handshakes: bucketHandshakes)
    }

    private static func rows(_ incidents: [UInt32], _ handshakes: [UInt32]) -> [(
        port: UInt16, incidents: Int, handshakes: Int
    )] {
        incidents.indices.compactMap { port in
            guard incidents[port] > 0 || handshakes[port] > 0 else { return nil }
            return (UInt16(port), Int(incidents[port]), Int(handshakes[port]))
        }
    }
}
