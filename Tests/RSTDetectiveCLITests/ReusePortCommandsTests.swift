import Foundation
import Testing

/// `hash`, `calibrate`, and the reuseport columns of `analyze`, checked against the kernel's own choices.
@Suite struct ReusePortCommandsTests {
    /// The lab capture in Tests/Captures: 8 listeners, 40 connections, then listener 2 closed and 40 more.
    /// `rst-detective calibrate` found this effective secret from either phase's observations (the kernel's
    /// secret plus the mix of the namespace the lab made, Linux 6.18).
    static let labSecret = "0xf0b83872"

    /// Rows of a CSV without quoted fields, as dictionaries keyed by the header.
    static func rows(_ text: String) -> [[String: String]] {
        let lines = text.split(whereSeparator: \.isNewline).map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        guard let header = lines.first else { return [] }
        return lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    /// Analyses one phase of a lab capture and checks each connection's bucket is the listener that accepted it.
    static func checkBuckets(
        capture: String, observations: String, clientPorts: String, listeners: Int, secret: String,
        kernel: String = "6.18"
    ) throws {
        let run = try Binary.run([
            "analyze", "--quiet", capture, "--filter", "tcp portrange \(clientPorts)", "--listeners", String(listeners),
            "--kernel", kernel, "--hash-secret", secret, "--connections", "-", "--csv", "/dev/null",
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let buckets = Dictionary(
            uniqueKeysWithValues: rows(run.standardOutput).map {
                ("\($0["client_ip"]!):\($0["client_port"]!)", $0["bucket"]!)
            })
        let accepted = rows(try String(contentsOfFile: observations, encoding: .utf8))
        #expect(accepted.count == 40)
        #expect(buckets.count == accepted.count)
        for row in accepted {
            let key = "\(row["client_ip"]!):\(row["client_port"]!)"
            #expect(buckets[key] == row["listener"], "\(key) was accepted by listener \(row["listener"]!)")
        }
    }

    @Test func theLabCaptureLandsInTheListenersThatAccepted() throws {
        try Self.checkBuckets(
            capture: Binary.capture("reuseport-lab.pcap"), observations: Binary.capture("reuseport-lab.phase1.csv"),
            clientPorts: "20000-29999", listeners: 8, secret: Self.labSecret)
        // After listener 2 closed, the kernel moved listener 7 into its slot: 7 listeners, same secret.
        try Self.checkBuckets(
            capture: Binary.capture("reuseport-lab.pcap"), observations: Binary.capture("reuseport-lab.phase2.csv"),
            clientPorts: "40000-49999", listeners: 7, secret: Self.labSecret)
    }

    @Test func hashPrintsTheKernelFactsVectors() throws {
        let cases: [([String], String, String)] = [
            (
                ["192.168.1.10:51234", "10.0.0.1:443", "--hash-secret", "0x12345678", "--kernel", "4.4"], "0xeea1f1d2",
                "4.4"
            ),
            (
                ["192.168.1.10:51234", "10.0.0.1:443", "--hash-secret", "305419896", "--kernel", "6.18"], "0xee820923",
                "6.18"
            ),
            (
                ["192.168.1.10:51234", "10.0.0.1:443", "--kernel", "3.10.0-1160.el7.x86_64"], "0xd590817e",
                "3.10.0-1160.el7.x86_64"
            ),
            (
                [
                    "[2001:db8::2]:51234", "[2001:db8::1]:443", "--hash-secret-ipv6", "0x12345678",
                    "--address-secret-ipv6",
                    "0x9abcdef0", "--kernel", "3.9",
                ], "0xc6c8451f", "3.9"
            ),
        ]
        for (arguments, hash, kernel) in cases {
            let run = try Binary.run(["hash"] + arguments)
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.standardOutput.contains("hash            \(hash)\n"), "\(run.standardOutput)")
            #expect(run.standardOutput.contains("kernel          \(kernel)\n"))
        }
        // The group choice of KERNEL-FACTS.md section 4: hash 0x9e3779b9 is not reachable by hand, so check N.
        let four = try Binary.run(["hash", "192.168.1.10:51234", "10.0.0.1:443", "--listeners", "4"])
        #expect(
            four.standardOutput.contains("bucket          0 of 4 (listen() order, 0 = first)\n"),
            "\(four.standardOutput)")
        #expect(four.standardOutput.contains("bucket_if_fewer 0 of 3\n"))
        #expect(four.standardOutput.contains("bucket_if_more  1 of 5\n"))
        #expect(four.standardOutput.contains("moves_on_churn  yes\n"))
    }

    @Test func hashRejectsWhatItCannotRead() throws {
        for arguments in [
            ["1.2.3.4", "5.6.7.8:80"], ["1.2.3.4:5", "[::1]:80"], ["[1.2.3.4]:5", "5.6.7.8:80"],
            ["::1:5", "[::1]:80"], ["1.2.3.4:70000", "5.6.7.8:80"], ["1.2.3.4:5", "5.6.7.8:80", "--kernel", "3.8"],
            ["1.2.3.4:5", "5.6.7.8:80", "--kernel", "six"],
            ["1.2.3.4:5", "5.6.7.8:80", "--hash-secret", "0x1ffffffff"],
            ["1.2.3.4:5", "5.6.7.8:80", "--listeners", "65536"],
        ] {
            let run = try Binary.run(["hash"] + arguments)
            #expect(run.status == 64, "\(arguments)")
        }
        let old = try Binary.run(["hash", "1.2.3.4:5", "5.6.7.8:80", "--kernel", "3.8"])
        #expect(old.standardError.contains("SO_REUSEPORT for TCP arrived in Linux 3.9"))
    }

    @Test func calibrateExplainsWhatItCannotUse() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = try Binary.run([
            "calibrate", directory.appendingPathComponent("none.csv").path, "--listeners", "4",
        ])
        #expect(missing.status == 1)
        #expect(missing.standardError.contains("cannot read '"))

        let noColumn = directory.appendingPathComponent("no-column.csv")
        try "listener,client_ip,client_port,server_ip\n".write(to: noColumn, atomically: true, encoding: .utf8)
        let badHeader = try Binary.run(["calibrate", noColumn.path, "--listeners", "4"])
        #expect(badHeader.status == 1)
        #expect(
            badHeader.standardError
                == "rst-detective: '\(noColumn.path)' line 1: no 'server_port' column; the header needs listener,client_ip,client_port,server_ip,server_port\n"
        )

