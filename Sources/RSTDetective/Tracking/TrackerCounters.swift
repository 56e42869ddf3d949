/// Packet-level counts the tracker keeps besides the outcomes.
public struct TrackerCounters: Sendable, Equatable {
    /// SYNs repeating the sequence number of a tracked attempt.
    public var synRetransmits = 0
    /// SYN-ACKs repeating the server sequence number of a tracked attempt.
    public var synAckRetransmits = 0
    /// Server RSTs on a tracked attempt that did not carry the sequence number the client expects (out of
    /// window, or from an older or newer connection on the same 4-tuple); the client ignores them too.
    public var ignoredResets = 0
    /// RSTs on a 4-tuple with no tracked attempt (an established connection, or one already settled).
    public var untrackedResets = 0
    /// SYNs not tracked because the flow table was full.
    public var untrackedSYNs = 0
    /// The most attempts held at once (open, or past their deadline and not yet swept): what the flow
    /// table's memory followed (see `--max-flows`).
    public var peakOpenHandshakes = 0

    public init() {}

    /// The counters with their summary.csv names.
    public var metrics: [(name: String, value: Int)] {
        [
            ("syn_retransmits", synRetransmits),
            ("synack_retransmits", synAckRetransmits),
            ("resets_ignored", ignoredResets),
            ("resets_untracked", untrackedResets),
            ("syns_untracked_table_full", untrackedSYNs),
            ("handshakes_open_peak", peakOpenHandshakes),
        ]
    }
}
