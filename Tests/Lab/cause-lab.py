#!/usr/bin/env python3
"""cause-lab: real captures of listener closes and accept-queue overflows, each incident with its
true cause taken from the scenario's own logs (never from rst-detective).

    python3 Tests/Lab/cause-lab.py list
    python3 Tests/Lab/cause-lab.py record OUTDIR [NAME...]     (root; default: every scenario)
    python3 Tests/Lab/cause-lab.py up NAME; ... run NAME --out DIR; ... down    (root)

`up NAME`, `run NAME --out DIR` and `down` play one scenario for a capture made by someone else (the
live test of rst-detective capture on s0 in rstd17-srv, started between `up` and `run`): `run` writes
NAME.truth.csv and NAME.events.csv but no capture, leaves the namespaces up, and exits 1 on a
disagreement as `record` does.

Three network namespaces per capture, made afresh and removed on exit: rstd17-cli (10.17.0.1),
rstd17-mid and rstd17-srv (10.17.0.2). rstd17-mid has no address: a user-space forwarder (this
script's `forward` role) reads every frame from one veth with an AF_PACKET socket and writes it to
the other after DELAY, in both directions, so a packet takes DELAY from client to server and DELAY
back (there is no netem on the lab kernel). PACKET_VNET_HDR carries the checksum state across, so
veth checksum offload keeps working. IPv6 is off in all three namespaces; neighbours are static.

The server (`server` role, rstd17-srv) is one event loop: per port a listener or an SO_REUSEPORT
group on 10.17.0.2, an application that accepts at once and sends "OK" with its FIN in one
segment, and the scenario's events:
  close   close one listener of the port (for a group, a seeded random member); a new one opens
          after `gap` seconds (0: at once, a reload);
  stall   the application stops accepting on the port from `at` to `until` (the accept queues fill;
          with tcp_abort_on_overflow=1 the kernel resets handshake ACKs that find a queue full);
  slow    the application accepts one connection per `every` seconds from `at` to `until`.
It logs every accept (client port), every close (the times just before and after close()) and the
namespace's TcpExt ListenOverflows and ListenDrops whenever they change (read every 10 ms). The client
(`client` role, rstd17-cli) opens connections at a steady rate per port (non-blocking, one
thread), sends nothing and logs each attempt's result: response, reset_after_connect (connected,
then ECONNRESET before any byte), refused or timeout (no connection within 2.5 s). tcpdump
captures on the server's veth, snap length 96.

Truth, per connection: an incident is a connection the client saw reset after connect, the server
never accepted, and whose capture shows SYN, SYN-ACK, the client's ACK of it, then a server RST
without ACK with seq = SYN-ACK seq + 1. Its cause is
  listener_closed        when a logged close of its port lies between its SYN-ACK and its ACK
                         (SYN-ACK before the close returned, ACK after it began, within 1 ms: the
                         capture stamps a frame before the kernel handles it) and ListenOverflows
                         did not grow in the sample interval that holds the ACK (it met no full queue);
  accept_queue_overflow  when ListenOverflows grew in the sample interval that holds its ACK (the
                         kernel counted an ACK meeting a full queue: the scenario's stalls, or the
                         application falling behind a small backlog; the clients' retransmitted
                         SYNs keep a queue full after a stall) and no close of its port lay between
                         its SYN-ACK and its ACK;
the server reads ListenOverflows every 10 ms and logs each change. The run is refused
(DISAGREEMENT, exit 1) unless each incident gets exactly one cause and the overflow incidents are
covered by the ListenOverflows counted. Scenarios keep closes and overloads apart in time,
since the counter belongs to the namespace.

Writes per scenario NAME: NAME.pcap.gz, NAME.truth.csv
(client_ip,client_port,server_ip,server_port,cause,evidence) and NAME.events.csv (the server's log
of listener opens, closes, windows and counters: time,port,event,detail). Prints one line per
scenario (factors, attempts by result, incidents by cause) for Tests/Captures/causes/README.md.
"""

import argparse
import collections
import csv
import gzip
import heapq
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "captures"))
import pcapcheck  # noqa: E402

