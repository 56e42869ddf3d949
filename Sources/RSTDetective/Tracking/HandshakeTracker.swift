/// Follows every TCP connection attempt from its SYN until its outcome is settled and reports each one,
/// with the signature (SYN, SYN-ACK, ACK, then a RST from the server answering that ACK) among the outcomes.
///
/// Only attempts in their handshake are kept: an attempt leaves the table when the server speaks, when
/// a RST settles it, or when its deadline passes in capture time (never the wall clock, so a replay gives
/// the same result). Memory is therefore bounded by the handshakes open at once, never by the capture.
public struct HandshakeTracker {
    /// Timing and size limits of the tracker.
    public struct Configuration: Sendable {
        /// A RST must come less than this long after the client's handshake ACK to count; after it, an
        /// attempt with no RST and no retransmitted SYN-ACK is completed.
        public var maximumDelayNanos: Int64
        /// An attempt with no SYN-ACK, or no client ACK, for this long is unanswered, or abandoned.
        public var handshakeTimeoutNanos: Int64
        /// The most attempts tracked at once; SYNs beyond it are counted and not tracked.
        public var maximumFlows: Int

        public init(
            maximumDelayNanos: Int64 = 1_000_000_000, handshakeTimeoutNanos: Int64 = 60_000_000_000,
            maximumFlows: Int = 1_000_000
        ) {
            self.maximumDelayNanos = maximumDelayNanos
            self.handshakeTimeoutNanos = handshakeTimeoutNanos
            self.maximumFlows = maximumFlows
        }
    }

    public let configuration: Configuration
    public private(set) var counters = TrackerCounters()
    /// The latest timestamp seen: the tracker's clock.
    public private(set) var clockNanos = Int64.min
    private var table: FlowTable<HandshakeState>
    private var sweepCursor = 0
    /// Packets until the next sweep.
    private var sweepCountdown = Self.packetsPerSweep
    /// Capture time before which a full table is not swept again.
    private var nextFullSweepNanos = Int64.min
    /// The attempts waiting for their server, per port (`HandshakeRecord.awaitingServerAtAck`).
    private var acceptQueue = AcceptQueueGauge()
    /// The stray RST (`HandshakeTransition.strayReset`) of each tracked attempt that had one: rare, so kept
    /// here rather than in every attempt's state.
    private var strayResets: [FlowKey: ResetSegment] = [:]
    /// The encapsulations of each tracked attempt whose SYN came through a tunnel, for its report: kept here
    /// rather than in every attempt's state, so that plain traffic pays nothing for them.
    private var tunnels: [FlowKey: TunnelPath] = [:]

    /// - Parameters:
    ///   - configuration: Delays and limits.
    ///   - seed: The flow table's hash seed; random by default, because traffic can be hostile.
    public init(configuration: Configuration = Configuration(), seed: UInt64 = .random(in: .min ... .max)) {
        self.configuration = configuration
        self.table = FlowTable(maximumCount: configuration.maximumFlows, seed: seed)
    }

    /// Attempts currently tracked.
    public var openHandshakes: Int { table.count }

    /// Slots allocated in the flow table.
    var tableCapacity: Int { table.capacity }

    /// Feeds one segment, in timestamp order; settled attempts go to `observer`.
    ///
    /// - Complexity: O(1) amortized; allocates only when the table grows.
    @inline(__always)
    public mutating func process<Observer: HandshakeObserver>(_ segment: TCPSegment, observer: inout Observer) {
        let presenceHash = FlowKey.presenceHash(
            segment.source, segment.sourcePort, segment.destination, segment.destinationPort)
        guard
            !processUntracked(
                at: segment.timestampNanos, flags: segment.flags, presenceHash: presenceHash, observer: &observer)
        else { return }
        tick(at: segment.timestampNanos, observer: &observer)
        track(segment, observer: &observer)
    }

