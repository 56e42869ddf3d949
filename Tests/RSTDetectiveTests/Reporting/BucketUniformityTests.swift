import Foundation
import Testing

@testable import RSTDetective

@Suite struct BucketUniformityTests {
    /// Chi-square critical values from standard tables: the survival function there is the tabled tail.
    @Test(arguments: [
        (1, 3.841459, 0.05), (2, 5.991465, 0.05), (3, 11.344867, 0.01), (10, 18.307038, 0.05),
        (10, 5.0, 0.891178), (100, 124.342113, 0.05), (4, 0.710723, 0.95),
    ])
    func survivalFunctionMatchesTables(degreesOfFreedom: Int, statistic: Double, tail: Double) {
        let p = BucketUniformity.regularizedUpperGamma(Double(degreesOfFreedom) / 2, statistic / 2)
        #expect(abs(p - tail) < 1e-6 * max(1, tail * 10))
    }

    /// With two degrees of freedom the tail is exactly exp(-x/2).
    @Test func twoDegreesOfFreedomIsExponential() {
        for x in [0.1, 1.0, 2.5, 10.0, 40.0, 300.0] {
            let p = BucketUniformity.regularizedUpperGamma(1, x / 2)
            #expect(abs(p - exp(-x / 2)) <= 1e-12 * max(exp(-x / 2), 1e-300))
        }
    }

    @Test func incidentsInOneBucketAreConcentrated() throws {
        let test = try #require(BucketUniformity(incidents: [12, 0, 0, 0], handshakes: [100, 100, 100, 100]))
        #expect(test.degreesOfFreedom == 3)
        #expect(abs(test.statistic - 36) < 1e-9)
        #expect(test.isConcentrated)
        #expect(test.pValue < 1e-7)
    }

    @Test func incidentsFollowingHandshakesAreNot() throws {
        let test = try #require(BucketUniformity(incidents: [2, 4, 0, 6], handshakes: [50, 100, 0, 150]))
        #expect(test.degreesOfFreedom == 2)
        #expect(test.statistic == 0)
        #expect(test.pValue == 1)
        #expect(!test.isConcentrated)
        #expect(
            BucketUniformity.expectedIncidents(incidents: [2, 4, 0, 6], handshakes: [50, 100, 0, 150])
                == [2, 4, 0, 6])
    }

    @Test func nothingToTest() {
        #expect(BucketUniformity(incidents: [0, 0], handshakes: [5, 5]) == nil)
        #expect(BucketUniformity(incidents: [3, 0], handshakes: [9, 0]) == nil)
        #expect(BucketUniformity(incidents: [1], handshakes: [9]) == nil)
    }

    @Test func numbersAsReportsPrintThem() {
        #expect(Summary.fixed(3.14159, digits: 2) == "3.14")
        #expect(Summary.fixed(-0.0004, digits: 3) == "0.000")
        #expect(Summary.fixed(2, digits: 0) == "2")
        #expect(Summary.fixed(0.5, digits: 3) == "0.500")
        #expect(Summary.probability(0.37654) == "0.3765")
        #expect(Summary.probability(0.00012) == "1.2e-04")
        #expect(Summary.probability(9.96e-8) == "1.0e-07")
        #expect(Summary.probability(0) == "0")
    }
}
