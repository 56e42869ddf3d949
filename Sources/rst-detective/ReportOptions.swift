import ArgumentParser

/// The report options `analyze` and `capture` share: where each report goes.
struct ReportOptions: ParsableArguments {
    @Option(
        name: .customLong("report-dir"),
        help: ArgumentHelp(
            "Write incidents.csv (as incidents come), by-source-port.csv, by-server-port.csv, by-bucket.csv and summary.csv here.",
            valueName: "dir"))
    var reportDirectory: String?

    @Option(
        help: ArgumentHelp(
            "Write the incidents CSV to this file, a row as each incident's RST is read; - for standard output.",
            valueName: "file"))
    var csv: String?

    @Option(
        help: ArgumentHelp(
            "Also write every settled connection attempt, with its outcome and listener, to this CSV; - for standard output.",
            valueName: "file"))
    var connections: String?

    @Option(
        name: .customLong("near-misses"),
        help: ArgumentHelp(
            "Also write the near misses (server RSTs that are not the signature: wrong_ack, listener_close, app_abort, refused) to this CSV, with the incident columns and their kind; - for standard output.",
            valueName: "file"))
    var nearMisses: String?

    @Option(
        name: .customLong("jsonl"),
        help: ArgumentHelp(
            "Also write each incident as one JSON object per line (JSON Lines, the fields of incidents.csv) to this file, for log shippers; - for standard output.",
            valueName: "file"))
    var jsonLines: String?

    @Option(
        help: ArgumentHelp(
            "Also write one self-contained HTML page (totals, outcomes, RST origins, cause hints, charts, the first 1000 incidents) at the end, and in a live capture every --report-interval; - for standard output, at the end only.",
            valueName: "file"))
    var html: String?

    func validate() throws {
        try OptionValidation.path(reportDirectory, option: "--report-dir", what: "a directory")
        for (path, option) in [
            (csv, "--csv"), (connections, "--connections"), (nearMisses, "--near-misses"), (jsonLines, "--jsonl"),
            (html, "--html"),
        ] {
            try OptionValidation.path(path, option: option, what: "a file name, or - for standard output")
        }
    }
}
