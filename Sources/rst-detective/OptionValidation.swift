import ArgumentParser
import RSTDetective

/// The checks every subcommand's options share, each failing with a one-line `ValidationError` (exit 64) that
/// names the option, what it takes and the value given.
enum OptionValidation {
    /// Rejects a duration in seconds outside `range`; NaN and the infinities are outside every range.
    static func seconds(_ value: Double, in range: ClosedRange<Double>, option: String) throws {
        guard !range.contains(value) else { return }
        throw ValidationError(
            "\(option) must be \(decimal(range.lowerBound)) to \(decimal(range.upperBound)) seconds, not \(value)")
    }

    /// Rejects an empty file or directory name, which the system would only refuse later with a
    /// less helpful message.
    ///
    /// - Parameter what: What `option` names, such as "a file name" or "a directory".
    static func path(_ value: String?, option: String, what: String = "a file name") throws {
        guard value?.isEmpty == true else { return }
        throw ValidationError("\(option) needs \(what), not an empty string")
    }

    /// Rejects a BPF expression longer than `PacketSource.maximumFilterLength` (without repeating it), and
    /// with `compile`, one that does not compile for Ethernet, with libpcap's message.
    ///
    /// - Parameter compile: Whether to compile it here. `capture` does not: it compiles the filter once, on
    ///   the interface, and a failure there is a usage error too.
    static func filter(_ expression: String?, compile: Bool) throws {
        guard let expression else { return }
        if let tooLong = PacketSource.filterLengthError(expression) {
            throw ValidationError("bad filter: \(tooLong)")
        }
        if compile, let message = PacketSource.filterError(expression) {
            throw ValidationError("bad filter '\(expression)': \(message)")
        }
    }

    /// `value` in plain decimal notation (0.000001, not 1e-06), as the help and the README give it.
    private static func decimal(_ value: Double) -> String {
        var text = Summary.fixed(value, digits: 6)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