NS_CLI, NS_MID, NS_SRV = "rstd17-cli", "rstd17-mid", "rstd17-srv"
CLI, SRV = "10.17.0.1", "10.17.0.2"
SNAP = 96
CONNECT_TIMEOUT = 2.5
SAMPLE = 0.01         # seconds between two readings of ListenOverflows
# tcpdump stamps a frame when the veth queues it; on a busy machine the kernel handles it up to a few
# hundred microseconds later, so a close and a capture time are compared with this much slack.
SLACK = 0.001


def scenario(name, delay, rate, cookies, ports, traffic):
    """ports: {port: dict(listeners, backlog, events)}; traffic: seconds of client traffic."""
    return dict(name=name, delay=delay, rate=rate, cookies=cookies, ports=ports, traffic=traffic)


def closes(times, gap):
    return [dict(kind="close", at=t, gap=gap) for t in times]


def port(listeners, backlog, events):
    return dict(listeners=listeners, backlog=backlog, events=events)


# A covering design, not the cross product: every level of every factor appears in several
# scenarios with different levels of the others. Delay: one way, each direction. Rate: new
# connections per second per port. Backlog 128 for the close scenarios, so that no queue fills.
SCENARIOS = [
    scenario("close-d0.1-r1000-l1", 0.1, 1000, 1, {8080: port(1, 128, closes([0.1, 0.3, 0.5], 0.05))}, 0.8),
    scenario("reopen-d0.1-r1000-l16", 0.1, 1000, 0, {8080: port(16, 128, closes([0.1, 0.3, 0.5], 0))}, 0.8),
    scenario("reopen-d0.1-r100-l1", 0.1, 100, 1, {8080: port(1, 128, closes([0.5, 1.0, 1.5, 2.0], 0))}, 2.5),
    scenario("close-d5-r100-l1", 5, 100, 0, {8080: port(1, 128, closes([0.5, 1.5], 0.2))}, 2.5),
    scenario("reopen-d5-r1000-l4", 5, 1000, 1, {8080: port(4, 128, closes([0.1, 0.35, 0.6], 0))}, 0.8),
    scenario("close-d5-r10-l16", 5, 10, 1, {8080: port(16, 128, closes([1.0, 2.0, 3.0], 0.2))}, 4),
    scenario("close-d30-r10-l1", 30, 10, 0, {8080: port(1, 128, closes([0.5, 1.5, 2.5, 3.5], 0.2))}, 4.5),
    scenario("close-d30-r100-l16", 30, 100, 1, {8080: port(16, 128, closes([0.5, 1.0, 1.5, 2.0], 0.2))}, 2.5),
    scenario("reopen-d30-r1000-l1", 30, 1000, 1, {8080: port(1, 128, closes([0.15, 0.45], 0))}, 0.7),
    scenario("reopen-d100-r10-l4", 100, 10, 1, {8080: port(4, 128, closes([0.5, 1.5, 2.5, 3.5], 0))}, 4.5),
    scenario("close-d100-r100-l1", 100, 100, 0, {8080: port(1, 128, closes([0.5, 1.5], 0.3))}, 2.5),
    scenario("reopen-d100-r1000-l16", 100, 1000, 0, {8080: port(16, 128, closes([0.2, 0.5], 0))}, 0.8),
    scenario("overflow-d0.1-r1000-l1-b8", 0.1, 1000, 0,
             {8080: port(1, 8, [dict(kind="slow", at=0.1, until=0.6, every=0.01)])}, 0.8),
    scenario("overflow-d0.1-r100-l4-b1", 0.1, 100, 1,
             {8080: port(4, 1, [dict(kind="slow", at=0.3, until=2.0, every=0.05)])}, 2.5),
    scenario("overflow-d5-r1000-l16-b1", 5, 1000, 1,
             {8080: port(16, 1, [dict(kind="stall", at=0.1, until=0.5)])}, 0.8),
    scenario("overflow-d5-r100-l1-b128", 5, 100, 0,
             {8080: port(1, 128, [dict(kind="stall", at=0.3, until=2.3)])}, 2.8),
    scenario("overflow-d30-r10-l1-b1", 30, 10, 1,
             {8080: port(1, 1, [dict(kind="slow", at=0.5, until=4.0, every=0.3)])}, 4.5),
    scenario("overflow-d30-r1000-l4-b128", 30, 1000, 0,
             {8080: port(4, 128, [dict(kind="stall", at=0.1, until=0.7)])}, 0.8),
    scenario("overflow-d30-r100-l1-b8", 30, 100, 1,
             {8080: port(1, 8, [dict(kind="slow", at=0.5, until=2.0, every=0.04)])}, 2.5),
    scenario("overflow-d100-r100-l4-b8", 100, 100, 1,
             {8080: port(4, 8, [dict(kind="stall", at=0.5, until=1.5)])}, 2.5),
    scenario("overflow-d100-r1000-l1-b128", 100, 1000, 1,
             {8080: port(1, 128, [dict(kind="stall", at=0.1, until=0.5)])}, 0.7),
    scenario("overflow-d100-r10-l16-b1", 100, 10, 0,
             {8080: port(16, 1, [dict(kind="slow", at=0.5, until=4.0, every=0.15)])}, 4.5),
    scenario("mixed-ports-d30-r100", 30, 100, 1,
             {8080: port(4, 128, closes([0.3, 2.2], 0.1)),
              8081: port(1, 8, [dict(kind="stall", at=0.8, until=1.6)])}, 2.5),
    scenario("mixed-ports-d0.1-r1000", 0.1, 1000, 0,
             {8080: port(16, 128, closes([0.1, 0.6], 0)),
              8081: port(1, 128, [dict(kind="stall", at=0.25, until=0.45)])}, 0.7),
    scenario("mixed-times-d5-r1000-l1-b8", 5, 1000, 0,
             {8080: port(1, 8, closes([0.1, 0.3], 0) + [dict(kind="stall", at=0.5, until=0.7)])}, 0.8),
    scenario("mixed-times-d100-r100-l16-b1", 100, 100, 1,
             {8080: port(16, 1, [dict(kind="stall", at=0.5, until=1.5)] + closes([3.0, 3.5], 0.1))}, 4.0),
]
BY_NAME = {s["name"]: s for s in SCENARIOS}


