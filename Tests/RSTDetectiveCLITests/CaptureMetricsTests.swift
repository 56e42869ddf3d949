import Foundation
import Logging
import RSTDetective
import Testing

@testable import rst_detective

/// Prometheus text format 0.0.4, parsed strictly enough that a truncated or malformed exposition fails.
struct PrometheusText {
    /// Sample values by `name{labels}` exactly as written (labels in the order given).
    var samples: [String: Double] = [:]
    /// `# TYPE` of each family.
    var types: [String: String] = [:]

    /// Parses `text`; nil with the offending line when a line is neither a comment nor a sample, when a
    /// sample has no `# TYPE` before it, or when the text does not end with a newline.
    static func parse(_ text: String) -> Result<PrometheusText, ParseFailure> {
        var parsed = PrometheusText()
        guard text.hasSuffix("\n") else { return .failure(ParseFailure(line: String(text.suffix(80)))) }
        let sample =
            #/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? (-?[0-9.e+\-]+|NaN|\+Inf|-Inf)$/#
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let words = line.split(separator: " ")
                guard words.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3])
                else { return .failure(ParseFailure(line: String(line))) }
                parsed.types[String(words[2])] = String(words[3])
                continue
            }
            guard let match = try? sample.wholeMatch(in: String(line)), let value = Double(match.output.4),
                parsed.types[String(match.output.1)] != nil
            else { return .failure(ParseFailure(line: String(line))) }
            let key = String(match.output.1) + String(match.output.2 ?? "")
            guard parsed.samples.updateValue(value, forKey: key) == nil else {
                return .failure(ParseFailure(line: "duplicate " + key))
            }
        }
        return .success(parsed)
    }

    struct ParseFailure: Error, CustomStringConvertible {
        let line: String
        var description: String { "not Prometheus text format: '\(line)'" }
    }

    /// The value of `name` with exactly these labels.
    func value(_ name: String, _ labels: [(String, String)] = []) -> Double? {
        samples[name + (labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}")]
    }

    /// Every sample of `name`, by its label text (`server_port="8080"`).
    func series(_ name: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for (key, value) in samples where key == name || key.hasPrefix(name + "{") {
            result[String(key.dropFirst(name.count).dropFirst().dropLast())] = value
        }
        return result
    }

    /// The sum over every sample of `name`.
    func sum(_ name: String) -> Double { series(name).values.reduce(0, +) }

    /// What a whole exposition of `capture` has and a cut one lacks, or nil: every family with its type, every
    /// fixed label value, every bucket, and (with `serverPorts`) the server-port families, each for the same
    /// ports. A cut at a line end parses, so only this tells it from the whole.
    func incompleteness(listeners: Int, serverPorts: Bool) -> String? {
        var families = captureMetricFamilies
        if serverPorts { families.merge(serverPortMetricFamilies) { $1 } }
        for (family, type) in families where types[family] != type { return "no \(type) \(family)" }
        let expected = [
            "rst_detective_connection_attempts_total": Outcome.allCases.count,
            "rst_detective_near_misses_total": Outcome.allCases.filter(\.isNearMiss).count,
            "rst_detective_incident_rst_origins_total": ResetOrigin.allCases.count,
            "rst_detective_bucket_handshakes_completed_total": listeners,
            "rst_detective_bucket_incidents_total": listeners,
        ]
        for (family, count) in expected where series(family).count != count {
            return "\(series(family).count) series of \(family), not \(count)"
        }
        for family in captureMetricFamilies.keys where expected[family] == nil && value(family) == nil {
            return "no \(family)"
        }
        let ports = Set(series("rst_detective_handshakes_completed_total").keys)
        guard ports == Set(series("rst_detective_incidents_total").keys) else { return "server ports differ" }
        return nil
    }
}

/// Every family `capture` exposes, with its type: what the README documents.
let captureMetricFamilies: [String: String] = [
    "rst_detective_packets_total": "counter",
    "rst_detective_packets_received_total": "counter",
    "rst_detective_packets_dropped_by_kernel_total": "counter",
    "rst_detective_packets_dropped_by_interface_total": "counter",
    "rst_detective_syns_untracked_table_full_total": "counter",
    "rst_detective_connection_attempts_total": "counter",
    "rst_detective_near_misses_total": "counter",
    "rst_detective_incident_rst_origins_total": "counter",
    "rst_detective_bucket_handshakes_completed_total": "counter",
    "rst_detective_bucket_incidents_total": "counter",
    "rst_detective_handshakes_open": "gauge",
    "rst_detective_capture_seconds": "gauge",
    "rst_detective_kernel_reason_joined": "gauge",
    "rst_detective_kernel_reason_resets_total": "counter",
    "rst_detective_kernel_reason_matched_total": "counter",
    "rst_detective_kernel_reason_events_read_total": "counter",
    "rst_detective_kernel_reason_events_lost_total": "counter",
]

