import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `--metrics-listen`: serves the registry on `GET /metrics` from one background event loop, so that a
/// scrape never waits for the packet loop nor slows it.
///
/// It is bound before `-Z` drops root (as the interface is opened before), so a port below 1024 works,
/// and `shutdown()` closes the listening socket and every open connection.
///
/// The port may face hostile clients, so no client can make it hold more than a response and a few
/// requests, nor hold a descriptor for long (`Limits`): a response is written only once the one before
/// it has reached the kernel, and nothing more is read meanwhile (back-pressure), so a client that
/// pipelines requests without reading the replies stalls only itself; connections that make no progress
/// are closed; and past `maxConnections` the one that made progress least recently is closed, so a crowd
/// of idle connections can neither exhaust the process's descriptors (which the reports need) nor lock
/// out a scraper.
final class MetricsServer {
    /// The content type of Prometheus's text exposition format.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// What one connection, and all of them together, may hold of the server.
    struct Limits {
        /// Connections open at once; accepting one more closes the one that made progress least recently.
        var maxConnections: Int
        /// A new connection must have sent a whole request by then.
        var readTimeout: TimeAmount
        /// A kept-alive connection must have sent its next whole request by then after its last response.
        var idleTimeout: TimeAmount
        /// A response must be taken by the client (written to the kernel) within this.
        var writeTimeout: TimeAmount
        /// Requests that may wait, pipelined, behind the one being answered; one more closes the connection.
        var maxPipelined: Int

        /// 64 connections, or a quarter of the descriptor limit (`RLIMIT_NOFILE`) when that is less, so
        /// that the reports always find descriptors; 10 s to send a request, 30 s between requests, 10 s
        /// to take a response, and 4 pipelined requests.
        static var standard: Limits {
            var limit = rlimit()
            let descriptors =
                getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
                ? Int(clamping: limit.rlim_cur) : 1024
            return Limits(
                maxConnections: max(1, min(64, descriptors / 4)), readTimeout: .seconds(10),
                idleTimeout: .seconds(30), writeTimeout: .seconds(10), maxPipelined: 4)
        }
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The address it listens on, as `HOST:PORT` (the port chosen by the kernel when 0 was asked for).
    let boundAddress: String

    /// Binds `address` and starts serving `registry`.
    ///
    /// - Throws: The bind failure (address in use, not available, permission denied).
    init(address: ListenAddress, registry: PrometheusCollectorRegistry, limits: Limits = .standard) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The server and its connections share the one event loop, so the table needs no lock.
        let connections = NIOLoopBoundBox.makeBoxSendingValue(
            ConnectionTable(limit: limits.maxConnections), eventLoop: loop)
        let text = NIOLoopBoundBox.makeBoxSendingValue(RenderedMetrics(registry: registry), eventLoop: loop)
        let bootstrap = ServerBootstrap(group: loop)
            // Connections waiting to be accepted cost no descriptor; a deep queue, accepted 16 at a time,
            // keeps a scraper's SYN from being dropped (and retried a second later) while a crowd reconnects.
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let table = connections.value
                    table.add(channel)
                    channel.closeFuture.assumeIsolated().whenComplete { _ in table.remove(channel) }
                    // Errors and pipelining are the handler's own: NIO's error handler leaves the connection
                    // open after its 400, and its pipelining helper answers requests faster than the client
                    // takes the answers.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHTTPHandler(text: text.value, limits: limits, connections: table))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client is read 4 KiB at a time, and the kernel holds at most 64 KiB of replies it has not
            // read: both bound the work a pipelining client gets done before back-pressure stops it.
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.socketOption(.so_sndbuf), value: 65536)
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

/// The open connections of a server, each with when it last made progress (accepted, a whole request
/// read, a response written). Used only on the server's event loop.
private final class ConnectionTable {
    private let limit: Int
    private var lastProgress: [ObjectIdentifier: (channel: any Channel, time: NIODeadline)] = [:]

    init(limit: Int) {
        self.limit = limit
    }

    /// Adds a new connection; past the limit, closes the one that made progress least recently.
    func add(_ channel: any Channel) {
        lastProgress[ObjectIdentifier(channel)] = (channel, .now())
        guard lastProgress.count > limit, let stalest = lastProgress.values.min(by: { $0.time < $1.time }) else {
            return
        }
        lastProgress[ObjectIdentifier(stalest.channel)] = nil
        stalest.channel.close(promise: nil)
    }

    func progressed(_ channel: any Channel) {
        lastProgress[ObjectIdentifier(channel)]?.time = .now()
    }

