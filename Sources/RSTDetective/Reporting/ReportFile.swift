import Glibc

/// A report being written: standard output, a file written aside and renamed into place by `commit`, or an
/// existing FIFO, device or symlink written in place, so that a reader never sees a half-written report
/// under the final name, whether the run ends, fails or is killed. `OutputPath` says how each is opened
/// safely in a directory other users can write to.
///
/// A streaming report (a live capture) grows in `NAME.partial`, flushed record by record for `tail -f`;
/// `publish` puts a copy of what it holds so far under the final name, atomically, and `commit` renames it
/// into place. A run that is killed leaves the last published copy under the final name and every record
/// in `NAME.partial`, whose name says it is not complete.
///
/// Records are buffered and written with `write(2)`, so the file is known to end after a whole record
/// whenever a write succeeds. When one fails (a full disk), the file is cut back to the last whole record
/// and nothing more is written; `commit` reports the failure, and a file written aside is removed.
@safe public final class ReportFile {
    /// The final path, or `-` for standard output.
    public let path: String
    /// Whether the output goes straight to its reader as it is written: standard output, or an existing FIFO,
    /// device or symlink written in place. Such an output is neither written aside nor renamed.
    public var isWrittenInPlace: Bool { temporaryPath == nil }
    /// Set when the reader of standard output or of a FIFO closed it (`EPIPE`): what follows is dropped, and
    /// `commit` does not fail for it.
    public private(set) var closedByReader = false
    /// Where the report is written until `commit`: a hidden file aside, or `NAME.partial` when streaming;
    /// nil when it is written in place.
    private let temporaryPath: String?
    private let streaming: Bool
    private let descriptor: Int32
    /// Records not yet written: each `write(2)` ends after a whole record.
    private var buffer: [UInt8] = []
    /// Bytes of whole records that `write(2)` took so far.
    private var writtenBytes = 0
    /// The first write that failed (a full disk), after which nothing more is written; `commit` throws it.
    public private(set) var failure: ReportError?
    private var isOpen = true
    private static let bufferBytes = 1 << 16

    /// Opens `path` (`-` is standard output) for writing.
    ///
    /// - Parameters:
    ///   - path: The report's final path, or `-`.
    ///   - streaming: Write to `NAME.partial` from the start, for a report that grows while a live capture
    ///     runs and is read with `tail -f` (each record is flushed whole), and publish it with `publish`.
    ///     Otherwise the report is written to a hidden file aside and appears under its name at `commit`.
    ///     An output written in place streams either way.
    /// - Throws: `ReportError.cannotWrite` when the file cannot be created, `.untrustedEntry` when
    ///   `OutputPath` refuses it.
    public init(path: String, streaming: Bool = false) throws(ReportError) {
        self.path = path
        if path == "-" {
            descriptor = STDOUT_FILENO
            temporaryPath = nil
        } else if let opened = try OutputPath.openInPlace(path) {
            descriptor = opened
            temporaryPath = nil
        } else if streaming {
            temporaryPath = path + ".partial"
            descriptor = try OutputPath.create(replacing: path + ".partial")
        } else {
            (temporaryPath, descriptor) = try OutputPath.createAside(path)
        }
        self.streaming = streaming && temporaryPath != nil
    }

    deinit {
        // A report never committed (an error) is removed, not left half written; a streaming one keeps its
        // records in NAME.partial, and one written in place gets what is buffered.
        guard isOpen else { return }
        if temporaryPath == nil || streaming { drain() }
        if descriptor != STDOUT_FILENO { close(descriptor) }
        if let temporaryPath, !streaming { unsafe unlink(temporaryPath) }
    }

    /// Writes `text` as the whole report at `path`, aside and renamed into place, so that a reader finds the
    /// previous version or this one, never part of it (`-` is standard output; an existing FIFO, device or
    /// symlink is written in place).
    ///
    /// - Throws: `ReportError.cannotWrite`; a file already at `path` then stays as it was.
    public static func replace(_ path: String, with text: String) throws(ReportError) {
        let file = try ReportFile(path: path)
        file.write(text)
        try file.commit()
    }