/// The families labelled by server port, which appear with the first completed handshake.
let serverPortMetricFamilies: [String: String] = [
    "rst_detective_handshakes_completed_total": "counter",
    "rst_detective_incidents_total": "counter",
]

@Suite struct CaptureMetricsTests {
    /// The accept-overflow capture analysed with 4 modelled listeners, dressed as a live snapshot.
    static func snapshot(
        packets: Int? = nil, received: Int = 900, dropped: Int = 2, elapsed: Double = 12.5, open: Int = 3
    ) -> AnalysisResult {
        var result = Analyzer.run(
            paths: [Binary.capture("accept-overflow.pcap")],
            options: AnalysisOptions(bucketModel: ReusePortBucket(listeners: 4)), logger: Logger(label: "test"))
        if let packets { result.packets.packets = packets }
        result.tracker.untrackedSYNs = 7
        result.live = LiveCounters(
            interface: "srv0", elapsedSeconds: elapsed, openHandshakes: open,
            statistics: LiveSource.Statistics(received: received, droppedByKernel: dropped, droppedByInterface: 1),
            kernelReasons: .joined(resets: 35, matched: 30, eventsRead: 41, eventsLost: 2, eventsEvicted: 1))
        return result
    }

    static func parsed(_ metrics: CaptureMetrics) throws -> PrometheusText {
        try PrometheusText.parse(metrics.text()).get()
    }

    @Test func everyFamilyIsThereFromTheStartAtZero() throws {
        let text = try Self.parsed(CaptureMetrics(listeners: 4))
        for (family, type) in captureMetricFamilies {
            #expect(text.types[family] == type, "\(family)")
        }
        #expect(text.value("rst_detective_packets_total") == 0)
        #expect(text.series("rst_detective_connection_attempts_total").count == Outcome.allCases.count)
        #expect(text.sum("rst_detective_connection_attempts_total") == 0)
        #expect(text.value("rst_detective_near_misses_total", [("kind", "refused")]) == 0)
        #expect(text.value("rst_detective_incident_rst_origins_total", [("origin", "same-stack")]) == 0)
        // No handshake yet, so no port; every bucket is there.
        for family in serverPortMetricFamilies.keys {
            #expect(text.types[family] == nil)
        }
        #expect(text.series("rst_detective_bucket_incidents_total").count == 4)
        #expect(text.sum("rst_detective_bucket_incidents_total") == 0)
        #expect(text.value("rst_detective_kernel_reason_joined") == 0)
    }