        let ipv6 = directory.appendingPathComponent("ipv6.csv")
        try "listener,client_ip,client_port,server_ip,server_port\n0,2001:db8::2,4000,2001:db8::1,443\n".write(
            to: ipv6, atomically: true, encoding: .utf8)
        let onlyIPv6 = try Binary.run(["calibrate", ipv6.path, "--listeners", "4"])
        #expect(onlyIPv6.status == 1)
        #expect(onlyIPv6.standardError.contains("64 unknown bits"))
        #expect(onlyIPv6.standardError.contains("no IPv4 observations"))

        let aboveN = try Binary.run(["calibrate", Binary.capture("reuseport-lab.phase1.csv"), "--listeners", "4"])
        #expect(aboveN.status == 1)
        #expect(aboveN.standardError.contains("is not below --listeners 4"))

        #expect(try Binary.run(["calibrate", Binary.capture("reuseport-lab.phase1.csv")]).status == 64)
        #expect(
            try Binary.run([
                "calibrate", Binary.capture("reuseport-lab.phase1.csv"), "--listeners", "8", "--threads", "0",
            ]).status == 64)
    }

    @Test func analyzeReportsTheModelTheWhatIfAndTheUniformityTest() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Binary.run([
            "analyze", Binary.capture("reuseport-churn.pcap"), "--listeners", "4", "--kernel", "4.0.5", "--hash-secret",
            "0x915280f5", "--report-dir", directory.path,
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let summary = Dictionary(
            uniqueKeysWithValues: try String(
                contentsOf: directory.appendingPathComponent("summary.csv"), encoding: .utf8
            )
            .split(whereSeparator: \.isNewline).dropFirst().map { line -> (String, String) in
                let comma = line.firstIndex(of: ",")!
                return (String(line[..<comma]), String(line[line.index(after: comma)...]))
            })
        #expect(summary["kernel"] == "4.0.5")
        #expect(summary["bucket_model"] == "linux 3.9-4.0: listener walk from the newest (jhash before 4.1)")
        #expect(summary["hash_secret"] == "0x915280f5")
        #expect(summary["listeners"] == "4")
        let incidents = Self.rows(
            try String(contentsOf: directory.appendingPathComponent("incidents.csv"), encoding: .utf8))
        #expect(summary["incidents_moving_on_churn"] == String(incidents.filter { $0["moves_on_churn"] == "1" }.count))
        #expect(summary["bucket_chi_square_df"] != "")
        #expect(["0", "1"].contains(summary["incidents_concentrated"]))
        #expect(run.standardError.contains("what-if churn: "))
        #expect(run.standardError.contains("On Linux 3.9-4.3 the ACK is steered again"))
        #expect(run.standardError.contains(" concentrated in some buckets (chi-square "))
        // by-bucket.csv lists all four listeners; the expected incidents add up to the incidents.
        let buckets = Self.rows(
            try String(contentsOf: directory.appendingPathComponent("by-bucket.csv"), encoding: .utf8))
        #expect(buckets.map { $0["bucket"]! } == ["0", "1", "2", "3"])
        let expected = buckets.map { Double($0["expected_incidents"]!)! }.reduce(0, +)
        #expect(abs(expected - Double(incidents.count)) < 0.01)
        // Every incident's columns agree with `hash` on the same connection.
        func endpoint(_ address: String, _ port: String) -> String {
            address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
        }
        #expect(
            incidents.contains { $0["client_ip"]!.contains(":") }
                && incidents.contains { !$0["client_ip"]!.contains(":") })
        for incident in incidents {
            let hash = try Binary.run([
                "hash", endpoint(incident["client_ip"]!, incident["client_port"]!),
                endpoint(incident["server_ip"]!, incident["server_port"]!), "--listeners", "4", "--kernel", "4.0.5",
                "--hash-secret", "0x915280f5",
            ])
            #expect(hash.standardOutput.contains("hash            \(incident["hash"]!)\n"))
            #expect(hash.standardOutput.contains("bucket          \(incident["bucket"]!) of 4"))
            #expect(hash.standardOutput.contains("bucket_if_more  \(incident["bucket_if_more"]!) of 5"))
        }
    }

    @Test func theConnectionsLogHasEveryAttempt() throws {
        let run = try Binary.run([
            "analyze", "--quiet", Binary.capture("crafted-base.pcap.gz"), "--connections", "-", "--csv", "/dev/null",
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let connections = Self.rows(run.standardOutput)
        #expect(connections.count == 4)
        #expect(connections.filter { $0["outcome"] == "reset_after_handshake" }.count == 2)
        #expect(connections.filter { $0["outcome"] == "refused" }.map { $0["ack_time"] } == [""])
        #expect(try Binary.run(["analyze", Binary.capture("crafted-base.pcap.gz"), "--connections", "-"]).status == 64)
    }
}
