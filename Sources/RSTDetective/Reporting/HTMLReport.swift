import Glibc
import Histogram

/// One self-contained HTML page of a run: the totals, outcomes, RST origins and cause hints, four charts
/// drawn as inline SVG, and the first incidents as a table.
///
/// The page loads nothing: no script, font, image or style sheet from elsewhere, so it can be mailed,
/// archived or opened offline and shows the same everywhere. Every text from the run (paths, interface
/// names, filters, addresses) is HTML-escaped, since it is user input. Charts are hand-written SVG with a
/// `<title>` and `<desc>` for screen readers, each in a `<figure>` with a fixed id:
///
/// - `chart-timeline`: incidents (bars, left axis) and completed handshakes (area, right axis) per
///   `Timeline` bin;
/// - `chart-buckets`: incidents per reuseport bucket, with the count expected if incidents followed
///   handshakes (`BucketUniformity.expectedIncidents`);
/// - `chart-client-ports`: incidents (bars) and handshakes (line) per range of 1024 client ports;
/// - `chart-reset-delays`: the ACK-to-RST delays on a logarithmic axis, with p50, p90, p99 and the maximum.
///
/// Each bar is a `rect` with the class `bar` and a `data-incidents` attribute holding its count, so the
/// bars of a chart add up to the run's incidents.
public enum HTMLReport {
    /// The chart ids, in page order.
    public static let chartIDs = ["chart-timeline", "chart-buckets", "chart-client-ports", "chart-reset-delays"]

    /// The fill colour of each chart's incident bars (`#rrggbb`), unique on the page: a screenshot test
    /// finds each chart by it. A series without data draws no swatch of its colour either.
    public static let incidentColours = [
        "chart-timeline": "#d62728", "chart-buckets": "#7b3294", "chart-client-ports": "#1a9850",
        "chart-reset-delays": "#f28e2b",
    ]

    /// The fill of the timeline's handshake area.
    public static let handshakeAreaColour = "#9ecae1"

    /// Client ports per range in the client-port chart: 64 ranges cover the 65536 ports.
    public static let clientPortRange = 1024

    /// Buckets drawn one bar each; with more listeners, consecutive buckets share a bar.
    public static let maximumBucketBars = 256

    /// Logarithmic bins per decade of the delay chart.
    static let delayBinsPerDecade = 5

