import ArgumentParser

/// The `rst-detective` command: finds connections reset right after their handshake.
@main
struct RSTDetectiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rst-detective",
        abstract: "Find TCP connections the server reset right after the handshake (SYN, SYN-ACK, ACK, RST).",
        discussion: """
            Examples:
              rst-detective analyze server.pcap --report-dir reports
              rst-detective analyze dump.pcap dump.pcap1 dump.pcap2 --report-dir reports
              tcpdump -U -i any -s 128 -w - 'tcp port 443' | rst-detective analyze -
              rst-detective analyze big.pcap.gz --filter 'tcp port 8080' --csv incidents.csv
              rst-detective capture -i eth0 --report-dir reports 'tcp port 443'

            Exit codes: 0 success, including a run stopped by Ctrl-C, SIGTERM or SIGHUP once its reports are \
            written; 1 an input capture was missing, unreadable or damaged (everything that could be read was \
            analysed and reported); 2 a report could not be written; 3 calibrate found no single secret; 64 bad \
            usage: a value outside its range, an empty file name, or a BPF filter that does not compile or is \
            longer than 4096 characters or 4096 instructions.
            """,
        version: BuildInfo.versionLine,
        subcommands: [
            AnalyzeCommand.self, CaptureCommand.self, InterfacesCommand.self, HashCommand.self, CalibrateCommand.self,
        ])
}
