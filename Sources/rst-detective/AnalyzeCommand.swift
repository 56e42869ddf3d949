import ArgumentParser
import Glibc
import RSTDetective

/// `rst-detective analyze`: reads capture files and reports every incident.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyse capture files (pcap, pcapng, gzip of either; - for standard input).",
        discussion: """
            Several captures are read as one stream in timestamp order, so a connection split across \
            rotated files (tcpdump -C/-G) is followed. Without --report-dir, --csv or --jsonl, incidents.csv goes to \
            standard output. A short summary goes to standard error, after a progress bar on a terminal. Ctrl-C, \
            SIGTERM or SIGHUP (unless started under nohup) stop reading after the current packet; every report \
            is still written and the exit status is 0.
            """)

    @Argument(help: ArgumentHelp("Capture files; - reads standard input.", valueName: "capture"))
    var captures: [String]

    @Option(help: ArgumentHelp("Read only packets matching this BPF expression (libpcap syntax).", valueName: "expr"))
    var filter: String?

    @OptionGroup(title: "Reports")
    var reports: ReportOptions

    @OptionGroup(title: "Handshake tracking")
    var tracking: TrackerOptions

    @OptionGroup(title: "Tunnels")
    var tunnels: TunnelOptions

    @OptionGroup(title: "Reuseport model (hash and bucket columns)")
    var kernel: KernelOptions

    @OptionGroup(title: "Reuseport model (hash and bucket columns)")
    var secrets: SecretOptions

    @Option(
        name: .customShort("j"),
        help: ArgumentHelp(
            "Threads: 1 reads and analyses on one; 2 reads capture files ahead while the first analyses: each file's bytes on one thread, libpcap over them on another (the default with two or more cores). More (up to 256) do not help: reading is the slower half.",
            valueName: "threads"))
    var jobs: Int = min(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

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
        try ReportOutputs.validate(options: reports)
        guard !captures.contains("") else {
            throw ValidationError("a capture needs a file name, or - for standard input, not an empty string")
        }
        guard (1...256).contains(jobs) else {
            throw ValidationError("-j must be 1 to 256, not \(jobs)")
        }
        try OptionValidation.filter(filter, compile: true)
    }

    func run() throws {
        // First, so that no way of ending the run (Ctrl-C, SIGTERM, SIGHUP, a reader closing standard output)
        // can stop it between opening the reports and writing them.
        let stop = SignalHandling.install()
        let logger = LoggingSetup.logger(verbosity: verbose)
        let model = try secrets.model(kernel)
        let outputs: ReportOutputs
        do {
            outputs = try ReportOutputs(
                options: reports, inputs: captures.map { $0 == "-" ? "standard input" : $0 },
                streaming: false)
        } catch {
            StandardError.report(error.description)
            throw ExitStatus.outputError
        }
        let options = AnalysisOptions(
            tracker: tracking.configuration,
            filter: filter,
            bucketModel: model,
            readAhead: jobs >= 2,
            vxlanPorts: tunnels.ports ?? .standard)
        // Only for a person watching: not with --quiet, nor when standard error goes to a file or a pipe.
        let progress = !quiet && isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
        let result = Analyzer.run(
            paths: captures, options: options, logger: logger, stop: stop, onConnection: outputs.write,
            onProgress: progress.map { $0.update })
        progress?.clear()
        for error in result.errors {
            StandardError.report(error.description)
        }
        let outputFailed = !outputs.finish(result)
        if !quiet {
            StandardError.write(TerminalSummary.render(result, colour: TerminalSummary.standardErrorWantsColour))
        }
        if outputFailed { throw ExitStatus.outputError }
        if !result.errors.isEmpty { throw ExitStatus.inputError }
    }
}
