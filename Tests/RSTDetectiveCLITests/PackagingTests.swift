import Foundation
import Testing

/// The deployable files in `packaging/`: the systemd unit, the Prometheus alert rules and the Grafana
/// dashboard, checked by the tools that will read them (systemd-analyze, systemd-sysusers, promtool).
@Suite struct PackagingTests {
    static let packaging = Binary.capturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("packaging")
    static let unit = packaging.appendingPathComponent("rst-detective@.service")
    static let rules = packaging.appendingPathComponent("prometheus/rst-detective-rules.yml")
    static let dashboard = packaging.appendingPathComponent("grafana/rst-detective-dashboard.json")
    static let promtool = "/usr/bin/promtool"
    static let hasPromtool = FileManager.default.isExecutableFile(atPath: promtool)
    static let systemdAnalyze = "/usr/bin/systemd-analyze"
    static let hasSystemdAnalyze = FileManager.default.isExecutableFile(atPath: systemdAnalyze)

    /// Every query of the dashboard, with Grafana's variables replaced as Grafana would for "All"
    /// instances over a 5-minute rate interval: `(panel title, refId, expr)`.
    static func dashboardQueries() throws -> [(title: String, refId: String, expr: String)] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: dashboard)) as? [String: Any]
        let panels = object?["panels"] as? [[String: Any]] ?? []
        return panels.flatMap { panel in
            (panel["targets"] as? [[String: Any]] ?? []).map { target in
                (
                    panel["title"] as? String ?? "", target["refId"] as? String ?? "",
                    (target["expr"] as? String ?? "").replacingOccurrences(of: "$__rate_interval", with: "5m")
                        .replacingOccurrences(of: "$instance", with: ".*")
                )
            }
        }
    }

    @Test(.enabled(if: hasPromtool, "promtool (Debian package prometheus) is not installed"))
    func alertRulesPassPromtoolCheckAndTheirUnitTests() throws {
        let check = try Binary.run(["check", "rules", Self.rules.path], executable: Self.promtool)
        #expect(check.status == 0, "\(check.standardOutput)\(check.standardError)")
        #expect(check.standardOutput.contains("SUCCESS: 6 rules found"), "\(check.standardOutput)")
        let tests = Self.rules.deletingPathExtension().appendingPathExtension("test.yml")
        let unit = try Binary.run(["test", "rules", tests.path], executable: Self.promtool)
        #expect(unit.status == 0, "\(unit.standardOutput)\(unit.standardError)")
        #expect(unit.standardOutput.contains("SUCCESS"), "\(unit.standardOutput)")
        // Each alert has a unit test that expects it to fire.
        let rules = try String(contentsOf: Self.rules, encoding: .utf8)
        let testText = try String(contentsOf: tests, encoding: .utf8)
        let alerts = rules.components(separatedBy: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("- alert: ") ? String(trimmed.dropFirst("- alert: ".count)) : nil
        }
        #expect(alerts.count == 6)
        for alert in alerts {
            #expect(
                testText.contains("alertname: \(alert)\n        exp_alerts:\n          - exp_labels"),
                "no test expects \(alert) to fire")
        }
    }

    /// The dashboard's queries, as recording rules, pass `promtool check rules` (which parses each with
    /// Prometheus's own parser); a broken one is caught the same way.
    @Test(.enabled(if: hasPromtool, "promtool (Debian package prometheus) is not installed"))
    func everyDashboardQueryParsesInPromtool() throws {
        let queries = try Self.dashboardQueries()
        #expect(queries.count >= 12)
        #expect(queries.allSatisfy { $0.expr.contains("rst_detective_") && !$0.expr.contains("$") })
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func rulesFile(_ exprs: [String]) throws -> String {
            var text = "groups:\n  - name: dashboard\n    rules:\n"
            for (index, expr) in exprs.enumerated() {
                let quoted = String(
                    decoding: try JSONSerialization.data(withJSONObject: [expr], options: .withoutEscapingSlashes),
                    as: UTF8.self)
                text += "      - record: dashboard:query_\(index)\n        expr: \(quoted.dropFirst().dropLast())\n"
            }
            let path = directory.appendingPathComponent("dashboard-\(exprs.count)-\(UUID().uuidString).yml").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = try Binary.run(["check", "rules", rulesFile(queries.map(\.expr))], executable: Self.promtool)
        #expect(good.status == 0, "\(good.standardOutput)\(good.standardError)")
        #expect(good.standardOutput.contains("SUCCESS: \(queries.count) rules found"), "\(good.standardOutput)")
        let broken = queries.map(\.expr) + ["sum(rate(rst_detective_incidents_total[5m])"]
        let bad = try Binary.run(["check", "rules", rulesFile(broken)], executable: Self.promtool)
        #expect(bad.status != 0)
    }

    /// `systemd-analyze verify` of an instance of the unit. verify checks that ExecStart's binary exists and
    /// is executable, and it is not installed here: the unit is copied to a temporary directory with only
    /// ExecStart's path changed to the built binary, and the instance name is a link to the template there.
    /// A unit with an unknown key or a missing binary fails the same check.
    @Test(.enabled(if: hasSystemdAnalyze, "systemd-analyze is not installed"))
    func serviceUnitVerifiesAndIsHardened() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/bin/rst-detective capture -i %I -Z rst-detective"))
        func verify(_ unitText: String, in name: String) throws -> (Binary.Run, Binary.Run) {
            let folder = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try unitText.write(
                to: folder.appendingPathComponent("rst-detective@.service"), atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(
                atPath: folder.appendingPathComponent("rst-detective@srv0.service").path,
                withDestinationPath: "rst-detective@.service")
            let instance = folder.appendingPathComponent("rst-detective@srv0.service").path
            return (
                try Binary.run(["verify", "--man=no", instance], executable: Self.systemdAnalyze),
                try Binary.run(["security", "--offline=true", instance], executable: Self.systemdAnalyze)
            )
        }
        let copy = text.replacingOccurrences(of: "/usr/bin/rst-detective", with: Binary.url.path)
        let (verified, security) = try verify(copy, in: "good")
        #expect(verified.status == 0, "\(verified.standardError)")
        #expect(verified.standardOutput.isEmpty && verified.standardError.isEmpty, "\(verified.standardError)")
        // systemd-analyze security's exposure, 0 (locked down) to 10: a root service that captures.
        let line = security.standardOutput.components(separatedBy: "\n").first { $0.contains("Overall exposure") }
        let score = line.flatMap { Double($0.split(separator: ":").last?.split(separator: " ").first ?? "") }
        #expect(score != nil && score! <= 3.0, "\(line ?? security.standardOutput)")

        let (unknownKey, _) = try verify(copy.replacingOccurrences(of: "UMask=", with: "UMaks="), in: "typo")
        #expect(unknownKey.standardError.contains("Unknown key 'UMaks'"), "\(unknownKey.standardError)")
        let (missing, _) = try verify(text, in: "uninstalled")
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("/usr/bin/rst-detective is not executable"), "\(missing.standardError)")
    }

    /// systemd-sysusers makes the user the unit's -Z and Group= name from the sysusers.d file.
    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-sysusers"), "no systemd-sysusers"))
    func sysusersMakesTheServiceUser() throws {
        let root = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
        let run = try Binary.run(
            ["--root", root.path, Self.packaging.appendingPathComponent("rst-detective.sysusers").path],
            executable: "/usr/bin/systemd-sysusers")
        #expect(run.status == 0, "\(run.standardError)")
        let passwd = try String(contentsOfFile: root.path + "/etc/passwd", encoding: .utf8)
        let entry = passwd.components(separatedBy: "\n").first { $0.hasPrefix("rst-detective:") } ?? ""
        let fields = entry.split(separator: ":", omittingEmptySubsequences: false)
        #expect(fields.count == 7 && fields[2] != "0" && fields[5] == "/var/lib/rst-detective", "\(passwd)")
        #expect(fields.last == "/usr/sbin/nologin")
        let group = try String(contentsOfFile: root.path + "/etc/group", encoding: .utf8)
        #expect(group.contains("rst-detective:x:\(fields.count > 3 ? String(fields[3]) : "?"):"), "\(group)")
    }
}