    /// Feeds a segment known only by its time, flags and `FlowKey.presenceHash`, if that is enough: when it
    /// is not a SYN and the presence filter says its flow is not tracked, which is most segments of a busy
    /// link. The caller then need not decode the rest of it.
    ///
    /// - Returns: Whether the segment was fed; if not, the caller passes the whole segment to `process`.
    @inline(__always)
    mutating func processUntracked<Observer: HandshakeObserver>(
        at timestampNanos: Int64, flags: TCPFlags, presenceHash: UInt64, observer: inout Observer
    ) -> Bool {
        let isSYN =
            flags.rawValue & (TCPFlags.syn.rawValue | TCPFlags.ack.rawValue | TCPFlags.rst.rawValue)
            == TCPFlags.syn.rawValue
        guard !isSYN, !table.mayContain(presenceHash: presenceHash) else { return false }
        // The sweep in `tick` only removes attempts, so the answer above stands after it.
        tick(at: timestampNanos, observer: &observer)
        if flags.contains(.rst) { counters.untrackedResets &+= 1 }
        return true
    }

    /// Moves the clock to a segment's time and sweeps a few slots every `packetsPerSweep` segments.
    @inline(__always)
    private mutating func tick<Observer: HandshakeObserver>(at timestampNanos: Int64, observer: inout Observer) {
        if timestampNanos > clockNanos { clockNanos = timestampNanos }
        sweepCountdown &-= 1
        if _slowPath(sweepCountdown == 0) {
            sweepCountdown = Self.packetsPerSweep
            sweep(slots: Self.packetsPerSweep * 4, observer: &observer)
        }
    }

    /// Looks `segment` up and applies it: the part of `process` for segments that may belong to a tracked
    /// attempt, and SYNs.
    @inline(never)
    private mutating func track<Observer: HandshakeObserver>(_ segment: TCPSegment, observer: inout Observer) {
        let now = segment.timestampNanos
        let flags = segment.flags
        let isSYN = flags.contains(.syn) && !flags.contains(.ack) && !flags.contains(.rst)
        var sourceIsLower = false
        let key = FlowKey(segment, sourceIsLower: &sourceIsLower)
        if let slot = table.find(key) {
            // Fields are read in place: the state is a hundred bytes, and most segments need three of them.
            // The clock, not the segment's own time, decides expiry, as in the sweep: with timestamps that go
            // backwards, the result then does not depend on where the sweep happens to be.
            let deadlineNanos = table[slot: slot].deadlineNanos
            if clockNanos < deadlineNanos {
                let fromClient = sourceIsLower == table[slot: slot].clientIsLower
                let wasEstablished = table[slot: slot].phase == .established
                let synRetransmits = table[slot: slot].synRetransmits
                let transition = table[slot: slot].advance(
                    with: segment, fromClient: fromClient, configuration: configuration, counters: &counters)
                if isSYN, table[slot: slot].phase == .synSent, table[slot: slot].synRetransmits != synRetransmits {
                    observer.synRetransmitted(
                        serverPort: segment.destinationPort, firstSYNNanos: table[slot: slot].synTimeNanos)
                }
                if !wasEstablished, table[slot: slot].phase == .established {
                    let arrival = acceptQueue.arrive(
                        port: segment.destinationPort, at: clockNanos, deadlineNanos: table[slot: slot].deadlineNanos)
                    table[slot: slot].awaitingServerAtAck = UInt32(clamping: arrival.waiting)
                    table[slot: slot].acceptQueueToken = arrival.token
                }
                switch transition {
                case .unchanged:
                    break
                case .strayReset:
                    strayResets[key] = ResetSegment(segment)
                case .settled(let outcome):
                    // The server's RST that settled it; a client RST is not one.
                    let reset = !fromClient && flags.contains(.rst) ? ResetSegment(segment) : nil
                    settle(slot: slot, key: key, outcome: outcome, at: now, reset: reset, observer: &observer)
                case .restarted:
                    // A SYN that restarts an attempt changes nothing in its state before that.
                    let state = table[slot: slot]
                    let left = leave(state, key: key)
                    observer.record(
                        Self.record(
                            state, key: key, outcome: state.timeoutOutcome, at: now, reset: left.strayReset,
                            tunnel: left.tunnel))
                    table[slot: slot] = HandshakeState(
                        syn: segment, clientIsLower: sourceIsLower,
                        handshakeTimeoutNanos: configuration.handshakeTimeoutNanos)
                    if table[slot: slot].hasTunnel { tunnels[key] = segment.tunnel }
                }
                return
            }
            settle(
                slot: slot, key: key, outcome: table[slot: slot].timeoutOutcome, at: deadlineNanos, observer: &observer)
        }
        if isSYN {
            let state = HandshakeState(
                syn: segment, clientIsLower: sourceIsLower, handshakeTimeoutNanos: configuration.handshakeTimeoutNanos)
            if table.isAtGrowthThreshold {
                // Reclaim expired attempts first, so that the table grows only for handshakes really open;
                // grow anyway if it stays over three eighths full, so that full sweeps stay rare.
                sweep(slots: table.capacity, observer: &observer)
                if table.count > table.capacity * 3 / 8 { table.grow() }
            } else if table.isFull, clockNanos >= nextFullSweepNanos {
                // At its largest and full: reclaim expired attempts before refusing, at most once a second
                // of capture time, so that a SYN flood cannot make every SYN scan the table.
                sweep(slots: table.capacity, observer: &observer)
                nextFullSweepNanos = clockNanos &+ 1_000_000_000
            }
            if table.insert(key, state) == nil {
                counters.untrackedSYNs += 1
            } else {
                if state.hasTunnel { tunnels[key] = segment.tunnel }
                if table.count > counters.peakOpenHandshakes { counters.peakOpenHandshakes = table.count }
            }
        } else if flags.contains(.rst) {
            counters.untrackedResets += 1
        }
    }

