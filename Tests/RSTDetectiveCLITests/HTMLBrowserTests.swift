import Foundation
import Testing

/// The `--html` page in a real browser: headless Chromium (Debian's `chromium`) takes a 1280x3000
/// screenshot, `Tests/Browser/png_colours.py` decodes the PNG (zlib, no third-party package), and each
/// chart's own incident colour must cover many pixels within that chart's box, which Chromium also
/// reports: a copy of the page with a script added gives each chart's position through `--dump-dom`.
/// A page without incidents must show none of those colours, and still draw its handshakes.
@Suite(
    .enabled(if: Browser.path != nil, "chromium is not installed (apt-get install chromium)"),
    .enabled(if: Browser.hasPython, "python3 is missing"))
struct HTMLBrowserTests {
    static let decoder = Binary.capturesDirectory.deletingLastPathComponent().appendingPathComponent(
        "Browser/png_colours.py")

    /// The colours of `HTMLReport.incidentColours`, by chart id, and the timeline's handshake area.
    static let incidentColours = [
        "chart-timeline": "d62728", "chart-buckets": "7b3294", "chart-client-ports": "1a9850",
        "chart-reset-delays": "f28e2b",
    ]
    static let handshakeArea = "9ecae1"
    static let chartIDs = ["chart-timeline", "chart-buckets", "chart-client-ports", "chart-reset-delays"]

