import Glibc

/// Writes the report files of a run into one directory: incidents.csv, then by-source-port.csv,
/// by-server-port.csv (with each port's incidents per cause and its verdict), by-bucket.csv (every listener 0..<N, with the incidents expected if they followed
/// handshakes) and summary.csv at the end. Each is written aside and renamed into place, so a reader never
/// sees a half-written file; in a live capture incidents.csv also grows in incidents.csv.partial, and each
/// `writeAggregates` publishes it with the others. As root, a directory owned by another user is refused,
/// since its owner could redirect the files in it.
public struct ReportDirectory {
    public let path: String
    /// incidents.csv, open for streaming from the start of the run.
    public let incidents: ReportFile

    /// Creates the directory if needed and opens incidents.csv with its header.
    ///
    /// - Parameters:
    ///   - path: The directory.
    ///   - streamingIncidents: Write incidents.csv.partial as incidents come (a live capture), published
    ///     under the final name with every `writeAggregates`, instead of aside until `finish`.
    /// - Throws: `ReportError.cannotWrite` when the directory or the file cannot be created,
    ///   `.foreignDirectory` when root is asked to write into a directory another user owns, and
    ///   `.untrustedEntry` for a symlink on the way that `OutputPath` refuses.
    public init(path: String, streamingIncidents: Bool = false) throws(ReportError) {
        self.path = path
        try Self.makeDirectory(path)
        incidents = try ReportFile(path: Self.join(path, "incidents.csv"), streaming: streamingIncidents)
        incidents.writeRecord(Connection.incidentCSVHeader)
        if streamingIncidents { incidents.flush() }
    }

    /// Commits incidents.csv and writes the other reports.
    ///
    /// - Throws: The first `ReportError`; the files that could be written are written.
    public func finish(_ result: AnalysisResult) throws(ReportError) {
        var firstError: ReportError?
        do { try incidents.commit() } catch { firstError = error }
        do { try writeAggregates(result) } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }

    /// Writes by-source-port.csv, by-server-port.csv, by-bucket.csv and summary.csv from `result`, each
    /// aside and renamed into place, and publishes a streaming incidents.csv: a live capture rewrites them
    /// while it runs.
    ///
    /// - Throws: The first `ReportError`; the files that could be written are written.
    public func writeAggregates(_ result: AnalysisResult) throws(ReportError) {
        var firstError: ReportError?
        func attempt(_ body: () throws(ReportError) -> Void) {
            do { try body() } catch { firstError = firstError ?? error }
        }
        attempt { () throws(ReportError) in try incidents.publish() }
        let report = result.report
        attempt { () throws(ReportError) in
            try write(
                "by-source-port.csv", header: ["client_port", "incidents", "handshakes"],
                report.clientPorts().map { [String($0.port), String($0.incidents), String($0.handshakes)] })
        }
        attempt { () throws(ReportError) in
            let verdicts = report.causeVerdicts
            try write(
                "by-server-port.csv",
                header: ["server_port", "incidents", "handshakes"] + IncidentCause.allCases.map(\.name) + [
                    "cause", "cause_evidence",
                ],
                report.serverPorts().map { row in
                    let verdict = verdicts[row.port] ?? PortCauseVerdict()
                    return [String(row.port), String(row.incidents), String(row.handshakes)]
                        + IncidentCause.allCases.map { String(verdict.count(of: $0)) } + [
                            verdict.cause, verdict.evidence,
                        ]
                })
        }
        attempt { () throws(ReportError) in
            let buckets = report.buckets()
            let expected = BucketUniformity.expectedIncidents(
                incidents: buckets.map(\.incidents), handshakes: buckets.map(\.handshakes))
            try write(
                "by-bucket.csv", header: ["bucket", "incidents", "handshakes", "expected_incidents"],
                zip(buckets, expected).map { row, expected in
                    [
                        String(row.bucket), String(row.incidents), String(row.handshakes),
                        Summary.fixed(expected, digits: 3),
                    ]
                })
        }
        attempt { () throws(ReportError) in
            try write("summary.csv", header: ["metric", "value"], Summary.metrics(result).map { [$0.name, $0.value] })
        }
        if let firstError { throw firstError }
    }

    private func write(_ name: String, header: [String], _ rows: [[String]]) throws(ReportError) {
        let file = try ReportFile(path: Self.join(path, name))
        file.writeRecord(header)
        for row in rows { file.writeRecord(row) }
        try file.commit()
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// `mkdir -p`: creates each missing component; one that exists as a directory is fine. No untrusted
    /// symlink is followed on the way (`OutputPath`), and as root a directory on the way owned by another
    /// user is refused: its owner could rename what is under it.
    private static func makeDirectory(_ path: String) throws(ReportError) {
        try OutputPath.checkSymlinks(on: path)
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if unsafe mkdir(prefix, 0o755) != 0, errno != EEXIST {
                throw .cannotWrite(path: path, reason: OutputPath.errorText())
            }
            try OutputPath.checkOwner(of: prefix, for: path)
            prefix += "/"
        }
        var status = stat()
        guard unsafe stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw .cannotWrite(path: path, reason: "not a directory")
        }
    }
}
