import Logging

/// A logger writing to standard error at `notice`, `debug` with `-v`, `trace` with `-vv`, made without
/// `LoggingSystem.bootstrap`, so that tests can build commands repeatedly in one process.
enum LoggingSetup {
    static func logger(verbosity: Int) -> Logger {
        var logger = Logger(label: "rst-detective") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbosity >= 2 ? .trace : verbosity == 1 ? .debug : .notice
        return logger
    }
}
