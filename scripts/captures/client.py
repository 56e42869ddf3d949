#!/usr/bin/env python3
"""Real TCP clients for scripts/make-captures; run inside namespace rstd-cli.

Every connection attempt is logged (JSON lines, --log) from the client's own view:
addresses, the thread id, CLOCK_MONOTONIC times and one result:
  response             got the server's reply bytes
  reset_after_connect  connect() succeeded, then send/recv failed with ECONNRESET or
                       EPIPE before any reply byte arrived (also: connect() itself
                       returned ECONNRESET, which means the handshake had completed)
  refused              connect() failed with ECONNREFUSED
  timeout              connect() timed out
  client_reset         this client aborted the connection itself (SO_LINGER 0 close)
  raw_reset            the raw-socket client (role nearmiss, raw_wrong_ack) sent its
                       handshake ACK and got a RST back; its record holds the SYN-ACK
                       seq, the ack number it sent and the RST's seq
  other:<ERRNO>        anything else (other:EOF = orderly close before any reply byte,
                       other:ETIMEDOUT = no reply within the read timeout)

"Deferred handshake ACK" (--trick): TCP_QUICKACK=0 before connect() puts the socket in
pingpong mode, so the kernel holds back the handshake ACK (up to TCP_DELACK_MAX,
200 ms) and piggybacks it on the first data. connect() returns on the SYN-ACK; the
client then waits DELAY before sending its request, so the server sees SYN, SYN-ACK
and only DELAY later the ACK with the request.

Roles firewall, otherhost and nearmiss make the firewall-reject, other-host and
near-misses captures. otherhost steers a connection's handshake ACK to another host
by switching the client's static neighbour entries (`ip neigh replace`) between
connect() and the request, and logs when (steered, t_steer, t_unsteer).
"""

import argparse
import errno
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CLI4, CLI6, SO_COOKIE, SRV4, SRV6, JsonLog, errname, family_of,  # noqa: E402
                    linger0, mono, norm_ip, tcp_checksum, tid)

LOG = None
REQUEST = b"GET /\n"


