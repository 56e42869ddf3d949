import Foundation
import Histogram
import Testing

@testable import RSTDetective

/// The HTML page of real captures: its figures, the bars against the data, the header against the report,
/// escaping, and the page of a run with nothing in it.
@Suite struct HTMLReportTests {
    /// reuseport-churn.pcap with its 4 listeners: incidents in every chart.
    static var churn: AnalysisResult {
        Fixtures.analyze(
            [Fixtures.path("reuseport-churn.pcap")],
            options: AnalysisOptions(bucketModel: ReusePortBucket(listeners: 4))
        ).result
    }

    /// The part of `page` from `<figure id="ID"` to its `</figure>`.
    static func figure(_ id: String, in page: String) throws -> Substring {
        let start = try #require(page.range(of: "<figure id=\"\(id)\""))
        let end = try #require(page.range(of: "</figure>", range: start.upperBound..<page.endIndex))
        return page[start.lowerBound..<end.upperBound]
    }

    /// The `data-incidents` counts of the bars of class `bar KIND`, in order.
    static func bars(_ kind: String, in text: Substring) -> [Int] {
        text.matches(of: /<rect class="bar ([a-z]+)" data-incidents="([0-9]+)"/).compactMap { match in
            match.output.1 == kind ? Int(match.output.2) : nil
        }
    }

    static func occurrences(of needle: String, in text: some StringProtocol) -> Int {
        text.ranges(of: needle).count
    }

    @Test func everyChartIsAnAccessibleSVGFigure() throws {
        let page = HTMLReport.render(Self.churn, inputs: ["reuseport-churn.pcap"])
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        var previous = page.startIndex
        for id in HTMLReport.chartIDs {
            #expect(Self.occurrences(of: "id=\"\(id)\"", in: page) == 1)
            let figure = try Self.figure(id, in: page)
            // In page order.
            #expect(figure.startIndex > previous)
            previous = figure.startIndex
            #expect(figure.contains("<svg role=\"img\" aria-labelledby=\"\(id)-title \(id)-desc\""))
            #expect(figure.contains("<title id=\"\(id)-title\">"))
            #expect(figure.contains("<desc id=\"\(id)-desc\">"))
            #expect(figure.contains("class=\"legend\""))
            #expect(figure.contains("class=\"x-axis\""))
            #expect(figure.contains("<figcaption>"))
            #expect(!figure.contains("empty-note"))
            let colour = try #require(HTMLReport.incidentColours[id])
            #expect(figure.contains("fill=\"\(colour)\""))
            // No other chart uses this chart's colour.
            #expect(Self.occurrences(of: colour, in: page) == Self.occurrences(of: colour, in: figure))
        }
    }

    @Test func barsMatchTheData() throws {
        let report = Self.churn.report
        #expect(report.incidents == 34)
        let page = HTMLReport.render(Self.churn, inputs: ["reuseport-churn.pcap"])

        let timeline = Self.bars("incident", in: try Self.figure("chart-timeline", in: page))
        #expect(timeline == report.timeline.incidents)
        #expect(timeline.count == report.timeline.handshakes.count)
        #expect(timeline.reduce(0, +) == report.incidents)

        let buckets = Self.bars("bucket", in: try Self.figure("chart-buckets", in: page))
        #expect(buckets.count == 4)
        #expect(buckets == report.buckets().map(\.incidents))
        let bucketFigure = try Self.figure("chart-buckets", in: page)
        #expect(Self.occurrences(of: "class=\"expected\"", in: bucketFigure) == 4)
        let expected = BucketUniformity.expectedIncidents(
            incidents: report.buckets().map(\.incidents), handshakes: report.buckets().map(\.handshakes))
        for (bucket, count) in expected.enumerated() {
            #expect(bucketFigure.contains("bucket \(bucket): \(Summary.fixed(count, digits: 2)) expected"))
        }

        let ports = Self.bars("ports", in: try Self.figure("chart-client-ports", in: page))
        #expect(ports.count == 64)
        var byRange = [Int](repeating: 0, count: 64)
        for row in report.clientPorts() { byRange[Int(row.port) / 1024] += row.incidents }
        #expect(ports == byRange)

        let delayFigure = try Self.figure("chart-reset-delays", in: page)
        let delays = Self.bars("delay", in: delayFigure)
        #expect(delays.reduce(0, +) == report.incidents)
        #expect(delays.count % HTMLReport.delayBinsPerDecade == 0)
        for mark in ["p50", "p90", "p99", "max"] {
            #expect(delayFigure.contains("data-percentile=\"\(mark)\""))
        }
        let p50 = Summary.microseconds(report.resetDelays.valueAtPercentile(50))
        #expect(delayFigure.contains("p50 \(p50)"))
        #expect(delayFigure.contains("max \(Summary.microseconds(report.resetDelays.max))"))
    }

