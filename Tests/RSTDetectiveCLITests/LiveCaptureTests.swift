import Foundation
import Testing

/// `rst-detective capture` on a real interface: `Tests/Lab/live-lab.py` makes two network namespaces joined
/// by a veth pair and real clients and a real server whose accept queue overflows with
/// `tcp_abort_on_overflow=1`, so the kernel resets some connections right after their handshake. The tool
/// captures on the server's veth as a user would, dropping root with -Z.
@Suite(.serialized) struct LiveCaptureTests {
    static let lab = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent("Lab/live-lab.py")

    static func runLab(_ arguments: [String]) throws -> Binary.Run {
        try Binary.run(["python3", lab.path] + arguments, executable: "/usr/bin/env")
    }

    /// The connections the client saw reset right after connect() succeeded, as `ip,port,ip,port`.
    static func clientResets(_ path: String) throws -> Set<String> {
        Set(
            try ReusePortCommandsTests.rows(String(contentsOfFile: path, encoding: .utf8))
                .filter { $0["result"] == "reset_after_connect" }.map(tuple))
    }

    static func tuple(_ row: [String: String]) -> String {
        "\(row["client_ip"] ?? ""),\(row["client_port"] ?? ""),\(row["server_ip"] ?? ""),\(row["server_port"] ?? "")"
    }

    static func incidents(_ path: String) throws -> [String] {
        try ReusePortCommandsTests.rows(String(contentsOfFile: path, encoding: .utf8)).map(tuple)
    }

    /// Where the tracepoint is there (Linux 6.10 or later, as root), every incident's `kernel_reason` is the
    /// kernel's own: an accept-queue overflow answers the ACK from the listener with `INVALID_SYN`. Otherwise
    /// the column is empty and the summary says why. The capture's tracefs instance is gone after it.
    static func checkKernelReasons(_ path: String, expected: Set<String>, diagnostics: String, pid: Int32) throws {
        let text = try String(contentsOfFile: diagnostics, encoding: .utf8)
        let rows = ReusePortCommandsTests.rows(try String(contentsOfFile: path, encoding: .utf8))
        #expect(Set(rows.map(tuple)) == expected)
        let format = "/sys/kernel/tracing/events/tcp/tcp_send_reset/format"
        let hasReason = (try? String(contentsOfFile: format, encoding: .utf8))?.contains("reason") ?? false
        guard hasReason else {
            #expect(rows.allSatisfy { $0["kernel_reason"] == "" })
            #expect(text.contains("kernel_reason unavailable: "), "\(text)")
            return
        }
        #expect(rows.allSatisfy { $0["kernel_reason"] == "INVALID_SYN" }, "\(rows.map { $0["kernel_reason"] ?? "" })")
        #expect(text.contains("kernel_reason: \(expected.count) of \(expected.count) server RSTs joined"), "\(text)")
        let instances = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/tracing/instances")) ?? []
        #expect(!instances.contains("rst-detective-\(pid)"), "\(instances)")
    }

    /// Starts `rst-detective capture -i srv0 ARGUMENTS tcp port 8080` in the lab's server namespace, standard
    /// error to a new file `errors`, killed after 90 s if it is still running, and waits for its start line
    /// (`Binary.startCapture`).
    ///
    /// - Parameter networkNamespaceOnly: Enter only the network namespace (`nsenter --net`), keeping this
    ///   /sys: `ip netns exec` mounts one without tracefs, so the tracepoint join needs this.
    static func startCapture(_ arguments: [String], errors: String, networkNamespaceOnly: Bool = false) throws
        -> Process
    {
        let command = [Binary.url.path, "capture", "-i", "srv0"] + arguments + ["tcp", "port", "8080"]
        return try networkNamespaceOnly
            ? Binary.startCapture(
                ["--net=/run/netns/rstd-live-srv"] + command, executable: "/usr/bin/nsenter", interface: "srv0",
                errors: errors, killAfter: 90)
            : Binary.startCapture(
                ["netns", "exec", "rstd-live-srv"] + command, interface: "srv0", errors: errors, killAfter: 90)
    }