class Ctl:
    """Client side of the server's Unix control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.f = self.s.makefile("rw", buffering=1)

    def __call__(self, line):
        self.f.write(line + "\n")
        reply = self.f.readline().strip()
        if reply != "ok":
            raise RuntimeError("control command %r failed: %r" % (line, reply))


def attempt(server_ip, port, kind, *, trick=None, bind_port=None, ports=None, before_send=None,
            after=None, abort=None, write_after_eof=False, connect_timeout=3.0, read_timeout=3.0, rec_extra=None, tos=0):
    """One connection attempt; logs and returns its record.

    trick: seconds to wait after connect() with the handshake ACK deferred (TCP_QUICKACK=0).
    abort: None, "after_connect" or "after_response" (SO_LINGER 0 close by the client).
    ports: a callable that gives the next local port to try; the socket binds to the first one
    no socket holds (TIME_WAIT included, as there is no SO_REUSEADDR), so a caller that hands
    out each port once never repeats a 4-tuple, which the kernel's own choice can do.
    before_send(rec) runs just before the request is sent, after(rec) just before the
    record is logged; both may add fields to the record.
    tos: IP_TOS / IPV6_TCLASS of the client socket (every segment it sends carries it).
    """
    fam = family_of(server_ip)
    rec = dict(ev="conn", kind=kind, server_ip=norm_ip(server_ip), server_port=port, tid=tid(),
               t_start=mono(), client_ip=CLI6 if fam == socket.AF_INET6 else CLI4, client_port=0)
    if rec_extra:
        rec.update(rec_extra)
    if after:
        rec["_after"] = after
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if tos:
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            rec["tos"] = tos
        if bind_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((rec["client_ip"], bind_port))
        elif ports:
            while True:
                try:
                    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", ports()))
                    break
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
        if trick is not None:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        # Non-blocking connect so the local port is known even when connect() fails.
        s.setblocking(False)
        err = s.connect_ex((server_ip, port))
        rec["client_ip"], rec["client_port"] = norm_ip(s.getsockname()[0]), s.getsockname()[1]
        if err == errno.EINPROGRESS:
            p = select.poll()
            p.register(s, select.POLLOUT)
            if not p.poll(connect_timeout * 1000):
                return finish(rec, s, "timeout")
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == errno.ECONNREFUSED:
            return finish(rec, s, "refused")
        if err == errno.ETIMEDOUT:
            return finish(rec, s, "timeout")
        if err == errno.ECONNRESET:
            # Linux reports ECONNRESET from connect() only when the handshake completed
            # (the socket was ESTABLISHED) and a RST arrived before connect() returned;
            # a RST in SYN-SENT gives ECONNREFUSED. So this is a reset after connect.
            rec["reset_during_connect"] = True
            return finish(rec, s, "reset_after_connect")
        if err:
            return finish(rec, s, "other:" + errname(err))
        rec["t_connected"] = mono()
        rec["cookie"] = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]
        s.setblocking(True)
        s.settimeout(read_timeout)
        if abort == "after_connect":
            linger0(s)
            return finish(rec, s, "client_reset")
        if trick is not None:
            time.sleep(trick)
        if before_send:
            before_send(rec)
        got = b""
        try:
            rec["t_send"] = mono()
            s.sendall(REQUEST)
            rec["t_sent"] = mono()
            while b"\n" not in got:
                chunk = s.recv(256)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, BrokenPipeError) as e:
            rec["error"] = errname(e)
            if not got:
                return finish(rec, s, "reset_after_connect")
        except socket.timeout:
            if not got:
                return finish(rec, s, "other:ETIMEDOUT")
        except OSError as e:
            if not got:
                return finish(rec, s, "other:" + errname(e))
        if not got:
            return finish(rec, s, "other:EOF")
        rec["reply"] = got.decode(errors="replace").strip()
        if abort == "after_response":
            linger0(s)
            return finish(rec, s, "client_reset")
        if write_after_eof:
            # Wait for the server's FIN, then write anyway: the server's orphaned
            # FIN_WAIT2 socket answers the data with a RST.
            try:
                while s.recv(256):
                    pass
                s.sendall(b"more\n")
                time.sleep(0.05)
                s.sendall(b"more\n")
            except OSError as e:
                rec["late_error"] = errname(e)
        return finish(rec, s, "response")
    except OSError as e:
        return finish(rec, s, "other:" + errname(e))


def finish(rec, s, result):
    rec["result"] = result
    rec["t_end"] = mono()
    try:
        s.close()
    except OSError:
        pass
    after = rec.pop("_after", None)
    if after:
        after(rec)
    LOG.write(**rec)
    return rec


def run_threads(targets):
    ts = [threading.Thread(target=t) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)


# ---------------------------------------------------------------- churn


def role_churn(a):
    rng = random.Random(a.seed)
    plan = []
    for i in range(a.count):
        v6 = rng.random() < a.v6_share
        plan.append((SRV6 if v6 else SRV4, rng.uniform(a.delay_min, a.delay_max)))
    lock = threading.Lock()
    deadline = mono() + a.max_seconds

    def worker():
        while mono() < deadline:
            with lock:
                if not plan:
                    return
                ip, delay = plan.pop()
            attempt(ip, a.port, "churn", trick=delay)
            time.sleep(a.gap)

    run_threads([worker] * a.threads)


# ---------------------------------------------------------------- overflow


def role_overflow(a):
    rng = random.Random(a.seed)
    for wave in range(a.waves):
        jobs = []
        for i in range(a.count):
            ip = SRV6 if rng.random() < a.v6_share else SRV4
            delay = rng.uniform(a.delay_min, a.delay_max)
            jobs.append(lambda ip=ip, delay=delay: attempt(ip, a.port, "overflow", trick=delay,
                                                           connect_timeout=a.connect_timeout,
                                                           read_timeout=a.read_timeout))
        run_threads(jobs)
        time.sleep(a.wave_gap)


# ---------------------------------------------------------------- confounders


def role_confounders(a):
    ctl = Ctl(a.ctl)
    both = (SRV4, SRV6)
    # Plain request/response, one with the handshake ACK piggybacked on the request.
    for ip in (SRV4, SRV6, SRV4):
        attempt(ip, 8080, "normal")
    for ip in both:
        attempt(ip, 8080, "normal_deferred_ack", trick=0.05)
    # SYN to a closed port: RST+ACK, seq 0.
    for ip in both:
        attempt(ip, 8089, "closed_port")
    # The client aborts: at once, and after a request/response.
    for ip in both:
        attempt(ip, 8080, "client_abort_at_once", abort="after_connect")
    for ip in both:
        attempt(ip, 8080, "client_abort_after_data", abort="after_response")
    # The server application aborts right after accept (RST+ACK, seq = SYN-ACK seq + 1).
    # The client sends only after that RST arrived.
    for ip in (SRV4, SRV6, SRV4):
        attempt(ip, 8081, "server_abort_after_accept", trick=None, before_send=lambda rec: time.sleep(0.1))
    # The server application closes without reading the request (RST+ACK, unread data).
    for ip in both:
        attempt(ip, 8087, "server_close_unread")
    # Data flowed both ways, then RSTs: server abort (RST+ACK); client writes after the
    # server's FIN (the orphaned server socket answers with RST, no ACK flag).
    for ip in both:
        attempt(ip, 8082, "server_abort_after_data")
    for ip in both:
        attempt(ip, 8080, "write_after_server_close", write_after_eof=True)
    # Out-of-window RSTs injected by the server namespace (raw socket); ignored by the client.
    for ip in (SRV4, SRV4, SRV6):
        attempt(ip, 8085, "injected_rst")
    # One 4-tuple used twice in a row: after a client abort (RST), and after a normal
    # close that left the server in TIME_WAIT.
    for n, (ip, first_abort) in enumerate([(SRV4, "after_response"), (SRV4, None), (SRV6, None)]):
        port = a.reuse_port_base + n
        attempt(ip, 8080, "tuple_reuse_first", bind_port=port, abort=first_abort)
        time.sleep(0.05)
        attempt(ip, 8080, "tuple_reuse_second", bind_port=port)
    # Retransmitted SYN: listener with backlog 0 holds one unaccepted connection, so the
    # next SYN is dropped; the gate opens 0.5 s later and the retransmitted SYN succeeds.
    for ip in both:
        ctl("gate closed")
        time.sleep(0.1)  # the accept loop re-checks the gate at least every 50 ms
        first = threading.Thread(target=attempt, args=(SRV4, 8083, "syn_retransmit_holder"))
        first.start()
        time.sleep(0.2)
        second = threading.Thread(target=attempt, args=(ip, 8083, "syn_retransmit"),
                                  kwargs=dict(connect_timeout=4.0))
        second.start()
        time.sleep(0.5)
        ctl("gate open")
        first.join(10)
        second.join(10)
    # Retransmitted SYN-ACK: TCP_DEFER_ACCEPT listener drops the pure handshake ACK and
    # resends the SYN-ACK after 1 s; the client sends its request after 1.3 s.
    run_threads([lambda ip=ip: attempt(ip, 8084, "synack_retransmit", before_send=lambda rec: time.sleep(1.3))
                 for ip in both])
    # Real incidents: the listener goes away between SYN-ACK and the (deferred) ACK.
    incidents(ctl)
    # Near miss: a completed, unaccepted connection is reset (RST+ACK) when its listener closes.
    unaccepted_child(ctl, SRV4)


def incidents(ctl, plan=((SRV4, "close"), (SRV6, "reopen"), (SRV4, "reopen"), (SRV6, "close")), tos=0):
    for ip, how in plan:
        def vanish(rec, how=how):
            ctl(how + " 8086")
        attempt(ip, 8086, "incident_listener_" + ("gone" if how == "close" else "replaced"),
                trick=0.05, before_send=vanish, tos=tos)
        if how == "close":
            ctl("open 8086")
        time.sleep(0.05)


def unaccepted_child(ctl, ip):
    """Plain connect + request to the never-accepting listener, then close it."""
    unaccepted_children(ctl, [ip])


def unaccepted_children(ctl, ips):
    """One plain connect + request per address, concurrently, to the never-accepting
    listener on 8086; 0.15 s later one close() of that listener resets them all."""
    kind = "unaccepted_child_reset" if len(ips) == 1 else "unaccepted_children_reset"

    def later():
        time.sleep(0.15)
        ctl("close 8086")
    t = threading.Thread(target=later)
    t.start()
    run_threads([lambda ip=ip: attempt(ip, 8086, kind) for ip in ips])
    t.join(5)
    ctl("open 8086")


# ---------------------------------------------------------------- mini (any-sll2, nanosecond)


def role_mini(a):
    ctl = Ctl(a.ctl)
    attempt(SRV4, 8080, "normal")
    attempt(SRV6, 8080, "normal")
    attempt(SRV4, 8080, "normal_deferred_ack", trick=0.05)
    incidents(ctl, plan=((SRV4, "reopen"), (SRV6, "close")))
    unaccepted_child(ctl, SRV6)
    attempt(SRV4, 8080, "normal")


def role_tunnel(a):
    """vxlan-ipv4, vxlan-ipv6: as mini, with 4 incidents (2 IPv4, 2 IPv6) and an IPv4 child."""
    ctl = Ctl(a.ctl)
    attempt(SRV4, 8080, "normal")
    attempt(SRV6, 8080, "normal")
    attempt(SRV6, 8080, "normal_deferred_ack", trick=0.05)
    incidents(ctl, plan=((SRV4, "reopen"), (SRV6, "close"), (SRV4, "close"), (SRV6, "reopen")))
    unaccepted_child(ctl, SRV4)
    attempt(SRV4, 8080, "normal")


# ---------------------------------------------------------------- firewall-reject


def role_firewall(a):
    """8090 is an open listener, but an nft rule in the server namespace rejects every
    segment to it that has ACK without SYN (the handshake ACK) with a TCP reset."""
    ctl = Ctl(a.ctl)
    for _ in range(2):
        for ip in (SRV4, SRV6):
            for tos in (0, TOS):
                attempt(ip, 8090, "firewall_reject", trick=0.05, tos=tos)
    incidents(ctl, plan=((SRV4, "close"), (SRV6, "reopen")), tos=0)
    incidents(ctl, plan=((SRV6, "close"), (SRV4, "reopen")), tos=TOS)
    for ip in (SRV4, SRV6):
        for tos in (0, TOS):
            attempt(ip, 8080, "normal", tos=tos)
    attempt(SRV4, 8080, "normal_deferred_ack", trick=0.05, tos=TOS)
    attempt(SRV6, 8080, "normal_deferred_ack", trick=0.05)


TOS = 0x20


# ---------------------------------------------------------------- other-host


def set_neigh(dev, mac):
    """Point the client's static neighbour entries for both server addresses at mac."""
    cmds = "".join("neigh replace %s lladdr %s dev %s nud permanent\n" % (ip, mac, dev) for ip in (SRV4, SRV6))
    subprocess.run(["ip", "-batch", "-"], input=cmds, text=True, check=True, timeout=5)