    @Test func headerAndTableMatchTheReport() throws {
        let result = Self.churn
        let report = result.report
        let page = HTMLReport.render(result, inputs: ["reuseport-churn.pcap"])
        func metric(_ name: String) -> String? {
            let pattern = "data-metric=\"\(name)\">"
            guard let range = page.range(of: pattern) else { return nil }
            return String(page[range.upperBound...].prefix { $0 != "<" })
        }
        #expect(metric("packets") == String(result.packets.packets))
        #expect(metric("connection attempts") == String(report.connectionAttempts))
        #expect(metric("handshakes completed") == String(report.handshakesCompleted))
        #expect(metric("incidents") == String(report.incidents))
        #expect(metric("incident rate") == "17.00% of completed handshakes")
        #expect(metric("first incident") == report.firstIncidentNanos.map(Timestamp.iso8601))
        #expect(metric("last incident") == report.lastIncidentNanos.map(Timestamp.iso8601))
        for outcome in Outcome.allCases {
            #expect(page.contains("data-outcome=\"\(outcome.name)\">\(report.count(of: outcome))<"))
        }
        #expect(report.count(of: .appAbort) == 4)
        #expect(page.contains("data-outcome=\"near_misses\">4<"))
        for origin in ResetOrigin.allCases {
            #expect(page.contains("data-origin=\"\(origin.rawValue)\">\(report.count(of: origin))<"))
        }
        for hint in CauseHint.hints(report) {
            #expect(page.contains("data-hint=\"\(hint.name)\""))
            #expect(page.contains(HTMLReport.escape(hint.evidence)))
        }
        #expect(page.contains("Showing 34 of 34 incident(s)"))
        let table = try #require(page.range(of: "<table id=\"incident-table\">"))
        let body = page[table.lowerBound...]
        #expect(Self.occurrences(of: "<tr><td>", in: body) == 34)
        for column in Connection.incidentCSVHeader { #expect(body.contains("<th>\(column)</th>")) }
        let first = try #require(report.incidentSample.first)
        #expect(body.contains("<tr><td>" + first.incidentCSVFields.joined(separator: "</td><td>") + "</td></tr>"))
    }

    @Test func thePageLoadsNothing() {
        let page = HTMLReport.render(Self.churn, inputs: ["reuseport-churn.pcap"])
        for forbidden in ["<script", "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<img"] {
            #expect(!page.contains(forbidden), "\(forbidden)")
        }
    }

    @Test func everyUserTextIsEscaped() {
        #expect(HTMLReport.escape("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;")
        let hostile = "<script>alert('x')</script>&\""
        var result = Self.churn
        result.live = LiveCounters(
            interface: hostile, elapsedSeconds: 1, openHandshakes: 0, statistics: nil)
        result.options.filter = hostile
        result.errors = [.cannotOpen(path: hostile, reason: "<b>gone</b>")]
        let page = HTMLReport.render(result, inputs: [hostile, "interface \(hostile)"])
        #expect(!page.contains("<script"))
        #expect(!page.contains("<b>"))
        #expect(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"))
        #expect(page.contains("&lt;b&gt;gone&lt;/b&gt;"))
    }

    /// No capture at all, and a real capture whose handshakes had no incident: every chart is drawn, empty,
    /// with a note, and no incident colour appears.
    @Test(arguments: [[], [Fixtures.path("near-misses.pcap")]])
    func aRunWithoutIncidentsRendersEmptyCharts(paths: [String]) throws {
        let result = Fixtures.analyze(paths).result
        #expect(result.report.incidents == 0)
        let page = HTMLReport.render(result, inputs: paths)
        for id in HTMLReport.chartIDs {
            let figure = try Self.figure(id, in: page)
            #expect(figure.hasPrefix("<figure id=\"\(id)\" class=\"empty\">"))
            #expect(figure.contains("class=\"empty-note\""))
            #expect(figure.contains("<svg role=\"img\""))
            #expect(figure.contains("class=\"x-axis\""))
            // Zero-height bars, and a hollow legend swatch: the colour is never painted.
            let colour = try #require(HTMLReport.incidentColours[id])
            #expect(!figure.contains(/data-incidents="[1-9]/))
            let painted = figure.matches(of: /height="([0-9.]+)" fill="(#[0-9a-f]{6})"/).filter {
                $0.output.2 == colour && $0.output.1 != "0"
            }
            #expect(painted.isEmpty)
            #expect(!figure.contains("fill=\"\(colour)\" stroke="))
            #expect(figure.contains("<text x=\"90\" y=\"22\">incidents (none)</text>"))
        }
        #expect(page.contains("Showing 0 of 0 incident(s)"))
        #expect(!page.contains("<table id=\"incident-table\""))
        #expect(page.contains("data-metric=\"incidents\">0<"))
        #expect(page.contains("data-metric=\"first incident\">none<"))
        if !paths.isEmpty {
            #expect(result.report.handshakesCompleted > 0)
            let timeline = try Self.figure("chart-timeline", in: page)
            #expect(timeline.contains("fill=\"\(HTMLReport.handshakeAreaColour)\""))
            #expect(Self.bars("incident", in: timeline).count == result.report.timeline.handshakes.count)
        }
    }
}
