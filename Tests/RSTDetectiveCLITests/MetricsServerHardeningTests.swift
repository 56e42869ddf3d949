import Foundation
import NIOCore
import Testing

@testable import rst_detective

/// The metrics endpoint against hostile clients: `Tests/Lab/metrics-attack.py` pipelines without reading,
/// holds idle connections and sends requests that are not HTTP, all bounded in time.
@Suite struct MetricsServerHardeningTests {
    static let attack = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent(
        "Lab/metrics-attack.py")
    static let python = (try? Binary.run(["python3", "-c", "pass"], executable: "/usr/bin/env"))?.status == 0

    /// What `metrics-attack.py` reports, by kind of client and figure.
    static func attack(_ address: String, _ arguments: [String], inNamespace namespace: String? = nil) throws
        -> [String: [String: Any]]
    {
        let command = ["python3", attack.path, address] + arguments
        let run =
            if let namespace {
                try Binary.run(["netns", "exec", namespace] + command, executable: "/usr/sbin/ip")
            } else {
                try Binary.run(command, executable: "/usr/bin/env")
            }
        try #require(run.status == 0, "metrics-attack: \(run.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8))
        return try #require(json as? [String: [String: Any]])
    }

    /// A request that is not HTTP gets a 400 that says `Connection: close`, and the connection is closed.
    @Test(.enabled(if: python, "python3 is needed for the clients"))
    func aBadRequestIsAnsweredAndClosed() throws {
        let server = try MetricsServer(
            address: try #require(ListenAddress("127.0.0.1:0")), registry: CaptureMetrics(listeners: 1).registry)
        defer { server.shutdown() }
        let bad = try #require(
            Self.attack(server.boundAddress, ["--seconds", "2", "--pipeliners", "0", "--idle", "0", "--bad", "1"])[
                "bad"])
        let replies = try #require(bad["replies"] as? [String: Int])
        #expect(Array(replies.keys) == ["HTTP/1.1 400 Bad Request"])
        // Each close comes right after its reply, so the client goes on with a new connection at once; only
        // the last reply may be cut off by the end of the attack.
        let closed = bad["closed_after_reply"] as? Int ?? 0
        #expect(closed >= 1 && replies.values.reduce(0, +) - closed <= 1, "\(bad)")
        #expect(bad["longest_close"] as? Double ?? 9 < 1, "\(bad)")
    }

