/// The work every packet gets, whether it comes from capture files or from an interface: counted, decoded
/// and, if it is TCP, tracked; settled attempts go to the report.
package struct PacketPipeline: PacketSink {
    package var counts = PacketCounts()
    package var tracker: HandshakeTracker
    package var report: AnalysisReport
    private let vxlanPorts: VXLANPorts
    /// Called every `packetsPerProgress` packets, for a progress bar; nil for none.
    var onProgress: ((PacketCounts) -> Void)?
    /// 2^16: often enough for a bar refreshed a few times a second, rare enough to cost nothing.
    private static var packetsPerProgress: Int { 1 << 16 }

    package init(options: AnalysisOptions, onConnection: @escaping (Connection) -> Void) {
        tracker = HandshakeTracker(configuration: options.tracker)
        report = AnalysisReport(bucketModel: options.bucketModel, onConnection: onConnection)
        vxlanPorts = options.vxlanPorts
    }

    /// Counts, decodes and tracks one packet; `bytes` are borrowed for the call.
    ///
    /// Only the first `PacketDecoder.maximumHeaderBytes` are looked at, whether the bytes are a whole
    /// record or the part of it a `PacketBatch` kept, so that every read path gives the same result.
    ///
    /// - Complexity: O(1) amortized; allocates only when the flow table grows.
    @inline(__always)
    package mutating func process(_ info: PacketInfo, bytes: RawSpan, linkType: LinkType) {
        if _slowPath(info.timestampNanos >= report.incidentsHeldUntilNanos) { report.advance(to: info.timestampNanos) }
        let bytes = bytes.extracting(first: PacketDecoder.maximumHeaderBytes)
        if let common = PacketDecoder.commonTCPFields(bytes, info: info, linkType: linkType),
            tracker.processUntracked(
                at: info.timestampNanos, flags: common.flags, presenceHash: common.presenceHash, observer: &report)
        {
            counts.count(info, skipped: nil)
            return
        }
        switch PacketDecoder.decode(bytes, info: info, linkType: linkType, vxlanPorts: vxlanPorts) {
        case .tcp(let segment):
            counts.count(info, skipped: nil)
            if segment.isHeaderCut { counts.tcpHeadersCut &+= 1 }
            tracker.process(segment, observer: &report)
        case .skipped(.unknownLinkType):
            counts.count(info, skipped: .unknownLinkType)
            if case .other(let dataLinkType) = linkType { counts.unknownLinkTypes[dataLinkType, default: 0] += 1 }
        case .skipped(.truncated) where info.capturedLength > PacketDecoder.maximumHeaderBytes:
            // The record has the bytes; the decoder does not read that far.
            counts.count(info, skipped: .headersTooLong)
        case .skipped(let reason):
            counts.count(info, skipped: reason)
        }
    }

    /// Counts, decodes and tracks the packets of a batch.
    ///
    /// - Complexity: O(packets) amortized; allocates only when the flow table grows.
    mutating func process(_ batch: PacketBatch) {
        let before = counts.packets
        batch.forEachPacket { process($0, bytes: $1, linkType: $2) }
        if let onProgress, counts.packets / Self.packetsPerProgress != before / Self.packetsPerProgress {
            onProgress(counts)
        }
    }

    /// The analysis takes every packet as it comes.
    var isFull: Bool { false }

    @inline(__always)
    mutating func take(_ info: PacketInfo, _ bytes: RawSpan, _ linkType: LinkType) {
        process(info, bytes: bytes, linkType: linkType)
        if _slowPath(counts.packets & (Self.packetsPerProgress - 1) == 0), let onProgress { onProgress(counts) }
    }

    /// Moves the tracker's clock on without a packet (a quiet live link).
    mutating func advance(to nowNanos: Int64) {
        tracker.advance(to: nowNanos, observer: &report)
        report.advance(to: nowNanos)
    }

    /// Settles every attempt still open, as of `endNanos` or the last packet.
    package mutating func finish(at endNanos: Int64?) {
        tracker.finish(at: endNanos, observer: &report)
        report.flush()
    }
}