def now():
    return time.time()


# ------------------------------------------------------------------------------- forwarder

ETH_P_ALL = 0x0003
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
PACKET_STATISTICS = 6
SOL_PACKET = 263


def role_forward(a):
    """Copies frames between two interfaces, each one `delay` seconds late, FIFO per direction."""
    socks = []
    for name in (a.a, a.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((name, 0))
        s.setblocking(False)
        socks.append(s)
    delay = a.delay / 1000.0
    queues = [collections.deque(), collections.deque()]   # frames waiting to leave on socks[i]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("READY", flush=True)
    forwarded = 0
    while not stop:
        t = time.monotonic()
        due = [q[0][0] for q in queues if q]
        timeout = max(0.0, min(due) - t) if due else 0.05
        readable, _, _ = select.select(socks, [], [], timeout)
        t = time.monotonic()
        for i, s in enumerate(socks):
            if s not in readable:
                continue
            while True:
                try:
                    data, addr = s.recvfrom(4096)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                queues[1 - i].append((t + delay, data))
        t = time.monotonic()
        for i, q in enumerate(queues):
            while q and q[0][0] <= t:
                socks[i].send(q.popleft()[1])
                forwarded += 1
    # struct tpacket_stats: packets received, packets dropped for want of buffer (since the last read).
    drops = sum(struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1] for s in socks)
    print("forwarded %d dropped %d" % (forwarded, drops), flush=True)


# ------------------------------------------------------------------------------- server

