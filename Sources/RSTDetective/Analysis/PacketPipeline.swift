/// The work every packet gets, whether it comes from capture files or from an interface: counted, decoded
/// and, if it is TCP, tracked; settled attempts go to the report.
struct PacketPipeline {
    var counts = PacketCounts()
    var tracker: HandshakeTracker
    var report: AnalysisReport

    init(options: AnalysisOptions, onConnection: @escaping (Connection) -> Void) {
        tracker = HandshakeTracker(configuration: options.tracker)
        report = AnalysisReport(bucketModel: options.bucketModel, onConnection: onConnection)
    }

    /// Counts, decodes and tracks one packet; `bytes` are borrowed for the call.
    ///
    /// - Complexity: O(1) amortized; allocates only when the flow table grows.
    mutating func process(_ info: PacketInfo, bytes: RawSpan, linkType: LinkType) {
        counts.packets += 1
        counts.firstPacketNanos = min(counts.firstPacketNanos ?? .max, info.timestampNanos)
        counts.lastPacketNanos = max(counts.lastPacketNanos ?? .min, info.timestampNanos)
        switch PacketDecoder.decode(bytes, info: info, linkType: linkType) {
        case .tcp(let segment):
            counts.tcpPackets += 1
            tracker.process(segment, observer: &report)
        case .skipped(let reason):
            counts.skipped[Int(reason.rawValue)] += 1
        }
    }

    /// Moves the tracker's clock on without a packet (a quiet live link).
    mutating func advance(to nowNanos: Int64) {
        tracker.advance(to: nowNanos, observer: &report)
    }

    /// Settles every attempt still open, as of `endNanos` or the last packet.
    mutating func finish(at endNanos: Int64?) {
        tracker.finish(at: endNanos, observer: &report)
    }
}
