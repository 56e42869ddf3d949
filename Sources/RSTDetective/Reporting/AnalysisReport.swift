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
    private let onConnection: (Connection) -> Void

    /// - Parameters:
    ///   - bucketModel: How hashes and buckets are computed.
    ///   - onConnection: Called once per settled attempt, incidents as soon as their RST is seen, for
    ///     streaming output.
    public init(bucketModel: ReusePortBucket, onConnection: @escaping (Connection) -> Void = { _ in }) {
        self.bucketModel = bucketModel
        self.bucketHandshakes = [Int](repeating: 0, count: bucketModel.listeners)
        self.bucketIncidents = [Int](repeating: 0, count: bucketModel.listeners)
        self.onConnection = onConnection
    }

    /// Connection attempts settled.
    public var connectionAttempts: Int { outcomeCounts.reduce(0, +) }

    /// Incidents (attempts with the signature).
    public var incidents: Int { outcomeCounts[Int(Outcome.resetAfterHandshake.rawValue)] }

    /// Attempts with `outcome`.
    public func count(of outcome: Outcome) -> Int { outcomeCounts[Int(outcome.rawValue)] }

    public mutating func record(_ handshake: HandshakeRecord) {
        outcomeCounts[Int(handshake.outcome.rawValue)] += 1
        let hash = bucketModel.hash(
            client: handshake.client, clientPort: handshake.clientPort, server: handshake.server,
            serverPort: handshake.serverPort, isIPv6: handshake.isIPv6)
        let connection = Connection(handshake: handshake, hash: hash, choice: bucketModel.choice(forHash: hash))
        if handshake.handshakeCompleted {
            count(connection)
        }
        onConnection(connection)
    }

    private mutating func count(_ connection: Connection) {
        let handshake = connection.handshake
        let bucket = connection.choice.bucket
        let moves = connection.choice.movesOnChurn
        handshakesCompleted += 1
        if moves { handshakesMovingOnChurn += 1 }
        clientPortHandshakes[Int(handshake.clientPort)] &+= 1
        serverPortHandshakes[Int(handshake.serverPort)] &+= 1
        bucketHandshakes[bucket] += 1
        guard connection.isIncident else { return }
        if moves { incidentsMovingOnChurn += 1 }
        clientPortIncidents[Int(handshake.clientPort)] &+= 1
        serverPortIncidents[Int(handshake.serverPort)] &+= 1
        bucketIncidents[bucket] += 1
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
