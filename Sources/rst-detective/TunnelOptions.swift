import ArgumentParser
import RSTDetective

/// How tunnels are recognised: shared by `analyze` and `capture`.
struct TunnelOptions: ParsableArguments {
    @Option(
        name: .customLong("vxlan-port"),
        help: ArgumentHelp(
            "Also read UDP datagrams to this port as VXLAN, besides 4789 and 8472 (repeatable, up to 6 ports).",
            valueName: "port"))
    var vxlanPorts: [UInt16] = []

    func validate() throws {
        guard ports != nil else {
            throw ValidationError(
                "--vxlan-port takes ports 1 to 65535, at most \(VXLANPorts.capacity - 2) besides 4789 and 8472")
        }
    }

    /// The VXLAN ports these options give; nil when they are not valid.
    var ports: VXLANPorts? { VXLANPorts(adding: vxlanPorts) }
}
