#!/usr/bin/env python3
"""Real TCP servers for scripts/make-captures; run inside namespace rstd-srv.

Roles:
  churn        SO_REUSEPORT group on [::]:PORT (dual stack), one worker thread per
               listener; a churner shuts one listener down and opens a new one
               every CHURN_MIN..CHURN_MAX seconds.
  overflow     one dual-stack listener with a small backlog whose application
               accepts one connection every ACCEPT_INTERVAL seconds.
  confounders  several listeners, one behaviour per port (see PORTS below), plus a
               raw-socket RST injector and a control socket.

Every accept is logged (JSON lines, --log) with the peer address, so the
orchestrator knows which connections the application accepted; so is every abort
before any byte (ev abort), every listener close with the closing thread id and the
times around it (ev listener_close: the kernel resets the unaccepted children inside
it), and every injected RST with the first reply byte after it (ev inject, first_data). The process
prints READY once its listeners are up, and stops on SIGTERM/SIGINT or after
--max-seconds.
"""

import argparse
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SRV4, JsonLog, errname, linger0, mono, norm_ip, tcp_checksum, tid  # noqa: E402

STOP = threading.Event()
LOG = None

# confounders role: port -> behaviour
PORTS = {
    8080: "normal",      # read one line, reply "OK\n", close (server closes first)
    8081: "abort",       # accept, then SO_LINGER 0 close at once: RST+ACK before any byte
    8082: "data_abort",  # read, reply, then SO_LINGER 0 close: RST+ACK after data both ways
    8083: "gate",        # backlog 0, accepts only while the gate is open (SYNs dropped meanwhile)
    8084: "defer",       # TCP_DEFER_ACCEPT 1 s: a pure handshake ACK is dropped, SYN-ACK resent
    8085: "inject",      # read, inject an out-of-window RST with a raw socket, then reply
    8086: "vanish",      # never accepts; closed/reopened on command (real incidents)
    8087: "unread_close",  # accept, let the request arrive, close() without reading it: RST+ACK
    8088: "delayed_abort",  # accept, wait 50-200 ms, SO_LINGER 0 close (request unread): RST+ACK
    8090: "firewalled",  # as normal; in firewall-reject an nft rule rejects its handshake ACKs
}


def make_listener(port, backlog, reuseport=False, defer=0):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if defer:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, defer)
    s.bind(("::", port))
    s.listen(backlog)
    return s


def log_accept(conn, peer, port, **extra):
    LOG.write(ev="accept", peer_ip=norm_ip(peer[0]), peer_port=peer[1], server_port=port,
              local_ip=norm_ip(conn.getsockname()[0]), **extra)


def read_line(conn, timeout=1.0, limit=256):
    conn.settimeout(timeout)
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        chunk = conn.recv(limit)
        if not chunk:
            break
        buf += chunk
    return buf


def serve_normal(conn, peer, port, work=0.0):
    """One request line in, "OK" out after `work` seconds, close (the server closes first)."""
    try:
        if read_line(conn):
            if work:
                time.sleep(work)
            conn.sendall(b"OK\n")
    except OSError as e:
        LOG.write(ev="handle_error", peer_ip=norm_ip(peer[0]), peer_port=peer[1], server_port=port,
                  error=errname(e))
    finally:
        conn.close()


