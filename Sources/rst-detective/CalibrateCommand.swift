import ArgumentParser
import Glibc
import RSTDetective

/// `rst-detective calibrate`: recovers the hash secret from observations of which listener accepted what.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Find the hash secret that explains which listener accepted which IPv4 connection.",
        discussion: """
            OBSERVATIONS is a CSV file (- for standard input) with the header \
            listener,client_ip,client_port,server_ip,server_port (other columns are ignored): one accepted \
            connection per line, as a server's access log records it. listener is the listener's index in \
            listen() order (0 = first), or any label (a worker name or pid) when the order is unknown. All \
            observations must come from one boot, one network namespace and one unchanged set of listeners.

            Every 32-bit secret is tried (about 20 s on two cores). Each observation of N listeners tells about \
            log2(N) bits; about 32 bits single out one secret. On success the option to use with analyze \
            and hash, --hash-secret 0x followed by 8 hex digits, is printed on standard output. IPv6 cannot be \
            calibrated: its hash adds a second unknown secret (64 bits in all).

            Exit codes: 0 exactly one secret explains every observation; 1 the file cannot be read or is not \
            valid; 3 no secret, or more than one, explains them; 64 bad usage.
            """)

    @Argument(help: ArgumentHelp("The observations CSV; - reads standard input.", valueName: "observations"))
    var observations: String

    @OptionGroup(title: "Reuseport model")
    var kernel: KernelOptions

    @Flag(help: "Read the listener column as labels whose listen() order is unknown, even if they are numbers.")
    var labels = false

    @Option(help: ArgumentHelp("Threads to search on, 1 to 256 (default: one per processor).", valueName: "n"))
    var threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    func validate() throws {
        guard kernel.listeners >= 2 else {
            throw ValidationError("--listeners must be at least 2: with one listener every secret fits")
        }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256, not \(threads)") }
        try OptionValidation.path(
            observations, option: "the observations", what: "a file name, or - for standard input")
    }

    func run() throws {
        let model = try ReusePortBucket(kernel: kernel.kernelVersion(), listeners: kernel.listeners)
        let all: [ListenerObservation]
        let calibration: SecretCalibration
        do throws(CalibrationError) {
            all = try ListenerObservation.read(path: observations)
            let ipv4 = all.filter { !$0.isIPv6 }
            if ipv4.count < all.count {
                StandardError.report(
                    "skipped \(all.count - ipv4.count) IPv6 observation(s): inet6_ehashfn hashes the client address "
                        + "with a second secret before the outer hash, so IPv6 has 64 unknown bits, 2^32 times "
                        + "this search (thousands of years); and since Linux 3.13 the IPv6 secrets differ from the "
                        + "IPv4 one found here")
            }
            guard !ipv4.isEmpty else {
                throw .badFile(path: observations, line: 1, reason: "no IPv4 observations")
            }
            calibration = try SecretCalibration(
                observations: ipv4, model: model, labels: labels, path: observations)
        } catch {
            StandardError.report(error.description)
            throw ExitStatus.inputError
        }
        let bits = calibration.evidenceBits
        let listenerKind =
            calibration.usesLabels ? "\(calibration.labels.count) labels, listen() order unknown" : "listen() order"
        StandardError.report(
            "\(calibration.observationCount) observations of \(model.listeners) listeners (\(listenerKind)), "
                + "about \(Int(bits)) bits of evidence; about 32 single out one secret; model \(model.modelName)")
        if bits < 32 {
            StandardError.report(
                "too few observations: expect about 2^\(32 - Int(bits)) secrets to fit; each further observation "
                    + "adds about \(Summary.fixed(log2(Double(model.listeners)), digits: 1)) bits")
        }
        let showProgress = isatty(STDERR_FILENO) == 1
        let clock = ContinuousClock()
        let start = clock.now
        let result = calibration.search(threads: threads) { done in
            if showProgress { StandardError.write("\rsearching secrets: \(Int(done * 100))%") }
        }
        if showProgress { StandardError.write("\r\u{1B}[K") }
        let seconds = (clock.now - start) / .milliseconds(1) / 1000
        StandardError.report(
            "tried all \(result.tried) secrets in \(Summary.fixed(seconds, digits: 1)) s on \(threads) thread(s)")
        switch result.count {
        case 1:
            StandardError.report(
                "exactly one secret explains all \(calibration.observationCount) observations: "
                    + Connection.hex(result.secrets[0]))
            print("--hash-secret \(Connection.hex(result.secrets[0]))")
        case 0:
            StandardError.report(
                "no secret explains all \(calibration.observationCount) observations. Check that --kernel and "
                    + "--listeners match the server, that the listener values are listen() indices (or use "
                    + "--labels), and that every observation comes from one boot, one network namespace and one "
                    + "unchanged set of listeners bound to the same address")
            throw ExitStatus.inconclusive
        default:
            let shown = result.secrets.map(Connection.hex).joined(separator: " ")
            StandardError.report(
                "\(result.count) secrets explain all observations (\(shown)\(result.count > result.secrets.count ? " ..." : "")): "
                    + "too few observations to single one out; add more")
            throw ExitStatus.inconclusive
        }
    }
}