    /// Runs Chromium headless on `page` with `arguments`; killed after 90 s.
    static func chromium(_ arguments: [String], page: URL, profile: URL) throws -> Binary.Run {
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,3000", "--hide-scrollbars",
            "--force-device-scale-factor=1", "--user-data-dir=\(profile.path)",
        ]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Browser.path))
        process.arguments = flags + arguments + [page.absoluteString]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        DispatchQueue.global().asyncAfter(deadline: .now() + 90) {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Binary.Run(
            status: process.terminationStatus, standardOutput: String(decoding: data, as: UTF8.self),
            standardError: "")
    }

    /// Each chart's SVG box in page pixels (top, bottom), as Chromium lays the page out at 1280 wide.
    static func layout(of page: URL, in directory: URL) throws -> [String: (top: Int, bottom: Int)] {
        let html = try String(contentsOf: page, encoding: .utf8)
        let script = """
            <script>document.body.setAttribute('data-layout', [...document.querySelectorAll('figure')].map(f => {
            const r = f.querySelector('svg').getBoundingClientRect();
            return f.id + ':' + Math.round(r.top + scrollY) + ':' + Math.round(r.bottom + scrollY); }).join(';'));
            </script>
            """
        let probe = directory.appendingPathComponent("layout-" + page.lastPathComponent)
        try html.replacingOccurrences(of: "</body>", with: script + "</body>").write(
            to: probe, atomically: true, encoding: .utf8)
        let dump = try chromium(["--dump-dom"], page: probe, profile: directory.appendingPathComponent("profile"))
        #expect(dump.status == 0)
        let match = try #require(dump.standardOutput.firstMatch(of: /data-layout="([^"]*)"/))
        var boxes: [String: (top: Int, bottom: Int)] = [:]
        for entry in match.output.1.split(separator: ";") {
            let parts = entry.split(separator: ":")
            guard parts.count == 3, let top = Int(parts[1]), let bottom = Int(parts[2]) else { continue }
            boxes[String(parts[0])] = (top, bottom)
        }
        return boxes
    }

    struct ColourCount: Decodable {
        var total: Int
        var bands: [Int]
    }

    struct Counts: Decodable {
        var width: Int
        var height: Int
        var colours: [String: ColourCount]
    }

    /// Renders the page of `capture`, screenshots it, and counts every chart colour in every chart's box.
    static func screenshot(_ capture: String, listeners: Int, name: String) throws -> (
        counts: Counts, boxes: [String: (top: Int, bottom: Int)], png: URL
    ) {
        let directory = try Binary.temporaryDirectory()
        let page = directory.appendingPathComponent(name + ".html")
        let run = try Binary.run([
            "analyze", "-q", Binary.capture(capture), "--listeners", String(listeners), "--csv", "/dev/null",
            "--html", page.path,
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let boxes = try layout(of: page, in: directory)
        #expect(Set(boxes.keys) == Set(chartIDs))
        let png = directory.appendingPathComponent(name + ".png")
        let shot = try chromium(
            ["--screenshot=\(png.path)"], page: page, profile: directory.appendingPathComponent("profile"))
        #expect(shot.status == 0)
        var arguments = ["python3", decoder.path, "count", png.path]
        for id in chartIDs {
            let box = try #require(boxes[id])
            arguments += ["--band", "\(box.top):\(box.bottom)"]
        }
        for colour in incidentColours.values.sorted() + [handshakeArea] { arguments += ["--colour", colour] }
        let decoded = try Binary.run(arguments, executable: "/usr/bin/env")
        #expect(decoded.status == 0, "\(decoded.standardError)")
        let counts = try JSONDecoder().decode(Counts.self, from: Data(decoded.standardOutput.utf8))
        return (counts, boxes, png)
    }

    @Test func everyChartIsDrawnInItsOwnBox() throws {
        let (counts, boxes, png) = try Self.screenshot("reuseport-churn.pcap", listeners: 4, name: "churn")
        #expect(counts.width == 1280 && counts.height == 3000)
        var previousBottom = 0
        for (index, id) in Self.chartIDs.enumerated() {
            let box = try #require(boxes[id])
            // One below the other, each whole within the screenshot.
            #expect(box.top >= previousBottom && box.bottom <= 3000 && box.bottom - box.top >= 250, "\(id)")
            previousBottom = box.bottom
            let name = try #require(Self.incidentColours[id])
            let colour = try #require(counts.colours[name])
            // Its bars: hundreds of pixels (the legend swatch alone is 14x14), all inside its own box.
            #expect(colour.bands[index] >= 800, "\(id): \(colour.bands)")
            #expect(colour.bands[index] == colour.total, "\(id): \(colour.bands), \(colour.total) in all")
        }
        let area = try #require(counts.colours[Self.handshakeArea])
        #expect(area.bands[0] >= 5000 && area.bands[0] == area.total, "\(area.bands)")
        print("screenshot of reuseport-churn.pcap's page: \(png.path)")
    }

    @Test func aPageWithoutIncidentsPaintsNoIncidentColour() throws {
        let (counts, _, png) = try Self.screenshot("near-misses.pcap", listeners: 1, name: "near-misses")
        for colour in Self.incidentColours.values {
            #expect(counts.colours[colour]?.total == 0, "\(colour)")
        }
        // The timeline still draws the handshakes.
        let area = try #require(counts.colours[Self.handshakeArea])
        #expect(area.bands[0] >= 5000, "\(area.bands)")
        print("screenshot of near-misses.pcap's page: \(png.path)")
    }
}

/// What the browser test needs, looked up once.
enum Browser {
    /// Debian's Chromium.
    static let path: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static let hasPython: Bool = (try? Binary.run(["python3", "-c", "pass"], executable: "/usr/bin/env"))?.status == 0
}

/// `--html` as a user gives it; no browser needed.
@Suite struct HTMLOptionTests {
    /// `--html FILE` writes the page under its name and leaves nothing aside; it counts as an output
    /// for the one-standard-output rule.
    @Test func htmlWritesOnePageInPlace() throws {
        let directory = try Binary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("report.html")
        let run = try Binary.run([
            "analyze", "-q", Binary.capture("reuseport-churn.pcap"), "--listeners", "4", "--csv", "/dev/null",
            "--html", page.path,
        ])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["report.html"])
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.hasSuffix("</html>\n"))
        #expect(html.contains("<li><code>\(Binary.capture("reuseport-churn.pcap"))</code></li>"))
        #expect(html.contains("data-metric=\"incidents\">34<"))
        let twice = try Binary.run(["analyze", Binary.capture("reuseport-churn.pcap"), "--html", "-"])
        #expect(twice.status == 64)
        #expect(twice.standardError.contains("--html"))
        let toStandardOutput = try Binary.run([
            "analyze", "-q", Binary.capture("reuseport-churn.pcap"), "--csv", "/dev/null", "--html", "-",
        ])
        #expect(toStandardOutput.status == 0)
        #expect(toStandardOutput.standardOutput.hasPrefix("<!DOCTYPE html>"))
    }
}
