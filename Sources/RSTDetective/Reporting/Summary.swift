import Glibc

/// The run's figures as `metric,value` rows (summary.csv) and as a short text for people (standard error).
public enum Summary {
    /// The link types whose packets were skipped as unknown, by libpcap's name (`USB_LINUX`), in order of
    /// their numbers, with their packets.
    public static func unknownLinkTypes(_ packets: PacketCounts) -> [(name: String, packets: Int)] {
        packets.unknownLinkTypes.sorted { $0.key < $1.key }.map { (LinkType.name(ofDataLinkType: $0.key), $0.value) }
    }

    /// Every metric of summary.csv, in order.
    public static func metrics(_ result: AnalysisResult) -> [(name: String, value: String)] {
        let report = result.report
        var rows: [(String, String)] = [
            ("files", String(result.filesOpened + result.errors.filter(Self.isOpenError).count)),
            ("files_failed", String(result.errors.count)),
        ]
        rows += CaptureError.Kind.allCases.map { kind in
            (kind.metricName, String(result.errors.filter { $0.kind == kind }.count))
        }
        rows += [
            ("files_snaplen_invalid", String(result.filesWithInvalidSnapLength)),
            ("interrupted", result.interrupted ? "1" : "0"),
            ("packets", String(result.packets.packets)),
            ("packets_filtered_out", String(result.packets.filteredOut)),
            ("tcp_packets", String(result.packets.tcpPackets)),
            ("tcp_headers_cut", String(result.packets.tcpHeadersCut)),
        ]
        if let live = result.live {
            let statistics = live.statistics
            rows += [
                ("interface", live.interface),
                ("capture_seconds", fixed(live.elapsedSeconds, digits: 3)),
                ("packets_received", statistics.map { String($0.received) } ?? ""),
                ("packets_dropped_by_kernel", statistics.map { String($0.droppedByKernel) } ?? ""),
                ("packets_dropped_by_interface", statistics.map { String($0.droppedByInterface) } ?? ""),
                ("handshakes_open", String(live.openHandshakes)),
            ]
            switch live.kernelReasons {
            case .joined(let resets, let matched, _, _, _):
                rows += [("kernel_reasons_joined", "1"), ("kernel_reasons_matched", "\(matched) of \(resets)")]
            case .unavailable(let why):
                rows += [("kernel_reasons_joined", "0"), ("kernel_reasons_matched", why)]
            }
        }
        rows += SkipReason.allCases.map { ($0.metricName, String(result.packets.count(of: $0))) }
        rows.append(
            (
                "unknown_link_types",
                unknownLinkTypes(result.packets).map { "\($0.name):\($0.packets)" }.joined(separator: " ")
            ))
        rows += [
            ("connection_attempts", String(report.connectionAttempts)),
            ("handshakes_completed", String(report.handshakesCompleted)),
            ("incidents", String(report.incidents)),
            ("incident_rate", rate(report.incidents, report.handshakesCompleted)),
        ]
        rows += Outcome.allCases.map { ($0.metricName, String(report.count(of: $0))) }
        rows.append(("near_misses", String(Outcome.allCases.filter(\.isNearMiss).map(report.count(of:)).reduce(0, +))))
        rows += ResetOrigin.allCases.map { ($0.metricName, String(report.count(of: $0))) }
        rows += result.tracker.metrics.map { ($0.name, String($0.value)) }
        let evidence = report.evidence
        rows += [
            ("incident_bursts", String(evidence.bursts)),
            ("incidents_in_bursts", String(evidence.incidentsInBursts)),
            ("incidents_after_retransmit", String(evidence.incidentsAfterRetransmit)),
            ("handshakes_after_retransmit", String(evidence.handshakesAfterRetransmit)),
            (
                "awaiting_server_at_incidents_mean",
                fixed(CauseEvidence.ratio(evidence.awaitingAtIncidentsSum, evidence.incidents), digits: 1)
            ),
            (
                "awaiting_server_at_handshakes_mean",
                fixed(CauseEvidence.ratio(evidence.awaitingAtHandshakesSum, evidence.handshakes), digits: 1)
            ),
            ("synacks", String(evidence.synAcks)),
            ("synacks_cookie_like", String(evidence.cookieLikeSynAcks)),
            ("incident_resets_ipv4", String(evidence.ipv4IncidentResets)),
            ("incident_resets_ip_id_zero", String(evidence.zeroIPIDIncidentResets)),
        ]
        let verdicts = report.causeVerdicts.filter { $0.value.incidents > 0 || $0.value.droppedACKs > 0 }
        rows += IncidentCause.allCases.map { cause in
            ("incidents_" + cause.name, String(verdicts.values.map { $0.count(of: cause) }.reduce(0, +)))
        }
        // Live, between report intervals: incidents counted but not yet judged (held 2 s for their
        // evidence), so that the causes above plus these add up to `incidents`. 0 in the final reports.
        rows.append(("incidents_awaiting_cause", String(report.incidentsAwaitingCause)))
        rows.append(
            (
                "cause_by_server_port",
                verdicts.keys.sorted().map { port in
                    let verdict = verdicts[port]!
                    return "\(port): \(verdict.cause.isEmpty ? "no incidents" : verdict.cause) (\(verdict.evidence))"
                }.joined(separator: " | ")
            ))
        for hint in CauseHint.hints(report) {
            rows.append(("hint_" + hint.name, hint.holds ? "yes" : "no"))
            rows.append(("hint_" + hint.name + "_evidence", hint.evidence))
        }
        rows += [
            ("first_packet_time", result.packets.firstPacketNanos.map(Timestamp.iso8601) ?? ""),
            ("last_packet_time", result.packets.lastPacketNanos.map(Timestamp.iso8601) ?? ""),
            ("first_incident_time", report.firstIncidentNanos.map(Timestamp.iso8601) ?? ""),
            ("last_incident_time", report.lastIncidentNanos.map(Timestamp.iso8601) ?? ""),
            ("max_delay_us", String(result.options.tracker.maximumDelayNanos / 1000)),
            ("handshake_timeout_us", String(result.options.tracker.handshakeTimeoutNanos / 1000)),
            ("filter", result.options.filter ?? ""),
        ]
        let model = report.bucketModel
        let uniformity = report.bucketUniformity
        rows += [
            ("listeners", String(model.listeners)),
            ("kernel", model.kernel.release),
            ("bucket_model", model.modelName),
            ("hash_secret", Connection.hex(model.secret)),
            ("hash_secret_ipv6", Connection.hex(model.secret6)),
            ("address_secret_ipv6", Connection.hex(model.addressSecret6)),
            ("handshakes_moving_on_churn", String(report.handshakesMovingOnChurn)),
            ("handshake_move_share", rate(report.handshakesMovingOnChurn, report.handshakesCompleted)),
            ("incidents_moving_on_churn", String(report.incidentsMovingOnChurn)),
            ("incident_move_share", rate(report.incidentsMovingOnChurn, report.incidents)),
            ("bucket_chi_square", uniformity.map { fixed($0.statistic, digits: 3) } ?? ""),
            ("bucket_chi_square_df", uniformity.map { String($0.degreesOfFreedom) } ?? ""),
            ("bucket_chi_square_p", uniformity.map { probability($0.pValue) } ?? ""),
            ("incidents_concentrated", uniformity.map { $0.isConcentrated ? "1" : "0" } ?? ""),
        ]
        return rows
    }

