import Foundation
import RSTDetective
import Testing

/// Reads the metrics file over and over while a capture rewrites it, keeping what it saw.
private final class MetricsFileReader: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private(set) var reads = 0
    private(set) var versions = Set<String>()
    private(set) var failures: [String] = []
    /// Whether a version had the server-port families: every later one must have them too.
    private var sawServerPorts = false

    func start(_ path: String) {
        Thread.detachNewThread {
            while self.lock.withLock({ self.running }) {
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    var failure: String?
                    switch PrometheusText.parse(text) {
                    case .failure(let error):
                        failure = error.description
                    case .success(let parsed):
                        let ports = parsed.types["rst_detective_incidents_total"] != nil
                        let required = self.lock.withLock { self.sawServerPorts }
                        failure = parsed.incompleteness(listeners: 1, serverPorts: required)
                        if ports { self.lock.withLock { self.sawServerPorts = true } }
                    }
                    self.lock.withLock {
                        self.reads += 1
                        self.versions.insert(text)
                        if let failure { self.failures.append(failure) }
                    }
                }
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
    }

    func stop() -> (reads: Int, versions: Int, failures: [String]) {
        lock.withLock {
            running = false
            return (reads, versions.count, failures)
        }
    }
}

extension LiveCaptureTests {
    /// In the server's network namespace, where the capture's metrics port is.
    static func inServerNamespace(_ arguments: [String]) throws -> Binary.Run {
        try Binary.run(["netns", "exec", "rstd-live-srv"] + arguments, executable: "/usr/sbin/ip")
    }

    /// `curl -s -i` of `path` on the capture's metrics port: the status line and headers, and the body.
    static func scrape(_ path: String) throws -> (head: String, body: String, status: Int32) {
        let run = try inServerNamespace(["curl", "-s", "-i", "--max-time", "5", "http://127.0.0.1:999" + path])
        let parts = run.standardOutput.components(separatedBy: "\r\n\r\n")
        return (parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"), run.status)
    }

    /// summary.csv as `metric: value`.
    static func summary(_ path: String) throws -> [String: String] {
        var rows: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\r\n").dropFirst() {
            guard let comma = line.firstIndex(of: ",") else { continue }
            rows[String(line[..<comma])] = String(line[line.index(after: comma)...])
        }
        return rows
    }

