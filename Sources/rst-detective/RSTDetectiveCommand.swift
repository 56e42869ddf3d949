import ArgumentParser

/// The `rst-detective` command: finds connections reset right after their handshake.
@main
struct RSTDetectiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rst-detective",
        abstract: "Find TCP connections the server reset right after the handshake (SYN, SYN-ACK, ACK, RST).",
        discussion: """
            Exit codes: 0 success; 1 an input capture was missing, unreadable or damaged (everything that \
            could be read was analysed and reported); 2 a report could not be written; 3 calibrate found no \
            single secret; 64 bad usage, including a BPF filter that does not compile.
            """,
        subcommands: [
            AnalyzeCommand.self, CaptureCommand.self, InterfacesCommand.self, HashCommand.self, CalibrateCommand.self,
        ])
}
