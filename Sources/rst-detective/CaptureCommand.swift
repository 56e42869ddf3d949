import ArgumentParser
import Glibc
import RSTDetective

/// `rst-detective capture`: watches an interface and reports incidents as they happen.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture live on an interface and report incidents as they happen.",
        discussion: """
            Each incident is written to incidents.csv (or --csv) and flushed the moment its RST is read, so \
            tail -f sees it at once. The other reports in --report-dir are rewritten aside and renamed into \
            place every --report-interval seconds and at the end. Ctrl-C, SIGTERM or SIGHUP (unless started \
            under nohup), --duration or -c end the capture: every report is written, the tracefs instance \
            removed, the summary printed, and the exit status is 0. A reader closing standard output ends only \
            that output. Handshakes still \
            open then are counted as open_at_end. Capturing needs root or the CAP_NET_RAW capability; -Z drops \
            root once the interface is open (and the --metrics-listen port bound), before any packet is parsed.

            --metrics-file and --metrics-listen give Prometheus metrics (rst_detective_*, listed in the \
            README), updated once a second from the run so far: the file is written aside and renamed into \
            place every --metrics-interval seconds and at the end (for node_exporter's textfile collector, \
            name it *.prom), and GET /metrics on HOST:PORT serves them until the capture ends.

            Exit status: 0 success (Ctrl-C included), 1 the interface could not be opened or failed, 2 a \
            report or the metrics file could not be written or the metrics address could not be bound, 64 \
            bad usage.
            """)

    @Option(name: .customShort("i"), help: ArgumentHelp("The interface; any for all of them.", valueName: "interface"))
    var interface: String

    @Option(help: ArgumentHelp("Capture only packets matching this BPF expression.", valueName: "expr"))
    var filter: String?

    @Argument(
        help: ArgumentHelp("A BPF expression, as tcpdump takes it (instead of --filter).", valueName: "expression"))
    var expression: [String] = []

    @Option(
        name: .customShort("s"),
        help: ArgumentHelp(
            "Bytes kept of each packet, 64 to 262144; the headers are enough (0 for 262144).", valueName: "snaplen"))
    var snapLength = 128

    @Option(
        name: .customShort("B"),
        help: ArgumentHelp("The kernel capture buffer in KiB, 1 to 2097151, as tcpdump's -B.", valueName: "kib"))
    var bufferKiB = 4096

    @Flag(name: .customShort("p"), help: "Do not put the interface in promiscuous mode.")
    var noPromiscuous = false

    @Option(
        name: .customShort("w"), help: ArgumentHelp("Also save the raw packets to this pcap file.", valueName: "file"))
    var saveFile: String?

    @Option(
        name: .customShort("Z"),
        help: ArgumentHelp("After opening the interface, drop root and run as this user.", valueName: "user"))
    var user: String?

    @Option(help: ArgumentHelp("Stop after this many seconds (0.001 to 31536000, a year).", valueName: "seconds"))
    var duration: Double?

    @Option(
        name: .customShort("c"), help: ArgumentHelp("Stop after this many packets (1 or more).", valueName: "count"))
    var count: Int?

    @Flag(
        name: .customLong("no-kernel-reason"),
        help:
            "Do not read the kernel's tcp:tcp_send_reset tracepoint for the kernel_reason column (it needs root, tracefs and Linux 6.10 or later)."
    )
    var noKernelReason = false

    @Option(
        name: .customLong("report-interval"),
        help: ArgumentHelp("Rewrite the reports in --report-dir this often (1 to 86400).", valueName: "seconds"))
    var reportInterval: Double = 10

    @Option(
        name: .customLong("metrics-file"),
        help: ArgumentHelp(
            "Write Prometheus metrics to this file, replaced atomically every --metrics-interval seconds and at the end (node_exporter's textfile collector reads only *.prom).",
            valueName: "file"))
    var metricsFile: String?

    @Option(
        name: .customLong("metrics-listen"),
        help: ArgumentHelp(
            "Serve the Prometheus metrics on http://HOST:PORT/metrics ([::1]:PORT for IPv6, :PORT for every IPv4 address).",
            valueName: "host:port"))
    var metricsListen: String?

    @Option(
        name: .customLong("metrics-interval"),
        help: ArgumentHelp("Rewrite --metrics-file this often (1 to 86400).", valueName: "seconds"))
    var metricsInterval: Double = 5

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

    @Flag(name: .shortAndLong, help: "No status line, no start line and no summary on standard error.")
    var quiet = false

    @Flag(name: .short, help: "More diagnostics on standard error (-v debug, -vv trace).")
    var verbose: Int

    /// The filter from --filter or the trailing expression.
    var filterExpression: String? {
        filter ?? (expression.isEmpty ? nil : expression.joined(separator: " "))
    }

    func validate() throws {
        guard filter == nil || expression.isEmpty else {
            throw ValidationError("give the filter either with --filter or as trailing arguments, not both")
        }
        guard snapLength == 0 || (64...262_144).contains(snapLength) else {
            throw ValidationError("-s must be 0 or 64 to 262144, not \(snapLength)")
        }
        // libpcap takes the size in bytes as an int: 2097151 KiB is the most that fits.
        guard (1...2_097_151).contains(bufferKiB) else {
            throw ValidationError("-B must be 1 to 2097151 KiB, not \(bufferKiB)")
        }
        if let duration { try OptionValidation.seconds(duration, in: 0.001...31_536_000, option: "--duration") }
        if let count, count <= 0 { throw ValidationError("-c must be at least 1") }
        try OptionValidation.seconds(reportInterval, in: 1...86400, option: "--report-interval")
        try OptionValidation.seconds(metricsInterval, in: 1...86400, option: "--metrics-interval")
        if interface.isEmpty { throw ValidationError("-i needs an interface name, not an empty string") }
        try OptionValidation.path(saveFile, option: "-w")
        try OptionValidation.path(user, option: "-Z", what: "a user name")
        if let metricsFile, metricsFile.isEmpty || metricsFile == "-" {
            throw ValidationError("--metrics-file needs a file name: it is written aside and renamed into place")
        }
        if let metricsListen, ListenAddress(metricsListen) == nil {
            throw ValidationError("--metrics-listen '\(metricsListen)' is not HOST:PORT, [IPV6]:PORT or :PORT")
        }
        try ReportOutputs.validate(options: reports, saveFile: saveFile)
        try OptionValidation.filter(filterExpression, compile: false)
        if user != nil, getuid() != 0 {
            throw ValidationError("-Z needs root: it drops root's privileges after opening the interface")
        }
    }

    /// The tracepoint reader for `kernel_reason`, opened while still root, or why not.
    private func openKernelReasons() -> Result<ResetTracepoint, KernelReasonsUnavailable> {
        if noKernelReason {
            return .failure(KernelReasonsUnavailable("kernel_reason unavailable: not requested (--no-kernel-reason)"))
        }
        if user != nil {
            // The private tracefs instance must be removed at exit, which needs the root that -Z gives up.
            return .failure(
                KernelReasonsUnavailable(
                    "kernel_reason unavailable: -Z gives up root, which removing the tracefs instance at exit needs"))
        }
        do {
            return .success(try ResetTracepoint.open())
        } catch {
            return .failure(KernelReasonsUnavailable(error.description))
        }
    }

    func run() throws {
        // First, so that no way of ending the capture (Ctrl-C, SIGTERM, SIGHUP, a reader closing standard
        // output) can stop it between opening the reports and the tracefs instance and writing and removing them.
        let stop = SignalHandling.install()
        let logger = LoggingSetup.logger(verbosity: verbose)
        let model = try secrets.model(kernel)
        var source: LiveSource
        do {
            source = try LiveSource(
                interface: interface, snapLength: snapLength == 0 ? 262_144 : snapLength,
                bufferBytes: bufferKiB * 1024, promiscuous: !noPromiscuous, filter: filterExpression)
        } catch {
            StandardError.report(error.description)
            if case .badFilter = error { throw ExitCode.validationFailure }
            throw ExitStatus.inputError
        }
        if let warning = source.warning { StandardError.report("warning: \(interface): \(warning)") }
        let kernelReasons = openKernelReasons()
        let metrics = metricsFile != nil || metricsListen != nil ? CaptureMetrics(listeners: model.listeners) : nil
        // Bound while still root, as the interface was opened: -Z then drops root for everything else.
        var server: MetricsServer?
        if let metrics, let metricsListen, let address = ListenAddress(metricsListen) {
            do {
                server = try MetricsServer(address: address, registry: metrics.registry)
            } catch {
                StandardError.report("cannot listen for metrics on '\(metricsListen)': \(error)")
                throw ExitStatus.outputError
            }
        }
        defer { server?.shutdown() }
        if let user {
            do throws(Privileges.Failure) {
                try Privileges.drop(to: user)
            } catch {
                StandardError.report(error.description)
                throw ExitStatus.inputError
            }
        }
        let outputs: ReportOutputs
        do {
            if let saveFile { try source.startSaving(to: saveFile) }
            outputs = try ReportOutputs(
                options: reports,
                inputs: ["interface \(interface)" + (filterExpression.map { ", filter '\($0)'" } ?? "")],
                streaming: true)
        } catch {
            StandardError.report(error.description)
            throw ExitStatus.outputError
        }
        if let metrics, let metricsFile {
            do throws(ReportError) {
                try ReportFile.replace(metricsFile, with: metrics.text())
            } catch {
                StandardError.report(error.description)
                throw ExitStatus.outputError
            }
        }
        if !quiet, let server {
            StandardError.report("serving metrics on http://\(server.boundAddress)/metrics")
        }
        if !quiet {
            StandardError.report(
                "listening on \(interface), link-type \(source.linkType), snapshot length \(source.snapLength) bytes"
                    + (filterExpression.map { ", filter '\($0)'" } ?? ""))
        }
        let status = StatusLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        var lastReport = 0.0
        var lastMetrics = 0.0
        var warnedDrops = 0
        // A metrics file written in place (a FIFO, a device) gets the metrics at the start and at the end only.
        let rewritesMetricsFile = metricsFile.map(OutputPath.isReplacedWhole) ?? false
        var savingStoppedReported = false
        /// Why saving to the -w file stopped (a failed write, or its reader gone) is said once, when it is seen.
        func reportSavingStopped(_ snapshot: AnalysisResult) {
            guard !savingStoppedReported, let reason = snapshot.live?.savingStopped else { return }
            status.clear()
            StandardError.report(reason.description)
            savingStoppedReported = true
        }
        let options = AnalysisOptions(
            tracker: tracking.configuration, filter: filterExpression, bucketModel: model,
            vxlanPorts: tunnels.ports ?? .standard)
        let result = LiveCapture.run(
            source: &source, options: options, limits: LiveCapture.Limits(packets: count, seconds: duration),
            logger: logger, stop: stop, kernelReasons: kernelReasons, onConnection: outputs.write
        ) { snapshot in
            if let dropped = snapshot.live?.statistics?.dropped, dropped > warnedDrops {
                status.clear()
                StandardError.report(
                    "warning: \(dropped) packets dropped so far: the incidents may be incomplete; a larger -B or a "
                        + "narrower filter helps")
                warnedDrops = dropped
            }
            reportSavingStopped(snapshot)
            status.show(snapshot)
            if let metrics {
                metrics.update(snapshot)
                if let metricsFile, rewritesMetricsFile, let elapsed = snapshot.live?.elapsedSeconds,
                    elapsed - lastMetrics >= metricsInterval
                {
                    lastMetrics = elapsed
                    do throws(ReportError) {
                        try ReportFile.replace(metricsFile, with: metrics.text())
                    } catch {
                        status.clear()
                        StandardError.report(error.description)
                    }
                }
            }
            if let elapsed = snapshot.live?.elapsedSeconds, elapsed - lastReport >= reportInterval {
                lastReport = elapsed
                outputs.writeAggregates(snapshot)
            }
        }
        status.clear()
        for error in result.errors {
            StandardError.report(error.description)
        }
        reportSavingStopped(result)
        var outputFailed = !outputs.finish(result)
        // A reader that went away ends that output alone; a write that failed fails the run.
        if case .cannotWrite? = result.live?.savingStopped { outputFailed = true }
        if let metrics {
            metrics.update(result)
            do throws(ReportError) {
                if let metricsFile { try ReportFile.replace(metricsFile, with: metrics.text()) }
            } catch {
                StandardError.report(error.description)
                outputFailed = true
            }
        }
        if !quiet {
            StandardError.write(TerminalSummary.render(result, colour: TerminalSummary.standardErrorWantsColour))
        }
        if outputFailed { throw ExitStatus.outputError }
        if !result.errors.isEmpty { throw ExitStatus.inputError }
    }
}

/// The one-line status a terminal shows while capturing, refreshed about once a second.
struct StatusLine {
    let enabled: Bool

    func show(_ snapshot: AnalysisResult) {
        guard enabled, let live = snapshot.live else { return }
        let report = snapshot.report
        StandardError.write(
            "\r\u{1B}[K\(Int(live.elapsedSeconds)) s  packets \(snapshot.packets.packets)  handshakes "
                + "\(report.handshakesCompleted)  incidents \(report.incidents)  open \(live.openHandshakes)  "
                + "dropped \(live.statistics?.dropped ?? 0)")
    }

    func clear() {
        if enabled { StandardError.write("\r\u{1B}[K") }
    }
}