    /// A streaming report: puts a copy of every record written so far under the final name, written aside
    /// and renamed, so that the final name always holds whole records and a header. Does nothing for
    /// other reports, which appear at `commit`, nor after a write failed, which `commit` reports.
    ///
    /// - Throws: `ReportError.cannotWrite` when the copy cannot be written; the report goes on.
    public func publish() throws(ReportError) {
        guard streaming, isOpen else { return }
        drain()
        guard failure == nil else { return }
        // Read back through this report's own descriptor: the name NAME.partial is not trusted again.
        let (copyPath, copy) = try OutputPath.createAside(path)
        var chunk = [UInt8](repeating: 0, count: Self.bufferBytes)
        var offset = 0
        var reason: String?
        while reason == nil, offset < writtenBytes {
            let wanted = min(chunk.count, writtenBytes - offset)
            let count = unsafe chunk.withUnsafeMutableBytes { unsafe pread(descriptor, $0.baseAddress, wanted, offset) }
            if count > 0, Self.writeAll(chunk.prefix(count), to: copy) {
                offset += count
            } else {
                reason = count == 0 ? "its .partial file ended early" : OutputPath.errorText()
            }
        }
        if close(copy) != 0, reason == nil { reason = OutputPath.errorText() }
        if reason == nil, unsafe rename(copyPath, path) != 0 { reason = OutputPath.errorText() }
        if let reason {
            unsafe unlink(copyPath)
            throw .cannotWrite(path: path, reason: reason)
        }
    }

    /// Appends `text` as one record; the first failure is kept and reported by `commit`.
    public func write(_ text: String) {
        append(text)
        endRecord()
    }

    /// Writes one CSV record as RFC 4180 §2 has it: fields with commas, quotes or line breaks are quoted,
    /// quotes doubled, and the record ends in CRLF.
    public func writeRecord(_ fields: [String]) {
        // Field by field into the buffer: no joined copy of the record.
        for (index, field) in fields.enumerated() {
            if index > 0 { append(",") }
            append(Self.escape(field))
        }
        append("\r\n")
        endRecord()
    }

    /// Writes out the records buffered, e.g. after each incident on a pipe.
    public func flush() {
        drain()
    }

    /// Finishes the report: writes out what is buffered and, for a file written aside, renames it into place.
    ///
    /// - Throws: `ReportError.cannotWrite` for the first write, close or rename failure. A streaming report
    ///   that failed keeps its whole records in `NAME.partial`, and the final name its last published copy.
    public func commit() throws(ReportError) {
        guard isOpen else { return }
        drain()
        isOpen = false
        if descriptor != STDOUT_FILENO, close(descriptor) != 0, failure == nil {
            failure = .cannotWrite(path: path, reason: OutputPath.errorText())
        }
        if let temporaryPath {
            if failure == nil, unsafe rename(temporaryPath, path) != 0 {
                failure = .cannotWrite(path: path, reason: OutputPath.errorText())
            }
            if failure != nil, !streaming { unsafe unlink(temporaryPath) }
        }
        if let failure { throw failure }
    }

    private func append(_ text: String) {
        guard failure == nil, !closedByReader else { return }
        buffer.append(contentsOf: text.utf8)
    }

    /// Writes the buffer out once it is full; records are never split between two writes.
    private func endRecord() {
        if buffer.count >= Self.bufferBytes { drain() }
    }

    /// Writes the buffer out. A reader that went away ends this output alone; any other failure is kept, and a
    /// file is cut back to its last whole record, so that no record is ever left cut in half.
    private func drain() {
        guard failure == nil, !closedByReader, !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        if Self.writeAll(buffer[...], to: descriptor) {
            writtenBytes += buffer.count
            return
        }
        if errno == EPIPE {
            closedByReader = true
            return
        }
        failure = .cannotWrite(path: path, reason: OutputPath.errorText())
        // Not standard output, which may be a file opened by the shell at an offset; a device or FIFO
        // cannot be cut (EINVAL), and has nothing to cut.
        if descriptor != STDOUT_FILENO { ftruncate(descriptor, writtenBytes) }
    }

    /// `write(2)` until all of `bytes` is written; false with `errno` set when a write fails.
    private static func writeAll(_ bytes: ArraySlice<UInt8>, to descriptor: Int32) -> Bool {
        unsafe bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = unsafe Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    // write(2) returns 0 for a non-empty buffer only on a file that takes no more: say so.
                    if written == 0 { errno = ENOSPC }
                    return false
                }
            }
            return true
        }
    }

    /// Quotes a field that holds a comma, a quote or a line break, doubling its quotes. The test is on
    /// Unicode scalars, because Swift's characters join CRLF, or a quote and a combining mark, into one.
    private static func escape(_ field: String) -> String {
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            return field
        }
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for scalar in field.unicodeScalars {
            if scalar == "\"" { quoted.append("\"") }
            quoted.append(scalar)
        }
        quoted.append("\"")
        return String(quoted)
    }
}