def role_otherhost(a):
    """Connections whose handshake ACK (deferred, carrying the request) the client sends to
    another host that owns the same server address: it switches its neighbour entry between
    SYN-ACK and ACK, and back once the connection is over."""
    ctl = Ctl(a.ctl)
    steer_macs = {"alt-l2": a.alt_mac, "alt-router": a.rtr_mac}

    def steered(ip, name):
        def go(rec):
            set_neigh(a.dev, steer_macs[name])
            rec["steered"] = name
            rec["t_steer"] = mono()

        def back(rec):
            if "t_steer" in rec:
                set_neigh(a.dev, a.home_mac)
                rec["t_unsteer"] = mono()
        attempt(ip, 8080, "other_host_" + name, trick=0.05, before_send=go, after=back)
        time.sleep(0.02)

    attempt(SRV4, 8080, "normal")
    attempt(SRV6, 8080, "normal_deferred_ack", trick=0.05)
    for name in ("alt-l2", "alt-router"):
        for ip in (SRV4, SRV6, SRV4, SRV6):
            steered(ip, name)
        attempt(SRV4, 8080, "normal_deferred_ack", trick=0.05)
    incidents(ctl, plan=((SRV4, "close"), (SRV6, "reopen"), (SRV6, "close")))
    attempt(SRV6, 8080, "normal")
    attempt(SRV4, 8080, "normal")