def stop_listener(sock):
    """Stop listening now: shutdown() wakes a thread blocked in accept() (close() alone
    would not while that thread holds the file), and tears the listener down exactly as
    close() does (tcp_disconnect -> inet_csk_listen_stop)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ---------------------------------------------------------------- churn


class Member:
    def __init__(self, lid, port, backlog, work):
        self.lid = lid
        self.work_time = work
        self.port = port
        self.sock = make_listener(port, backlog, reuseport=True)
        self.closed = False
        LOG.write(ev="listener_open", lid=lid, port=port)
        self.thread = threading.Thread(target=self.work, daemon=True)
        self.thread.start()

    def work(self):
        while not self.closed:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                break
            log_accept(conn, peer, self.port, lid=self.lid)
            # While this worker is busy, new connections wait unaccepted in its queue;
            # if the churner closes this listener then, the kernel resets them (RST+ACK).
            serve_normal(conn, peer, self.port, self.work_time())
        self.sock.close()

    def close(self):
        self.closed = True
        t0 = mono()
        stop_listener(self.sock)
        # The kernel resets the unaccepted children inside this call, in this thread:
        # their tcp_send_reset events carry this thread id and lie within [t0, t1].
        LOG.write(ev="listener_close", lid=self.lid, port=self.port, tid=tid(), t0=t0, t1=mono())


def role_churn(a):
    rng = random.Random(a.seed)
    work_rng = random.Random(a.seed)

    def work():
        return work_rng.uniform(a.work_min, a.work_max)
    members = [Member(i, a.port, a.backlog, work) for i in range(a.listeners)]
    next_lid = a.listeners
    print("READY", flush=True)
    deadline = mono() + a.max_seconds
    churns = 0
    while not STOP.is_set() and mono() < deadline:
        if STOP.wait(rng.uniform(a.churn_min, a.churn_max)):
            break
        victim = rng.randrange(len(members))
        members.pop(victim).close()
        members.append(Member(next_lid, a.port, a.backlog, work))
        next_lid += 1
        churns += 1
    LOG.write(ev="churn_done", churns=churns)
    for m in members:
        m.close()


# ---------------------------------------------------------------- overflow


def role_overflow(a):
    s = make_listener(a.port, a.backlog)
    LOG.write(ev="listener_open", lid=0, port=a.port, backlog=a.backlog)
    print("READY", flush=True)
    s.settimeout(0.05)
    deadline = mono() + a.max_seconds
    while not STOP.is_set() and mono() < deadline:
        if STOP.wait(a.accept_interval):
            break
        try:
            conn, peer = s.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        log_accept(conn, peer, a.port)
        serve_normal(conn, peer, a.port)
    s.close()


# ---------------------------------------------------------------- confounders


class Sniffer:
    """Remembers the last segment each client sent to one port, read from raw
    IPPROTO_TCP sockets (which get a copy of every incoming TCP segment)."""

    def __init__(self, port):
        self.port = port
        self.last = {}
        self.cond = threading.Condition()
        self.s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not STOP.is_set():
            ready, _, _ = select.select([self.s4, self.s6], [], [], 0.1)
            for s in ready:
                data, addr = s.recvfrom(2048)
                if s is self.s4:
                    ihl = (data[0] & 15) * 4
                    tcp = data[ihl:]
                    plen = struct.unpack("!H", data[2:4])[0] - ihl
                else:
                    tcp = data
                    plen = len(data)
                if len(tcp) < 20:
                    continue
                sport, dport, seq, ack, off = struct.unpack("!HHIIB", tcp[:13])
                if dport != self.port:
                    continue
                payload = plen - (off >> 4) * 4
                with self.cond:
                    self.last[(norm_ip(addr[0]), sport)] = (seq, ack, payload)
                    self.cond.notify_all()

    def wait_data(self, key, timeout=0.5):
        """(seq, ack, payload_len) of the client's last segment that carried data."""
        end = mono() + timeout
        with self.cond:
            while True:
                got = self.last.get(key)
                if got and got[2] > 0:
                    return got
                left = end - mono()
                if left <= 0:
                    return got
                self.cond.wait(left)


def inject_rst(client_ip, client_port, server_port, seq, ack, with_ack):
    """Send one forged RST from the server address to the client (raw socket)."""
    flags = 0x04 | (0x10 if with_ack else 0)
    if ":" not in client_ip:
        src = socket.inet_aton(SRV4)
        dst = socket.inet_aton(client_ip)
        tcp = struct.pack("!HHIIBBHHH", server_port, client_port, seq, ack if with_ack else 0,
                          5 << 4, flags, 0, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        csum = tcp_checksum(pseudo, tcp)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        # IP header: DF, TTL 64, ID and checksum 0 (the kernel fills both in).
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64,
                         socket.IPPROTO_TCP, 0, src, dst)
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        s.sendto(ip + tcp, (client_ip, 0))
    else:
        tcp = struct.pack("!HHIIBBHHH", server_port, client_port, seq, ack if with_ack else 0,
                          5 << 4, flags, 0, 0, 0)
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        # The kernel computes the TCP checksum at byte 16 (IPv6 has no IP_HDRINCL).
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 16)
        s.sendto(tcp, (client_ip, 0))
    s.close()