    func remove(_ channel: any Channel) {
        lastProgress[ObjectIdentifier(channel)] = nil
    }
}

/// The registry's text, rendered at most every 100 ms and shared by the scrapes meanwhile (a `ByteBuffer`
/// is copied on write, so each connection writes the same bytes): the capture updates the registry once a
/// second, and many scrapes at once then cost one rendering. Used only on the server's event loop.
private final class RenderedMetrics {
    private let registry: PrometheusCollectorRegistry
    private var rendered: (text: ByteBuffer, time: NIODeadline)?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func text(allocator: ByteBufferAllocator) -> ByteBuffer {
        if let rendered, rendered.time + .milliseconds(100) > .now() { return rendered.text }
        let text = allocator.buffer(string: registry.emitToString())
        rendered = (text, .now())
        return text
    }
}

/// Answers `GET /metrics` (and `HEAD`) with the registry's text, any other path with 404, a request that
/// is not HTTP with 400, one request at a time and within the server's `Limits`.
///
/// A response is written only when the one before it has been written to the kernel; until then the
/// requests already decoded wait (at most `maxPipelined`) and nothing more is read, so a client that does
/// not read its replies gets no more than the kernel's socket buffers and one response of memory, and is
/// closed by the write timeout. After `Connection: close`, HTTP/1.0 without keep-alive, or a 400, the
/// connection is closed once the response is written.
private final class MetricsHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let text: RenderedMetrics
    private let limits: MetricsServer.Limits
    private let connections: ConnectionTable
    /// The request being received: its head has come, its end not yet.
    private var receiving: HTTPRequestHead?
    /// Whole requests waiting for the response being written.
    private var waiting = CircularBuffer<HTTPRequestHead>()
    /// A response is being written.
    private var responding = false
    /// No request is taken any more: the last one asked for the connection to close, or was not HTTP.
    private var closing = false
    /// A read was asked for while it had to be withheld.
    private var readPending = false
    /// Closes the connection when the client is late: with its request, or in taking a response.
    private var deadline: Scheduled<Void>?

    init(text: RenderedMetrics, limits: MetricsServer.Limits, connections: ConnectionTable) {
        self.text = text
        self.limits = limits
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        closeIfLate(after: limits.readTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            receiving = head
        case .body:
            break
        case .end:
            guard let head = receiving else { return }
            receiving = nil
            connections.progressed(context.channel)
            closing = !head.isKeepAlive
            if !responding {
                respond(to: head, context: context)
            } else if waiting.count < limits.maxPipelined {
                waiting.append(head)
            } else {
                close(context: context)
            }
        }
    }

    /// Reads only when no response is pending, so that a client is not read faster than it reads.
    func read(context: ChannelHandlerContext) {
        if responding || !waiting.isEmpty || closing {
            readPending = true
        } else {
            context.read()
        }
    }

    /// A request that is not HTTP gets 400 and the connection is closed once it is written; any other
    /// error (a reset, a failed write) closes it at once.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !responding, waiting.isEmpty, !closing else {
            close(context: context)
            return
        }
        closing = true
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        send(
            HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers),
            body: context.channel.allocator.buffer(string: "400 bad request: not an HTTP/1.1 request\n"),
            keepAlive: false, context: context)
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let status: HTTPResponseStatus
        var headers = HTTPHeaders()
        let body: ByteBuffer
        let allocator = context.channel.allocator
        if path != "/metrics" {
            status = .notFound
            body = allocator.buffer(string: "404 not found: the metrics are at /metrics\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = allocator.buffer(string: "405 method not allowed: use GET\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Allow", value: "GET, HEAD")
        } else {
            status = .ok
            body = text.text(allocator: allocator)
            headers.add(name: "Content-Type", value: MetricsServer.contentType)
        }
        send(
            HTTPResponseHead(version: request.version, status: status, headers: headers),
            body: body, omittingBody: request.method == .HEAD,
            keepAlive: request.isKeepAlive, context: context)
    }

    /// Writes a response, then answers the next waiting request, or reads again, or closes.
    private func send(
        _ head: HTTPResponseHead, body: ByteBuffer, omittingBody: Bool = false, keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        var head = head
        head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        head.headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        responding = true
        closeIfLate(after: limits.writeTimeout, context: context)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !omittingBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            self.responding = false
            guard case .success = result, keepAlive else {
                self.close(context: context)
                return
            }
            self.connections.progressed(context.channel)
            if let next = self.waiting.popFirst() {
                self.respond(to: next, context: context)
                return
            }
            self.closeIfLate(after: self.limits.idleTimeout, context: context)
            if self.readPending {
                self.readPending = false
                context.read()
            }
        }
    }

    /// Closes the connection and ignores what the decoder still delivers from the bytes already read, which
    /// can be many pipelined requests.
    private func close(context: ChannelHandlerContext) {
        closing = true
        waiting.removeAll()
        context.close(promise: nil)
    }

    /// Replaces the deadline: the connection is closed if it is still open `after` from now and nothing
    /// has replaced the deadline since.
    private func closeIfLate(after timeout: TimeAmount, context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.close(context: context)
        }
    }
}
