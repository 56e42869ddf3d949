import Foundation
import Testing

/// Causes in a live capture: `rst-detective capture` on the server's veth while `Tests/Lab/cause-lab.py`
/// plays a scenario with listener closes or an accept queue that overflows (`tcp_abort_on_overflow=1`).
/// Each incident's true cause comes from the scenario's own logs (`run` writes NAME.truth.csv: the server's
/// log of each close() and its ListenOverflows counter, the client's results, the lab's own view of the
/// wire), never from the tool. Incident rows are written when judged, 2 s of capture time after their ACK,
/// and published with the per-port verdicts every --report-interval; the final reports must carry the
/// truth's incidents and causes.
@Suite(.serialized) struct LiveCauseTests {
    static let lab = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent("Lab/cause-lab.py")
    static let serverNamespace = "rstd17-srv"

    static func runLab(_ arguments: [String]) throws -> Binary.Run {
        try Binary.run(["python3", lab.path] + arguments, executable: "/usr/bin/env")
    }

    /// The records of a CSV file (RFC 4180: quoted fields may hold commas, quotes and line breaks), header first.
    static func records(_ path: String) throws -> [[String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var characters = text.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? characters.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = characters.next()
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"": quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\n", "\r\n", "\r":
                record.append(field)
                records.append(record)
                record = []
                field = ""
            default: field.append(character)
            }
        }
        if !field.isEmpty || !record.isEmpty { records.append(record + [field]) }
        return records
    }

    /// The rows of a CSV file as column -> value.
    static func rows(_ path: String) throws -> [[String: String]] {
        let all = try records(path)
        guard let header = all.first else { return [] }
        return all.dropFirst().map { Dictionary(zip(header, $0), uniquingKeysWith: { first, _ in first }) }
    }

    static func tuple(_ row: [String: String]) -> String {
        ["client_ip", "client_port", "server_ip", "server_port"].map { row[$0] ?? "" }.joined(separator: ",")
    }

    /// 4-tuple -> cause of each incident in an incidents.csv (or a truth file); nil when a 4-tuple is there twice.
    static func causes(_ path: String) throws -> [String: String]? {
        let rows = try rows(path)
        let causes = Dictionary(rows.map { (tuple($0), $0["cause"] ?? "") }, uniquingKeysWith: { first, _ in first })
        return causes.count == rows.count ? causes : nil
    }

    /// by-server-port.csv's row of `port`.
    static func portRow(_ path: String, port: String) -> [String: String]? {
        (try? rows(path))?.first { $0["server_port"] == port }
    }

    /// The verdict a port's true causes give: the one cause, or `mixed`.
    static func verdict(of causes: Set<String>) -> String {
        causes.count > 1 ? "mixed" : causes.first ?? ""
    }

    @Test(
        .enabled(if: ReusePortKernelTests.isRoot, "needs root, to make network namespaces and capture"),
        .enabled(
            if: ReusePortKernelTests.labIsPossible,
            "cannot make a network namespace, or python3, ip or tcpdump is missing"),
        arguments: [
            // One listener closed and reopened at once, twice: a hundred or more handshakes in flight each time.
            "reopen-d30-r1000-l1",
            // An application accepting one connection per 40 ms behind a backlog of 8: dozens of overflows.
            "overflow-d30-r100-l1-b8",
        ])
    func liveCausesAreTheScenarios(_ scenario: String) throws {
        let up = try Self.runLab(["up", scenario])
        defer { _ = try? Self.runLab(["down"]) }
        try #require(up.status == 0, "cause-lab up: \(up.standardError)")
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let errors = directory.appendingPathComponent("capture.err").path
        let reports = directory.appendingPathComponent("reports").path
        let capture = try Binary.startCapture(
            [
                "netns", "exec", Self.serverNamespace, Binary.url.path, "capture", "-i", "s0", "--report-dir",
                reports, "--report-interval", "1", "tcp", "port", "8080",
            ], interface: "s0", errors: errors, killAfter: 50)
        defer { if capture.isRunning { kill(capture.processIdentifier, SIGKILL) } }

        let played = try Self.runLab(["run", scenario, "--out", directory.path])
        try #require(played.status == 0, "cause-lab run: \(played.standardOutput)\(played.standardError)")
        let truthPath = directory.appendingPathComponent(scenario + ".truth.csv").path
        let truth = try #require(try Self.causes(truthPath), "a 4-tuple twice in the truth")
        try #require(truth.count >= 5, "the lab made too few incidents to test: \(played.standardOutput)")
        var truePortCauses: [String: Set<String>] = [:]
        for (tuple, cause) in truth {
            truePortCauses[String(tuple.split(separator: ",")[3]), default: []].insert(cause)
        }

        // While the capture still runs: the last incidents are judged 2 s after their ACK (the wall clock
        // moves a quiet link's clock on), then published with every report interval (1 s).
        let incidentsPath = reports + "/incidents.csv"
        let portsPath = reports + "/by-server-port.csv"
        var published: [String: String]? = nil
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline {
            published = try? Self.causes(incidentsPath)
            if let published, Set(published.keys) == Set(truth.keys),
                truePortCauses.allSatisfy({ Self.portRow(portsPath, port: $0.key)?["cause"] == Self.verdict(of: $0.value) })
            {
                break
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(capture.isRunning)
        #expect(published.map { Set($0.keys) } == Set(truth.keys), "published while capturing: not the truth's incidents")
        for (port, causes) in truePortCauses {
            #expect(
                Self.portRow(portsPath, port: port)?["cause"] == Self.verdict(of: causes),
                "published while capturing: port \(port) \(String(describing: Self.portRow(portsPath, port: port)))")
        }

        // A published summary adds up: the incidents judged, by cause, and those still awaiting one.
        let causeRows = ["listener_closed", "accept_queue_overflow", "reuseport_churn", "unknown", "awaiting_cause"]
        let snapshot = try LiveCaptureTests.summary(reports + "/summary.csv")
        let byCause: [Int] = causeRows.map { Int(snapshot["incidents_" + $0] ?? "") ?? -1 }
        let total: Int = Int(snapshot["incidents"] ?? "") ?? -2
        #expect(byCause.reduce(0, +) == total, "\(snapshot)")

        kill(capture.processIdentifier, SIGINT)
        capture.waitUntilExit()
        let diagnostics = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(capture.terminationStatus == 0, "\(diagnostics)")
        #expect(!diagnostics.contains("packets dropped"), "\(diagnostics)")
        #expect(!FileManager.default.fileExists(atPath: incidentsPath + ".partial"))

        // The final reports: exactly the truth's incidents, each with its true cause.
        let found = try #require(try Self.causes(incidentsPath), "an incident reported twice")
        #expect(Set(found.keys) == Set(truth.keys), "incidents: \(found.count) found, \(truth.count) true")
        let tuples = Set(found.keys).union(truth.keys)
        let right = tuples.filter { truth[$0] != nil && truth[$0] == found[$0] }.count
        let accuracy = Double(right) / Double(tuples.count)
        #expect(accuracy >= 0.95, "\(scenario): \(right) of \(tuples.count) right")
        let foreign = found.filter { truePortCauses[String($0.key.split(separator: ",")[3])]?.contains($0.value) != true }
        #expect(foreign.isEmpty, "incidents given a cause their port did not have: \(foreign.sorted { $0.key < $1.key })")
        // A row is written once, when judged: the rows published while capturing already had their final causes.
        let revised = (published ?? [:]).filter { found[$0.key] != $0.value }
        #expect(revised.isEmpty, "published with another cause than the final one: \(revised)")
        for (port, causes) in truePortCauses {
            let row = try #require(Self.portRow(portsPath, port: port), "no row for port \(port)")
            #expect(row["cause"] == Self.verdict(of: causes), "port \(port): \(row)")
            let onPort = found.filter { $0.key.hasSuffix(",\(port)") }
            #expect(row["incidents"] == String(onPort.count))
            for cause in ["listener_closed", "accept_queue_overflow", "reuseport_churn", "unknown"] {
                #expect(row[cause] == String(onPort.values.filter { $0 == cause }.count), "port \(port): \(cause)")
            }
        }
        let summary = try String(contentsOfFile: reports + "/summary.csv", encoding: .utf8)
        #expect(summary.contains("interrupted,1\r\n"))
        #expect(summary.contains("incidents,\(truth.count)\r\n"), "\(summary)")
        #expect(summary.contains("incidents_awaiting_cause,0\r\n"), "\(summary)")
    }
}
