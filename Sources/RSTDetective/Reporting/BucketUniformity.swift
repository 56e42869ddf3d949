import Glibc

/// Pearson's chi-square test of whether incidents fall into buckets in proportion to the handshakes there.
///
/// Reuseport churn on 3.9-4.3 or one listener closing hits the connections of some listeners only, while
/// accept-queue overflow hits every bucket alike; a small p-value says incidents are concentrated in some
/// buckets beyond what the handshakes explain.
public struct BucketUniformity: Sendable, Equatable {
    /// The statistic: the sum over buckets with handshakes of (observed - expected)^2 / expected.
    public let statistic: Double
    /// Buckets with handshakes, minus one.
    public let degreesOfFreedom: Int
    /// The chance of a statistic at least this large if incidents followed handshakes.
    public let pValue: Double
    /// The smallest expected count; below 5 the chi-square approximation is rough.
    public let smallestExpected: Double

    /// p-values below this say the incidents are concentrated.
    public static let significance = 0.01

    /// Nil when there is nothing to test: no incident, or fewer than two buckets with handshakes.
    ///
    /// - Parameters:
    ///   - incidents: Incidents per bucket.
    ///   - handshakes: Completed handshakes per bucket (incidents included).
    public init?(incidents: [Int], handshakes: [Int]) {
        let totalIncidents = incidents.reduce(0, +)
        let totalHandshakes = handshakes.reduce(0, +)
        let used = handshakes.indices.filter { handshakes[$0] > 0 }
        guard totalIncidents > 0, used.count >= 2 else { return nil }
        var statistic = 0.0
        var smallest = Double.infinity
        for bucket in used {
            let expected = Double(totalIncidents) * Double(handshakes[bucket]) / Double(totalHandshakes)
            let difference = Double(incidents[bucket]) - expected
            statistic += difference * difference / expected
            smallest = min(smallest, expected)
        }
        self.statistic = statistic
        degreesOfFreedom = used.count - 1
        pValue = Self.regularizedUpperGamma(Double(degreesOfFreedom) / 2, statistic / 2)
        smallestExpected = smallest
    }

    /// Whether the p-value is below `significance`.
    public var isConcentrated: Bool { pValue < Self.significance }

    /// Incidents expected in each bucket if they followed handshakes.
    public static func expectedIncidents(incidents: [Int], handshakes: [Int]) -> [Double] {
        let totalIncidents = Double(incidents.reduce(0, +))
        let totalHandshakes = Double(handshakes.reduce(0, +))
        return handshakes.map { totalHandshakes > 0 ? totalIncidents * Double($0) / totalHandshakes : 0 }
    }

    /// Q(a, x) = Γ(a, x) / Γ(a), the chi-square survival function at 2x with 2a degrees of freedom: by its
    /// power series below a + 1, by its continued fraction (Lentz's method) above, each of which converges
    /// fast on its side.
    static func regularizedUpperGamma(_ a: Double, _ x: Double) -> Double {
        guard x > 0 else { return 1 }
        let logPrefix = -x + a * log(x) - lgamma(a)
        if x < a + 1 {
            var term = 1 / a
            var sum = term
            var n = 1.0
            while abs(term) > abs(sum) * 1e-15, n < 10_000 {
                term *= x / (a + n)
                sum += term
                n += 1
            }
            return max(0, 1 - sum * exp(logPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var fraction = d
        var i = 1.0
        while i < 10_000 {
            let an = -i * (i - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            fraction *= step
            if abs(step - 1) < 1e-15 { break }
            i += 1
        }
        return min(1, exp(logPrefix) * fraction)
    }
}
