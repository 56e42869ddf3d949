import ArgumentParser

/// The documented exit codes, beyond 0 (success) and 64 (usage, from ArgumentParser).
enum ExitStatus {
    /// An input capture was missing, unreadable or damaged; the rest was analysed and reported.
    static let inputError = ExitCode(1)
    /// A report could not be written.
    static let outputError = ExitCode(2)
    /// calibrate: no secret, or more than one, explains the observations.
    static let inconclusive = ExitCode(3)
}