def netstat():
    """TcpExt ListenOverflows and ListenDrops of this namespace."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[0::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], map(int, values.split()[1:])))
            return row["ListenOverflows"], row["ListenDrops"]
    raise RuntimeError("no TcpExt in /proc/net/netstat")


class Server:
    def __init__(self, spec, start, log):
        self.start = start
        self.log = log
        self.sel = {}                     # fd -> (port, lid, socket)
        self.members = collections.defaultdict(list)
        self.next_lid = collections.Counter()
        self.rng = random.Random(spec["name"])
        self.backlog = {}
        self.paused = collections.Counter()   # port -> stall/slow windows in force
        self.pace = {}                        # port -> (every, next accept time) in a slow window
        self.timers = []
        self.overflows = None
        self.last_sample = now()
        self.next_sample = 0.0
        for p, cfg in spec["ports"].items():
            p = int(p)
            self.backlog[p] = cfg["backlog"]
            for _ in range(cfg["listeners"]):
                self.open(p, cfg["listeners"] > 1)
            for e in cfg["events"]:
                self.at(e["at"], self.event, p, e, cfg["listeners"] > 1)

    def write(self, port, event, **detail):
        self.log.write(json.dumps(dict(t=now(), port=port, event=event, **detail)) + "\n")

    def at(self, offset, fn, *args):
        heapq.heappush(self.timers, (self.start + offset, id(args), fn, args))

    def open(self, port, reuseport):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((SRV, port))
        s.listen(self.backlog[port])
        s.setblocking(False)
        lid = self.next_lid[port]
        self.next_lid[port] += 1
        self.members[port].append((lid, s))
        self.sel[s.fileno()] = (port, lid, s)
        self.write(port, "open", lid=lid, backlog=self.backlog[port])

    def event(self, port, e, reuseport):
        lo, ld = netstat()
        if e["kind"] == "close":
            members = self.members[port]
            lid, s = members.pop(self.rng.randrange(len(members)))
            del self.sel[s.fileno()]
            t0 = now()
            s.close()   # inet_csk_listen_stop: its requests dropped, unaccepted children reset
            t1 = now()
            self.write(port, "close", lid=lid, t0=t0, t1=t1, listen_overflows=lo, listen_drops=ld)
            if e["gap"] > 0:
                self.at(e["at"] + e["gap"], self.open, port, reuseport)
            else:
                self.open(port, reuseport)
        else:
            self.paused[port] += 1
            if e["kind"] == "slow":
                self.pace[port] = (e["every"], now())
            self.write(port, e["kind"] + "_begin", until=self.start + e["until"],
                       listen_overflows=lo, listen_drops=ld)
            self.at(e["until"], self.resume, port, e["kind"])

    def resume(self, port, kind):
        self.paused[port] -= 1
        self.pace.pop(port, None)
        lo, ld = netstat()
        self.write(port, kind + "_end", listen_overflows=lo, listen_drops=ld)

    def may_accept(self, port):
        if port in self.pace:
            every, next_time = self.pace[port]
            if now() < next_time:
                return False
            self.pace[port] = (every, now() + every)
            return True
        return self.paused[port] == 0

    def serve(self, port, lid, s):
        while self.may_accept(port):
            try:
                conn, peer = s.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.write(port, "accept", lid=lid, client_port=peer[1])
            try:
                conn.send(b"OK\n", socket.MSG_MORE)   # held, to leave with the FIN in one segment
            except OSError as err:
                self.write(port, "send_error", client_port=peer[1], error=err.errno)
            conn.close()

    def sample(self):
        """Logs ListenOverflows whenever it changed, read every SAMPLE seconds, with the time of the reading
        before (`since`): it grew in between."""
        t = now()
        if t < self.next_sample:
            return
        self.next_sample = t + SAMPLE
        lo, ld = netstat()
        if lo != self.overflows:
            self.overflows = lo
            self.write(0, "overflows", since=self.last_sample, listen_overflows=lo, listen_drops=ld)
        self.last_sample = t

    def run(self, stop_at):
        while now() < stop_at:
            self.sample()
            while self.timers and self.timers[0][0] <= now():
                _, _, fn, args = heapq.heappop(self.timers)
                fn(*args)
            wake = min([self.timers[0][0]] if self.timers else [stop_at])
            timeout = max(0.0, min(wake, stop_at) - now())
            timeout = min(timeout, 0.005 if self.pace else SAMPLE)
            readable, _, _ = select.select(list(self.sel), [], [], timeout)
            for fd in readable:
                if fd in self.sel:
                    self.serve(*self.sel[fd])
            for fd, (p, lid, s) in list(self.sel.items()):
                if p in self.pace:
                    self.serve(p, lid, s)
        lo, ld = netstat()
        self.write(0, "end", listen_overflows=lo, listen_drops=ld)


def role_server(a):
    spec = BY_NAME[a.name]
    with open(a.log, "w", buffering=1) as log:
        server = Server(spec, a.start, log)
        lo, ld = netstat()
        server.write(0, "begin", listen_overflows=lo, listen_drops=ld)
        print("READY", flush=True)
        server.run(a.start + spec["traffic"] + CONNECT_TIMEOUT + 1.0)


# ------------------------------------------------------------------------------- client

def role_client(a):
    """Open-loop connections at the scenario's rate to every port; one result line per attempt."""
    spec = BY_NAME[a.name]
    starts = []
    for p in spec["ports"]:
        n = int(spec["traffic"] * spec["rate"])
        starts += [(a.start + (i + random.random()) / spec["rate"], int(p)) for i in range(n)]
    starts.sort()
    next_port = 20000   # each attempt its own client port, so that the logs and the capture agree on each
    poll = select.epoll()
    live = {}   # fd -> [sock, port, client_port, t_start, state]
    results = []

    def finish(fd, result):
        s, p, cport, t0, _ = live.pop(fd)
        poll.unregister(fd)
        s.close()
        results.append((cport, p, result, t0))

    nxt = 0
    while nxt < len(starts) or live:
        t = now()
        while nxt < len(starts) and starts[nxt][0] <= t:
            p = starts[nxt][1]
            nxt += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((CLI, next_port))
            next_port += 1
            s.connect_ex((SRV, p))
            fd = s.fileno()
            live[fd] = [s, p, s.getsockname()[1], t, "connecting"]
            poll.register(fd, select.EPOLLOUT)
        timeout = min(starts[nxt][0] - now(), 0.01) if nxt < len(starts) else 0.01
        for fd, _ in poll.poll(max(0.0, timeout)):
            entry = live.get(fd)
            if entry is None:
                continue
            s = entry[0]
            if entry[4] == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    entry[4] = "connected"
                    poll.modify(fd, select.EPOLLIN)
                else:
                    # ECONNRESET here: the handshake completed, then the reset came before we looked.
                    finish(fd, {111: "refused", 104: "reset_after_connect"}.get(err, "error:%d" % err))
                continue
            try:
                data = s.recv(64)
            except ConnectionResetError:
                finish(fd, "reset_after_connect")
                continue
            finish(fd, "response" if data else "eof")
        t = now()
        for fd, entry in list(live.items()):
            if entry[4] == "connecting" and t - entry[3] > CONNECT_TIMEOUT:
                finish(fd, "timeout")
            elif t - entry[3] > CONNECT_TIMEOUT + 2:
                finish(fd, "read_timeout")
    with open(a.log, "w") as f:
        for cport, p, result, t0 in results:
            f.write(json.dumps(dict(client_port=cport, port=p, result=result, t=t0)) + "\n")


