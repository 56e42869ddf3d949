import Prometheus
import RSTDetective

/// The Prometheus metrics of a live capture (`--metrics-file`, `--metrics-listen`): a registry updated from
/// the once-a-second snapshot of the run, never per packet, and rendered in the text exposition format.
///
/// The run's figures are cumulative, so each counter is moved on by the difference from the last snapshot
/// and never goes back. Labels stay bounded: `outcome`, `kind` and `origin` have fixed values, `server_port`
/// takes only ports with a completed handshake, and `bucket` only `0..<listeners`.
///
/// Updated on the capture thread only; the registry is `Sendable`, so the HTTP server's event loop renders
/// it at any time.
final class CaptureMetrics {
    /// The registry that the file and the HTTP server render.
    let registry = PrometheusCollectorRegistry()
    private let state: MetricsState

    /// Registers every series known before the first packet at zero: the fixed label values, the unlabelled
    /// series and the buckets `0..<listeners`, so that `rate()` and `increase()` see their first increment.
    /// A `server_port` series appears with the port's first completed handshake.
    init(listeners: Int) {
        state = MetricsState(registry: registry)
        state.update(from: nil, listeners: listeners)
    }

    /// Moves the metrics to a snapshot of the run (or its final result).
    func update(_ snapshot: AnalysisResult) {
        state.update(from: snapshot, listeners: snapshot.report.bucketModel.listeners)
    }

    /// The metrics in Prometheus text format 0.0.4.
    func text() -> String {
        registry.emitToString()
    }
}

/// The metrics' last values, so that counters are moved by differences. Only the capture thread uses it.
private final class MetricsState {
    /// Every metric's name starts with `rst_detective_`.
    private static let namespace = "rst_detective"
    private let registry: PrometheusCollectorRegistry
    /// The last cumulative value given to each counter, by the counter's identity.
    private var lastValues: [ObjectIdentifier: Int64] = [:]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: Self.namespace, metricName: name, unitName: "total", helpText: help),
            labels: labels)
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: Self.namespace, metricName: name, unitName: "", helpText: help),
            labels: labels)
    }

    /// Sets a counter to the cumulative `value`: it moves on by the difference and never goes back.
    private func count(_ counter: Counter, _ value: Int) {
        let key = ObjectIdentifier(counter)
        let last = lastValues[key] ?? 0
        let value = Int64(value)
        guard value > last else { return }
        counter.increment(by: value - last)
        lastValues[key] = value
    }

    func update(from snapshot: AnalysisResult?, listeners: Int) {
        let report = snapshot?.report
        count(
            counter("packets", "Packets captured that passed the filter."), snapshot?.packets.packets ?? 0)
        let statistics = snapshot?.live?.statistics
        count(
            counter("packets_received", "Packets the kernel passed to the capture (libpcap ps_recv)."),
            statistics?.received ?? 0)
        count(
            counter(
                "packets_dropped_by_kernel",
                "Packets dropped because the capture buffer was full (libpcap ps_drop); a larger -B helps."),
            statistics?.droppedByKernel ?? 0)
        count(
            counter("packets_dropped_by_interface", "Packets the interface or its driver dropped (libpcap ps_ifdrop)."),
            statistics?.droppedByInterface ?? 0)
        count(
            counter(
                "syns_untracked_table_full",
                "SYNs not tracked because the flow table was full (--max-flows): their attempts are in no count."),
            snapshot?.tracker.untrackedSYNs ?? 0)
        for outcome in Outcome.allCases {
            count(
                counter(
                    "connection_attempts",
                    "Connection attempts settled, by outcome (see the README's outcome classes).",
                    [("outcome", outcome.name)]),
                report?.count(of: outcome) ?? 0)
        }
        for outcome in Outcome.allCases where outcome.isNearMiss {
            count(
                counter(
                    "near_misses", "Server RSTs that are not the signature, by kind.", [("kind", outcome.name)]),
                report?.count(of: outcome) ?? 0)
        }
        for origin in ResetOrigin.allCases {
            count(
                counter(
                    "incident_rst_origins", "Incidents by where their RST came from (rst_origin).",
                    [("origin", origin.rawValue)]),
                report?.count(of: origin) ?? 0)
        }
        for row in report?.serverPorts() ?? [] where row.handshakes > 0 {
            let port = [("server_port", String(row.port))]
            count(
                counter("handshakes_completed", "Handshakes completed (client ACK seen), by server port.", port),
                row.handshakes)
            count(
                counter(
                    "incidents", "Incidents (SYN, SYN-ACK, ACK, then a server RST), by server port.", port),
                row.incidents)
        }
        let buckets = report?.buckets() ?? (0..<listeners).map { (bucket: $0, incidents: 0, handshakes: 0) }
        for row in buckets {
            let bucket = [("bucket", String(row.bucket))]
            count(
                counter(
                    "bucket_handshakes_completed", "Handshakes completed, by modelled reuseport listener (bucket).",
                    bucket),
                row.handshakes)
            count(
                counter("bucket_incidents", "Incidents, by modelled reuseport listener (bucket).", bucket),
                row.incidents)
        }
        let live = snapshot?.live
        gauge("handshakes_open", "Handshakes being tracked now, their outcome not yet known.")
            .set(to: Double(live?.openHandshakes ?? 0))
        gauge("capture_seconds", "Seconds since the capture started.").set(to: live?.elapsedSeconds ?? 0)
        var join: (resets: Int, matched: Int, read: Int, lost: Int)?
        if case .joined(let resets, let matched, let read, let lost, _)? = live?.kernelReasons {
            join = (resets, matched, read, lost)
        }
        gauge(
            "kernel_reason_joined",
            "1 when server RSTs are joined to the kernel's tcp:tcp_send_reset events (kernel_reason), else 0."
        ).set(to: join == nil ? 0 : 1)
        count(
            counter("kernel_reason_resets", "Server RSTs of incidents and near misses looked up for kernel_reason."),
            join?.resets ?? 0)
        count(
            counter("kernel_reason_matched", "Server RSTs that a tcp:tcp_send_reset event gave a kernel_reason."),
            join?.matched ?? 0)
        count(counter("kernel_reason_events_read", "tcp:tcp_send_reset events read from the kernel."), join?.read ?? 0)
        count(
            counter(
                "kernel_reason_events_lost", "tcp:tcp_send_reset events the kernel dropped because its buffer was full."
            ),
            join?.lost ?? 0)
    }
}
