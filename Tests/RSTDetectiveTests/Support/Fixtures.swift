import Foundation
import Logging

@testable import RSTDetective

/// Locates the committed captures and runs the analyzer on them.
enum Fixtures {
    /// `Tests/Captures`, found from this file's path because SwiftPM resources must sit inside a target.
    static let capturesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Captures")

    static func path(_ name: String) -> String {
        capturesDirectory.appendingPathComponent(name).path
    }

    /// Runs the analyzer with default options and collects the incidents.
    static func analyze(_ paths: [String], options: AnalysisOptions = AnalysisOptions()) -> (
        result: AnalysisResult, incidents: [Connection]
    ) {
        var incidents: [Connection] = []
        let result = Analyzer.run(paths: paths, options: options, logger: Logger(label: "test")) { connection in
            if connection.isIncident { incidents.append(connection) }
        }
        return (result, incidents)
    }

    /// Runs the analyzer with default options and collects every settled attempt.
    static func connections(_ paths: [String]) -> [Connection] {
        var connections: [Connection] = []
        _ = Analyzer.run(paths: paths, options: AnalysisOptions(), logger: Logger(label: "test")) { connection in
            connections.append(connection)
        }
        return connections
    }

    /// Reads a CSV file with a header row into dictionaries (the fixtures have no quoted fields).
    static func readCSV(_ path: String) throws -> [[String: String]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).map(
            String.init)
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else {
            return []
        }
        return lines.dropFirst().map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }

    /// `client_ip,client_port,server_ip,server_port` of an incident, and `,tunnel` after them with `tunnel`.
    static func tuple(_ incident: Connection, tunnel: Bool = false) -> String {
        let record = incident.handshake
        let tuple = "\(record.client),\(record.clientPort),\(record.server),\(record.serverPort)"
        return tunnel ? tuple + "," + record.tunnel.text : tuple
    }

    /// The same of an expected row, with `,tunnel` when the row has that column and `tunnel` is true: an
    /// expected file names the tunnels of its incidents when it has a `tunnel` column.
    static func tuple(_ row: [String: String], tunnel: Bool = true) -> String {
        let tuple =
            "\(row["client_ip"] ?? ""),\(row["client_port"] ?? ""),\(row["server_ip"] ?? ""),\(row["server_port"] ?? "")"
        guard tunnel, let text = row["tunnel"] else { return tuple }
        return tuple + "," + text
    }

    /// Whether the CSV file at `path` has a `tunnel` column.
    static func hasTunnelColumn(_ path: String) throws -> Bool {
        let header = try String(contentsOfFile: path, encoding: .utf8).prefix { !$0.isNewline }
        return header.split(separator: ",").contains("tunnel")
    }
}