# ------------------------------------------------------------------------------- record

def sh(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


def ns_down():
    listed = sh("ip", "netns", "list").split()
    for ns in (NS_CLI, NS_MID, NS_SRV):
        if ns in listed:
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "delete", ns, check=False)


def ns_up(spec):
    ns_down()
    for ns in (NS_CLI, NS_MID, NS_SRV):
        sh("ip", "netns", "add", ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", "c0", "netns", NS_CLI, "type", "veth", "peer", "name", "m0", "netns", NS_MID)
    sh("ip", "link", "add", "m1", "netns", NS_MID, "type", "veth", "peer", "name", "s0", "netns", NS_SRV)
    sh("ip", "-n", NS_CLI, "addr", "add", CLI + "/24", "dev", "c0")
    sh("ip", "-n", NS_SRV, "addr", "add", SRV + "/24", "dev", "s0")
    for ns, dev in ((NS_CLI, "c0"), (NS_MID, "m0"), (NS_MID, "m1"), (NS_SRV, "s0")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    mac_c = sh("cat", "/sys/class/net/c0/address", ns=NS_CLI).strip()
    mac_s = sh("cat", "/sys/class/net/s0/address", ns=NS_SRV).strip()
    sh("ip", "-n", NS_CLI, "neigh", "replace", SRV, "lladdr", mac_s, "dev", "c0", "nud", "permanent")
    sh("ip", "-n", NS_SRV, "neigh", "replace", CLI, "lladdr", mac_c, "dev", "s0", "nud", "permanent")
    sh("sysctl", "-qw", "net.ipv4.tcp_abort_on_overflow=1", "net.ipv4.tcp_syncookies=%d" % spec["cookies"],
       "net.ipv4.tcp_migrate_req=0", "net.core.somaxconn=4096", "net.ipv4.tcp_max_syn_backlog=4096", ns=NS_SRV)


def spawn(ns, *args):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__)] + list(args),
                         stdout=subprocess.PIPE, text=True)
    return p


