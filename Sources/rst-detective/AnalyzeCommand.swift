import ArgumentParser
import RSTDetective

/// `rst-detective analyze`: reads capture files and reports every incident.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyse capture files (pcap, pcapng, gzip of either; - for standard input).",
        discussion: """
            Several captures are read as one stream in timestamp order, so a connection split across \
            rotated files (tcpdump -C/-G) is followed. Without --report-dir or --csv, incidents.csv goes to \
            standard output. A short summary goes to standard error.
            """)

    @Argument(help: ArgumentHelp("Capture files; - reads standard input.", valueName: "capture"))
    var captures: [String]

    @Option(
        name: .customLong("report-dir"),
        help: ArgumentHelp(
            "Write incidents.csv, by-source-port.csv, by-server-port.csv, by-bucket.csv and summary.csv here.",
            valueName: "dir"))
    var reportDirectory: String?

    @Option(help: ArgumentHelp("Write only the incidents CSV to this file; - for standard output.", valueName: "file"))
    var csv: String?

    @Option(help: ArgumentHelp("Read only packets matching this BPF expression (libpcap syntax).", valueName: "expr"))
    var filter: String?

    @Option(
        help: ArgumentHelp(
            "Also write every settled connection attempt, with its outcome and listener, to this CSV; - for standard output.",
            valueName: "file"))
    var connections: String?

    @OptionGroup(title: "Handshake tracking")
    var tracking: TrackerOptions

    @OptionGroup(title: "Reuseport model (hash and bucket columns)")
    var kernel: KernelOptions

    @OptionGroup(title: "Reuseport model (hash and bucket columns)")
    var secrets: SecretOptions

    @Flag(name: .shortAndLong, help: "Do not print the summary on standard error.")
    var quiet = false

    @Flag(name: .short, help: "More diagnostics on standard error (-v debug, -vv trace).")
    var verbose: Int

    func validate() throws {
        guard !captures.isEmpty else {
            throw ValidationError("give at least one capture file, or - for standard input")
        }
        guard captures.filter({ $0 == "-" }).count <= 1 else {
            throw ValidationError("standard input (-) can be read once")
        }
        let standardOutputs = [csv ?? (reportDirectory == nil ? "-" : nil), connections].filter { $0 == "-" }
        guard standardOutputs.count <= 1 else {
            throw ValidationError("only one of --csv and --connections can be standard output (-)")
        }
        if let filter, let message = PacketSource.filterError(filter) {
            throw ValidationError("bad filter '\(filter)': \(message)")
        }
    }

    func run() throws {
        let logger = LoggingSetup.logger(verbosity: verbose)
        let model = try secrets.model(kernel)
        let directory: ReportDirectory?
        let csvFile: ReportFile?
        let connectionsFile: ReportFile?
        do {
            directory = try reportDirectory.map { path throws(ReportError) in try ReportDirectory(path: path) }
            csvFile = try (csv ?? (reportDirectory == nil ? "-" : nil)).map { path throws(ReportError) in
                try ReportFile(path: path)
            }
            connectionsFile = try connections.map { path throws(ReportError) in try ReportFile(path: path) }
        } catch {
            StandardError.report(error.description)
            throw ExitStatus.outputError
        }
        csvFile?.writeRecord(Connection.incidentCSVHeader)
        connectionsFile?.writeRecord(Connection.connectionCSVHeader)
        let streams = [directory?.incidents, csvFile].compactMap { $0 }
        let options = AnalysisOptions(
            tracker: tracking.configuration,
            filter: filter,
            bucketModel: model)
        let stop = SignalHandling.install()
        let result = Analyzer.run(paths: captures, options: options, logger: logger, stop: stop) { connection in
            if let connectionsFile {
                connectionsFile.writeRecord(connection.connectionCSVFields)
                if connectionsFile.path == "-" { connectionsFile.flush() }
            }
            guard connection.isIncident else { return }
            for stream in streams {
                stream.writeRecord(connection.incidentCSVFields)
                // On standard output, each incident is visible at once to a reader of the pipe.
                if stream.path == "-" { stream.flush() }
            }
        }
        for error in result.errors {
            StandardError.report(error.description)
        }
        var outputFailed = false
        do {
            try directory?.finish(result)
        } catch {
            StandardError.report(error.description)
            outputFailed = true
        }
        for file in [csvFile, connectionsFile].compactMap({ $0 }) {
            do {
                try file.commit()
            } catch {
                StandardError.report(error.description)
                outputFailed = true
            }
        }
        if !quiet {
            StandardError.write(Summary.text(result))
        }
        if outputFailed { throw ExitStatus.outputError }
        if !result.errors.isEmpty { throw ExitStatus.inputError }
    }
}