    /// `capture --metrics-listen --metrics-file` on the live lab's server veth, dropping root with -Z: the port
    /// (999, below 1024, so it must be bound before root is dropped) serves the same incidents as the reports
    /// of the run while it goes on, the file is never seen half written, and after SIGINT the process exits 0,
    /// the port is free and the file's counts are the final reports' counts.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make network namespaces and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is needed to scrape /metrics")
    )
    func metricsServedAndWrittenMatchTheReports() throws {
        let setUp = try Self.runLab(["up"])
        try #require(setUp.status == 0, "live-lab up: \(setUp.standardError)")
        defer { _ = try? Self.runLab(["down"]) }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = chmod(directory.path, 0o777)
        let errors = directory.appendingPathComponent("capture.err").path
        let reports = directory.appendingPathComponent("reports").path
        let prom = directory.appendingPathComponent("rst-detective.prom").path
        let capture = try Self.startCapture(
            [
                "-Z", "nobody", "--report-dir", reports, "--report-interval", "1", "--metrics-file", prom,
                "--metrics-interval", "1", "--metrics-listen", "127.0.0.1:999",
            ], errors: errors)
        let pid = capture.processIdentifier
        #expect(Self.waitFor("serving metrics on http://127.0.0.1:999/metrics", in: errors, seconds: 1))
        let reader = MetricsFileReader()
        reader.start(prom)

        let traffic = try Self.runLab(["traffic", "--out", directory.path])
        try #require(traffic.status == 0, "live-lab traffic: \(traffic.standardError)")
        let expected = try Self.clientResets(directory.appendingPathComponent("client.csv").path)
        #expect(expected.count >= 3, "the lab made too few incidents to test: \(traffic.standardOutput)")

        // Scraped while the capture runs: the incidents are those of incidents.csv, once the report interval
        // has published the last one's row, written when its cause is judged, 2 s after its ACK (longer on a
        // busy machine: the wait ends as soon as it is there).
        var published = try Self.incidents(reports + "/incidents.csv")
        let deadline = Date().addingTimeInterval(Binary.isSanitized ? 20 : 8)
        while Set(published) != expected, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.25)
            published = try Self.incidents(reports + "/incidents.csv")
        }
        let live = try Self.scrape("/metrics")
        #expect(live.status == 0)
        #expect(live.head.hasPrefix("HTTP/1.1 200 OK"), "\(live.head)")
        #expect(live.head.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
        let scraped = try PrometheusText.parse(live.body).get()
        #expect(Set(scraped.types.keys) == Set(captureMetricFamilies.keys).union(serverPortMetricFamilies.keys))
        #expect(scraped.value("rst_detective_incidents_total", [("server_port", "8080")]) == Double(expected.count))
        #expect(scraped.sum("rst_detective_incidents_total") == Double(published.count))
        #expect(Set(published) == expected)
        #expect(scraped.sum("rst_detective_bucket_incidents_total") == Double(expected.count))
        let handshakes = scraped.sum("rst_detective_handshakes_completed_total")
        #expect(handshakes > Double(expected.count))
        #expect(Set(scraped.series("rst_detective_handshakes_completed_total").keys) == ["server_port=\"8080\""])
        #expect(scraped.value("rst_detective_packets_total") ?? 0 > 0)
        let missing = try Self.scrape("/nothing-here")
        #expect(missing.head.hasPrefix("HTTP/1.1 404 Not Found"), "\(missing.head)")

        let seen = reader.stop()
        #expect(seen.failures.isEmpty, "\(seen.failures.prefix(3))")
        #expect(seen.reads > 100 && seen.versions >= 5, "read \(seen.reads) times, \(seen.versions) versions")

        kill(pid, SIGINT)
        capture.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(capture.terminationStatus == 0, "\(diagnostics)")
        // The port is closed and free again.
        #expect(try Self.scrape("/metrics").status == 7)
        let bind = try Self.inServerNamespace([
            "python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 999)); s.listen()",
        ])
        #expect(bind.status == 0, "\(bind.standardError)")

        // The file written at exit has the final reports' counts.
        let final = try PrometheusText.parse(String(contentsOfFile: prom, encoding: .utf8)).get()
        let summary = try Self.summary(reports + "/summary.csv")
        let reported = try Self.incidents(reports + "/incidents.csv")
        #expect(Set(reported) == expected)
        #expect(final.sum("rst_detective_incidents_total") == Double(reported.count))
        #expect(final.sum("rst_detective_handshakes_completed_total") == Double(summary["handshakes_completed"] ?? ""))
        #expect(final.sum("rst_detective_handshakes_completed_total") >= handshakes)
        #expect(final.value("rst_detective_packets_total") == Double(summary["packets"] ?? ""))
        #expect(
            final.value("rst_detective_packets_dropped_by_kernel_total")
                == Double(summary["packets_dropped_by_kernel"] ?? ""))
        for (key, value) in final.series("rst_detective_connection_attempts_total") {
            let outcome = key.dropFirst("outcome=\"".count).dropLast()
            #expect(value == Double(summary["outcome_" + outcome] ?? ""), "\(outcome)")
        }
        for (key, value) in scraped.samples where scraped.types[key.split(separator: "{")[0].description] == "counter" {
            #expect(final.samples[key] ?? -1 >= value, "\(key) went back")
        }
        #expect(final.value("rst_detective_kernel_reason_joined") == 0)
        #expect(final.value("rst_detective_handshakes_open") == Double(summary["handshakes_open"] ?? ""))
        #expect(!FileManager.default.fileExists(atPath: prom + ".partial"))
        let owner = try FileManager.default.attributesOfItem(atPath: prom)[.ownerAccountName] as? String
        #expect(owner == "nobody")
    }
}
