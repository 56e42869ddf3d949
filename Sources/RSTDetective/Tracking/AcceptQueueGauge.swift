/// Per server port, the connections whose handshake ACK was seen and whose server has not spoken yet: the
/// accept queue as the packets show it, since a server answers once it accepts.
///
/// A connection counts from its handshake ACK until the server speaks or resets, the client resets or
/// restarts, or its maximum delay runs out. The last is applied in capture time by a queue of deadlines, not
/// when the tracker's sweep happens to reach the connection, so the gauge reads the same whatever the flow
/// table's seed. Memory follows the connections from the oldest one still waiting on, at most those whose
/// ACK came within one maximum delay.
struct AcceptQueueGauge {
    private struct Entry {
        var deadlineNanos: Int64
        var port: UInt16
        var waiting: Bool
    }

    private var waiting = [UInt32](repeating: 0, count: 65536)
    /// A ring of entries in the order the ACKs came; entry `token` is at `token & (ring.count - 1)`.
    private var ring = [Entry](repeating: Entry(deadlineNanos: 0, port: 0, waiting: false), count: 4096)
    private var headToken: UInt32 = 0
    private var count: UInt32 = 0
    private var lastDeadlineNanos = Int64.min

    /// Counts a connection from its handshake ACK on.
    ///
    /// - Returns: The connections to `port` waiting before it, and the token to pass to `leave`.
    mutating func arrive(port: UInt16, at nowNanos: Int64, deadlineNanos: Int64) -> (waiting: Int, token: UInt32) {
        expire(at: nowNanos)
        let before = Int(waiting[Int(port)])
        if count == ring.count { grow() }
        // Deadlines go in the order of the ACKs; one earlier than the last (time going backwards) waits for it.
        lastDeadlineNanos = max(lastDeadlineNanos, deadlineNanos)
        let token = headToken &+ count
        ring[Int(token) & (ring.count - 1)] = Entry(deadlineNanos: lastDeadlineNanos, port: port, waiting: true)
        count += 1
        waiting[Int(port)] &+= 1
        return (before, token)
    }

    /// Stops counting the connection of `token`, whose server spoke or which ended before its deadline; one
    /// past its deadline leaves through the queue of deadlines instead.
    mutating func leave(token: UInt32) {
        guard token &- headToken < count else { return }
        let index = Int(token) & (ring.count - 1)
        guard ring[index].waiting else { return }
        ring[index].waiting = false
        waiting[Int(ring[index].port)] &-= 1
    }

    /// Stops counting the connections whose deadline is at or before `nowNanos`, and drops the entries of those
    /// that left before it from the front.
    private mutating func expire(at nowNanos: Int64) {
        while count > 0 {
            let entry = ring[Int(headToken) & (ring.count - 1)]
            guard entry.deadlineNanos <= nowNanos || !entry.waiting else { return }
            if entry.waiting { waiting[Int(entry.port)] &-= 1 }
            headToken &+= 1
            count -= 1
        }
    }

    private mutating func grow() {
        var larger = [Entry](repeating: Entry(deadlineNanos: 0, port: 0, waiting: false), count: ring.count * 2)
        for offset in 0..<count {
            let token = headToken &+ offset
            larger[Int(token) & (larger.count - 1)] = ring[Int(token) & (ring.count - 1)]
        }
        ring = larger
    }
}
