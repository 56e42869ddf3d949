import Foundation
import Testing

/// The service and Prometheus in the live lab (`Tests/Lab/live-lab.py`): part of `LiveCaptureTests`, whose
/// tests run one at a time, since they share the lab's namespaces.
extension LiveCaptureTests {
    static let serviceRun = lab.deletingLastPathComponent().appendingPathComponent("service-run.py")
    static let prometheus = "/usr/bin/prometheus"

    /// `GET http://127.0.0.1:PORT/PATH` with `query` from the lab's server namespace: the body, or nil.
    static func get(_ port: Int, _ path: String, query: String? = nil) throws -> String? {
        var arguments = ["curl", "-s", "-f", "--max-time", "5"]
        if let query { arguments += ["-G", "--data-urlencode", "query=\(query)"] }
        let run = try inServerNamespace(arguments + ["http://127.0.0.1:\(port)\(path)"])
        return run.status == 0 ? run.standardOutput : nil
    }

    /// An instant query through Prometheus's HTTP API: `(status, [(labels, value)])`.
    static func promQuery(_ expr: String) throws -> (status: String, samples: [([String: String], Double)]) {
        guard let body = try get(9090, "/api/v1/query", query: expr),
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        else { return ("unreachable", []) }
        let data = object["data"] as? [String: Any]
        let result = data?["result"] as? [[String: Any]] ?? []
        let samples = result.map { series -> ([String: String], Double) in
            let value = (series["value"] as? [Any])?.last as? String
            return (series["metric"] as? [String: String] ?? [:], Double(value ?? "") ?? .nan)
        }
        return (object["status"] as? String ?? "?", samples)
    }

