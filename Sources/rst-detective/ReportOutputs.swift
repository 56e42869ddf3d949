import ArgumentParser
import RSTDetective

/// The report files of a run: the report directory, the incidents CSV, the connections log and the HTML
/// page, as `analyze` and `capture` both write them.
///
/// Without `--report-dir`, `--csv` or `--jsonl`, the incidents CSV goes to standard output. Rows on standard output are
/// flushed one by one, so a reader of the pipe sees each at once, and so are rows written in place to a
/// FIFO, a device or a symlink. When streaming (a live capture), each CSV grows in NAME.partial, a row
/// flushed whole at a time for `tail -f`, and is published under its final name, atomically, with every
/// `writeAggregates` and at the end. An output whose reader goes away (`--csv - | head -1`), or whose write
/// fails (a full disk), ends alone, with one line on standard error as soon as it is seen; the others are
/// still written.
final class ReportOutputs {
    private let directory: ReportDirectory?
    private let csvFile: ReportFile?
    private let connections: ReportFile?
    private let nearMisses: ReportFile?
    private let jsonLines: ReportFile?
    /// `--html`: the page, rewritten whole (aside and renamed) with every `writeAggregates` and at the end.
    private let htmlPath: String?
    /// Whether the page is rewritten with every `writeAggregates`: not when it is written in place (standard
    /// output, a FIFO, a device), which gets it once, at the end.
    private let rewritesHTML: Bool
    /// What the page names as the run's inputs.
    private let inputs: [String]
    private let streaming: Bool
    /// What `reportOnce` has said on standard error.
    private var reported: Set<String> = []

    /// Checks that at most one output is standard output (`-`).
    static func validate(options: ReportOptions, saveFile: String? = nil) throws {
        let outputs = [
            incidentsPath(options), options.connections, options.nearMisses, options.jsonLines, options.html, saveFile,
        ]
        guard outputs.filter({ $0 == "-" }).count <= 1 else {
            let names = "--csv, --connections, --near-misses, --jsonl, --html" + (saveFile == nil ? "" : " and -w")
            throw ValidationError("only one of \(names) can be standard output (-)")
        }
    }

    /// `--csv`, or standard output when there is no report directory nor JSON Lines either.
    private static func incidentsPath(_ options: ReportOptions) -> String? {
        options.csv ?? (options.reportDirectory == nil && options.jsonLines == nil ? "-" : nil)
    }

    /// Creates the directory and opens every file with its header.
    ///
    /// - Parameters:
    ///   - options: Where each report goes.
    ///   - inputs: What the HTML page names as the run's inputs.
    ///   - streaming: A live capture: files grow in NAME.partial and are published with `writeAggregates`.
    init(options: ReportOptions, inputs: [String] = [], streaming: Bool) throws(ReportError) {
        self.streaming = streaming
        htmlPath = options.html
        rewritesHTML = options.html.map(OutputPath.isReplacedWhole) ?? false
        self.inputs = inputs
        directory = try options.reportDirectory.map { path throws(ReportError) in
            try ReportDirectory(path: path, streamingIncidents: streaming)
        }
        func open(_ path: String?) throws(ReportError) -> ReportFile? {
            try path.map { path throws(ReportError) in try ReportFile(path: path, streaming: streaming) }
        }
        csvFile = try open(Self.incidentsPath(options))
        connections = try open(options.connections)
        nearMisses = try open(options.nearMisses)
        jsonLines = try open(options.jsonLines)
        csvFile?.writeRecord(Connection.incidentCSVHeader)
        self.connections?.writeRecord(Connection.connectionCSVHeader)
        self.nearMisses?.writeRecord(Connection.nearMissCSVHeader)
        if streaming {
            csvFile?.flush()
            self.connections?.flush()
            self.nearMisses?.flush()
        }
    }

    /// Writes a settled attempt: to the connections log, a near miss to the near-miss CSV, and an incident
    /// to the incident CSVs.
    func write(_ connection: Connection) {
        if let connections {
            append(connection.connectionCSVFields, to: connections)
        }
        if let nearMisses, connection.handshake.outcome.isNearMiss {
            append(connection.nearMissCSVFields, to: nearMisses)
        }
        guard connection.isIncident else { return }
        let fields = connection.incidentCSVFields
        for file in [directory?.incidents, csvFile].compactMap({ $0 }) {
            append(fields, to: file)
        }
        if let jsonLines {
            jsonLines.write(Connection.incidentJSON(fields) + "\n")
            flushIfRead(jsonLines)
        }
    }

    private func append(_ fields: [String], to file: ReportFile) {
        file.writeRecord(fields)
        flushIfRead(file)
    }

    /// Flushes what a reader may be following: a live capture's files, and outputs written in place
    /// (standard output, a FIFO, a device); says at once when a write to `file` failed.
    private func flushIfRead(_ file: ReportFile) {
        if streaming || file.isWrittenInPlace { file.flush() }
        reportProblems(file)
    }

    /// Says at once that the reader of `file` went away or that a write to it failed, either of which ends
    /// that output alone.
    private func reportProblems(_ file: ReportFile) {
        if let failure = file.failure { reportOnce(failure) }
        if file.closedByReader { reportOnce(.closedByReader(path: file.path)) }
    }

    /// Writes `error` on standard error unless it was already said: a failure reported as it happened is
    /// thrown again by `commit`.
    private func reportOnce(_ error: ReportError) {
        if reported.insert(error.description).inserted { StandardError.report(error.description) }
    }

    /// Rewrites the directory's aggregate reports from a snapshot; a failure is reported and retried next time.
    func writeAggregates(_ snapshot: AnalysisResult) {
        do {
            try directory?.writeAggregates(snapshot)
        } catch {
            StandardError.report(error.description)
        }
        if rewritesHTML {
            do {
                try writeHTML(snapshot)
            } catch {
                StandardError.report(error.description)
            }
        }
        for file in [csvFile, connections, nearMisses, jsonLines].compactMap({ $0 }) {
            do {
                try file.publish()
            } catch {
                StandardError.report(error.description)
            }
        }
    }

    /// Commits every report; false when one could not be written (each failure is reported once).
    func finish(_ result: AnalysisResult) -> Bool {
        var succeeded = true
        do {
            try directory?.finish(result)
        } catch {
            reportOnce(error)
            succeeded = false
        }
        do {
            try writeHTML(result)
        } catch {
            reportOnce(error)
            succeeded = false
        }
        for file in [csvFile, connections, nearMisses, jsonLines].compactMap({ $0 }) {
            do {
                try file.commit()
            } catch {
                reportOnce(error)
                succeeded = false
            }
        }
        for file in [directory?.incidents, csvFile, connections, nearMisses, jsonLines].compactMap({ $0 }) {
            reportProblems(file)
        }
        return succeeded
    }

    /// Writes the HTML page of `result`, aside and renamed into place (or in place), when `--html` asked
    /// for it.
    private func writeHTML(_ result: AnalysisResult) throws(ReportError) {
        guard let htmlPath else { return }
        let page = try ReportFile(path: htmlPath)
        page.write(HTMLReport.render(result, inputs: inputs))
        try page.commit()
        reportProblems(page)
    }
}
