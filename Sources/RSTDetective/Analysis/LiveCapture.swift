import Glibc
public import Logging

/// Runs a live capture through the decoder and the tracker until it is stopped.
public enum LiveCapture {
    /// When a live run ends on its own.
    public struct Limits: Sendable {
        /// Stop after this many packets (`-c`).
        public var packets: Int?
        /// Stop after this many seconds (`--duration`).
        public var seconds: Double?

        public init(packets: Int? = nil, seconds: Double? = nil) {
            self.packets = packets
            self.seconds = seconds
        }
    }

    /// Captures from `source` until `stop` is requested, a limit is reached, or the interface fails.
    ///
    /// Timing follows the packets' own timestamps, as offline; on a quiet link the tracker's clock is moved
    /// on with the system clock about once a second, so outcomes are settled without waiting for traffic.
    ///
    /// - Parameters:
    ///   - source: The open interface.
    ///   - options: Tracker limits and bucket model (the filter is already in `source`).
    ///   - limits: Packet count and duration limits.
    ///   - logger: Receives debug messages, never per packet.
    ///   - stop: Ends the run within the read timeout (0.1 s) once requested.
    ///   - onConnection: Called for each settled attempt; an incident as soon as its RST is read.
    ///   - onTick: Called about once a second with the run so far (handshakes still open are not settled).
    /// - Returns: The run's result; handshakes open at the end are settled as `open_at_end`.
    public static func run(
        source: inout LiveSource, options: AnalysisOptions, limits: Limits = Limits(), logger: Logger,
        stop: StopRequest, onConnection: @escaping (Connection) -> Void,
        onTick: (AnalysisResult) -> Void = { _ in }
    ) -> AnalysisResult {
        var tracker = HandshakeTracker(configuration: options.tracker)
        var report = AnalysisReport(bucketModel: options.bucketModel, onConnection: onConnection)
        var counts = PacketCounts()
        var errors: [CaptureError] = []
        let start = monotonicNanos()
        let deadline = limits.seconds.map { start + Int64($0 * 1e9) }
        var nextTick = start + 1_000_000_000
        func result(interrupted: Bool) -> AnalysisResult {
            AnalysisResult(
                options: options, report: report, packets: counts, tracker: tracker.counters, filesOpened: 1,
                errors: errors, interrupted: interrupted,
                live: LiveCounters(
                    interface: source.interface, elapsedSeconds: Double(monotonicNanos() - start) / 1e9,
                    openHandshakes: tracker.openHandshakes, statistics: source.statistics()))
        }
        let linkType = source.linkType
        while !stop.isRequested {
            if let limit = limits.packets, counts.packets >= limit { break }
            let now = monotonicNanos()
            if let deadline, now >= deadline { break }
            if now >= nextTick {
                tracker.advance(to: realtimeNanos(), observer: &report)
                source.flushSaved()
                onTick(result(interrupted: false))
                nextTick = now + 1_000_000_000
            }
            let read: LiveSource.Read?
            do {
                read = try source.next()
            } catch {
                logger.debug("capture failed", metadata: ["interface": "\(source.interface)"])
                errors.append(error)
                break
            }
            guard case .packet(let info)? = read else {
                if read == nil { break }
                continue
            }
            counts.packets += 1
            counts.firstPacketNanos = min(counts.firstPacketNanos ?? .max, info.timestampNanos)
            counts.lastPacketNanos = max(counts.lastPacketNanos ?? .min, info.timestampNanos)
            switch source.withCurrentBytes({ PacketDecoder.decode($0, info: info, linkType: linkType) }) {
            case .tcp(let segment):
                counts.tcpPackets += 1
                tracker.process(segment, observer: &report)
            case .skipped(let reason):
                counts.skipped[Int(reason.rawValue)] += 1
            }
        }
        source.flushSaved()
        // The statistics and the open handshakes are read before the tracker settles them.
        var final = result(interrupted: stop.isRequested)
        tracker.finish(at: max(counts.lastPacketNanos ?? .min, realtimeNanos()), observer: &report)
        final.report = report
        final.tracker = tracker.counters
        return final
    }

    private static func monotonicNanos() -> Int64 {
        var time = timespec()
        unsafe clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    private static func realtimeNanos() -> Int64 {
        var time = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