    /// The page.
    ///
    /// - Parameters:
    ///   - result: The run, finished or a snapshot of a live one.
    ///   - inputs: What was analysed, one entry a line: the capture paths, or the interface.
    /// - Complexity: O(bins + listeners + sampled incidents), independent of the capture's size.
    public static func render(_ result: AnalysisResult, inputs: [String]) -> String {
        let report = result.report
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>rst-detective: \(report.incidents) incident(s) in \(escape(inputs.joined(separator: ", ")))</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>rst-detective report</h1>

            """
        page += header(result, inputs: inputs)
        page += "<h2>Charts</h2>\n"
        page += timelineChart(report)
        page += bucketChart(report)
        page += clientPortChart(report)
        page += delayChart(report)
        page += incidentTable(report)
        page += "</body>\n</html>\n"
        return page
    }

    // MARK: - Header

    private static func header(_ result: AnalysisResult, inputs: [String]) -> String {
        let report = result.report
        let packets = result.packets
        var html = "<section id=\"summary\">\n"
        html += "<p class=\"signature\">" + escape(signatureText) + "</p>\n"
        if result.interrupted {
            html += "<p class=\"warning\">Interrupted: the run stopped early; the page covers what was read.</p>\n"
        }
        html += "<h2>Inputs</h2>\n<ul id=\"inputs\">\n"
        for input in inputs { html += "<li><code>\(escape(input))</code></li>\n" }
        html += "</ul>\n"
        var totals: [(String, String)] = []
        if let live = result.live {
            totals.append(("interface", live.interface))
            totals.append(("capture seconds", Summary.fixed(live.elapsedSeconds, digits: 1)))
            if let statistics = live.statistics {
                totals.append(("packets received by libpcap", String(statistics.received)))
                totals.append(("dropped by the kernel", String(statistics.droppedByKernel)))
                totals.append(("dropped by the interface", String(statistics.droppedByInterface)))
            }
            totals.append(("handshakes open", String(live.openHandshakes)))
        } else {
            totals.append(("capture files read", String(result.filesOpened)))
        }
        if let filter = result.options.filter { totals.append(("filter", filter)) }
        totals += [
            ("packets", String(packets.packets)),
            ("TCP packets", String(packets.tcpPackets)),
            ("first packet", packets.firstPacketNanos.map(Timestamp.iso8601) ?? "none"),
            ("last packet", packets.lastPacketNanos.map(Timestamp.iso8601) ?? "none"),
            ("connection attempts", String(report.connectionAttempts)),
            ("handshakes completed", String(report.handshakesCompleted)),
            ("incidents", String(report.incidents)),
            ("incident rate", percent(report.incidents, report.handshakesCompleted) + " of completed handshakes"),
            ("first incident", report.firstIncidentNanos.map(Timestamp.iso8601) ?? "none"),
            ("last incident", report.lastIncidentNanos.map(Timestamp.iso8601) ?? "none"),
            ("listeners", String(report.bucketModel.listeners)),
            ("kernel", report.bucketModel.kernel.release),
        ]
        html += "<div class=\"columns\">\n<div>\n<h2>Totals</h2>\n<table id=\"totals\" class=\"pairs\">\n"
        for (name, value) in totals {
            html += "<tr><th>\(escape(name))</th><td data-metric=\"\(escape(name))\">\(escape(value))</td></tr>\n"
        }
        html += "</table>\n</div>\n<div>\n<h2>Outcomes</h2>\n<table id=\"outcomes\">\n"
        html += "<tr><th>outcome</th><th>attempts</th></tr>\n"
        for outcome in Outcome.allCases {
            let kind =
                outcome == .resetAfterHandshake ? " class=\"incident\"" : outcome.isNearMiss ? " class=\"near\"" : ""
            html +=
                "<tr\(kind)><td>\(escape(outcome.name))\(outcome.isNearMiss ? " (near miss)" : "")</td>"
                + "<td data-outcome=\"\(escape(outcome.name))\">\(report.count(of: outcome))</td></tr>\n"
        }
        let nearMisses = Outcome.allCases.filter(\.isNearMiss).map(report.count(of:)).reduce(0, +)
        html += "<tr><td>near misses, all kinds</td><td data-outcome=\"near_misses\">\(nearMisses)</td></tr>\n"
        html += "</table>\n</div>\n<div>\n<h2>RST origin of the incidents</h2>\n<table id=\"origins\">\n"
        html += "<tr><th>verdict</th><th>incidents</th></tr>\n"
        for origin in ResetOrigin.allCases {
            html +=
                "<tr><td>\(escape(origin.rawValue))</td>"
                + "<td data-origin=\"\(escape(origin.rawValue))\">\(report.count(of: origin))</td></tr>\n"
        }
        html += "</table>\n</div>\n</div>\n"
        if !result.errors.isEmpty {
            html += "<h2>Inputs that failed</h2>\n<ul id=\"errors\" class=\"warning\">\n"
            for error in result.errors { html += "<li>\(escape(error.description))</li>\n" }
            html += "</ul>\n"
        }
        let verdicts = report.causeVerdicts.filter { $0.value.incidents > 0 || $0.value.droppedACKs > 0 }
        if !verdicts.isEmpty {
            html += "<h2>Causes by server port</h2>\n<ul id=\"causes\">\n"
            for port in verdicts.keys.sorted() {
                let verdict = verdicts[port]!
                html +=
                    "<li data-port=\"\(port)\"><strong>\(port)</strong>: \(escape(verdict.cause.isEmpty ? "no incidents" : verdict.cause))"
                    + " (\(escape(verdict.evidence)))</li>\n"
            }
            html += "</ul>\n"
        }
        html += "<h2>Cause hints</h2>\n<p>What the packets show; <em>yes</em> means the evidence points that way.</p>\n"
        html += "<ul id=\"hints\">\n"
        for hint in CauseHint.hints(report) {
            html +=
                "<li data-hint=\"\(escape(hint.name))\"><span class=\"\(hint.holds ? "yes" : "no")\">"
                + "\(hint.holds ? "yes" : "no")</span> <strong>\(escape(hint.name))</strong>: "
                + "\(escape(hint.evidence))</li>\n"
        }
        html += "</ul>\n</section>\n"
        return html
    }

    /// What the signature is and why it matters, for a reader who has not read the README.
    static let signatureText =
        "An incident is a connection the server reset right after its own handshake: client SYN, server "
        + "SYN-ACK, client ACK (often with the request), then a server RST whose sequence number is the ACK's "
        + "acknowledgement number and whose ACK flag is clear. The client's connect() succeeded, then its "
        + "first read or write failed with \"connection reset by peer\"; the server's application never saw "
        + "the connection. Linux sends it when the ACK reaches a listener that holds no half-open connection "
        + "for it: a listener closed between SYN-ACK and ACK, a full accept queue with "
        + "tcp_abort_on_overflow=1, or reuseport churn on kernels 3.9 to 4.3. Near misses are server RSTs "
        + "that are not the signature."

    // MARK: - Charts

    /// The SVG canvas and plot area of every chart, in CSS pixels.
    private enum Frame {
        static let width = 1040.0
        static let height = 320.0
        static let left = 70.0
        static let right = 70.0
        static let top = 40.0
        static let bottom = 56.0
        static var plotWidth: Double { width - left - right }
        static var plotHeight: Double { height - top - bottom }
        static var baseline: Double { top + plotHeight }
    }

    /// A linear axis from 0 to `top` in steps of `step`.
    struct Scale {
        var top: Double
        var step: Double

        /// A scale whose top is a round number at or above `maximum`, with 4 or 5 ticks; counts step by
        /// whole numbers.
        init(maximum: Double, integral: Bool = true) {
            guard maximum > 0, maximum.isFinite else {
                top = 1
                step = integral ? 1 : 0.25
                return
            }
            let rough = maximum / 4
            let magnitude = pow(10, (log10(rough)).rounded(.down))
            let residual = rough / magnitude
            var step = (residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 5 ? 5 : 10) * magnitude
            if integral { step = max(1, step.rounded(.up)) }
            self.step = step
            top = (maximum / step).rounded(.up) * step
        }

        /// The y coordinate of `value`.
        func y(_ value: Double) -> Double { Frame.baseline - value / top * Frame.plotHeight }

        var ticks: [Double] { stride(from: 0.0, through: top + step / 2, by: step).map { $0 } }
    }

    private enum Swatch {
        case bar(String)
        case line(String, dashed: Bool)
    }

    /// Opens a figure and its SVG, with the accessible title and description.
    private static func openFigure(id: String, caption: String, title: String, description: String, empty: Bool)
        -> String
    {
        """
        <figure id="\(id)"\(empty ? " class=\"empty\"" : "")>
        <figcaption>\(escape(caption))</figcaption>
        <svg role="img" aria-labelledby="\(id)-title \(id)-desc" width="\(Int(Frame.width))" \
        height="\(Int(Frame.height))" viewBox="0 0 \(Int(Frame.width)) \(Int(Frame.height))">
        <title id="\(id)-title">\(escape(title))</title>
        <desc id="\(id)-desc">\(escape(description))</desc>
        <rect x="0" y="0" width="\(Int(Frame.width))" height="\(Int(Frame.height))" fill="#ffffff"/>

        """
    }

    private static func closeFigure(note: String?) -> String {
        var html = ""
        if let note {
            html +=
                "<text class=\"empty-note\" x=\"\(number(Frame.left + Frame.plotWidth / 2))\" "
                + "y=\"\(number(Frame.top + Frame.plotHeight / 2))\" text-anchor=\"middle\" font-size=\"16\" "
                + "fill=\"#555555\">\(escape(note))</text>\n"
        }
        return html + "</svg>\n</figure>\n"
    }

    /// Grid lines, the left axis, and the right one when given.
    private static func axes(left: Scale, leftTitle: String, right: Scale? = nil, rightTitle: String = "") -> String {
        var svg = "<g class=\"axes\" font-size=\"12\" fill=\"#333333\">\n"
        for tick in left.ticks {
            let y = number(left.y(tick))
            svg +=
                "<line x1=\"\(number(Frame.left))\" x2=\"\(number(Frame.left + Frame.plotWidth))\" y1=\"\(y)\" "
                + "y2=\"\(y)\" stroke=\"#e6e6e6\"/>\n"
                + "<text x=\"\(number(Frame.left - 6))\" y=\"\(y)\" dy=\"4\" text-anchor=\"end\">"
                + "\(tickLabel(tick))</text>\n"
        }
        svg +=
            "<line x1=\"\(number(Frame.left))\" x2=\"\(number(Frame.left))\" y1=\"\(number(Frame.top))\" "
            + "y2=\"\(number(Frame.baseline))\" stroke=\"#333333\"/>\n"
            + "<text transform=\"translate(16 \(number(Frame.top + Frame.plotHeight / 2))) rotate(-90)\" "
            + "text-anchor=\"middle\">\(escape(leftTitle))</text>\n"
        if let right {
            let x = Frame.left + Frame.plotWidth
            for tick in right.ticks {
                svg +=
                    "<text x=\"\(number(x + 6))\" y=\"\(number(right.y(tick)))\" dy=\"4\">"
                    + "\(tickLabel(tick))</text>\n"
            }
            svg +=
                "<line x1=\"\(number(x))\" x2=\"\(number(x))\" y1=\"\(number(Frame.top))\" "
                + "y2=\"\(number(Frame.baseline))\" stroke=\"#333333\"/>\n"
                + "<text transform=\"translate(\(number(Frame.width - 14)) "
                + "\(number(Frame.top + Frame.plotHeight / 2))) rotate(90)\" text-anchor=\"middle\">"
                + "\(escape(rightTitle))</text>\n"
        }
        return svg + "</g>\n"
    }

    /// The x axis line, its ticks at `ticks` (x, label) and its title.
    private static func xAxis(_ ticks: [(x: Double, label: String)], title: String) -> String {
        var svg = "<g class=\"x-axis\" font-size=\"12\" fill=\"#333333\">\n"
        svg +=
            "<line x1=\"\(number(Frame.left))\" x2=\"\(number(Frame.left + Frame.plotWidth))\" "
            + "y1=\"\(number(Frame.baseline))\" y2=\"\(number(Frame.baseline))\" stroke=\"#333333\"/>\n"
        for tick in ticks {
            svg +=
                "<line x1=\"\(number(tick.x))\" x2=\"\(number(tick.x))\" y1=\"\(number(Frame.baseline))\" "
                + "y2=\"\(number(Frame.baseline + 5))\" stroke=\"#333333\"/>\n"
                + "<text x=\"\(number(tick.x))\" y=\"\(number(Frame.baseline + 18))\" text-anchor=\"middle\">"
                + "\(escape(tick.label))</text>\n"
        }
        svg +=
            "<text x=\"\(number(Frame.left + Frame.plotWidth / 2))\" y=\"\(number(Frame.height - 10))\" "
            + "text-anchor=\"middle\">\(escape(title))</text>\n"
        return svg + "</g>\n"
    }

    /// The legend along the top. A series without data gets a hollow grey swatch, so that its colour
    /// appears on the page only where data is drawn.
    private static func legend(_ entries: [(label: String, swatch: Swatch, hasData: Bool)]) -> String {
        var svg = "<g class=\"legend\" font-size=\"13\" fill=\"#222222\">\n"
        var x = Frame.left
        for entry in entries {
            switch entry.swatch {
            case .bar(let colour):
                let fill = entry.hasData ? colour : "none"
                let stroke = entry.hasData ? colour : "#999999"
                svg +=
                    "<rect x=\"\(number(x))\" y=\"10\" width=\"14\" height=\"14\" fill=\"\(fill)\" "
                    + "stroke=\"\(stroke)\"/>\n"
            case .line(let colour, let dashed):
                svg +=
                    "<line x1=\"\(number(x))\" x2=\"\(number(x + 14))\" y1=\"17\" y2=\"17\" "
                    + "stroke=\"\(entry.hasData ? colour : "#999999")\" stroke-width=\"3\""
                    + "\(dashed ? " stroke-dasharray=\"4 2\"" : "")/>\n"
            }
            let label = entry.label + (entry.hasData ? "" : " (none)")
            svg += "<text x=\"\(number(x + 20))\" y=\"22\">\(escape(label))</text>\n"
            x += 20 + Double(label.count) * 7.2 + 24
        }
        return svg + "</g>\n"
    }

    private static func bar(
        x: Double, width: Double, value: Int, scale: Scale, colour: String, kind: String, title: String
    ) -> String {
        let y = scale.y(Double(value))
        return
            "<rect class=\"bar \(kind)\" data-incidents=\"\(value)\" x=\"\(number(x))\" y=\"\(number(y))\" "
            + "width=\"\(number(max(width, 1)))\" height=\"\(number(Frame.baseline - y))\" fill=\"\(colour)\">"
            + "<title>\(escape(title))</title></rect>\n"
    }

    /// Incidents and completed handshakes per timeline bin.
    private static func timelineChart(_ report: AnalysisReport) -> String {
        let id = chartIDs[0]
        let timeline = report.timeline
        let bins = timeline.handshakes.count
        let incidentScale = Scale(maximum: Double(timeline.incidents.max() ?? 0))
        let handshakeScale = Scale(maximum: Double(timeline.handshakes.max() ?? 0))
        let binText = duration(nanos: timeline.binNanos)
        let start = timeline.startNanos.map(Timestamp.iso8601) ?? "no handshake"
        var html = openFigure(
            id: id,
            caption:
                "Incidents (bars, left axis) and completed handshakes (area, right axis) over capture time, "
                + "in bins of \(binText) from \(start).",
            title: "Incidents and completed handshakes over time",
            description:
                "\(report.incidents) incidents and \(report.handshakesCompleted) completed handshakes in \(bins) "
                + "bins of \(binText) from \(start).",
            empty: report.incidents == 0)
        html += axes(
            left: incidentScale, leftTitle: "incidents per bin", right: handshakeScale,
            rightTitle: "handshakes per bin")
        let binWidth = Frame.plotWidth / Double(max(bins, 1))
        if bins > 0, report.handshakesCompleted > 0 {
            var path = "M\(number(Frame.left)) \(number(Frame.baseline))"
            for (index, count) in timeline.handshakes.enumerated() {
                let y = number(handshakeScale.y(Double(count)))
                path += " L\(number(Frame.left + Double(index) * binWidth)) \(y)"
                path += " L\(number(Frame.left + Double(index + 1) * binWidth)) \(y)"
            }
            path += " L\(number(Frame.left + Frame.plotWidth)) \(number(Frame.baseline)) Z"
            html +=
                "<path class=\"handshakes\" d=\"\(path)\" fill=\"\(handshakeAreaColour)\" stroke=\"#3182bd\" "
                + "stroke-width=\"1.5\"/>\n"
        }
        let colour = incidentColours[id] ?? "#000000"
        for (index, count) in timeline.incidents.enumerated() {
            let binStart = (timeline.startNanos ?? 0) &+ Int64(index) &* timeline.binNanos
            html += bar(
                x: Frame.left + (Double(index) + 0.15) * binWidth, width: binWidth * 0.7, value: count,
                scale: incidentScale, colour: colour, kind: "incident",
                title:
                    "\(Timestamp.iso8601(nanos: binStart)), \(binText): \(count) incident(s), "
                    + "\(timeline.handshakes[index]) completed handshake(s)")
        }
        let every = max(1, Int((Double(bins) / 8).rounded(.up)))
        let ticks = stride(from: 0, through: max(bins, 1), by: every).map { index in
            (
                x: Frame.left + Double(index) * binWidth,
                label: "+" + duration(nanos: Int64(index) &* timeline.binNanos)
            )
        }
        html += xAxis(ticks, title: "time since \(start)")
        html += legend([
            ("incidents", .bar(colour), report.incidents > 0),
            ("completed handshakes", .bar(handshakeAreaColour), report.handshakesCompleted > 0),
        ])
        let note =
            report.handshakesCompleted == 0
            ? "No completed handshakes, so no incidents." : report.incidents == 0 ? "No incidents." : nil
        return html + closeFigure(note: note)
    }

    /// Incidents per reuseport bucket, against the count expected if they followed handshakes.
    private static func bucketChart(_ report: AnalysisReport) -> String {
        let id = chartIDs[1]
        let buckets = report.buckets()
        let expected = BucketUniformity.expectedIncidents(
            incidents: buckets.map(\.incidents), handshakes: buckets.map(\.handshakes))
        let perBar = (buckets.count + maximumBucketBars - 1) / maximumBucketBars
        let groups = stride(from: 0, to: buckets.count, by: perBar).map { first in
            let range = first..<min(first + perBar, buckets.count)
            return (
                range: range, incidents: range.map { buckets[$0].incidents }.reduce(0, +),
                handshakes: range.map { buckets[$0].handshakes }.reduce(0, +),
                expected: range.map { expected[$0] }.reduce(0, +)
            )
        }
        let scale = Scale(
            maximum: max(Double(groups.map(\.incidents).max() ?? 0), groups.map(\.expected).max() ?? 0))
        let model = report.bucketModel
        var caption =
            "Incidents per reuseport bucket (\(model.listeners) listener(s), \(model.modelName), secret "
            + "\(Connection.hex(model.secret))), and the incidents expected if they followed each bucket's "
            + "completed handshakes."
        if perBar > 1 { caption += " Each bar holds \(perBar) consecutive buckets." }
        if let uniformity = report.bucketUniformity {
            caption +=
                " Chi-square \(Summary.fixed(uniformity.statistic, digits: 2)), \(uniformity.degreesOfFreedom) "
                + "degrees of freedom, p = \(Summary.probability(uniformity.pValue)): incidents "
                + "\(uniformity.isConcentrated ? "are" : "are not") concentrated in some buckets."
        }
        var html = openFigure(
            id: id, caption: caption, title: "Incidents per reuseport bucket against the expected count",
            description:
                "\(groups.count) bars for \(model.listeners) listener(s); \(report.incidents) incidents in all.",
            empty: report.incidents == 0)
        html += axes(left: scale, leftTitle: "incidents")
        let slot = Frame.plotWidth / Double(max(groups.count, 1))
        let colour = incidentColours[id] ?? "#000000"
        for (index, group) in groups.enumerated() {
            let name =
                group.range.count == 1
                ? "bucket \(group.range.lowerBound)" : "buckets \(group.range.lowerBound)-\(group.range.upperBound - 1)"
            let expectedText = Summary.fixed(group.expected, digits: 2)
            html += bar(
                x: Frame.left + (Double(index) + 0.2) * slot, width: slot * 0.6, value: group.incidents,
                scale: scale, colour: colour, kind: "bucket",
                title:
                    "\(name): \(group.incidents) incident(s) of \(group.handshakes) completed handshake(s); "
                    + "\(expectedText) expected")
            if report.incidents > 0 {
                let y = number(scale.y(group.expected))
                html +=
                    "<line class=\"expected\" x1=\"\(number(Frame.left + (Double(index) + 0.1) * slot))\" "
                    + "x2=\"\(number(Frame.left + (Double(index) + 0.9) * slot))\" y1=\"\(y)\" y2=\"\(y)\" "
                    + "stroke=\"#111111\" stroke-width=\"3\" stroke-dasharray=\"6 3\">"
                    + "<title>\(escape(name)): \(expectedText) expected</title></line>\n"
            }
        }
        let every = max(1, Int((Double(groups.count) / 16).rounded(.up)))
        let ticks = stride(from: 0, to: groups.count, by: every).map { index in
            (x: Frame.left + (Double(index) + 0.5) * slot, label: String(groups[index].range.lowerBound))
        }
        html += xAxis(ticks, title: "bucket (listener, in listen() order from 0)")
        html += legend([
            ("incidents", .bar(colour), report.incidents > 0),
            ("expected if incidents followed handshakes", .line("#111111", dashed: true), report.incidents > 0),
        ])
        return html + closeFigure(note: report.incidents == 0 ? "No incidents." : nil)
    }

    /// Incidents and handshakes per range of 1024 client ports.
    private static func clientPortChart(_ report: AnalysisReport) -> String {
        let id = chartIDs[2]
        let ranges = 65536 / clientPortRange
        var incidents = [Int](repeating: 0, count: ranges)
        var handshakes = [Int](repeating: 0, count: ranges)
        for row in report.clientPorts() {
            incidents[Int(row.port) / clientPortRange] += row.incidents
            handshakes[Int(row.port) / clientPortRange] += row.handshakes
        }
        let incidentScale = Scale(maximum: Double(incidents.max() ?? 0))
        let handshakeScale = Scale(maximum: Double(handshakes.max() ?? 0))
        var html = openFigure(
            id: id,
            caption:
                "Incidents (bars, left axis) and completed handshakes (line, right axis) per range of "
                + "\(clientPortRange) client ports.",
            title: "Incidents and completed handshakes per client-port range",
            description:
                "\(ranges) ranges of \(clientPortRange) ports; \(report.incidents) incidents, "
                + "\(report.handshakesCompleted) completed handshakes.",
            empty: report.incidents == 0)
        html += axes(
            left: incidentScale, leftTitle: "incidents", right: handshakeScale, rightTitle: "handshakes")
        let slot = Frame.plotWidth / Double(ranges)
        let colour = incidentColours[id] ?? "#000000"
        for index in 0..<ranges {
            let low = index * clientPortRange
            html += bar(
                x: Frame.left + (Double(index) + 0.1) * slot, width: slot * 0.8, value: incidents[index],
                scale: incidentScale, colour: colour, kind: "ports",
                title:
                    "client ports \(low)-\(low + clientPortRange - 1): \(incidents[index]) incident(s), "
                    + "\(handshakes[index]) completed handshake(s)")
        }
        if report.handshakesCompleted > 0 {
            var path = ""
            for (index, count) in handshakes.enumerated() {
                let y = number(handshakeScale.y(Double(count)))
                path += (index == 0 ? "M" : " L") + "\(number(Frame.left + Double(index) * slot)) \(y)"
                path += " L\(number(Frame.left + Double(index + 1) * slot)) \(y)"
            }
            html +=
                "<path class=\"handshakes\" d=\"\(path)\" fill=\"none\" stroke=\"#636363\" stroke-width=\"2\"/>\n"
        }
        let ticks = stride(from: 0, through: ranges, by: 8).map { index in
            (x: Frame.left + Double(index) * slot, label: String(index * clientPortRange))
        }
        html += xAxis(ticks, title: "client port")
        html += legend([
            ("incidents", .bar(colour), report.incidents > 0),
            ("completed handshakes", .line("#636363", dashed: false), report.handshakesCompleted > 0),
        ])
        return html + closeFigure(note: report.incidents == 0 ? "No incidents." : nil)
    }

    /// The ACK-to-RST delays, in logarithmic bins, with the percentiles marked.
    private static func delayChart(_ report: AnalysisReport) -> String {
        let id = chartIDs[3]
        let delays = report.resetDelays
        let hasData = delays.totalCount > 0
        // Decades from the smallest to the largest delay, at least one; 0 µs falls into the first bin.
        let lowDecade = hasData ? Int(log10(Double(max(1, delays.minNonZero))).rounded(.down)) : 0
        let highDecade = hasData ? max(lowDecade + 1, Int(log10(Double(max(1, delays.max)) + 0.5).rounded(.up))) : 6
        let binCount = (highDecade - lowDecade) * delayBinsPerDecade
        var counts = [Int](repeating: 0, count: binCount)
        for value in delays.recordedValues() {
            let micros = Double(delays.medianEquivalentForValue(value.value))
            let position = micros < 1 ? 0 : (log10(micros) - Double(lowDecade)) * Double(delayBinsPerDecade)
            counts[min(binCount - 1, max(0, Int(position.rounded(.down))))] += Int(value.count)
        }
        let scale = Scale(maximum: Double(counts.max() ?? 0))
        let binWidth = Frame.plotWidth / Double(binCount)
        func x(micros: Double) -> Double {
            let position = (log10(max(micros, 1)) - Double(lowDecade)) * Double(delayBinsPerDecade)
            return Frame.left + min(Double(binCount), max(0, position)) * binWidth
        }
        let marks: [(name: String, micros: UInt64)] =
            hasData
            ? [
                ("p50", delays.valueAtPercentile(50)), ("p90", delays.valueAtPercentile(90)),
                ("p99", delays.valueAtPercentile(99)), ("max", delays.max),
            ] : []
        let markText = marks.map { "\($0.name) \(Summary.microseconds($0.micros))" }.joined(separator: ", ")
        var html = openFigure(
            id: id,
            caption:
                "Delay from the client's handshake ACK to the server's RST, over the incidents, on a logarithmic "
                + "axis (\(delayBinsPerDecade) bins per decade)" + (hasData ? ": \(markText)." : "."),
            title: "Distribution of the ACK-to-RST delay",
            description:
                "\(delays.totalCount) delays" + (hasData ? "; \(markText)" : "") + ".",
            empty: !hasData)
        html += axes(left: scale, leftTitle: "incidents")
        let colour = incidentColours[id] ?? "#000000"
        for (index, count) in counts.enumerated() {
            let low = pow(10, Double(lowDecade) + Double(index) / Double(delayBinsPerDecade))
            let high = pow(10, Double(lowDecade) + Double(index + 1) / Double(delayBinsPerDecade))
            html += bar(
                x: Frame.left + (Double(index) + 0.05) * binWidth, width: binWidth * 0.9, value: count,
                scale: scale, colour: colour, kind: "delay",
                title:
                    "\(index == 0 ? "up to" : Summary.microseconds(UInt64(low.rounded())) + " to") "
                    + "\(Summary.microseconds(UInt64(high.rounded()))): \(count) incident(s)")
        }
        for (index, mark) in marks.enumerated() {
            let markX = number(x(micros: Double(mark.micros)))
            html +=
                "<g class=\"percentile\" data-percentile=\"\(mark.name)\"><line x1=\"\(markX)\" x2=\"\(markX)\" "
                + "y1=\"\(number(Frame.top))\" y2=\"\(number(Frame.baseline))\" stroke=\"#222222\" "
                + "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>"
                + "<text x=\"\(markX)\" dx=\"4\" y=\"\(number(Frame.top + 14 + Double(index) * 15))\" "
                + "font-size=\"12\" fill=\"#222222\">\(mark.name) \(Summary.microseconds(mark.micros))</text>"
                + "<title>\(mark.name): \(Summary.microseconds(mark.micros))</title></g>\n"
        }
        // Every decade, and 2 and 5 times it when there are few decades.
        let multiples: [Double] = highDecade - lowDecade <= 3 ? [1, 2, 5] : [1]
        let ticks = (lowDecade...highDecade).flatMap { decade in
            multiples.compactMap { multiple -> (x: Double, label: String)? in
                let micros = multiple * pow(10, Double(decade))
                guard decade < highDecade || multiple == 1 else { return nil }
                return (x: x(micros: micros), label: Summary.microseconds(UInt64(micros.rounded())))
            }
        }
        html += xAxis(ticks, title: "ACK to RST (logarithmic)")
        html += legend([
            ("incidents", .bar(colour), hasData),
            ("p50, p90, p99, max", .line("#222222", dashed: true), hasData),
        ])
        return html + closeFigure(note: hasData ? nil : "No incidents, so no delays.")
    }

    // MARK: - Incident table

    private static func incidentTable(_ report: AnalysisReport) -> String {
        let sample = report.incidentSample
        var html = "<section id=\"incidents\">\n<h2>Incidents</h2>\n"
        html +=
            "<p id=\"incidents-shown\">Showing \(sample.count) of \(report.incidents) incident(s)"
            + (sample.count < report.incidents ? ": the first \(AnalysisReport.incidentSampleLimit)" : "")
            + ", with every column of incidents.csv.</p>\n"
        guard !sample.isEmpty else { return html + "</section>\n" }
        html += "<div class=\"scroll\">\n<table id=\"incident-table\">\n<thead><tr>"
        for column in Connection.incidentCSVHeader { html += "<th>\(escape(column))</th>" }
        html += "</tr></thead>\n<tbody>\n"
        for connection in sample {
            html += "<tr>"
            for field in connection.incidentCSVFields { html += "<td>\(escape(field))</td>" }
            html += "</tr>\n"
        }
        return html + "</tbody>\n</table>\n</div>\n</section>\n"
    }

    // MARK: - Text

    /// `text` with the five characters HTML gives meaning escaped, for element text and quoted attributes.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// An SVG coordinate with at most one decimal.
    private static func number(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0
            ? String(Int(tenths / 10)) : Summary.fixed(tenths / 10, digits: 1)
    }

    private static func tickLabel(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : Summary.fixed(value, digits: 2)
    }

    private static func percent(_ part: Int, _ whole: Int) -> String {
        guard whole > 0 else { return "0%" }
        return Summary.fixed(Double(part) * 100 / Double(whole), digits: 2) + "%"
    }

    /// A duration as people read it: `500 ms`, `4 s`, `2 min`, `1.5 h`.
    static func duration(nanos: Int64) -> String {
        let seconds = Double(nanos) / 1e9
        if seconds == 0 { return "0 s" }
        if seconds < 1 { return Summary.trimmed(seconds * 1000) + " ms" }
        if seconds < 120 { return Summary.trimmed(seconds) + " s" }
        if seconds < 7200 { return Summary.trimmed(seconds / 60) + " min" }
        return Summary.trimmed(seconds / 3600) + " h"
    }

    private static let style = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1d;\
        margin:24px auto;max-width:1180px;padding:0 16px;background:#fafafa}\
        h1{font-size:26px;margin:0 0 8px}h2{font-size:19px;margin:22px 0 8px}\
        code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}\
        table{border-collapse:collapse;font-size:14px}th,td{padding:3px 10px;border-bottom:1px solid #dddddd;\
        text-align:left;vertical-align:top}td{font-variant-numeric:tabular-nums}\
        table.pairs th{font-weight:600;color:#444444}\
        tr.incident td{font-weight:700}tr.near td{color:#5a5a5a}\
        .columns{display:flex;gap:36px;flex-wrap:wrap}\
        .signature{background:#ffffff;border-left:4px solid #555555;padding:8px 12px;margin:8px 0}\
        .warning{color:#8a1c1c;font-weight:600}\
        #hints li{margin:4px 0}.yes,.no{display:inline-block;min-width:2.6em;text-align:center;\
        border-radius:3px;font-weight:700;font-size:12px;padding:0 4px}.yes{background:#fde2c8;color:#7a3300}\
        .no{background:#e8e8e8;color:#444444}\
        figure{margin:16px 0 28px;background:#ffffff;border:1px solid #dddddd;padding:10px;width:1040px}\
        figcaption{font-size:14px;margin-bottom:6px;color:#333333}svg{display:block}\
        .scroll{overflow-x:auto;max-width:100%}#incident-table{font-size:12px;white-space:nowrap}\
        #incident-table th{position:sticky;top:0;background:#f0f0f0}
        """
}