def wait_ready(p, what):
    line = p.stdout.readline()
    if line.strip() != "READY":
        raise RuntimeError("%s did not start" % what)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wire_flows(pcap, ports):
    """Per client port (last attempt): times of SYN-ACK, client ACK of it, and the first server RST
    (flags, seq) with its time, and whether the server sent data or FIN, or the client data, FIN or RST,
    before that RST (a RST answering the client's FIN after its ACK was dropped is no signature)."""
    flows = {}
    for ts, src, sport, dst, dport, seq, ack, flags, plen in pcapcheck.tcp_segments(pcap):
        syn, rst, ackf, fin = flags & 0x02, flags & 0x04, flags & 0x10, flags & 0x01
        if dport in ports and src == CLI:
            if syn and not ackf:
                f = flows.get((sport, dport))
                if f is None or f["synack"] is not None:
                    flows[(sport, dport)] = dict(syn=ts, synack=None, sa_seq=None, ack=None, rst=None,
                                                 data_before=False, client_fin=False, syns=0)
                flows[(sport, dport)]["syns"] += 1
            else:
                f = flows.get((sport, dport))
                if f and ackf and f["synack"] is not None and f["ack"] is None and \
                        ack == (f["sa_seq"] + 1) & 0xFFFFFFFF:
                    f["ack"] = ts
                elif f and (fin or rst or plen > 0) and f["rst"] is None:
                    f["client_fin"] = True
        elif sport in ports and src == SRV:
            f = flows.get((dport, sport))
            if f is None or f["rst"] is not None:
                continue
            if syn and ackf:
                if f["synack"] is None:
                    f["synack"], f["sa_seq"] = ts, seq
            elif rst:
                f["rst"] = (ts, flags, seq)
            elif plen > 0 or fin:
                f["data_before"] = True
    return flows


def truth(spec, pcap, client_log, server_log):
    """(rows, problems, counts): the incidents with their causes, from the logs and the wire."""
    ports = {int(p) for p in spec["ports"]}
    flows = wire_flows(pcap, ports)
    events = read_jsonl(server_log)
    accepted = {(e["client_port"], e["port"]) for e in events if e["event"] == "accept"}
    attempts = read_jsonl(client_log)
    problems, rows = [], []
    closes = [e for e in events if e["event"] == "close"]
    # ListenOverflows grew somewhere in (t0, t1] for each of these sample intervals.
    changes = [e for e in events if e["event"] == "overflows"]
    growth = [(e["since"], e["t"], e["listen_overflows"] - p["listen_overflows"]) for p, e in zip(changes, changes[1:])]

    def grew_at(t):
        return sum(n for t0, t1, n in growth if t0 < t <= t1)
    total_overflows = sum(n for _, _, n in growth)
    results = collections.Counter()
    for a in attempts:
        results[a["result"]] += 1
        key = (a["client_port"], a["port"])
        f = flows.get(key)
        shape = f is not None and f["ack"] is not None and f["rst"] is not None and not f["data_before"] \
            and not f["client_fin"] and not f["rst"][1] & 0x10 and f["rst"][2] == (f["sa_seq"] + 1) & 0xFFFFFFFF
        incident = a["result"] == "reset_after_connect" and key not in accepted
        if shape != incident:
            # A child reset by its listener's close is RST+ACK: not the signature, and not an incident.
            child = incident and f is not None and f["rst"] is not None and f["rst"][1] & 0x10
            if not child:
                problems.append("client port %d: client %s, accepted %s, wire signature %s" % (
                    key[0], a["result"], key in accepted, shape))
            continue
        if not incident:
            continue
        causes = []
        for c in closes:
            if c["port"] == key[1] and f["synack"] < c["t1"] + SLACK and f["ack"] > c["t0"] - SLACK \
                    and not grew_at(f["ack"]):
                causes.append(("listener_closed", "listener %d of port %d closed at %.6f, %.1f ms after the "
                               "SYN-ACK and %.1f ms before the ACK; ListenOverflows still at the ACK; never accepted" % (
                                   c["lid"], c["port"], c["t0"], (c["t0"] - f["synack"]) * 1e3,
                                   (f["ack"] - c["t0"]) * 1e3)))
        if grew_at(f["ack"]):
            causes.append(("accept_queue_overflow", "ListenOverflows +%d in the %.0f ms sample around the ACK; "
                           "never accepted" % (grew_at(f["ack"]), SAMPLE * 1e3)))
        if len(causes) != 1:
            problems.append("client port %d: %d causes %s" % (key[0], len(causes), [c[0] for c in causes]))
            continue
        rows.append((CLI, key[0], SRV, key[1]) + causes[0])
    overflowed = sum(1 for r in rows if r[4] == "accept_queue_overflow")
    if overflowed > total_overflows:
        problems.append("%d overflow incidents but ListenOverflows grew by %d" % (overflowed, total_overflows))
    rows.sort(key=lambda r: (r[3], r[1]))
    return rows, problems, results, events


