import ArgumentParser
import RSTDetective

/// `rst-detective hash`: the hash and listener of one connection, to check by hand.
struct HashCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print the reuseport hash and listener of one connection.",
        discussion: """
            CLIENT and SERVER are ADDRESS:PORT, an IPv6 address in brackets: [2001:db8::2]:51234. Listeners \
            are numbered in listen() order from 0. The result depends on --kernel, --listeners and the \
            secrets, as in analyze.
            """)

    @Argument(help: ArgumentHelp("The client's address and port.", valueName: "client"))
    var client: Endpoint

    @Argument(help: ArgumentHelp("The server's address and port.", valueName: "server"))
    var server: Endpoint

    @OptionGroup(title: "Reuseport model")
    var kernel: KernelOptions

    @OptionGroup(title: "Reuseport model")
    var secrets: SecretOptions

    func validate() throws {
        guard client.address.isIPv4 == server.address.isIPv4 else {
            throw ValidationError("the client and the server must both be IPv4 or both IPv6")
        }
    }

    func run() throws {
        let model = try secrets.model(kernel)
        let isIPv6 = !client.address.isIPv4
        let hash = model.hash(
            client: client.address, clientPort: client.port, server: server.address, serverPort: server.port,
            isIPv6: isIPv6)
        let choice = model.choice(forHash: hash)
        let secret =
            isIPv6
            ? "\(Connection.hex(model.secret6)) (address secret \(Connection.hex(model.addressSecret6)))"
            : Connection.hex(model.secret)
        let rows = [
            ("connection", "\(client) -> \(server)"),
            ("kernel", model.kernel.release),
            ("model", model.modelName),
            ("secret", secret),
            ("hash", Connection.hex(hash)),
            ("bucket", "\(choice.bucket) of \(model.listeners) (listen() order, 0 = first)"),
            ("bucket_if_fewer", choice.ifFewer.map { "\($0) of \(model.listeners - 1)" } ?? "none: no listener left"),
            ("bucket_if_more", "\(choice.ifMore) of \(model.listeners + 1)"),
            ("moves_on_churn", choice.movesOnChurn ? "yes" : "no"),
        ]
        for (name, value) in rows {
            print(name + String(repeating: " ", count: 16 - name.count) + value)
        }
    }
}

/// `ADDRESS:PORT`, with an IPv6 address in brackets.
struct Endpoint: ExpressibleByArgument, CustomStringConvertible {
    let address: IPAddress
    let port: UInt16

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = UInt16(argument[argument.index(after: colon)...])
        else { return nil }
        var host = argument[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil
        }
        guard let address = IPAddress(String(host)) else { return nil }
        self.address = address
        self.port = port
    }

    var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
