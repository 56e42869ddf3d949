import ArgumentParser
import RSTDetective

/// The kernel era and listener count of the reuseport model: shared by `analyze`, `hash` and `calibrate`.
struct KernelOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The server's kernel release, as uname -r prints it (3.9 or later); picks the era's hash and listener choice.",
            valueName: "version"))
    var kernel: String = KernelVersion.newest.release

    @Option(help: ArgumentHelp("SO_REUSEPORT listeners on the server port (N, 1 to 65535).", valueName: "n"))
    var listeners = 1

    func validate() throws {
        _ = try kernelVersion()
        guard (1...65535).contains(listeners) else { throw ValidationError("--listeners must be 1 to 65535") }
    }

    /// The kernel release `--kernel` names.
    func kernelVersion() throws -> KernelVersion {
        guard let version = KernelVersion(kernel) else {
            throw ValidationError(
                "--kernel '\(kernel)' is not a kernel release: give what uname -r prints, such as 6.18 or 3.10.0-1160.el7.x86_64"
            )
        }
        guard version >= .firstWithReusePort else {
            throw ValidationError("--kernel \(kernel): SO_REUSEPORT for TCP arrived in Linux 3.9")
        }
        return version
    }
}

/// The hash secrets of the reuseport model: shared by `analyze` and `hash`.
struct SecretOptions: ParsableArguments {
    @Option(
        name: .customLong("hash-secret"),
        help: ArgumentHelp(
            "The effective IPv4 hash secret (secret plus namespace mix), hex (0x...) or decimal; see calibrate.",
            valueName: "secret"))
    var hashSecret = HashSecret(0)

    @Option(
        name: .customLong("hash-secret-ipv6"),
        help: ArgumentHelp("The effective IPv6 hash secret, hex or decimal.", valueName: "secret"))
    var hashSecretIPv6 = HashSecret(0)

    @Option(
        name: .customLong("address-secret-ipv6"),
        help: ArgumentHelp("The IPv6 address secret, hex or decimal.", valueName: "secret"))
    var addressSecretIPv6 = HashSecret(0)

    /// The model for `kernel` with these secrets.
    func model(_ kernel: KernelOptions) throws -> ReusePortBucket {
        ReusePortBucket(
            kernel: try kernel.kernelVersion(), listeners: kernel.listeners, secret: hashSecret.value,
            secret6: hashSecretIPv6.value, addressSecret6: addressSecretIPv6.value)
    }
}

/// A 32-bit secret given in hex (`0x915280f5`) or decimal.
struct HashSecret: ExpressibleByArgument {
    let value: UInt32

    init(_ value: UInt32) { self.value = value }

    init?(argument: String) {
        let hex = argument.lowercased().hasPrefix("0x")
        guard let value = UInt32(hex ? String(argument.dropFirst(2)) : argument, radix: hex ? 16 : 10) else {
            return nil
        }
        self.value = value
    }

    var defaultValueDescription: String { Connection.hex(value) }
}