    @Test func aSnapshotRendersTheRunsFigures() throws {
        let snapshot = Self.snapshot()
        let report = snapshot.report
        #expect(report.incidents > 0)
        #expect(report.bucketModel.listeners == 4)
        let metrics = CaptureMetrics(listeners: 4)
        metrics.update(snapshot)
        let text = try Self.parsed(metrics)
        for (family, type) in captureMetricFamilies.merging(serverPortMetricFamilies, uniquingKeysWith: { $1 }) {
            #expect(text.types[family] == type, "\(family)")
        }
        #expect(text.value("rst_detective_packets_total") == Double(snapshot.packets.packets))
        #expect(text.value("rst_detective_packets_received_total") == 900)
        #expect(text.value("rst_detective_packets_dropped_by_kernel_total") == 2)
        #expect(text.value("rst_detective_packets_dropped_by_interface_total") == 1)
        #expect(text.value("rst_detective_syns_untracked_table_full_total") == 7)
        for outcome in Outcome.allCases {
            #expect(
                text.value("rst_detective_connection_attempts_total", [("outcome", outcome.name)])
                    == Double(report.count(of: outcome)), "\(outcome.name)")
        }
        for outcome in Outcome.allCases where outcome.isNearMiss {
            #expect(
                text.value("rst_detective_near_misses_total", [("kind", outcome.name)])
                    == Double(report.count(of: outcome)))
        }
        for origin in ResetOrigin.allCases {
            #expect(
                text.value("rst_detective_incident_rst_origins_total", [("origin", origin.rawValue)])
                    == Double(report.count(of: origin)))
        }
        // Only ports with a handshake are labels.
        let ports = report.serverPorts().filter { $0.handshakes > 0 }
        #expect(
            Set(text.series("rst_detective_handshakes_completed_total").keys)
                == Set(ports.map { "server_port=\"\($0.port)\"" }))
        for row in ports {
            let label = [("server_port", String(row.port))]
            #expect(text.value("rst_detective_handshakes_completed_total", label) == Double(row.handshakes))
            #expect(text.value("rst_detective_incidents_total", label) == Double(row.incidents))
        }
        #expect(text.sum("rst_detective_incidents_total") == Double(report.incidents))
        #expect(text.sum("rst_detective_handshakes_completed_total") == Double(report.handshakesCompleted))
        // Buckets are exactly 0..<listeners.
        #expect(
            Set(text.series("rst_detective_bucket_incidents_total").keys) == [
                "bucket=\"0\"", "bucket=\"1\"", "bucket=\"2\"", "bucket=\"3\"",
            ])
        for row in report.buckets() {
            let label = [("bucket", String(row.bucket))]
            #expect(text.value("rst_detective_bucket_handshakes_completed_total", label) == Double(row.handshakes))
            #expect(text.value("rst_detective_bucket_incidents_total", label) == Double(row.incidents))
        }
        #expect(text.sum("rst_detective_bucket_incidents_total") == Double(report.incidents))
        #expect(text.value("rst_detective_handshakes_open") == 3)
        #expect(text.value("rst_detective_capture_seconds") == 12.5)
        #expect(text.value("rst_detective_kernel_reason_joined") == 1)
        #expect(text.value("rst_detective_kernel_reason_resets_total") == 35)
        #expect(text.value("rst_detective_kernel_reason_matched_total") == 30)
        #expect(text.value("rst_detective_kernel_reason_events_read_total") == 41)
        #expect(text.value("rst_detective_kernel_reason_events_lost_total") == 2)
    }

    @Test func countersNeverGoBackAndGaugesFollow() throws {
        let metrics = CaptureMetrics(listeners: 4)
        metrics.update(Self.snapshot(packets: 500, received: 900, dropped: 5, elapsed: 10, open: 7))
        // libpcap's counters or the packet count going back (a wrapped 32-bit counter) keep the counter.
        metrics.update(Self.snapshot(packets: 400, received: 800, dropped: 1, elapsed: 11, open: 2))
        var text = try Self.parsed(metrics)
        #expect(text.value("rst_detective_packets_total") == 500)
        #expect(text.value("rst_detective_packets_received_total") == 900)
        #expect(text.value("rst_detective_packets_dropped_by_kernel_total") == 5)
        #expect(text.value("rst_detective_handshakes_open") == 2)
        #expect(text.value("rst_detective_capture_seconds") == 11)
        metrics.update(Self.snapshot(packets: 650, received: 1000, dropped: 6, elapsed: 12, open: 0))
        text = try Self.parsed(metrics)
        #expect(text.value("rst_detective_packets_total") == 650)
        #expect(text.value("rst_detective_packets_received_total") == 1000)
        #expect(text.value("rst_detective_packets_dropped_by_kernel_total") == 6)
        // The same report twice is counted once.
        #expect(text.sum("rst_detective_incidents_total") == Double(Self.snapshot().report.incidents))
    }

    /// Every cut of a whole exposition, at a line end or inside a line, fails to parse or is incomplete.
    @Test func aCutFileIsToldFromAWholeOne() throws {
        let metrics = CaptureMetrics(listeners: 4)
        metrics.update(Self.snapshot())
        let whole = metrics.text()
        let parsed = try PrometheusText.parse(whole).get()
        #expect(parsed.incompleteness(listeners: 4, serverPorts: true) == nil)
        let bytes = Array(whole.utf8)
        let lineEnds = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }.map { $0 + 1 }.dropLast()
        for cut in Array(stride(from: 0, to: bytes.count, by: 17)) + lineEnds {
            let text = String(decoding: bytes[..<cut], as: UTF8.self)
            let incomplete =
                switch PrometheusText.parse(text) {
                case .failure: true
                case .success(let cutParsed): cutParsed.incompleteness(listeners: 4, serverPorts: true) != nil
                }
            #expect(incomplete, "cut at \(cut) looks whole")
        }
    }

    static func parts(_ text: String) -> [String]? {
        ListenAddress(text).map { [$0.host, String($0.port)] }
    }

    @Test func listenAddresses() {
        #expect(Self.parts("127.0.0.1:9100") == ["127.0.0.1", "9100"])
        #expect(Self.parts("[::1]:9100") == ["::1", "9100"])
        #expect(Self.parts(":9100") == ["0.0.0.0", "9100"])
        #expect(Self.parts("localhost:0") == ["localhost", "0"])
        for bad in ["9100", "::1:9100", "host:", "host:70000", "host:-1", "[::1:9100", "[]:1"] {
            #expect(ListenAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func theMetricsFileIsReplacedWhole() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("rst.prom").path
        try ReportFile.replace(path, with: "a 1\n")
        let first = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        try ReportFile.replace(path, with: "a 2\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a 2\n")
        // A new inode: renamed over the old one, never rewritten in place.
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int != first)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
        let missing = directory.appendingPathComponent("no/such.prom").path
        #expect(throws: ReportError.self) { try ReportFile.replace(missing, with: "a 1\n") }
    }

    @Test func usageErrorsExit64() throws {
        for arguments in [
            ["--metrics-listen", "9100"], ["--metrics-listen", "host:99999"], ["--metrics-interval", "0.5"],
            ["--metrics-file", "-"],
        ] {
            let run = try Binary.run(["capture", "-i", "lo"] + arguments)
            #expect(run.status == 64, "\(arguments): \(run.standardError)")
        }
    }
}