# ---------------------------------------------------------------- near-misses


def raw_segment(src_ip, dst_ip, sport, dport, seq, ack, flags, options=b""):
    doff = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4, flags,
                      64240, 0, 0) + options
    if ":" not in dst_ip:
        pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", tcp_checksum(pseudo, tcp)) + tcp[18:]
    return tcp


def raw_wrong_ack(server_ip, port, sport, delta, timeout=1.0):
    """A raw-socket client: SYN, wait for the SYN-ACK, then a handshake ACK whose ack
    number is SYN-ACK seq + 1 + delta (delta != 0). The server kernel's LISTEN socket
    answers with RST seq = that ack number. The client namespace drops its own kernel's
    RST to the SYN-ACK (nft). Afterwards a RST+ACK with the right numbers removes the
    server's request socket, so no SYN-ACK retransmits follow."""
    fam = family_of(server_ip)
    v6 = fam == socket.AF_INET6
    cip = CLI6 if v6 else CLI4
    rec = dict(ev="conn", kind="raw_wrong_ack", raw=True, server_ip=norm_ip(server_ip), server_port=port,
               client_ip=cip, client_port=sport, tid=tid(), t_start=mono(), ack_delta=delta)
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, 16)
    isn = random.getrandbits(32)
    rec["isn"] = isn

    def send(seq, ack, flags, options=b""):
        s.sendto(raw_segment(cip, server_ip, sport, port, seq, ack, flags, options), (server_ip, 0))

    def wait_for(pred, until):
        while mono() < until:
            r, _, _ = select.select([s], [], [], max(0.0, until - mono()))
            if not r:
                break
            data, addr = s.recvfrom(2048)
            if norm_ip(addr[0]) != rec["server_ip"]:
                continue
            tcp = data if v6 else data[(data[0] & 15) * 4:]
            if len(tcp) < 20:
                continue
            sp, dp, seq, ack, off, flags = struct.unpack("!HHIIBB", tcp[:14])
            if sp == port and dp == sport and pred(flags):
                return seq, ack, flags
        return None

    try:
        send(isn, 0, 0x02, struct.pack("!BBH", 2, 4, 1460))
        got = wait_for(lambda f: f & 0x12 == 0x12, mono() + timeout)
        if not got:
            rec["result"] = "timeout"
            return rec
        sa_seq, sa_ack, _ = got
        rec["synack_seq"] = sa_seq
        if sa_ack != (isn + 1) & 0xFFFFFFFF:
            rec["result"] = "other:BAD_SYNACK"
            return rec
        ack_sent = (sa_seq + 1 + delta) & 0xFFFFFFFF
        rec["ack_sent"] = ack_sent
        rec["t_send"] = mono()
        send(isn + 1, ack_sent, 0x10)
        got = wait_for(lambda f: f & 0x04, mono() + timeout)
        if not got:
            rec["result"] = "other:ETIMEDOUT"
        else:
            rec["rst_seq"], _, rec["rst_flags"] = got
            rec["t_rst"] = mono()
            rec["result"] = "raw_reset"
        send(isn + 1, sa_seq + 1, 0x14)  # RST+ACK: drop the server's request socket
        return rec
    finally:
        s.close()
        rec["t_end"] = mono()
        LOG.write(**rec)