def play(spec, work):
    """Runs the scenario in namespaces already up (`ns_up`): the lab's own tcpdump on the server's veth into
    WORK, the forwarder, the server and the client. Returns the capture, the two logs and the problems seen
    (frames lost by the forwarder or tcpdump)."""
    name = spec["name"]
    pcap = os.path.join(work, name + ".pcap")
    clog, slog = os.path.join(work, name + ".client"), os.path.join(work, name + ".server")
    ports = sorted(int(p) for p in spec["ports"])
    bpf = "tcp and host %s and (%s)" % (SRV, " or ".join("port %d" % p for p in ports))
    dump = subprocess.Popen(["ip", "netns", "exec", NS_SRV, "tcpdump", "-i", "s0", "-s", str(SNAP), "-U",
                             "--immediate-mode", "-w", pcap, bpf], stderr=subprocess.PIPE, text=True)
    children = [dump]
    try:
        dump.stderr.readline()   # "listening on s0 ..."
        total = spec["traffic"] + CONNECT_TIMEOUT + 4
        fwd = spawn(NS_MID, "forward", "m0", "m1", str(spec["delay"]))
        children.append(fwd)
        wait_ready(fwd, "forwarder")
        start = now() + 0.5
        srv = spawn(NS_SRV, "server", name, "--start", repr(start), "--log", slog)
        children.append(srv)
        wait_ready(srv, "server")
        cli = spawn(NS_CLI, "client", name, "--start", repr(start), "--log", clog)
        children.append(cli)
        cli.wait(timeout=total + 10)
        srv.wait(timeout=total + 10)
        time.sleep(2 * spec["delay"] / 1000 + 0.2)
        dump.send_signal(signal.SIGINT)
        dump_stats = dump.communicate(timeout=10)[1]
        fwd.terminate()
        fwd_stats = fwd.communicate(timeout=10)[0].split()
    finally:
        # None left behind on a failure: one would hold the caller's pipes open.
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    problems = []
    if fwd_stats[-1] != "0":
        problems.append("the forwarder dropped %s frames" % fwd_stats[-1])
    if not re.search(r"^0 packets dropped by kernel$", dump_stats, re.M):
        problems.append("tcpdump: %s" % dump_stats.strip().replace("\n", "; "))
    return pcap, clog, slog, problems