    /// The unit's command line, run by `Tests/Lab/service-run.py` as systemd would run it (its sandbox,
    /// capabilities and user emulated, since systemd is not PID 1 here) in the server's namespace, with the
    /// packaged options file and a per-interface one for the lab's port: it captures as the user
    /// rst-detective with no capability left, and writes the reports and the metrics file where the unit
    /// says; SIGTERM (systemd's stop) ends it with exit status 0 and the final reports.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make network namespaces and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        .enabled(
            if: ["/usr/bin/setpriv", "/usr/bin/unshare", "/usr/bin/systemd-sysusers", "/usr/bin/curl"].allSatisfy(
                FileManager.default.isExecutableFile(atPath:)),
            "setpriv, unshare (util-linux), systemd-sysusers or curl is missing")
    )
    func serviceCommandLineCapturesAsTheUnitRunsIt() throws {
        let setUp = try Self.runLab(["up"])
        try #require(setUp.status == 0, "live-lab up: \(setUp.standardError)")
        defer { _ = try? Self.runLab(["down"]) }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // /etc/default as the package installs it, plus the administrator's file for this interface.
        let etcDefault = directory.appendingPathComponent("etc-default")
        try FileManager.default.createDirectory(at: etcDefault, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: PackagingTests.packaging.appendingPathComponent("rst-detective.default"),
            to: etcDefault.appendingPathComponent("rst-detective"))
        try "RSTD_FILTER=tcp port 8080\nRSTD_OPTIONS=--report-interval 1 --metrics-interval 1\n".write(
            to: etcDefault.appendingPathComponent("rst-detective-srv0"), atomically: true, encoding: .utf8)
        let common = [PackagingTests.unit.path, "srv0", "--etc-default", etcDefault.path]
        let argv = try Binary.run(["python3", Self.serviceRun.path, "argv"] + common, executable: "/usr/bin/env")
        #expect(
            argv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
                == """
                ["/usr/bin/rst-detective", "capture", "-i", "srv0", "-Z", "rst-detective", "--report-dir", \
                "/var/lib/rst-detective/srv0", "--metrics-file", \
                "/var/lib/prometheus/node-exporter/rst-detective-srv0.prom", "--metrics-listen", "127.0.0.1:9477", \
                "--report-interval", "1", "--metrics-interval", "1", "tcp", "port", "8080"]
                """, "\(argv.standardError)")

        let root = directory.appendingPathComponent("root")
        let errors = directory.appendingPathComponent("journal").path
        let service = try Binary.startCapture(
            [
                "netns", "exec", "rstd-live-srv", "python3", Self.serviceRun.path, "exec",
            ] + common + ["--root", root.path, "--binary", Binary.url.path],
            interface: "srv0", errors: errors)
        let pid = service.processIdentifier
        // Every step was an exec: this is the capture, now the user rst-detective with no capability.
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> [String] {
            let line = status.components(separatedBy: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return line.dropFirst(name.count + 1).split(whereSeparator: \.isWhitespace).map(String.init)
        }
        let passwd = try String(contentsOfFile: root.path + "/etc/passwd", encoding: .utf8)
        let user =
            passwd.components(separatedBy: "\n").first { $0.hasPrefix("rst-detective:") }?
            .split(separator: ":").map(String.init) ?? []
        try #require(user.count == 7, "\(passwd)")
        #expect(field("Uid") == Array(repeating: user[2], count: 4), "\(status)")
        #expect(field("Gid") == Array(repeating: user[3], count: 4), "\(status)")
        #expect(field("Groups") == [user[3]], "\(status)")
        for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            #expect(field(caps) == ["0000000000000000"], "\(caps): \(status)")
        }
        // CAP_NET_RAW (13), CAP_SETGID (6), CAP_SETUID (7): the capture opened srv0 without CAP_NET_ADMIN.
        #expect(field("CapBnd") == [String(format: "%016x", 1 << 13 | 1 << 6 | 1 << 7)], "\(status)")
        #expect(field("NoNewPrivs") == ["1"])
        // RSTD_METRICS_LISTEN from the packaged options file; the server-port families come with traffic.
        #expect(try Self.get(9477, "/metrics")?.contains("rst_detective_packets_total") ?? false)

        let traffic = try Self.runLab(["traffic", "--out", directory.path])
        try #require(traffic.status == 0, "live-lab traffic: \(traffic.standardError)")
        let expected = try Self.clientResets(directory.appendingPathComponent("client.csv").path)
        #expect(expected.count >= 3, "the lab made too few incidents to test: \(traffic.standardOutput)")
        Thread.sleep(forTimeInterval: 1.5)
        let scraped = try PrometheusText.parse(try Self.get(9477, "/metrics") ?? "").get()
        #expect(scraped.value("rst_detective_incidents_total", [("server_port", "8080")]) == Double(expected.count))
        kill(pid, SIGTERM)
        service.waitUntilExit()
        let journal = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(service.terminationStatus == 0, "\(journal)")
        #expect(journal.contains("serving metrics on http://127.0.0.1:9477/metrics"), "\(journal)")

        let state = root.path + "/var/lib/rst-detective/srv0"
        #expect(Set(try Self.incidents(state + "/incidents.csv")) == expected)
        let prom = root.path + "/var/lib/prometheus/node-exporter/rst-detective-srv0.prom"
        let final = try PrometheusText.parse(String(contentsOfFile: prom, encoding: .utf8)).get()
        #expect(final.value("rst_detective_incidents_total", [("server_port", "8080")]) == Double(expected.count))
        func attributes(_ path: String) throws -> (owner: String?, group: String?, mode: Int) {
            let all = try FileManager.default.attributesOfItem(atPath: path)
            return (
                (all[.ownerAccountID] as? NSNumber)?.stringValue, (all[.groupOwnerAccountID] as? NSNumber)?.stringValue,
                (all[.posixPermissions] as? NSNumber)?.intValue ?? -1
            )
        }
        for path in [state + "/incidents.csv", state + "/summary.csv", prom] {
            #expect(try attributes(path).owner == user[2], "\(path)")
        }
        // node_exporter (another user) can read the metrics file; the reports only the service's group.
        #expect(try attributes(prom).mode & 0o004 != 0)
        let stateDirectory = try attributes(state)
        #expect(stateDirectory.owner == "0" && stateDirectory.group == user[3] && stateDirectory.mode == 0o770)
    }

    /// The real Prometheus server (Debian's `prometheus`) scrapes a live `capture --metrics-listen` every
    /// second in the lab's server namespace, with the packaged alert rules loaded; after the lab's traffic,
    /// `rst_detective_incidents_total` read back through `/api/v1/query` is the number of connections the
    /// clients saw reset, every dashboard query evaluates, and TCPResetAfterHandshake is pending.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make network namespaces and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: prometheus)
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"),
            "prometheus (Debian package) or curl is not installed")
    )
    func prometheusReadsTheIncidentsTheClientsSaw() throws {
        let started = Date()
        let setUp = try Self.runLab(["up"])
        try #require(setUp.status == 0, "live-lab up: \(setUp.standardError)")
        defer { _ = try? Self.runLab(["down"]) }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = chmod(directory.path, 0o777)
        let errors = directory.appendingPathComponent("capture.err").path
        let capture = try Self.startCapture(
            [
                "-Z", "nobody", "--report-dir", directory.appendingPathComponent("reports").path,
                "--report-interval", "1", "--metrics-listen", "127.0.0.1:9477",
            ], errors: errors)
        defer {
            kill(capture.processIdentifier, SIGINT)
            capture.waitUntilExit()
        }

        let config = directory.appendingPathComponent("prometheus.yml").path
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files:
          - \(PackagingTests.rules.path)
        scrape_configs:
          - job_name: rst-detective
            static_configs:
              - targets: ["127.0.0.1:9477"]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = [
            "netns", "exec", "rstd-live-srv", Self.prometheus, "--config.file=\(config)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("tsdb").path)",
            "--web.listen-address=127.0.0.1:9090", "--log.level=warn",
        ]
        let serverLog = directory.appendingPathComponent("prometheus.log").path
        _ = FileManager.default.createFile(atPath: serverLog, contents: nil)
        server.standardOutput = FileHandle.nullDevice
        server.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: serverLog))
        try server.run()
        let serverPid = server.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) { if server.isRunning { kill(serverPid, SIGKILL) } }
        defer {
            kill(serverPid, SIGTERM)
            server.waitUntilExit()
        }
        func poll(seconds: Double, _ done: () throws -> Bool) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try done() { return true }
                Thread.sleep(forTimeInterval: 0.25)
            }
            return try done()
        }
        let log = { (try? String(contentsOfFile: serverLog, encoding: .utf8)) ?? "" }
        try #require(try poll(seconds: 30) { try Self.get(9090, "/-/ready") != nil }, "not ready: \(log())")
        var up: Double?
        // A busy machine (the sanitizer passes run other suites beside this one) delays the first scrape: each
        // wait ends as soon as its condition holds, so only a failure waits it out.
        let scraped = try poll(seconds: 20) {
            up = try Self.promQuery("up{job=\"rst-detective\"}").samples.first?.1
            return up == 1
        }
        #expect(scraped, "up is \(String(describing: up)): \(log())")

        let traffic = try Self.runLab(["traffic", "--out", directory.path])
        try #require(traffic.status == 0, "live-lab traffic: \(traffic.standardError)")
        let expected = try Self.clientResets(directory.appendingPathComponent("client.csv").path)
        #expect(expected.count >= 3, "the lab made too few incidents to test: \(traffic.standardOutput)")

        let query = "sum(rst_detective_incidents_total{job=\"rst-detective\"})"
        var seen: Double?
        let matched = try poll(seconds: 20) {
            seen = try Self.promQuery(query).samples.first?.1
            return seen == Double(expected.count)
        }
        #expect(matched, "Prometheus has \(String(describing: seen)), the clients saw \(expected.count) resets")
        let byPort = try Self.promQuery("rst_detective_incidents_total")
        #expect(byPort.samples.count == 1)
        #expect(byPort.samples.first?.0["server_port"] == "8080")
        #expect(byPort.samples.first?.0["instance"] == "127.0.0.1:9477")

        // Every dashboard query evaluates on the real series; those of the incidents have data.
        for query in try PackagingTests.dashboardQueries() {
            let result = try Self.promQuery(query.expr)
            #expect(result.status == "success", "\(query.title) \(query.refId): \(query.expr)")
            if query.expr.contains("rst_detective_incidents_total") && !query.expr.contains("[1h]") {
                #expect(!result.samples.isEmpty, "\(query.title): \(query.expr)")
            }
        }
        // The packaged rules are loaded and healthy, and the incidents made TCPResetAfterHandshake pending
        // (it fires after 1 minute).
        let rules = try Self.get(9090, "/api/v1/rules") ?? ""
        #expect(rules.contains("\"name\":\"TCPResetAfterHandshake\""), "\(rules.prefix(500))")
        #expect(!rules.contains("\"health\":\"err\""), "\(rules)")
        var alerts = ""
        let alerted = try poll(seconds: 15) {
            alerts = try Self.get(9090, "/api/v1/alerts") ?? ""
            return alerts.contains("\"alertname\":\"TCPResetAfterHandshake\"")
        }
        #expect(alerted, "\(alerts)")
        if !Binary.isSanitized { #expect(Date().timeIntervalSince(started) < 60) }
    }
}