    /// Waits until `path` contains `text`, for at most `seconds`.
    static func waitFor(_ text: String, in path: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let content = try? String(contentsOfFile: path, encoding: .utf8), content.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make network namespaces and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing")
    )
    func incidentsReportedLiveAreTheResetsTheClientSaw() throws {
        let setUp = try Self.runLab(["up"])
        try #require(setUp.status == 0, "live-lab up: \(setUp.standardError)")
        defer { _ = try? Self.runLab(["down"]) }
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // -Z nobody writes the reports as nobody, so the directory must let it.
        _ = chmod(directory.path, 0o777)
        let errors = directory.appendingPathComponent("capture.err").path
        let live = directory.appendingPathComponent("live.csv").path
        let saved = directory.appendingPathComponent("live.pcap").path
        let reports = directory.appendingPathComponent("reports").path
        let page = directory.appendingPathComponent("live.html").path
        let capture = try Self.startCapture(
            [
                "-Z", "nobody", "--csv", live, "-w", saved, "--report-dir", reports, "--report-interval", "1", "--html",
                page,
            ], errors: errors)
        let pid = capture.processIdentifier
        // A second capture keeps root, so it can join each RST to the kernel's tcp:tcp_send_reset event.
        let joinedErrors = directory.appendingPathComponent("joined.err").path
        let joined = directory.appendingPathComponent("joined.csv").path
        let joining = try Self.startCapture(["--csv", joined], errors: joinedErrors, networkNamespaceOnly: true)
        let joiningPid = joining.processIdentifier

        // Beside the incidents, a flood of resets from a closed port in the client's namespace (5,000 a second):
        // tcp_send_reset events the join must read past without losing those of the incidents.
        let traffic = try Self.runLab(["traffic", "--out", directory.path, "--flood", "5000"])
        try #require(traffic.status == 0, "live-lab traffic: \(traffic.standardError)")
        let expected = try Self.clientResets(directory.appendingPathComponent("client.csv").path)
        #expect(expected.count >= 3, "the lab made too few incidents to test: \(traffic.standardOutput)")

        // Each incident is on disk in live.csv.partial as soon as its cause is judged, 2 s after its ACK (a
        // quiet link moves the clock on by the wall clock), before the capture ends; the report interval (1 s)
        // then publishes whole copies under the final names.
        Thread.sleep(forTimeInterval: 2.5)
        #expect(Set(try Self.incidents(live + ".partial")) == expected)
        #expect(Self.waitFor("metric,value", in: reports + "/summary.csv", seconds: 3))
        Thread.sleep(forTimeInterval: 1.5)
        #expect(Set(try Self.incidents(live)) == expected)
        #expect(Set(try Self.incidents(reports + "/incidents.csv")) == expected)
        // The --html page too is rewritten every interval.
        let livePage = try String(contentsOfFile: page, encoding: .utf8)
        #expect(livePage.contains("data-metric=\"incidents\">\(expected.count)<"))

        kill(pid, SIGINT)
        capture.waitUntilExit()
        kill(joiningPid, SIGINT)
        joining.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(capture.terminationStatus == 0, "\(diagnostics)")
        #expect(diagnostics.contains("kernel_reason unavailable: -Z gives up root"))
        try Self.checkKernelReasons(joined, expected: expected, diagnostics: joinedErrors, pid: joiningPid)
        let reported = try Self.incidents(live)
        #expect(reported.count == Set(reported).count, "an incident was reported twice")
        #expect(Set(reported) == expected)
        #expect(Set(try Self.incidents(reports + "/incidents.csv")) == expected)
        #expect(!FileManager.default.fileExists(atPath: live + ".partial"))
        #expect(!FileManager.default.fileExists(atPath: reports + "/incidents.csv.partial"))
        let summary = try String(contentsOfFile: reports + "/summary.csv", encoding: .utf8)
        for metric in ["interface,srv0", "interrupted,1", "packets_dropped_by_kernel,0", "incidents,\(expected.count)"]
        {
            #expect(summary.contains(metric + "\r\n"), "summary.csv lacks \(metric)")
        }
        #expect(diagnostics.contains("captured on srv0 for "))
        let finalPage = try String(contentsOfFile: page, encoding: .utf8)
        #expect(finalPage.contains("<li><code>interface srv0, filter &#39;tcp port 8080&#39;</code></li>"))
        #expect(finalPage.contains("data-metric=\"incidents\">\(expected.count)<"))
        #expect(finalPage.contains("Showing \(expected.count) of \(expected.count) incident(s)"))

        // Written after root was dropped.
        let owner = try FileManager.default.attributesOfItem(atPath: live)[.ownerAccountName] as? String
        #expect(owner == "nobody")

        // The saved packets give the same incidents offline.
        let offline = try Binary.run(["analyze", "--quiet", saved])
        #expect(offline.status == 0, "\(offline.standardError)")
        #expect(Set(ReusePortCommandsTests.rows(offline.standardOutput).map(Self.tuple)) == expected)
    }

    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root: without it, permission is refused first"))
    func aMissingInterfaceListsTheOthers() throws {
        let missing = try Binary.run(["capture", "-i", "rstd-no-such0"])
        #expect(missing.status == 1)
        #expect(missing.standardError.hasPrefix("rst-detective: no such interface 'rstd-no-such0'; interfaces: "))
        #expect(missing.standardError.contains("lo"))
    }

    @Test func usageErrorsAndTheInterfaceList() throws {
        let badFilter = try Binary.run(["capture", "-i", "lo", "tcp", "port"])
        #expect(badFilter.status == 64)
        #expect(badFilter.standardError.contains("bad filter 'tcp port'"))
        #expect(try Binary.run(["capture", "-i", "lo", "--filter", "tcp", "port", "80"]).status == 64)
        #expect(try Binary.run(["capture", "-i", "lo", "-s", "10"]).status == 64)
        let interfaces = try Binary.run(["interfaces"])
        #expect(interfaces.status == 0)
        #expect(interfaces.standardOutput.contains("\nlo "))
    }

    /// Without CAP_NET_RAW (dropped from the bounding set with setpriv, so the root-owned binary still runs
    /// wherever the checkout is), the error names it.
    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root, to drop a capability for the test"))
    func withoutPermissionTheMissingCapabilityIsNamed() throws {
        let run = try Binary.run(
            ["--bounding-set=-net_raw", "--inh-caps=-all", "--", Binary.url.path, "capture", "-i", "lo"],
            executable: "/usr/bin/setpriv")
        #expect(run.status == 1, "\(run.standardError)")
        #expect(run.standardError.hasPrefix("rst-detective: cannot capture on 'lo': "))
        #expect(run.standardError.contains("CAP_NET_RAW"))
    }

    @Test(.enabled(if: ReusePortKernelTests.isRoot, "needs root to capture"))
    func stopsAfterCountOrDuration() throws {
        let duration = try Binary.run(["capture", "-i", "lo", "--duration", "0.5", "--quiet", "tcp port 1"])
        #expect(duration.status == 0, "\(duration.standardError)")
        #expect(duration.standardOutput.hasPrefix("syn_time,"))
    }
}