def write_results(spec, out, pcap, clog, slog, problems, keep_capture):
    """Writes NAME.truth.csv and NAME.events.csv (and NAME.pcap.gz when `keep_capture`) into OUT, prints
    the scenario's line and its disagreements; True when there are none."""
    name = spec["name"]
    rows, more, results, events = truth(spec, pcap, clog, slog)
    problems = more + problems
    if keep_capture:
        with open(pcap, "rb") as src, gzip.GzipFile(os.path.join(out, name + ".pcap.gz"), "wb", 9, mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    with open(os.path.join(out, name + ".truth.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["client_ip", "client_port", "server_ip", "server_port", "cause", "evidence"])
        w.writerows(rows)
    with open(os.path.join(out, name + ".events.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time", "port", "event", "detail"])
        for e in events:
            if e["event"] in ("accept",):
                continue
            detail = " ".join("%s=%s" % (k, e[k]) for k in sorted(e) if k not in ("t", "port", "event"))
            w.writerow(["%.6f" % e["t"], e["port"], e["event"], detail])
    causes = collections.Counter(r[4] for r in rows)
    line = "%s: delay %s ms, rate %s/s, syncookies %d, %s; attempts %s; incidents %d (%s)" % (
        name, spec["delay"], spec["rate"], spec["cookies"],
        "; ".join("port %s: %d listener(s), backlog %d, %s" % (
            p, c["listeners"], c["backlog"], ", ".join(
                "%s@%s" % (e["kind"], e["at"]) for e in c["events"])) for p, c in spec["ports"].items()),
        ", ".join("%s %d" % kv for kv in sorted(results.items())), len(rows),
        ", ".join("%s %d" % kv for kv in sorted(causes.items())) or "none")
    print(line, flush=True)
    for p in problems:
        print("DISAGREEMENT %s: %s" % (name, p), flush=True)
    return not problems


def record(spec, out, work):
    ns_up(spec)
    pcap, clog, slog, problems = play(spec, work)
    ns_down()
    return write_results(spec, out, pcap, clog, slog, problems, keep_capture=True)


def scenario_named(name):
    if name not in BY_NAME:
        sys.exit("cause-lab: unknown scenario %r" % name)
    return BY_NAME[name]


def needs_root():
    if os.geteuid() != 0:
        sys.exit("cause-lab: needs root (network namespaces, tcpdump)")


def role_up(a):
    """Makes the namespaces for scenario NAME (its syncookies setting) and leaves them up."""
    needs_root()
    spec = scenario_named(a.name)
    try:
        ns_up(spec)
    except Exception:
        ns_down()
        raise


def role_run(a):
    """Plays scenario NAME in the namespaces `up NAME` made, for another capture on the server's veth
    (rstd17-srv, s0): writes OUT/NAME.truth.csv and OUT/NAME.events.csv, no capture. The lab's own tcpdump
    still records into a temporary directory, removed after, since the truth needs its view of the wire."""
    needs_root()
    spec = scenario_named(a.name)
    listed = sh("ip", "netns", "list").split()
    if not all(ns in listed for ns in (NS_CLI, NS_MID, NS_SRV)):
        sys.exit("cause-lab: the namespaces are not up: run `cause-lab.py up %s` first" % a.name)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="rstd17-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # through `finally`: the work directory removed
    try:
        pcap, clog, slog, problems = play(spec, work)
        ok = write_results(spec, a.out, pcap, clog, slog, problems, keep_capture=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


def role_record(a):
    needs_root()
    names = a.names or [s["name"] for s in SCENARIOS]
    for n in names:
        scenario_named(n)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="rstd17-")
    if os.environ.get("KEEP_WORK"):
        print("cause-lab: logs kept in %s" % work, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # through `finally`: namespaces removed
    ok = True
    try:
        for n in names:
            ok = record(BY_NAME[n], a.out, work) and ok
    finally:
        ns_down()
        if not os.environ.get("KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


def main():
    # A caller's blocked signals are inherited across exec (a test runner's threads may block SIGINT): the
    # lab's children, tcpdump above all, must see the SIGINT and SIGTERM that stop them.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="role", required=True)
    sub.add_parser("list")
    r = sub.add_parser("record")
    r.add_argument("out")
    r.add_argument("names", nargs="*")
    sub.add_parser("up").add_argument("name")
    r = sub.add_parser("run")
    r.add_argument("name")
    r.add_argument("--out", required=True)
    sub.add_parser("down")
    f = sub.add_parser("forward")
    f.add_argument("a")
    f.add_argument("b")
    f.add_argument("delay", type=float)
    for role in ("server", "client"):
        p = sub.add_parser(role)
        p.add_argument("name")
        p.add_argument("--start", type=float, required=True)
        p.add_argument("--log", required=True)
    a = ap.parse_args()
    if a.role == "list":
        print("\n".join(s["name"] for s in SCENARIOS))
    elif a.role == "record":
        role_record(a)
    elif a.role == "up":
        role_up(a)
    elif a.role == "run":
        role_run(a)
    elif a.role == "down":
        needs_root()
        ns_down()
    elif a.role == "forward":
        role_forward(a)
    elif a.role == "server":
        role_server(a)
    else:
        role_client(a)


if __name__ == "__main__":
    main()
