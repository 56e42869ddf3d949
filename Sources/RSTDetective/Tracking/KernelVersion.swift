/// A Linux release as `uname -r` prints it (`3.10.0-1160.el7.x86_64`, `4.4`, `6.18.0-rc3`), reduced to the
/// major and minor numbers that decide the reuseport arithmetic (see KERNEL-FACTS.md, sections 1-5).
///
/// Distribution kernels backport fixes, but the listener lookup of a release follows its upstream base, which
/// is what the version number gives.
public struct KernelVersion: Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    /// The text it was read from.
    public let release: String

    /// The release the model defaults to: the newest arithmetic (6.15 and later).
    public static let newest = KernelVersion(major: 6, minor: 15, release: "6.15")
    /// The first release with `SO_REUSEPORT` for TCP.
    public static let firstWithReusePort = KernelVersion(major: 3, minor: 9, release: "3.9")

    public init(major: Int, minor: Int, release: String) {
        self.major = major
        self.minor = minor
        self.release = release
    }

    /// Reads the leading `MAJOR.MINOR` of `release`; anything after it (patch level, distribution suffix) is
    /// kept in `release` only. Nil when `release` does not start that way.
    public init?(_ release: String) {
        let numbers = release.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard numbers.count >= 2, let major = Self.leadingNumber(numbers[0], whole: true),
            let minor = Self.leadingNumber(numbers[1], whole: numbers.count > 2)
        else { return nil }
        self.init(major: major, minor: minor, release: release)
    }

    /// `n` when `text` is all digits, or (unless `whole`) starts with digits followed by `-` or `+`.
    private static func leadingNumber(_ text: Substring, whole: Bool) -> Int? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 4 else { return nil }
        let rest = text.dropFirst(digits.count)
        guard rest.isEmpty || (!whole && (rest.first == "-" || rest.first == "+")) else { return nil }
        return Int(digits)
    }

    public var description: String { release }

    public static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public static func == (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor) == (rhs.major, rhs.minor)
    }

    /// Whether this release is `major.minor` or later.
    public func isAtLeast(_ major: Int, _ minor: Int) -> Bool { (self.major, self.minor) >= (major, minor) }
}