    /// A connection that sends no request, or none after its response, is closed after the read or the idle
    /// timeout (not before it; the bound after it is loose, for a loaded machine). Past the connection limit
    /// the stalest connection is closed for a new one: with timeouts far longer than the test, only that can
    /// close it.
    @Test(.enabled(if: python, "python3 is needed for the clients"))
    func silentConnectionsAreClosedAndTheStalestMakesRoom() throws {
        func serve(read: TimeAmount, idle: TimeAmount) throws -> (MetricsServer, String) {
            let limits = MetricsServer.Limits(
                maxConnections: 4, readTimeout: read, idleTimeout: idle, writeTimeout: .seconds(1), maxPipelined: 4)
            let server = try MetricsServer(
                address: try #require(ListenAddress("127.0.0.1:0")), registry: CaptureMetrics(listeners: 1).registry,
                limits: limits)
            return (server, try #require(server.boundAddress.split(separator: ":").last.map(String.init)))
        }
        let (timing, timingPort) = try serve(read: .milliseconds(300), idle: .milliseconds(600))
        defer { timing.shutdown() }
        let (crowded, crowdedPort) = try serve(read: .seconds(30), idle: .seconds(30))
        defer { crowded.shutdown() }
        // Times, in seconds after its connect, at which the server closed: a silent connection, and one that
        // sent a keep-alive request first; then, on the other server, a scrape after 4 silent connections,
        // and whether the oldest of them was closed for it while the newest stays open.
        let script = """
            import socket, time
            def closed_after(sock, start):
                sock.settimeout(10)
                while sock.recv(65536): pass
                return round(time.monotonic() - start, 2)
            start = time.monotonic()
            silent = socket.create_connection(("127.0.0.1", \(timingPort)))
            kept = socket.create_connection(("127.0.0.1", \(timingPort)))
            kept.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            print(closed_after(silent, start), closed_after(kept, start))
            crowd = [socket.create_connection(("127.0.0.1", \(crowdedPort))) for _ in range(4)]
            time.sleep(0.2)
            scrape = socket.create_connection(("127.0.0.1", \(crowdedPort)))
            scrape.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            scrape.settimeout(10); reply = b""
            while chunk := scrape.recv(65536): reply += chunk
            crowd[0].settimeout(5)
            evicted = crowd[0].recv(1) == b""
            crowd[3].setblocking(False)
            try:
                newest_open = crowd[3].recv(1) != b""
            except BlockingIOError:
                newest_open = True
            print(reply.split(b"\\r\\n")[0].decode(), evicted, newest_open)
            """
        let run = try Binary.run(["python3", "-c", script], executable: "/usr/bin/env")
        try #require(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n").map { $0.split(separator: " ") }
        try #require(lines.count == 2, "\(run.standardOutput)")
        let silent = try #require(Double(lines[0][0]))
        let kept = try #require(Double(lines[0][1]))
        #expect(silent >= 0.25 && silent < 3, "a silent connection closed after \(silent) s")
        #expect(kept >= 0.55 && kept < 3, "a kept-alive connection closed after \(kept) s")
        #expect(lines[1] == ["HTTP/1.1", "200", "OK", "True", "True"], "\(run.standardOutput)")
    }

    /// The three attacks at once on `capture`, as root in a network namespace of its own with 256 descriptors:
    /// 8 clients pipelining without reading, 300 idle connections (each opened again once closed) and clients
    /// sending requests that are not HTTP. Meanwhile a scrape answers within 100 ms, RSS grows by less than
    /// 64 MiB, summary.csv is rewritten every second and keeps counting the traffic, and no report write
    /// fails.
    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make a network namespace and capture"),
        .enabled(if: ReusePortKernelTests.labIsPossible, "cannot make a network namespace, or python3 is missing"),
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is needed to scrape"),
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "prlimit is needed")
    )
    func aCaptureUnderAttackKeepsServingAndReporting() throws {
        let namespace = "rstd-metrics-attack-\(getpid())"
        let ip = "/usr/sbin/ip"
        _ = try Binary.run(["netns", "del", namespace], executable: ip)
        try #require(try Binary.run(["netns", "add", namespace], executable: ip).status == 0)
        defer { _ = try? Binary.run(["netns", "del", namespace], executable: ip) }
        #expect(try Binary.run(["-n", namespace, "link", "set", "lo", "up"], executable: ip).status == 0)
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let errors = directory.appendingPathComponent("capture.err").path
        let summary = directory.appendingPathComponent("summary.csv").path
        let capture = try Binary.startCapture(
            [
                "--nofile=256:256", ip, "netns", "exec", namespace, Binary.url.path, "capture", "-i", "lo",
                "--metrics-listen", "127.0.0.1:9477", "--report-dir", directory.path, "--report-interval", "1",
                "tcp port 8080",
            ], executable: "/usr/bin/prlimit", interface: "lo", errors: errors)
        let pid = capture.processIdentifier
        func inNamespace(_ arguments: [String]) throws -> Binary.Run {
            try Binary.run(["netns", "exec", namespace] + arguments, executable: ip)
        }
        /// A fresh scrape: its status and its time in milliseconds, as curl measures it.
        func scrape() throws -> (status: String, milliseconds: Double) {
            let run = try inNamespace([
                "curl", "-s", "-o", "/dev/null", "--max-time", "5", "-w", "%{http_code} %{time_total}",
                "http://127.0.0.1:9477/metrics",
            ])
            let words = run.standardOutput.split(separator: " ")
            return (String(words.first ?? ""), (Double(words.last ?? "") ?? 99) * 1000)
        }
        func memory(_ field: String) -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try scrape().status == "200")
        let idle = memory("VmRSS")

        let seconds = 10.0
        nonisolated(unsafe) var attack: [String: [String: Any]] = [:]
        let attacked = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            attack =
                (try? Self.attack("127.0.0.1:9477", ["--seconds", String(seconds)], inNamespace: namespace)) ?? [:]
            attacked.signal()
        }
        var scrapes: [(status: String, milliseconds: Double)] = []
        var versions = Set<Int>()
        var refused: [Int] = []
        let end = Date().addingTimeInterval(seconds - 0.5)
        Thread.sleep(forTimeInterval: 0.5)
        while Date() < end {
            scrapes.append(try scrape())
            // Traffic for the capture: a refused connection to port 8080, an attempt summary.csv counts.
            _ = try inNamespace(["curl", "-s", "--max-time", "1", "http://127.0.0.1:8080/"])
            if let inode = (try? FileManager.default.attributesOfItem(atPath: summary))?[.systemFileNumber] as? Int {
                versions.insert(inode)
            }
            refused.append(Int((try? LiveCaptureTests.summary(summary))?["outcome_refused"] ?? "") ?? -1)
            Thread.sleep(forTimeInterval: 0.2)
        }
        let peak = memory("VmHWM")
        attacked.wait()
        kill(pid, SIGINT)
        capture.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""

        #expect(scrapes.allSatisfy { $0.status == "200" }, "\(scrapes)")
        if Binary.isSanitized {
            // Several times slower: only that the scrapes, the reports and the analysis went on.
            #expect(scrapes.count >= 3, "\(scrapes)")
            #expect(versions.count >= 3, "summary.csv rewritten \(versions.count) times")
            #expect((refused.last ?? 0) > (refused.first ?? 0), "\(refused)")
        } else {
            #expect(scrapes.count >= 10)
            #expect(scrapes.allSatisfy { $0.milliseconds < 100 }, "\(scrapes)")
            #expect(peak - idle < 64 << 20, "RSS \(idle >> 20) MiB idle, \(peak >> 20) MiB at most under attack")
            #expect(versions.count >= Int(seconds) - 3, "summary.csv rewritten \(versions.count) times")
            #expect((refused.last ?? 0) > (refused.first ?? 0) + 5, "\(refused)")
        }
        #expect(!diagnostics.contains("Too many open files"), "\(diagnostics)")
        #expect(capture.terminationStatus == 0, "\(diagnostics)")
        // The attack really happened: every kind got its connections, and each 400 was followed by a close.
        let pipeliners = attack["pipeliner"] ?? [:]
        let idlers = attack["idle"] ?? [:]
        let bad = attack["bad"] ?? [:]
        #expect(pipeliners["bytes_sent"] as? Int ?? 0 > 1 << 20, "\(attack)")
        #expect(idlers["opened"] as? Int ?? 0 >= 300, "\(attack)")
        let replies = (bad["replies"] as? [String: Int])?["HTTP/1.1 400 Bad Request"] ?? 0
        // Each of the 4 bad clients may have its last reply cut off by the end of the attack.
        #expect(replies > 4 && replies - (bad["closed_after_reply"] as? Int ?? 0) <= 4, "\(attack)")
    }
}
