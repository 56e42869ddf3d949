import Foundation
import Testing

/// Every example output in README.md comes from the built binary: each fenced block shown as output has a marker
/// line just before it, `<!-- example: COMMAND -->`, and this suite runs COMMAND with `/bin/sh -c` as a user would
/// from the repository's root (the binary first on `PATH`) and compares its standard output with the block,
/// exactly but for what `normalised` replaces. A block whose first line is `$ ...` shows the command as typed: that
/// line must be `$ ` and COMMAND without a trailing ` 2>&1` (a terminal shows both streams), and the output is the
/// rest. An excerpt says which lines in COMMAND itself (`| head -n 1`, `| grep ...`).
///
/// `RST_UPDATE_README=1 swift test --filter ReadmeExamples` writes each block that differs from the binary's output
/// back into README.md (a block that differs only in what is normalised is left as it is); then read the prose
/// around it, whose numbers this suite does not check.
///
/// Not checked, being no example of what the binary prints here (`everyOutputBlockIsChecked` names them):
/// - the Prometheus scrape under "Prometheus metrics": a live capture, as root, of traffic the live lab makes;
/// - "Layout", which is no output; and the fenced `sh` and `yaml` blocks, which are commands and configuration;
/// - the tables of "Speed", which are measurements of one machine on a given day (they are tables, not blocks);
/// - messages quoted in the prose (`Errors look like ...`, the `refusing to write` lines), which name made-up files
///   and users to show the wording.
@Suite(.serialized) struct ReadmeExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let readmePath = root.appendingPathComponent("README.md").path
    static let update = ProcessInfo.processInfo.environment["RST_UPDATE_README"] == "1"

    /// A marked block of README.md.
    struct Example: Sendable, CustomTestStringConvertible {
        var command: String
        /// 1-based line of the marker; the block's lines follow the fence after it.
        var markerLine: Int
        /// The `$ COMMAND` line the block starts with, if it does.
        var prompt: String?
        /// The block's lines after the prompt: the output shown.
        var output: [String]
        var testDescription: String { "README.md:\(markerLine): \(command)" }

        /// The prompt line the block must show: the command as typed at a terminal.
        var expectedPrompt: String {
            "$ " + (command.hasSuffix(" 2>&1") ? String(command.dropLast(" 2>&1".count)) : command)
        }

        /// `calibrate` tries all 2^32 secrets: 16 s optimized on two cores, about half an hour in a debug build and
        /// far longer than that under a sanitizer, so it runs only in the optimized pass.
        var searchesSecrets: Bool { command.hasPrefix("rst-detective calibrate ") }
    }

    /// A fenced block of README.md: its info string, 0-based line range of its content, and the marker before it.
    struct Block {
        var info: String
        var content: Range<Int>
        var command: String?
    }

    static let markerPrefix = "<!-- example: "
    static let markerSuffix = " -->"

    static func blocks(_ lines: [String]) -> [Block] {
        var blocks: [Block] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else {
                index += 1
                continue
            }
            let start = index + 1
            var end = start
            while end < lines.count, lines[end] != "```" { end += 1 }
            var command: String?
            if index > 0, lines[index - 1].hasPrefix(markerPrefix), lines[index - 1].hasSuffix(markerSuffix) {
                command = String(lines[index - 1].dropFirst(markerPrefix.count).dropLast(markerSuffix.count))
            }
            blocks.append(Block(info: String(line.dropFirst(3)), content: start..<end, command: command))
            index = end + 1
        }
        return blocks
    }

    static func readmeLines() -> [String] {
        let text = (try? String(contentsOfFile: readmePath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    static func examples() -> [Example] {
        let lines = readmeLines()
        return blocks(lines).compactMap { block in
            guard let command = block.command else { return nil }
            var output = Array(lines[block.content])
            let prompt = output.first.flatMap { $0.hasPrefix("$ ") ? $0 : nil }
            if prompt != nil { output.removeFirst() }
            return Example(command: command, markerLine: block.content.lowerBound - 1, prompt: prompt, output: output)
        }
    }

    static let all = examples()

    /// What varies from run to run and is replaced on both sides before they are compared: only the duration of the
    /// secret search and its thread count (one per processor), in `calibrate`'s report. Every other output is a
    /// function of the capture and the options: the tool reads capture time, never the clock, names files as they
    /// were given (relative here), and writes no colour or progress bar when standard error is not a terminal
    /// (`NO_COLOR` is set too).
    static let normalisations: [(pattern: String, replacement: String)] = [
        (#"secrets in [0-9]+(\.[0-9]+)? s on [0-9]+ thread\(s\)"#, "secrets in SECONDS s on THREADS thread(s)")
    ]

    static func normalised(_ text: String) throws -> String {
        var text = text
        for (pattern, replacement) in normalisations {
            text = text.replacing(try Regex(pattern), with: replacement)
        }
        return text
    }

    /// Runs `command` with `/bin/sh -c` in a new directory that sees the repository's `Tests` (so relative paths
    /// read as from the root, and reports such as `--report-dir reports` land in the temporary directory).
    static func run(_ command: String) throws -> Binary.Run {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createSymbolicLink(
            at: directory.appendingPathComponent("Tests"), withDestinationURL: root.appendingPathComponent("Tests"))
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] =
            Binary.url.deletingLastPathComponent().path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["NO_COLOR"] = "1"
        return try Binary.run(
            ["-c", command], executable: "/bin/sh", workingDirectory: directory, environment: environment)
    }

    /// Runs the example and compares its output with the block, or with `RST_UPDATE_README=1` rewrites the block.
    static func check(_ example: Example) throws {
        // The secret search runs on one thread (its thread count is masked), so that the suites running beside
        // it keep a core: the live captures among them must not drop packets.
        let command =
            example.searchesSecrets
            ? example.command.replacingOccurrences(of: "rst-detective calibrate ", with: "rst-detective calibrate --threads 1 ")
            : example.command
        let run = try run(command)
        #expect(run.status == 0, "\(example.testDescription) exited \(run.status): \(run.standardError)")
        #expect(
            run.standardError.isEmpty,
            "\(example.testDescription) wrote to standard error; redirect it in the marker: \(run.standardError)")
        if let prompt = example.prompt {
            #expect(prompt == example.expectedPrompt, "\(example.testDescription): the block's command differs")
        }
        let shown = example.output.map { $0 + "\n" }.joined()
        let actual = run.standardOutput
        if try normalised(shown) == normalised(actual) { return }
        if update {
            try rewrite(example, output: actual)
            return
        }
        // The first line that differs once normalised, shown as it is on each side.
        let shownLines = shown.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let common = min(shownLines.count, actualLines.count)
        let first =
            try (0..<common).first { try normalised(String(shownLines[$0])) != normalised(String(actualLines[$0])) }
            ?? common
        let line = example.markerLine + 2 + (example.prompt == nil ? 0 : 1) + first
        Issue.record(
            """
            \(example.testDescription): README.md:\(line) differs from the binary's output \
            (RST_UPDATE_README=1 rewrites it):
            README: \(first < shownLines.count ? String(shownLines[first]) : "(end)")
            binary: \(first < actualLines.count ? String(actualLines[first]) : "(end)")
            """)
    }

    /// Replaces the block after the example's marker (found again by its command: earlier rewrites move lines).
    static func rewrite(_ example: Example, output: String) throws {
        var lines = readmeLines()
        let matching = blocks(lines).filter { $0.command == example.command }
        let block = try #require(matching.count == 1 ? matching.first : nil, "one marker for \(example.command)")
        var content = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if content.last == "" { content.removeLast() }
        if let prompt = example.prompt { content.insert(prompt, at: 0) }
        lines.replaceSubrange(block.content, with: content)
        try lines.joined(separator: "\n").write(toFile: readmePath, atomically: true, encoding: .utf8)
    }

    @Test(arguments: all.filter { !$0.searchesSecrets })
    func exampleOutput(_ example: Example) throws {
        try Self.check(example)
    }

    #if DEBUG
        static let optimized = false
    #else
        static let optimized = true
    #endif

    @Test(
        .enabled(if: optimized && !Binary.isSanitized, "the secret search takes half an hour unoptimized"),
        arguments: all.filter(\.searchesSecrets))
    func secretSearchExampleOutput(_ example: Example) throws {
        try Self.check(example)
    }

    /// Every block shown as output is marked, but those that cannot be run here; a new one must get a marker.
    @Test func everyOutputBlockIsChecked() throws {
        let lines = Self.readmeLines()
        let blocks = Self.blocks(lines)
        // Commands and configuration, not output.
        let notOutput: Set<String> = ["sh", "yaml"]
        var unmarked: [String] = []
        for block in blocks where block.command == nil && !notOutput.contains(block.info) {
            let first = block.content.isEmpty ? "" : lines[block.content.lowerBound]
            // The Prometheus scrape: a live capture, as root, of the live lab's traffic.
            if first.hasPrefix("rst_detective_") { continue }
            // "Layout": the source tree, described.
            if first.hasPrefix("Sources/") { continue }
            unmarked.append("README.md:\(block.content.lowerBound): \(first)")
        }
        #expect(unmarked.isEmpty, "output blocks without an example marker: \(unmarked)")
        // A marker must sit on the line just before its block's opening fence, or it would check nothing.
        let markers = lines.filter { $0.hasPrefix(Self.markerPrefix) }
        #expect(markers.count == Self.all.count, "markers not followed by a fenced block: \(markers)")
        // The examples the README has had since this suite was written: none may lose its marker unnoticed.
        #expect(Self.all.count >= 4, "\(Self.all.map(\.command))")
        #expect(Self.all.contains { $0.command.hasPrefix("rst-detective analyze Tests/Captures/reuseport-churn.pcap") })
    }
}
