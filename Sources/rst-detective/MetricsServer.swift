import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `--metrics-listen`: serves the registry on `GET /metrics` from one background event loop, so that a
/// scrape never waits for the packet loop nor slows it.
///
/// It is bound before `-Z` drops root (as the interface is opened before), so a port below 1024 works,
/// and `shutdown()` closes the listening socket and every open connection.
final class MetricsServer {
    /// The content type of Prometheus's text exposition format.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The address it listens on, as `HOST:PORT` (the port chosen by the kernel when 0 was asked for).
    let boundAddress: String

    /// Binds `address` and starts serving `registry`.
    ///
    /// - Throws: The bind failure (address in use, not available, permission denied).
    init(address: ListenAddress, registry: PrometheusCollectorRegistry) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
        do {
            channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
        let local = channel.localAddress
        let host = local?.ipAddress ?? address.host
        boundAddress = (host.contains(":") ? "[\(host)]" : host) + ":\(local?.port ?? address.port)"
    }

    /// Stops listening, closes the connections and ends the event loop thread.
    func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// `--metrics-listen HOST:PORT`: a host name or address (IPv6 in brackets) and a port.
struct ListenAddress: Equatable {
    var host: String
    var port: Int

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, or `:PORT` for every IPv4 address; nil when it is not one.
    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
}

/// Answers `GET /metrics` (and `HEAD`) with the registry's text, any other path with 404.
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let status: HTTPResponseStatus
        var headers = HTTPHeaders()
        var body: String
        if path != "/metrics" {
            status = .notFound
            body = "404 not found: the metrics are at /metrics\n"
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = "405 method not allowed: use GET\n"
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Allow", value: "GET, HEAD")
        } else {
            status = .ok
            body = registry.emitToString()
            headers.add(name: "Content-Type", value: MetricsServer.contentType)
        }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if request.method == .HEAD { body = "" }
        let keepAlive = request.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