    private static func isOpenError(_ error: CaptureError) -> Bool {
        switch error {
        case .cannotOpen, .badFilter, .noSuchInterface, .permissionDenied, .cannotCapture: true
        case .readFailed, .mixedLinkTypes: false
        }
    }

    private static func rate(_ part: Int, _ whole: Int) -> String {
        guard whole > 0 else { return "0" }
        let scaled = (part * 1_000_000 + whole / 2) / whole
        let fraction = String(scaled % 1_000_000)
        return "\(scaled / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    /// `value` with `digits` decimals.
    public static func fixed(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return String(value) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return String(value) }
        let whole = Int64(scaled)
        let unit = Int64(scale)
        let fraction = String(whole % unit)
        let sign = value < 0 && whole != 0 ? "-" : ""
        guard digits > 0 else { return sign + String(whole) }
        return "\(sign)\(whole / unit).\(String(repeating: "0", count: digits - fraction.count))\(fraction)"
    }

    /// A probability: four decimals down to 0.001, then two significant digits in scientific notation.
    static func probability(_ value: Double) -> String {
        if value >= 0.001 { return fixed(value, digits: 4) }
        guard value > 0 else { return "0" }
        var exponent = Int(log10(value).rounded(.down))
        var mantissa = (value / pow(10, Double(exponent)) * 10).rounded() / 10
        if mantissa >= 10 {
            mantissa /= 10
            exponent += 1
        }
        let magnitude = String(-exponent)
        return "\(fixed(mantissa, digits: 1))e-\(magnitude.count < 2 ? "0" : "")\(magnitude)"
    }

    /// Microseconds as `850 µs`, `1.2 ms` or `3 s`.
    static func microseconds(_ micros: UInt64) -> String {
        if micros < 1000 { return "\(micros) µs" }
        if micros < 1_000_000 { return trimmed(Double(micros) / 1000) + " ms" }
        return trimmed(Double(micros) / 1_000_000) + " s"
    }

    /// `value` with up to three significant digits (two decimals below 10, one below 100), trailing
    /// zeros dropped.
    static func trimmed(_ value: Double) -> String {
        var text = fixed(value, digits: value < 10 ? 2 : value < 100 ? 1 : 0)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}