    /// Moves the clock to `nowNanos` without a packet and settles the attempts past their deadline: a live
    /// capture on a quiet link calls it with the current time, so outcomes do not wait for the next packet.
    ///
    /// - Complexity: O(capacity of the flow table); call it about once a second, not per packet.
    public mutating func advance<Observer: HandshakeObserver>(to nowNanos: Int64, observer: inout Observer) {
        if nowNanos > clockNanos { clockNanos = nowNanos }
        sweep(slots: table.capacity, observer: &observer)
    }

    /// Settles every attempt still open at the end of the input: those whose deadline passed by the
    /// latest timestamp get their timeout outcome, the others `openAtEnd`.
    ///
    /// - Parameter endNanos: The timestamp of the input's last packet of any kind, when it is later than the
    ///   last TCP segment's.
    public mutating func finish<Observer: HandshakeObserver>(at endNanos: Int64? = nil, observer: inout Observer) {
        if let endNanos, endNanos > clockNanos { clockNanos = endNanos }
        for slot in 0..<table.capacity where table.isOccupied(slot) {
            let state = table[slot: slot]
            let expired = clockNanos >= state.deadlineNanos
            let key = table.key(at: slot)
            let left = leave(state, key: key)
            observer.record(
                Self.record(
                    state, key: key, outcome: expired ? state.timeoutOutcome : state.openAtEndOutcome,
                    at: expired ? state.deadlineNanos : clockNanos, reset: left.strayReset, tunnel: left.tunnel))
        }
        table.removeAll()
    }

    /// Segments between two sweeps of the flow table, which look at four slots per segment.
    private static var packetsPerSweep: Int { 16 }

