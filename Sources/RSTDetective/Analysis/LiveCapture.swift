import Glibc
package import Logging

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
    ///   - kernelReasons: The open `tcp:tcp_send_reset` reader whose events give `kernel_reason`, or the
    ///     one-line reason there is none.
    ///   - onConnection: Called for each settled attempt; an incident as soon as its RST is read.
    ///   - onTick: Called about once a second with the run so far (handshakes still open are not settled).
    /// - Returns: The run's result; handshakes open at the end are settled as `open_at_end`.
    package static func run(
        source: inout LiveSource, options: AnalysisOptions, limits: Limits = Limits(), logger: Logger,
        stop: StopRequest, kernelReasons: Result<ResetTracepoint, KernelReasonsUnavailable>,
        onConnection: @escaping (Connection) -> Void, onTick: (AnalysisResult) -> Void = { _ in }
    ) -> AnalysisResult {
        let join = KernelReasonJoin(kernelReasons)
        var pipeline = PacketPipeline(options: options) { connection in
            var connection = connection
            join.annotate(&connection)
            onConnection(connection)
        }
        var errors: [CaptureError] = []
        let start = monotonicNanos()
        let deadline = limits.seconds.map { start + Int64($0 * 1e9) }
        var nextTick = start + 1_000_000_000
        var nextDrain = start + ResetTracepoint.drainIntervalNanos
        func result(interrupted: Bool) -> AnalysisResult {
            AnalysisResult(
                options: options, report: pipeline.report, packets: pipeline.counts,
                tracker: pipeline.tracker.counters, filesOpened: 1, errors: errors, interrupted: interrupted,
                live: LiveCounters(
                    interface: source.interface, elapsedSeconds: Double(monotonicNanos() - start) / 1e9,
                    openHandshakes: pipeline.tracker.openHandshakes, statistics: source.statistics(),
                    kernelReasons: join.status, savingStopped: source.savingStopped))
        }
        let linkType = source.linkType
        while !stop.isRequested {
            if let limit = limits.packets, pipeline.counts.packets >= limit { break }
            let now = monotonicNanos()
            if let deadline, now >= deadline { break }
            if now >= nextDrain, let tracepoint = join.tracepoint {
                tracepoint.drain()
                nextDrain = now + ResetTracepoint.drainIntervalNanos
            }
            if now >= nextTick {
                pipeline.advance(to: realtimeNanos())
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
            source.withCurrentBytes { pipeline.process(info, bytes: $0, linkType: linkType) }
        }
        source.flushSaved()
        // The statistics and the open handshakes are read before the tracker settles them.
        var final = result(interrupted: stop.isRequested)
        pipeline.finish(at: max(pipeline.counts.lastPacketNanos ?? .min, realtimeNanos()))
        final.report = pipeline.report
        final.tracker = pipeline.tracker.counters
        final.live?.kernelReasons = join.status
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

/// Gives the RSTs of a live capture the kernel's own reason, from the `tcp:tcp_send_reset` events.
private final class KernelReasonJoin {
    let tracepoint: ResetTracepoint?
    private let unavailable: String
    private var resets = 0
    private var matched = 0

    init(_ reader: Result<ResetTracepoint, KernelReasonsUnavailable>) {
        switch reader {
        case .success(let tracepoint):
            tracepoint.drain()
            self.tracepoint = tracepoint
            unavailable = ""
        case .failure(let reason):
            tracepoint = nil
            unavailable = reason.description
        }
    }

    /// Sets `kernelReason` on an attempt settled by a server RST, from the event of that RST.
    func annotate(_ connection: inout Connection) {
        guard let tracepoint, let reset = connection.handshake.reset else { return }
        let record = connection.handshake
        resets += 1
        connection.kernelReason = tracepoint.reason(
            server: record.server, serverPort: record.serverPort, client: record.client, clientPort: record.clientPort,
            timeNanos: reset.timeNanos)
        if connection.kernelReason != nil { matched += 1 }
    }

    var status: KernelReasons {
        guard let counters = tracepoint?.counters else { return .unavailable(unavailable) }
        return .joined(
            resets: resets, matched: matched, eventsRead: counters.eventsRead, eventsLost: counters.eventsLostByKernel,
            eventsEvicted: counters.eventsEvicted)
    }
}

/// Why a live capture has no `kernel_reason`: one line for the summary.
package struct KernelReasonsUnavailable: Error, CustomStringConvertible {
    package let description: String

    package init(_ description: String) { self.description = description }
}
