import ArgumentParser
import RSTDetective

/// `rst-detective interfaces`: what `capture -i` accepts, as `tcpdump -D` lists it.
struct InterfacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interfaces",
        abstract: "List the interfaces capture -i can use, with their state and addresses.")

    func run() throws {
        let interfaces: [LiveSource.Interface]
        do {
            interfaces = try LiveSource.interfaces()
        } catch {
            StandardError.report(error.description)
            throw ExitStatus.inputError
        }
        let width = max(9, interfaces.map(\.name.count).max() ?? 0)
        let states = interfaces.map { interface in
            var state = [interface.isUp ? "up" : "down"]
            if interface.isRunning { state.append("running") }
            if interface.isLoopback { state.append("loopback") }
            return state.joined(separator: ",")
        }
        let stateWidth = max(5, states.map(\.count).max() ?? 0)
        print(
            "interface" + String(repeating: " ", count: width - 9) + "  state"
                + String(repeating: " ", count: stateWidth - 5)
                + "  addresses")
        for (interface, stateText) in zip(interfaces, states) {
            let details =
                interface.addresses.joined(separator: " ")
                + (interface.description.isEmpty
                    ? "" : (interface.addresses.isEmpty ? "" : "  ") + "(\(interface.description))")
            print(
                interface.name + String(repeating: " ", count: width - interface.name.count) + "  " + stateText
                    + String(repeating: " ", count: stateWidth - stateText.count + 2) + details)
        }
    }
}