    /// Looks at the next `count` slots and settles the attempts past their deadline. Four slots per packet
    /// visit the whole table in a quarter of its capacity in packets, while each packet adds at most one
    /// attempt, so expired attempts alone can never fill the table to its growth threshold.
    private mutating func sweep<Observer: HandshakeObserver>(slots count: Int, observer: inout Observer) {
        guard table.count > 0 else { return }
        let mask = table.capacity - 1  // the capacity is a power of two
        var position = sweepCursor
        let end = position + count
        while position < end {
            // Empty slots are skipped 64 at a time through the table's occupancy bitmap.
            guard let slot = table.firstOccupied(from: position & mask, within: end - position) else {
                position = end
                break
            }
            position += (slot - position) & mask
            let state = table[slot: slot]
            if clockNanos >= state.deadlineNanos {
                // The backward shift may move a later attempt into this slot; the next pass looks at it.
                settle(
                    slot: slot, key: table.key(at: slot), outcome: state.timeoutOutcome, at: state.deadlineNanos,
                    observer: &observer)
            }
            position += 1
        }
        sweepCursor = position & mask
    }

    /// Reports the attempt in `slot` and removes it.
    ///
    /// - Parameter reset: The server RST that settled it, if one did; else its stray RST, if any, is reported.
    private mutating func settle<Observer: HandshakeObserver>(
        slot: Int, key: FlowKey, outcome: Outcome, at time: Int64, reset: ResetSegment? = nil,
        observer: inout Observer
    ) {
        let left = leave(table[slot: slot], key: key)
        observer.record(
            Self.record(
                table[slot: slot], key: key, outcome: outcome, at: time, reset: reset ?? left.strayReset,
                tunnel: left.tunnel))
        table.remove(at: slot)
    }

    /// Counts an attempt that ends before its deadline out of `acceptQueue`, and takes its stray RST out of
    /// `strayResets` and its tunnels out of `tunnels`, as it leaves the table.
    ///
    /// - Returns: The stray RST, if it had one, and the tunnels, empty without.
    private mutating func leave(_ state: HandshakeState, key: FlowKey) -> (
        strayReset: ResetSegment?, tunnel: TunnelPath
    ) {
        if state.phase == .established, clockNanos < state.deadlineNanos {
            acceptQueue.leave(token: state.acceptQueueToken)
        }
        return (
            state.hasStrayReset ? strayResets.removeValue(forKey: key) : nil,
            state.hasTunnel ? tunnels.removeValue(forKey: key) ?? TunnelPath() : TunnelPath()
        )
    }

    private static func record(
        _ state: HandshakeState, key: FlowKey, outcome: Outcome, at time: Int64, reset: ResetSegment?,
        tunnel: TunnelPath
    ) -> HandshakeRecord {
        let lowerPort = UInt16(truncatingIfNeeded: key.ports >> 16)
        let upperPort = UInt16(truncatingIfNeeded: key.ports)
        return HandshakeRecord(
            client: state.clientIsLower ? key.lowerAddress : key.upperAddress,
            clientPort: state.clientIsLower ? lowerPort : upperPort,
            server: state.clientIsLower ? key.upperAddress : key.lowerAddress,
            serverPort: state.clientIsLower ? upperPort : lowerPort,
            isIPv6: state.isIPv6,
            tunnel: tunnel,
            outcome: outcome,
            handshakeCompleted: state.phase == .established,
            synTimeNanos: state.synTimeNanos,
            synAckTimeNanos: state.synAckTimeNanos,
            ackTimeNanos: state.ackTimeNanos,
            settledTimeNanos: time,
            ackPayloadBytes: state.ackPayloadBytes,
            clientISN: state.clientISN,
            serverISN: state.serverISN,
            synRetransmits: state.synRetransmits,
            synAckRetransmits: state.synAckRetransmits,
            history: state.history,
            synAck: state.synAck.fingerprint,
            synAckLooksLikeCookie: state.synAckLooksLikeCookie,
            ackTrafficClass: state.ackTrafficClass,
            reset: outcome == .completed ? nil : reset,
            awaitingServerAtAck: Int(state.awaitingServerAtAck))
    }
}