def role_nearmiss(a):
    ctl = Ctl(a.ctl)
    both = (SRV4, SRV6)
    attempt(SRV4, 8080, "normal")
    attempt(SRV6, 8080, "normal_deferred_ack", trick=0.05)
    # refused: SYN to a closed port.
    for ip in both:
        attempt(ip, 8089, "closed_port")
    # Application aborts after accept, before any byte: SO_LINGER 0 at once (the client
    # sends only after that RST arrived), after 50-200 ms (request unread), close() unread.
    for ip in both:
        attempt(ip, 8081, "server_abort_after_accept", before_send=lambda rec: time.sleep(0.1))
    for ip in (SRV4, SRV6, SRV4):
        attempt(ip, 8088, "server_abort_delayed")
    for ip in both:
        attempt(ip, 8087, "server_close_unread")
    # Listener closes: one close() resets several unaccepted children, or a lone one.
    unaccepted_children(ctl, [SRV4, SRV6, SRV4])
    unaccepted_children(ctl, [SRV6, SRV6])
    unaccepted_children(ctl, [SRV4])
    unaccepted_children(ctl, [SRV6])
    # Raw-socket handshake ACKs with a wrong acknowledgement number.
    for n, (ip, delta) in enumerate(((SRV4, 1000), (SRV6, 1000), (SRV4, -1), (SRV6, 1), (SRV4, 0x10000))):
        raw_wrong_ack(ip, 8080, a.raw_port_base + n, delta)
        time.sleep(0.02)
    attempt(SRV6, 8080, "normal")
    attempt(SRV4, 8080, "normal_deferred_ack", trick=0.05)


IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)


def main():
    global LOG
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["churn", "overflow", "confounders", "mini", "firewall", "otherhost",
                                     "nearmiss", "tunnel"])
    p.add_argument("--log", required=True)
    p.add_argument("--ctl")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--count", type=int, default=200, help="connections (per wave for overflow)")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--waves", type=int, default=3)
    p.add_argument("--wave-gap", type=float, default=1.5)
    p.add_argument("--gap", type=float, default=0.0, help="pause between a thread's connections")
    p.add_argument("--delay-min", type=float, default=0.02)
    p.add_argument("--delay-max", type=float, default=0.10)
    p.add_argument("--v6-share", type=float, default=0.25)
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--read-timeout", type=float, default=3.0)
    p.add_argument("--reuse-port-base", type=int, default=30100)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--raw-port-base", type=int, default=30200,
                   help="nearmiss: local ports of the raw-socket client (outside ip_local_port_range)")
    p.add_argument("--dev", help="otherhost: the client's interface")
    p.add_argument("--home-mac", help="otherhost: the server's MAC")
    p.add_argument("--alt-mac", help="otherhost: rstd-alt's MAC (same segment)")
    p.add_argument("--rtr-mac", help="otherhost: rstd-rtr's MAC (rstd-alt2 behind it)")
    a = p.parse_args()
    LOG = JsonLog(a.log)
    {"churn": role_churn, "overflow": role_overflow, "confounders": role_confounders,
     "mini": role_mini, "firewall": role_firewall, "otherhost": role_otherhost,
     "nearmiss": role_nearmiss, "tunnel": role_tunnel}[a.role](a)
    LOG.close()


if __name__ == "__main__":
    main()
