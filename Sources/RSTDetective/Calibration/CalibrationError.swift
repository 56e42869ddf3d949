/// Why an observations file cannot be used, in one line naming the file.
public enum CalibrationError: Error, Equatable, CustomStringConvertible {
    /// The file cannot be opened or read.
    case cannotRead(path: String, reason: String)
    /// A line of the file is not a valid observation.
    case badFile(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason): "cannot read '\(path)': \(reason)"
        case .badFile(let path, let line, let reason): "'\(path)' line \(line): \(reason)"
        }
    }
}