class Confounders:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.socks = {}
        self.gate = threading.Event()
        self.gate.set()
        self.injects = 0
        self.sniffer = Sniffer(8085)
        for port, kind in PORTS.items():
            self.open(port)
            if kind != "vanish":
                threading.Thread(target=self.accept_loop, args=(port, kind), daemon=True).start()

    def open(self, port):
        kind = PORTS[port]
        backlog = 0 if kind == "gate" else 16
        s = make_listener(port, backlog, defer=1 if kind == "defer" else 0)
        s.settimeout(0.05)
        with self.lock:
            self.socks[port] = s
        LOG.write(ev="listener_open", port=port, kind=kind, backlog=backlog)

    def close(self, port):
        with self.lock:
            s = self.socks.pop(port)
        t0 = mono()
        stop_listener(s)
        s.close()
        # Unaccepted children are reset inside stop_listener, in this thread (see Member.close).
        LOG.write(ev="listener_close", port=port, kind=PORTS[port], tid=tid(), t0=t0, t1=mono())

    def accept_loop(self, port, kind):
        s = self.socks[port]
        while not STOP.is_set():
            if kind == "gate" and not self.gate.is_set():
                STOP.wait(0.01)
                continue
            try:
                conn, peer = s.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(None)
            log_accept(conn, peer, port, kind=kind)
            threading.Thread(target=self.handle, args=(conn, peer, port, kind), daemon=True).start()

    def handle(self, conn, peer, port, kind):
        ip, cport = norm_ip(peer[0]), peer[1]
        try:
            if kind == "abort":
                linger0(conn)
                conn.close()
                self.log_abort(ip, cport, port, "linger0_at_once")
                return
            if kind == "delayed_abort":
                delay = random.uniform(0.05, 0.2)
                time.sleep(delay)
                linger0(conn)
                conn.close()
                self.log_abort(ip, cport, port, "linger0_after_%.0f_ms" % (delay * 1000))
                return
            if kind == "data_abort":
                if read_line(conn):
                    conn.sendall(b"OK\n")
                time.sleep(0.05)
                linger0(conn)
                conn.close()
                return
            if kind == "unread_close":
                time.sleep(0.05)
                conn.close()
                self.log_abort(ip, cport, port, "close_unread")
                return
            if kind == "inject":
                if read_line(conn):
                    self.inject(conn, ip, cport, port)
                    conn.sendall(b"OK\n")
                    LOG.write(ev="first_data", peer_ip=ip, peer_port=cport, server_port=port)
                conn.close()
                return
            serve_normal(conn, peer, port)
        except OSError as e:
            LOG.write(ev="handle_error", peer_ip=ip, peer_port=cport, server_port=port, error=errname(e))
            conn.close()

    def log_abort(self, ip, cport, port, how):
        """The application aborted this accepted connection before writing any byte."""
        LOG.write(ev="abort", peer_ip=ip, peer_port=cport, server_port=port, how=how, bytes_sent=0)

    def inject(self, conn, ip, cport, port):
        got = self.sniffer.wait_data((ip, cport))
        if not got:
            LOG.write(ev="inject_failed", peer_ip=ip, peer_port=cport)
            return
        seq, ack, plen = got
        # ack is the server's snd_nxt, seq+plen the client's; a RST 2^30 away from
        # snd_nxt is far outside the client's receive window, so the client drops it.
        with_ack = self.injects % 2 == 1
        rst_seq = (ack + 0x40000000) & 0xFFFFFFFF if not with_ack else (ack - 0x40000000) & 0xFFFFFFFF
        t_sent = mono()
        inject_rst(ip, cport, port, rst_seq, (seq + plen) & 0xFFFFFFFF, with_ack)
        self.injects += 1
        LOG.write(ev="inject", peer_ip=ip, peer_port=cport, server_port=port, rst_seq=rst_seq,
                  snd_nxt=ack, with_ack=with_ack, t_sent=t_sent)
        time.sleep(0.05)

    def command(self, line):
        words = line.split()
        if words[0] == "close":
            self.close(int(words[1]))
        elif words[0] == "open":
            self.open(int(words[1]))
        elif words[0] == "reopen":
            self.close(int(words[1]))
            self.open(int(words[1]))
        elif words[0] == "gate":
            (self.gate.set if words[1] == "open" else self.gate.clear)()
            LOG.write(ev="gate", state=words[1])
        else:
            return "error unknown command"
        return "ok"


def serve_ctl(path, handler):
    """Line commands on a pathname Unix socket (it crosses network namespaces and
    keeps control traffic out of the capture)."""
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    s.settimeout(0.1)

    def client(c):
        f = c.makefile("rw", buffering=1)
        for line in f:
            if not line.strip():
                continue
            try:
                reply = handler(line.strip())
            except Exception as e:  # report, keep serving
                reply = "error %r" % (e,)
            f.write(reply + "\n")
        c.close()

    def loop():
        while not STOP.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            threading.Thread(target=client, args=(c,), daemon=True).start()
        s.close()

    threading.Thread(target=loop, daemon=True).start()


def role_confounders(a):
    c = Confounders(a)
    serve_ctl(a.ctl, c.command)
    print("READY", flush=True)
    STOP.wait(a.max_seconds)


def main():
    global LOG
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["churn", "overflow", "confounders"])
    p.add_argument("--log", required=True)
    p.add_argument("--ctl", help="control socket path (confounders)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--listeners", type=int, default=4)
    p.add_argument("--backlog", type=int, default=128)
    p.add_argument("--churn-min", type=float, default=0.05)
    p.add_argument("--churn-max", type=float, default=0.10)
    p.add_argument("--work-min", type=float, default=0.0, help="churn: seconds of work per request")
    p.add_argument("--work-max", type=float, default=0.0)
    p.add_argument("--accept-interval", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=60.0)
    a = p.parse_args()
    LOG = JsonLog(a.log)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    {"churn": role_churn, "overflow": role_overflow, "confounders": role_confounders}[a.role](a)
    LOG.write(ev="server_exit")
    LOG.close()


if __name__ == "__main__":
    main()