/// The HTTP endpoint in process, on a port the kernel picks, scraped with curl: needs no root.
@Suite struct MetricsServerTests {
    static let curl = ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `curl -s -i` of `url`: status line, headers and body.
    static func fetch(_ url: String, _ extra: [String] = []) throws -> Binary.Run {
        try Binary.run(["-s", "-i", "--max-time", "5"] + extra + [url], executable: curl!)
    }

    @Test(.enabled(if: curl != nil, "curl is not installed"))
    func servesMetricsAnd404sElsewhereAndReleasesThePort() throws {
        let metrics = CaptureMetrics(listeners: 4)
        metrics.update(CaptureMetricsTests.snapshot())
        let server = try MetricsServer(
            address: try #require(ListenAddress("127.0.0.1:0")), registry: metrics.registry)
        let base = "http://\(server.boundAddress)"
        #expect(server.boundAddress.hasPrefix("127.0.0.1:") && !server.boundAddress.hasSuffix(":0"))
        let ok = try Self.fetch(base + "/metrics")
        #expect(ok.status == 0)
        let parts = ok.standardOutput.components(separatedBy: "\r\n\r\n")
        #expect(parts[0].hasPrefix("HTTP/1.1 200 OK"), "\(ok.standardOutput)")
        #expect(parts[0].lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
        let text = try PrometheusText.parse(parts.dropFirst().joined(separator: "\r\n\r\n")).get()
        #expect(text.sum("rst_detective_incidents_total") == Double(CaptureMetricsTests.snapshot().report.incidents))
        let other = try Self.fetch(base + "/")
        #expect(other.standardOutput.hasPrefix("HTTP/1.1 404 Not Found"), "\(other.standardOutput)")
        #expect(try Self.fetch(base + "/metricsx").standardOutput.hasPrefix("HTTP/1.1 404"))
        #expect(try Self.fetch(base + "/metrics?name=x").standardOutput.hasPrefix("HTTP/1.1 200"))
        #expect(try Self.fetch(base + "/metrics", ["-X", "POST"]).standardOutput.hasPrefix("HTTP/1.1 405"))
        server.shutdown()
        // Refused once shut down: curl exits 7 (failed to connect).
        #expect(try Self.fetch(base + "/metrics").status == 7)
    }

    @Test func anAddressInUseExitsTwo() throws {
        let metrics = CaptureMetrics(listeners: 4)
        let server = try MetricsServer(
            address: try #require(ListenAddress("127.0.0.1:0")), registry: metrics.registry)
        defer { server.shutdown() }
        let run = try Binary.run(["capture", "-i", "lo", "--metrics-listen", server.boundAddress, "--duration", "1"])
        // Without root the interface cannot be opened first (1); as root the port is the failure (2).
        if getuid() == 0 {
            #expect(run.status == 2, "\(run.standardError)")
            #expect(run.standardError.contains("cannot listen for metrics on '\(server.boundAddress)': "))
        } else {
            #expect(run.status == 1, "\(run.standardError)")
        }
    }
}
