#!/usr/bin/env python3
"""Write the hand-crafted test captures Tests/Captures/crafted-*.

Standard library only (Python 3.11), no scapy. The output is deterministic:
fixed timestamps, fixed ISNs, fixed IP IDs, no randomness, gzip with mtime 0.

Every capture is built from connection scripts (class Conn) whose packets are
serialised by one set of encoders (IPv4/IPv6/TCP with correct checksums, then a
link layer, then a file format). The expected outcome of every connection is
declared where the connection is built, so the expected CSV files are derived
from the construction, never from running rst-detective. crafted-near-misses and crafted-provenance also
get NAME.expected-near-misses.csv (near-miss kind per attempt) and NAME.expected-origins.csv (rst_origin
per incident, checked against provenance_verdict, the tool's rules written again here).

Usage:
    python3 scripts/craft-captures.py [--out DIR]

--out defaults to Tests/Captures next to this script's parent directory; DIR/CRAFTED.md
describes every crafted file.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import os
import struct
import sys

# --------------------------------------------------------------------------
# Constants of the crafted world
# --------------------------------------------------------------------------

EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC
NS = 1_000_000_000


def at(seconds: float = 0.0, ms: float = 0.0, us: float = 0.0) -> int:
    """Timestamp in integer nanoseconds since the Unix epoch, relative to EPOCH."""
    return EPOCH * NS + round(seconds * NS) + round(ms * 1_000_000) + round(us * 1_000)


C4, S4 = "10.1.0.1", "10.1.0.2"
C6, S6 = "2001:db8::1", "2001:db8::2"
CLIENT_MAC = bytes.fromhex("001b213a4f10")  # Intel OUI 00:1b:21
SERVER_MAC = bytes.fromhex("3cfdfe9e5120")  # Intel OUI 3c:fd:fe
SWITCH_MAC = bytes.fromhex("0019e8a1b2c3")  # Cisco OUI 00:19:e8
ROUTER_MAC = bytes.fromhex("0019e8a1b2d0")  # Cisco OUI 00:19:e8: the client's gateway (crafted-provenance)
OTHER_MAC = bytes.fromhex("0cc47a5e7701")  # Supermicro OUI 0c:c4:7a: another host (crafted-provenance)
ROUTED_SERVER = "198.51.100.7"  # a server behind ROUTER_MAC, 3 hops away (crafted-provenance)
BROADCAST = b"\xff" * 6
SERVER_PORT = 8080
CLOSED_PORT = 8081

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_USER0 = 147
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
FLAG_BITS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, "A": ACK}

# Every metric name of the test contract, in the order written to *.expected-summary.csv.
OUTCOMES = [
    "completed", "reset_after_handshake", "wrong_ack", "listener_close", "app_abort", "refused", "unanswered",
    "abandoned", "client_reset", "reset_before_ack", "ack_dropped", "open_at_end",
]
# Outcomes that are near misses of the signature (NAME.expected-near-misses.csv, column kind).
NEAR_MISSES = ["wrong_ack", "listener_close", "app_abort", "refused"]
# Verdicts on where an incident's RST came from (NAME.expected-origins.csv, column rst_origin).
ORIGINS = ["same-stack", "same-host", "other-host", "firewall-like"]
SKIPS = [
    "skipped_non_ip", "skipped_non_tcp", "skipped_fragment", "skipped_truncated",
    "skipped_bad_ip_header", "skipped_tcp_data_offset_invalid", "skipped_unknown_link_type",
    "skipped_ip_header_length_invalid", "skipped_ip_length_invalid", "skipped_captured_length_invalid",
]
METRICS = (["packets", "tcp_packets", "connection_attempts", "handshakes_completed", "incidents"]
           + ["outcome_" + o for o in OUTCOMES] + SKIPS + ["syn_retransmits", "synack_retransmits"])

FILE_METRICS = ["files_failed", "files_failed_truncated", "files_failed_bad_record_length",
                "files_failed_bad_block_length", "files_snaplen_invalid"]

REQUEST = b"GET /h HTTP/1.1\r\nHost: 10.1.0.2:8080\r\n\r\n"  # 40 bytes
assert len(REQUEST) == 40


def response(n: int) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
    body_len = n - len(head % 0)
    body_len = n - len(head % body_len)
    out = head % body_len + b"x" * (body_len - 2) + b"\r\n"
    assert len(out) == n
    return out


def request(n: int) -> bytes:
    if n == 40:
        return REQUEST
    return (REQUEST * (n // 40 + 1))[:n]


# --------------------------------------------------------------------------
# Checksums and headers
# --------------------------------------------------------------------------

def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def is_v6(addr: str) -> bool:
    return ":" in addr


def addr_bytes(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    if is_v6(src):
        return addr_bytes(src) + addr_bytes(dst) + struct.pack("!IxxxB", length, proto)
    return addr_bytes(src) + addr_bytes(dst) + struct.pack("!xBH", proto, length)


def l4_with_checksum(src: str, dst: str, proto: int, segment: bytes, csum_offset: int) -> bytes:
    """Fill in the checksum of a TCP/UDP/ICMPv6 segment (field at csum_offset)."""
    seg = bytearray(segment)
    seg[csum_offset:csum_offset + 2] = b"\0\0"
    c = inet_checksum(pseudo_header(src, dst, proto, len(seg)) + bytes(seg))
    if proto == 17 and c == 0:
        c = 0xFFFF
    seg[csum_offset:csum_offset + 2] = struct.pack("!H", c)
    return bytes(seg)


def tcp_segment(src, dst, sport, dport, seq, ack, flags, win, options=b"", payload=b"", doff=None) -> bytes:
    assert len(options) % 4 == 0
    if doff is None:
        doff = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      doff << 4, flags, win, 0, 0) + options
    return l4_with_checksum(src, dst, 6, hdr + payload, 16)


def ipv4_packet(src, dst, proto, payload, ident=0, ttl=64, tos=0, df=True, mf=False, frag_offset=0,
                options=b"", version=4, ihl=None, total_length=None) -> bytes:
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)  # EOL padding
    if ihl is None:
        ihl = 5 + len(options) // 4
    if total_length is None:
        total_length = 20 + len(options) + len(payload)
    flags_frag = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, tos, total_length, ident, flags_frag,
                                ttl, proto, 0, addr_bytes(src), addr_bytes(dst)) + options)
    hdr[10:12] = struct.pack("!H", inet_checksum(bytes(hdr)))
    return bytes(hdr) + payload


def ipv6_packet(src, dst, proto, payload, hlim=64, tclass=0, flow=0, ext=()) -> bytes:
    """ext: sequence of (header_type, body_builder(next_header) -> bytes), outermost first."""
    chain = b""
    nxt = proto
    for htype, build in reversed(list(ext)):
        chain = build(nxt) + chain
        nxt = htype
    first = (6 << 28) | (tclass << 20) | flow
    return struct.pack("!IHBB16s16s", first, len(chain) + len(payload), nxt, hlim,
                       addr_bytes(src), addr_bytes(dst)) + chain + payload


# IPv6 extension header builders (RFC 8200); each returns (type, builder)

def ext_hop_by_hop():
    # Router Alert (type 5, len 2, value 0 = MLD) + PadN(0 data bytes): 8 bytes, Hdr Ext Len 0
    return 0, lambda nh: bytes([nh, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00])


def ext_destination_options():
    # experimental option 0x1e (action 00 = skip if unknown), 10 data bytes, then PadN with 2 data bytes
    # => 2 + 12 + 2 = 16 bytes, Hdr Ext Len 1
    return 60, lambda nh: bytes([nh, 1, 0x1E, 10]) + bytes(range(1, 11)) + bytes([0x01, 0x00])


def ext_routing_srh(final_dst: str):
    # Segment Routing Header (RFC 8754, routing type 4), Segments Left 0, one segment = the final destination
    # => 8 + 16 = 24 bytes, Hdr Ext Len 2
    return 43, lambda nh: bytes([nh, 2, 4, 0, 0, 0, 0, 0]) + addr_bytes(final_dst)


def ext_fragment(ident: int, offset: int = 0, more: bool = False):
    return 44, lambda nh: struct.pack("!BBHI", nh, 0, (offset // 8) << 3 | (1 if more else 0), ident)


# TCP options
def opt_mss(v): return struct.pack("!BBH", 2, 4, v)
def opt_ts(val, ecr): return struct.pack("!BBII", 8, 10, val & 0xFFFFFFFF, ecr & 0xFFFFFFFF)
OPT_SACK_PERM = b"\x04\x02"
OPT_NOP = b"\x01"
def opt_ws(shift): return bytes([3, 3, shift])


def syn_options(mss: int, tsval: int, tsecr: int = 0) -> bytes:
    # Linux order: MSS, SACK-permitted, Timestamps, NOP, Window scale 7 (20 bytes)
    return opt_mss(mss) + OPT_SACK_PERM + opt_ts(tsval, tsecr) + OPT_NOP + opt_ws(7)


def ts_options(tsval: int, tsecr: int) -> bytes:
    return OPT_NOP + OPT_NOP + opt_ts(tsval, tsecr)


# --------------------------------------------------------------------------
# Frames: one captured packet, link-layer independent
# --------------------------------------------------------------------------

class Frame:
    """One record. l3 is the network-layer packet (IPv4/IPv6 bytes) or, for kind 'arp'/'llc',
    the Ethernet payload. category: 'tcp' when rst-detective must decode it as TCP, otherwise the
    skipped_* counter it must land in. captured_l3: bytes of l3 that were captured (None = all)."""

    def __init__(self, ts, l3, kind, from_server, category="tcp", captured_l3=None, note=""):
        self.ts = ts
        self.l3 = l3
        self.kind = kind  # 'ipv4', 'ipv6', 'arp', 'llc'
        self.from_server = from_server
        self.category = category
        self.captured_l3 = captured_l3
        self.note = note
        self.iface = 0
        self.conn = None
        # link and network header fields as built (Conn.seg fills them; provenance_verdict reads them)
        self.src_mac = None  # None: the default of macs() (client or server MAC)
        self.dst_mac = None
        self.ttl = None  # IPv4 TTL or IPv6 hop limit
        self.tos = 0  # IPv4 TOS or IPv6 traffic class
        self.flow = 0  # IPv6 flow label
        self.ipid = 0  # IPv4 identification


class Conn:
    """One connection attempt: a client SYN with one ISN and everything that follows.

    Methods append frames to the builder; sequence numbers follow from what was sent.
    expect: the outcome_* name (without prefix) the tool must give this attempt."""

    def __init__(self, b: "Builder", client: str, cport: int, server: str, sport: int, cisn: int, sisn: int,
                 expect: str, ip4_options=None, v6_ext=None, timestamps=True, client_tos=0, server_ttl=64,
                 server_mac=None, origin=None):
        self.b, self.client, self.cport, self.server, self.sport = b, client, cport, server, sport
        self.cisn, self.sisn = cisn & 0xFFFFFFFF, sisn & 0xFFFFFFFF
        self.c_nxt, self.s_nxt = self.cisn, self.sisn
        self.expect = expect
        self.ip4_options = ip4_options  # callable(index) -> bytes, or None
        self.v6_ext = v6_ext  # callable(from_server) -> ext list, or None
        self.timestamps = timestamps  # False: the server declines TCP timestamps (no TS option after the SYN)
        self.client_tos = client_tos  # IPv4 TOS / IPv6 traffic class of every client segment (IP_TOS / IPV6_TCLASS)
        self.server_ttl = server_ttl  # TTL / hop limit of server segments as captured at the client
        self.server_mac = server_mac  # source MAC of server frames (and destination of client frames); None: SERVER_MAC
        self.origin = origin  # expected rst_origin of an incident (NAME.expected-origins.csv)
        self.synack_frame = None  # the first SYN-ACK acknowledging the SYN
        self.ack_frame = None  # the client's handshake ACK
        self.rst_frame = None  # the last kernel-style RST (no ACK flag)
        self.handshake_acked = False
        self.syns = 0
        self.synacks = 0
        # deterministic per-flow IP ID counters (Linux: per-socket, random start)
        self.c_ipid = (cport * 2654435761) & 0xFFFF
        self.s_ipid = (cport * 40503 + 0x1F2E) & 0xFFFF
        b.conns.append(self)

    @property
    def v6(self) -> bool:
        return is_v6(self.client)

    def _tsval(self, ts: int, from_server: bool) -> int:
        ms = (ts - EPOCH * NS) // 1_000_000
        return (0x2A000000 if from_server else 0x15000000) + ms

    def _ts_opts(self, ts: int, from_server: bool) -> bytes:
        if not self.timestamps:
            return b""
        return ts_options(self._tsval(ts, from_server), self._tsval(ts, not from_server))

    def socket_flow_label(self, from_server: bool) -> int:
        """IPv6 flow label of the connection's own sockets (auto flow label, fixed per direction)."""
        return (0x9A000 + self.cport * 7 + (1 if from_server else 0)) & 0xFFFFF

    def kernel_flow_label(self) -> int:
        """IPv6 flow label of a reset from the kernel's control socket (tcp_v6_send_reset). On Linux 6.18 it
        is the control socket's auto flow label, a hash of the reply's flow: non-zero and unrelated to the
        SYN-ACK's. Here a fixed mix of the ports, never 0 and never the SYN-ACK's label."""
        x = ((self.cport << 16) | self.sport) * 0x9E3779B1
        label = ((x >> 12) ^ x) & 0xFFFFF
        if label in (0, self.socket_flow_label(True)):
            label ^= 0x80001
        return label

    def seg(self, ts, from_server, seq, ack, flags, win, options=b"", payload=b"", kernel=False, tos=None,
            note="", ttl=None, flow=None, ipid=None, src_mac=None):
        """One segment of this connection. kernel=True: a reset built by the kernel's control socket
        (IPv4 ID 0 + DF; IPv6 flow label from kernel_flow_label(): non-zero, not the SYN-ACK's).

        Header knobs (None = the connection's default): tos (IPv4 TOS / IPv6 traffic class; default
        client_tos for client segments, 0 for server segments), ttl (TTL / hop limit; default 64 for the
        client, server_ttl for the server), flow (IPv6 flow label), ipid (IPv4 ID), src_mac (source MAC of
        this frame only)."""
        src, dst = (self.server, self.client) if from_server else (self.client, self.server)
        sport, dport = (self.sport, self.cport) if from_server else (self.cport, self.sport)
        fl = 0
        for ch in flags:
            fl |= FLAG_BITS[ch]
        if tos is None:
            tos = 0 if from_server else self.client_tos
        if ttl is None:
            ttl = self.server_ttl if from_server else 64
        tcp = tcp_segment(src, dst, sport, dport, seq, ack, fl, win, options, payload)
        if self.v6:
            ext = self.v6_ext(from_server) if self.v6_ext else ()
            if flow is None:
                flow = self.kernel_flow_label() if kernel else self.socket_flow_label(from_server)
            l3 = ipv6_packet(src, dst, 6, tcp, hlim=ttl, tclass=tos, flow=flow, ext=ext)
            kind = "ipv6"
        else:
            assert flow is None, "IPv4 has no flow label"
            if ipid is None:
                if kernel:
                    ipid = 0
                elif from_server:
                    ipid, self.s_ipid = self.s_ipid, (self.s_ipid + 1) & 0xFFFF
                else:
                    ipid, self.c_ipid = self.c_ipid, (self.c_ipid + 1) & 0xFFFF
            opts = self.ip4_options(len(self.b.frames)) if self.ip4_options else b""
            l3 = ipv4_packet(src, dst, 6, tcp, ident=ipid, ttl=ttl, tos=tos, options=opts)
            kind = "ipv4"
        f = Frame(ts, l3, kind, from_server, note=note)
        f.conn = self
        f.ttl, f.tos, f.flow, f.ipid = ttl, tos, (flow if self.v6 else 0), (0 if self.v6 else ipid)
        if self.server_mac is not None:
            if from_server:
                f.src_mac, f.dst_mac = self.server_mac, CLIENT_MAC
            else:
                f.src_mac, f.dst_mac = CLIENT_MAC, self.server_mac
        if src_mac is not None:
            f.src_mac = src_mac
            if f.dst_mac is None:
                f.dst_mac = CLIENT_MAC if from_server else SERVER_MAC
        return self.b.add(f)

    # client side
    def syn(self, ts):
        self.syns += 1
        if self.syns > 1:
            self.b.syn_retransmits += 1
        mss = 1440 if self.v6 else 1460
        win = 64800 if self.v6 else 64240
        self.c_nxt = (self.cisn + 1) & 0xFFFFFFFF
        return self.seg(ts, False, self.cisn, 0, "S", win, syn_options(mss, self._tsval(ts, False)))

    def ack(self, ts, payload=b""):
        """The client's handshake ACK (or any later client ACK), optionally with data."""
        f = self.seg(ts, False, self.c_nxt, self.s_nxt, "PA" if payload else "A", 502,
                     self._ts_opts(ts, False), payload)
        self.c_nxt = (self.c_nxt + len(payload)) & 0xFFFFFFFF
        if not self.handshake_acked:
            self.ack_frame = f
        self.handshake_acked = True
        return f

    def data(self, ts, n=40):
        return self.ack(ts, request(n))

    def fin(self, ts):
        f = self.seg(ts, False, self.c_nxt, self.s_nxt, "FA", 502,
                     self._ts_opts(ts, False))
        self.c_nxt = (self.c_nxt + 1) & 0xFFFFFFFF
        return f

    def client_rst(self, ts):
        return self.seg(ts, False, self.c_nxt, self.s_nxt, "RA", 0)

    # server side
    def synack(self, ts, ack=None):
        """SYN-ACK; ack defaults to the correct client ISN+1."""
        correct = ack is None
        self.synacks += 1
        if correct and self.synacks > 1:
            self.b.synack_retransmits += 1
        mss = 1440 if self.v6 else 1460
        win = 64260 if self.v6 else 65160
        self.s_nxt = (self.sisn + 1) & 0xFFFFFFFF
        a = (self.cisn + 1) if correct else ack
        if self.timestamps:
            opts = syn_options(mss, self._tsval(ts, True), self._tsval(ts, False))
        else:  # Linux SYN-ACK without timestamps: MSS, NOP, NOP, SACK-permitted, NOP, WS
            opts = opt_mss(mss) + OPT_NOP * 2 + OPT_SACK_PERM + OPT_NOP + opt_ws(7)
        f = self.seg(ts, True, self.sisn, a, "SA", win, opts)
        if correct and self.synack_frame is None:
            self.synack_frame = f
        return f

    def server_data(self, ts, n=100):
        f = self.seg(ts, True, self.s_nxt, self.c_nxt, "PA", 509,
                     self._ts_opts(ts, True), response(n))
        self.s_nxt = (self.s_nxt + n) & 0xFFFFFFFF
        return f

    def server_ack(self, ts):
        return self.seg(ts, True, self.s_nxt, self.c_nxt, "A", 509,
                        self._ts_opts(ts, True))

    def server_fin(self, ts):
        f = self.seg(ts, True, self.s_nxt, self.c_nxt, "FA", 509,
                     self._ts_opts(ts, True))
        self.s_nxt = (self.s_nxt + 1) & 0xFFFFFFFF
        return f

    def kernel_rst(self, ts, seq=None, **hdr):
        """tcp_v4/v6_send_reset answering an ACK (KERNEL-FACTS §6): seq = that ACK's ack number
        (server ISN+1 by default), ACK flag clear, ack 0, window 0, no options, IPv4 ID 0 + DF, IPv6 flow
        label non-zero (kernel_flow_label). hdr: header knobs of seg() (tos, ttl, flow, ipid, src_mac) for
        resets that look otherwise."""
        f = self.seg(ts, True, (self.sisn + 1) if seq is None else seq, 0, "R", 0, kernel=True, **hdr)
        self.rst_frame = f
        return f

    def refuse(self, ts, ack=None):
        """tcp_v4/v6_send_reset answering a SYN: seq 0, RST+ACK, ack = ISN+1, window 0."""
        return self.seg(ts, True, 0, (self.cisn + 1) if ack is None else ack, "RA", 0, kernel=True)

    def server_abort(self, ts):
        """RST+ACK sent by a socket (application abort): seq = snd_nxt, ack = rcv_nxt, window and timestamps."""
        return self.seg(ts, True, self.s_nxt, self.c_nxt, "RA", 509,
                        self._ts_opts(ts, True))


class Builder:
    def __init__(self):
        self.frames: list[Frame] = []
        self.conns: list[Conn] = []
        self.syn_retransmits = 0
        self.synack_retransmits = 0

    def add(self, frame: Frame) -> Frame:
        self.frames.append(frame)
        return frame

    def conn(self, family, cport, cisn, sisn, expect, sport=SERVER_PORT, **kw) -> Conn:
        client, server = (C6, S6) if family == 6 else (C4, S4)
        return Conn(self, client, cport, server, sport, cisn, sisn, expect, **kw)

    def sorted_frames(self) -> list[Frame]:
        # stable: frames with equal timestamps keep build order
        return sorted(self.frames, key=lambda f: f.ts)


# --------------------------------------------------------------------------
# The base conversation
# --------------------------------------------------------------------------

def isn(cport: int, side: str) -> int:
    """Fixed, distinct ISNs per client port (no randomness)."""
    if side == "c":
        return (0x3C5A0000 + cport * 7919) & 0xFFFFFFFF
    return (0x9E370000 + cport * 104729) & 0xFFFFFFFF


def add_incident(b, family, cport, t, **kw):
    """ShADr: SYN, SYN-ACK, ACK, client data (40 bytes), kernel RST seq = server ISN+1 one RTT after the ACK."""
    c = b.conn(family, cport, isn(cport, "c"), isn(cport, "s"), "reset_after_handshake", **kw)
    c.syn(t)
    c.synack(t + at(us=250) - at())
    c.ack(t + at(us=500) - at())
    c.data(t + at(us=510) - at())
    c.kernel_rst(t + at(us=750) - at())
    return c


def add_completed(b, family, cport, t, **kw):
    """SYN, SYN-ACK, ACK, request 40 bytes, response 100 bytes, ACK, FIN exchange."""
    c = b.conn(family, cport, isn(cport, "c"), isn(cport, "s"), "completed", **kw)
    d = lambda us: t + at(us=us) - at()  # noqa: E731
    c.syn(d(0))
    c.synack(d(250))
    c.ack(d(500))
    c.data(d(510))
    c.server_data(d(800))
    c.ack(d(850))
    c.fin(d(900))
    c.server_fin(d(1150))
    c.ack(d(1160))
    return c


def add_refused(b, family, cport, t, **kw):
    """SYN to the closed port 8081, answered by RST+ACK seq 0 ack ISN+1."""
    c = b.conn(family, cport, isn(cport, "c"), isn(cport, "s"), "refused", sport=CLOSED_PORT, **kw)
    c.syn(t)
    c.refuse(t + at(us=250) - at())
    return c


def base_conversation(b: Builder, mode: str = "mixed", t0: int | None = None, **kw) -> None:
    """mode 'mixed': IPv4 incident 40001, completed 40002, refused 40003 (to :8081), IPv6 incident 40004.
    mode 'v4' / 'v6': incident 40001, completed 40002, refused 40003, all of one family.
    The first incident's ACK (x.999800) and RST (x+1.000050) straddle a second boundary."""
    t0 = at(ms=999.3) if t0 is None else t0
    base = lambda s: t0 + at(seconds=s) - at()  # noqa: E731
    fam = 6 if mode == "v6" else 4
    add_incident(b, fam, 40001, base(0), **kw)
    add_completed(b, fam, 40002, base(0.1007), **kw)
    add_refused(b, fam, 40003, base(0.2007), **kw)
    if mode == "mixed":
        add_incident(b, 6, 40004, base(0.3007), **kw)


# --------------------------------------------------------------------------
# Link layers
# --------------------------------------------------------------------------

ETHERTYPE_OF = {"ipv4": ETH_IPV4, "ipv6": ETH_IPV6, "arp": ETH_ARP}
AF_INET = 2


def macs(frame: Frame):
    if frame.src_mac is not None:
        return frame.dst_mac, frame.src_mac
    if frame.kind == "llc":
        return bytes.fromhex("0180c2000000"), SWITCH_MAC  # STP multicast from the switch
    if frame.kind == "arp" and not frame.from_server:
        return BROADCAST, CLIENT_MAC
    return (CLIENT_MAC, SERVER_MAC) if frame.from_server else (SERVER_MAC, CLIENT_MAC)


def pad_received(frame_bytes: bytes, frame: Frame, minimum: int = 60) -> bytes:
    """The capture point is the client host: frames received from the wire (sent by the server) carry
    Ethernet padding up to the 60-byte minimum; frames the client sends are captured unpadded."""
    if frame.from_server and len(frame_bytes) < minimum:
        return frame_bytes + b"\0" * (minimum - len(frame_bytes))
    return frame_bytes


def encode_link(frame: Frame, linktype: str) -> tuple[bytes, int]:
    """Return (captured bytes, original length) of frame for the link type name."""
    l3 = frame.l3
    if linktype in ("ethernet", "vlan", "qinq"):
        dst, src = macs(frame)
        if frame.kind == "llc":
            hdr = dst + src + struct.pack("!H", len(l3))
        else:
            et = ETHERTYPE_OF[frame.kind]
            if linktype == "ethernet":
                hdr = dst + src + struct.pack("!H", et)
            elif linktype == "vlan":
                hdr = dst + src + struct.pack("!HHH", ETH_VLAN, (0 << 13) | 100, et)
            else:
                hdr = dst + src + struct.pack("!HHHHH", ETH_QINQ, 200, ETH_VLAN, 100, et)
        full = pad_received(hdr + l3, frame)
    elif linktype in ("sll", "sll2"):
        pkttype = 0 if frame.from_server else 4  # PACKET_HOST / PACKET_OUTGOING
        src = macs(frame)[1]
        et = ETHERTYPE_OF[frame.kind]
        if linktype == "sll":
            hdr = struct.pack("!HHH8sH", pkttype, 1, 6, src + b"\0\0", et)
        else:
            hdr = struct.pack("!HHIHBB8s", et, 0, 2, 1, pkttype, 6, src + b"\0\0")
        body = l3
        if frame.from_server and len(body) < 46:  # Ethernet padding seen by the packet socket
            body = body + b"\0" * (46 - len(body))
        full = hdr + body
    elif linktype in ("raw", "ipv4"):
        assert linktype == "raw" or frame.kind == "ipv4"
        full = l3
    elif linktype in ("null-le", "null-be", "loop"):
        # DLT_NULL: AF in the writer's host order; AF_INET6 = 30 (Darwin).
        # LINKTYPE_LOOP (OpenBSD): AF in network order; AF_INET6 = 24 (OpenBSD).
        if linktype == "loop":
            af = AF_INET if frame.kind == "ipv4" else 24
            hdr = struct.pack("!I", af)
        else:
            af = AF_INET if frame.kind == "ipv4" else 30
            hdr = struct.pack("<I" if linktype == "null-le" else ">I", af)
        full = hdr + l3
    else:
        raise ValueError(linktype)
    captured = full
    if frame.captured_l3 is not None:
        captured = full[:len(full) - len(l3) + frame.captured_l3]
    return captured, len(full)


LINKTYPE_NUMBERS = {
    "ethernet": LINKTYPE_ETHERNET, "vlan": LINKTYPE_ETHERNET, "qinq": LINKTYPE_ETHERNET,
    "sll": LINKTYPE_LINUX_SLL, "sll2": LINKTYPE_LINUX_SLL2, "raw": LINKTYPE_RAW, "ipv4": LINKTYPE_IPV4,
    "null-le": LINKTYPE_NULL, "null-be": LINKTYPE_NULL, "loop": LINKTYPE_LOOP,
}

# --------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------

SNAPLEN = 262144


def pcap_bytes(records, linktype_number, endian="<", nsec=False, snaplen=SNAPLEN) -> bytes:
    """records: list of (ts_ns, captured_bytes, orig_len). Classic pcap 2.4."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype_number)]
    for ts, data, orig in records:
        sec, rem = divmod(ts, NS)
        frac = rem if nsec else rem // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def frames_to_records(frames, linktype: str, nsec=False):
    recs = []
    for i, f in enumerate(frames):
        data, orig = encode_link(f, linktype)
        ts = f.ts
        if nsec:
            ts += (i * 137) % 1000  # sub-microsecond digits, only where the format can carry them
        recs.append((ts, data, orig))
    return recs


def pcapng_option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def pcapng_block(btype: int, body: bytes) -> bytes:
    assert len(body) % 4 == 0
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_options(opts) -> bytes:
    if not opts:
        return b""
    return b"".join(pcapng_option(c, v) for c, v in opts) + struct.pack("<HH", 0, 0)


def pcapng_shb() -> bytes:
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + pcapng_options([
        (3, b"Linux 6.1.0-crafted"),  # shb_os
        (4, b"craft-captures.py (rst-detective)"),  # shb_userappl
    ])
    return pcapng_block(0x0A0D0D0A, body)


def pcapng_idb(linktype_number: int, name: bytes, tsresol: int | None = None, snaplen=SNAPLEN) -> bytes:
    opts = [(2, name)]  # if_name
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))  # if_tsresol: 10^-tsresol
    body = struct.pack("<HHI", linktype_number, 0, snaplen) + pcapng_options(opts)
    return pcapng_block(1, body)


def pcapng_epb(iface: int, ts_units: int, data: bytes, orig: int, flags: int | None = None) -> bytes:
    pad = (-len(data)) % 4
    opts = pcapng_options([(2, struct.pack("<I", flags))]) if flags is not None else b""  # epb_flags
    body = struct.pack("<IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), orig) \
        + data + b"\0" * pad + opts
    return pcapng_block(6, body)


# --------------------------------------------------------------------------
# Expected files
# --------------------------------------------------------------------------

def expected_rows(conns):
    rows = [(c.client, c.cport, c.server, c.sport) for c in conns if c.expect == "reset_after_handshake"]
    return sorted(rows, key=lambda r: r[1])


def summary(frames, conns, b: Builder | None = None, unknown_link=False) -> dict:
    m = {k: 0 for k in METRICS}
    m["packets"] = len(frames)
    for f in frames:
        if unknown_link:
            m["skipped_unknown_link_type"] += 1
        elif f.category == "tcp":
            m["tcp_packets"] += 1
        else:
            m[f.category] += 1
    if not unknown_link:
        m["connection_attempts"] = len(conns)
        m["handshakes_completed"] = sum(1 for c in conns if c.handshake_acked)
        for c in conns:
            m["outcome_" + c.expect] += 1
        m["incidents"] = m["outcome_reset_after_handshake"]
        if b is not None:
            m["syn_retransmits"] = b.syn_retransmits
            m["synack_retransmits"] = b.synack_retransmits
    return m


class Writer:
    def __init__(self, out_dir: str):
        self.out = out_dir
        self.readme: list[tuple[str, str, str]] = []
        self.written: list[str] = []

    def path(self, name: str) -> str:
        assert name.startswith("crafted-")
        return os.path.join(self.out, name)

    def write(self, name: str, data: bytes):
        with open(self.path(name), "wb") as fh:
            fh.write(data)
        self.written.append(name)

    def expected(self, stem: str, rows, metrics: dict, keys=None):
        lines = ["client_ip,client_port,server_ip,server_port"]
        lines += ["%s,%d,%s,%d" % (ipaddress.ip_address(ci).compressed, cp, ipaddress.ip_address(si).compressed, sp)
                  for ci, cp, si, sp in rows]
        self.write(stem + ".expected.csv", ("\n".join(lines) + "\n").encode())
        keys = METRICS if keys is None else keys
        s = ["metric,value"] + ["%s,%d" % (k, metrics[k]) for k in keys]
        self.write(stem + ".expected-summary.csv", ("\n".join(s) + "\n").encode())

    def classified(self, stem: str, conns):
        """NAME.expected-near-misses.csv (one row per attempt whose outcome is a near miss) and
        NAME.expected-origins.csv (one row per incident with its rst_origin), sorted by client port then
        server port. Each incident's declared origin is checked against provenance_verdict."""
        def addr(a):
            return ipaddress.ip_address(a).compressed

        key = lambda c: (c.cport, c.sport)  # noqa: E731
        near = ["client_ip,client_port,server_ip,server_port,kind"]
        near += ["%s,%d,%s,%d,%s" % (addr(c.client), c.cport, addr(c.server), c.sport, c.expect)
                 for c in sorted((c for c in conns if c.expect in NEAR_MISSES), key=key)]
        self.write(stem + ".expected-near-misses.csv", ("\n".join(near) + "\n").encode())
        origins = ["client_ip,client_port,server_ip,server_port,rst_origin"]
        for c in sorted((c for c in conns if c.expect == "reset_after_handshake"), key=key):
            assert c.origin in ORIGINS, (c.cport, c.origin)
            assert provenance_verdict(c) == c.origin, (c.cport, provenance_verdict(c), c.origin)
            origins.append("%s,%d,%s,%d,%s" % (addr(c.client), c.cport, addr(c.server), c.sport, c.origin))
        self.write(stem + ".expected-origins.csv", ("\n".join(origins) + "\n").encode())

    def describe(self, files: str, contents: str, expected: str):
        self.readme.append((files, contents, expected))

    def standard(self, stem: str, filename: str, data: bytes, b: Builder, frames, contents: str,
                 expect_text: str | None = None, unknown_link=False):
        self.write(filename, data)
        m = summary(frames, b.conns, b, unknown_link=unknown_link)
        rows = [] if unknown_link else expected_rows(b.conns)
        self.expected(stem, rows, m)
        if expect_text is None:
            expect_text = describe_metrics(m)
        self.describe(filename, contents, expect_text)


def describe_metrics(m: dict) -> str:
    parts = ["%d packets" % m["packets"]]
    if m["incidents"]:
        parts.append("%d incident%s" % (m["incidents"], "" if m["incidents"] == 1 else "s"))
    else:
        parts.append("0 incidents")
    for k in ["outcome_" + o for o in OUTCOMES if o != "reset_after_handshake"] + SKIPS + [
            "syn_retransmits", "synack_retransmits"]:
        if m[k]:
            parts.append("%s=%d" % (k, m[k]))
    return ", ".join(parts)


def provenance_verdict(c: Conn) -> str:
    """The tool's rst_origin rules, applied to the headers this script built (a cross-check of the
    declared origins, in the tool's order):
    other-host if the RST's TTL / hop limit differs from the SYN-ACK's, or both have a source MAC and
    they differ; other-host too if the client's DSCP (TOS & 0xfc of the handshake ACK) is non-zero and
    not echoed by the RST and the RST is IPv4 with a non-zero IP ID; firewall-like if the client's DSCP is
    non-zero and not echoed, or (IPv6) the SYN-ACK has a flow label and the RST has flow label 0;
    same-stack if the DSCP is echoed, or the RST is IPv6 with a flow label or IPv4 with a non-zero ID
    (marks netfilter never leaves); same-host otherwise."""
    sa, ack, rst = c.synack_frame, c.ack_frame, c.rst_frame
    assert sa is not None and ack is not None and rst is not None, c.cport
    sa_mac, rst_mac = macs(sa)[1], macs(rst)[1]
    if rst.ttl != sa.ttl or sa_mac != rst_mac:
        return "other-host"
    dscp = ack.tos & 0xFC
    not_echoed = dscp != 0 and (rst.tos & 0xFC) != dscp
    if not_echoed and rst.kind == "ipv4" and rst.ipid != 0:
        return "other-host"
    if not_echoed or (rst.kind == "ipv6" and sa.flow != 0 and rst.flow == 0):
        return "firewall-like"
    echoed = dscp != 0 and (rst.tos & 0xFC) == dscp
    if echoed or (rst.flow != 0 if rst.kind == "ipv6" else rst.ipid != 0):
        return "same-stack"
    return "same-host"


BASE_TEXT_MIXED = ("base conversation (IPv4 incident :40001, completed :40002, refused :40003->:8081, "
                   "IPv6 incident :40004)")
BASE_TEXT_V4 = "IPv4 base conversation (incident :40001, completed :40002, refused :40003->:8081)"
BASE_TEXT_V6 = "IPv6 base conversation (incident :40001, completed :40002, refused :40003->:8081)"


# --------------------------------------------------------------------------
# The captures
# --------------------------------------------------------------------------

def craft_formats(w: Writer):
    for endian, en in (("<", "le"), (">", "be")):
        for nsec, res in ((False, "usec"), (True, "nsec")):
            b = Builder()
            base_conversation(b)
            frames = b.sorted_frames()
            stem = "crafted-pcap-%s-%s" % (en, res)
            data = pcap_bytes(frames_to_records(frames, "ethernet", nsec), LINKTYPE_ETHERNET, endian, nsec)
            magic = "a1b23c4d" if nsec else "a1b2c3d4"
            w.standard(stem, stem + ".pcap", data, b, frames,
                       "pcap magic %s written %s-endian (%s timestamps%s), Ethernet, %s"
                       % (magic, "little" if en == "le" else "big", res,
                          ", sub-microsecond digits present" if nsec else "", BASE_TEXT_MIXED))

    # gzip of a normal pcap
    b = Builder()
    base_conversation(b)
    frames = b.sorted_frames()
    raw = pcap_bytes(frames_to_records(frames, "ethernet"), LINKTYPE_ETHERNET)
    w.standard("crafted-base", "crafted-base.pcap.gz", gzip.compress(raw, compresslevel=9, mtime=0), b, frames,
               "gzip (mtime 0, no name) of a little-endian usec Ethernet pcap with the " + BASE_TEXT_MIXED
               + "; libpcap cannot read it directly (the tool must gunzip)")


def craft_pcapng(w: Writer):
    # Two Ethernet interfaces: client-sent packets on iface 0 (eth0, default 10^-6 resolution),
    # server-sent packets on iface 1 (eth1, if_tsresol 9 = nanoseconds). Interleaved in time order.
    b = Builder()
    base_conversation(b)
    frames = b.sorted_frames()
    blocks = [pcapng_shb(), pcapng_idb(LINKTYPE_ETHERNET, b"eth0"), pcapng_idb(LINKTYPE_ETHERNET, b"eth1", 9)]
    for i, f in enumerate(frames):
        data, orig = encode_link(f, "ethernet")
        if f.from_server:
            blocks.append(pcapng_epb(1, f.ts + 123 + (i * 37) % 700, data, orig, flags=1))  # inbound
        else:
            blocks.append(pcapng_epb(0, f.ts // 1000, data, orig, flags=2))  # outbound
    w.standard("crafted-pcapng-two-ifaces", "crafted-pcapng-two-ifaces.pcapng", b"".join(blocks), b, frames,
               "pcapng: SHB (shb_os, shb_userappl), IDB0 Ethernet eth0 (default usec), IDB1 Ethernet eth1 "
               "(if_tsresol 9); client-sent packets on iface 0, server-sent on iface 1 (epb_flags direction), "
               "so each incident's SYN is on iface 0 and its RST on iface 1; " + BASE_TEXT_MIXED)

    # Mixed link types: IDB0 Ethernet + the full IPv4 incident, then IDB1 RAW mid-file, then more packets.
    b = Builder()
    inc = add_incident(b, 4, 40001, at(ms=999.3))
    first = b.sorted_frames()
    blocks = [pcapng_shb(), pcapng_idb(LINKTYPE_ETHERNET, b"eth0")]
    for f in first:
        data, orig = encode_link(f, "ethernet")
        blocks.append(pcapng_epb(0, f.ts // 1000, data, orig))
    blocks.append(pcapng_idb(LINKTYPE_RAW, b"tun0"))
    b2 = Builder()
    add_completed(b2, 4, 40002, at(seconds=1.1))
    add_refused(b2, 4, 40003, at(seconds=1.2))
    for f in b2.sorted_frames():
        iface = 0 if f.conn.expect == "refused" else 1
        data, orig = encode_link(f, "raw" if iface == 1 else "ethernet")
        blocks.append(pcapng_epb(iface, f.ts // 1000, data, orig))
    w.write("crafted-pcapng-mixed-linktypes.pcapng", b"".join(blocks))
    everything = first + b2.sorted_frames()
    w.expected("crafted-pcapng-mixed-linktypes", expected_rows([inc]), summary(everything, b.conns + b2.conns))
    w.describe("crafted-pcapng-mixed-linktypes.pcapng",
               "pcapng: SHB, IDB0 Ethernet, the 5 packets of the IPv4 incident :40001 on iface 0, then IDB1 "
               "LINKTYPE_RAW (same snaplen) mid-file, then the completed :40002 on iface 1 (RAW) and the refused "
               ":40003 on iface 0",
               "libpcap 1.10.3 opens the file and returns the 5 packets, then pcap_next_ex fails when it meets "
               "IDB1: \"an interface has a type 101 different from the type of the first interface\". The tool "
               "reads the rest with its own pcapng reader, each packet with its interface's link type: "
               + describe_metrics(summary(everything, b.conns + b2.conns)))


def craft_link_types(w: Writer):
    variants = [
        ("crafted-link-ethernet-vlan", "vlan", "Ethernet with an 802.1Q tag (VID 100) on every frame"),
        ("crafted-link-ethernet-qinq", "qinq", "Ethernet with 802.1ad outer tag 0x88a8 (VID 200) + 802.1Q "
                                               "inner tag (VID 100) on every frame"),
        ("crafted-link-sll", "sll", "LINKTYPE_LINUX_SLL (113): 16-byte cooked header, packet type 4 "
                                    "(outgoing) / 0 (host), ARPHRD_ETHER"),
        ("crafted-link-sll2", "sll2", "LINKTYPE_LINUX_SLL2 (276): 20-byte header, ifindex 2, ARPHRD_ETHER"),
        ("crafted-link-raw", "raw", "LINKTYPE_RAW (101): bare IPv4 and IPv6 packets mixed"),
        ("crafted-link-null-le", "null-le", "DLT_NULL (0), little-endian file, 4-byte AF in little-endian: "
                                            "2 = IPv4, 30 = IPv6 (Darwin)"),
        ("crafted-link-null-be", "null-be", "DLT_NULL (0), big-endian file, 4-byte AF in big-endian: "
                                            "2 = IPv4, 30 = IPv6 (Darwin)"),
        ("crafted-link-loop", "loop", "LINKTYPE_LOOP (108), little-endian file, AF in network byte order: "
                                      "2 = IPv4, 24 = IPv6 (OpenBSD's AF_INET6)"),
    ]
    for stem, lt, text in variants:
        b = Builder()
        base_conversation(b)
        frames = b.sorted_frames()
        endian = ">" if lt == "null-be" else "<"
        data = pcap_bytes(frames_to_records(frames, lt), LINKTYPE_NUMBERS[lt], endian)
        w.standard(stem, stem + ".pcap", data, b, frames, text + "; " + BASE_TEXT_MIXED
                   + ("; server-sent frames padded (Ethernet minimum)" if lt in ("vlan", "qinq", "sll", "sll2")
                      else ""))

    b = Builder()
    base_conversation(b, "v4")
    frames = b.sorted_frames()
    w.standard("crafted-link-ipv4", "crafted-link-ipv4.pcap",
               pcap_bytes(frames_to_records(frames, "ipv4"), LINKTYPE_IPV4), b, frames,
               "LINKTYPE_IPV4 (228): bare IPv4 packets; " + BASE_TEXT_V4)

    b = Builder()
    base_conversation(b)
    frames = b.sorted_frames()
    w.standard("crafted-link-unknown", "crafted-link-unknown.pcap",
               pcap_bytes(frames_to_records(frames, "ethernet"), LINKTYPE_USER0), b, frames,
               "link type 147 (LINKTYPE_USER0) whose records happen to hold the Ethernet frames of the "
               "base conversation", unknown_link=True)


def ip4_options_for(index: int) -> bytes:
    """A different, valid IPv4 option set per packet (IHL 6, 7 or 8)."""
    kind = index % 3
    if kind == 0:
        return bytes([0x94, 0x04, 0x00, 0x00])  # Router Alert -> IHL 6
    if kind == 1:
        # NOP, Record Route with 1 empty slot (len 7, pointer 4), EOL -> 8 bytes + pad -> IHL 8 after padding
        return bytes([0x01, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00])
    # Timestamp option (type 68, len 12, pointer 5, flag 0: timestamps only, 2 empty slots) -> IHL 8
    return bytes([0x44, 0x0C, 0x05, 0x00]) + b"\0" * 8


def craft_decoding(w: Writer):
    # IPv4 options on every packet
    b = Builder()
    base_conversation(b, "v4", ip4_options=ip4_options_for)
    frames = b.sorted_frames()
    w.standard("crafted-ipv4-options", "crafted-ipv4-options.pcap",
               pcap_bytes(frames_to_records(frames, "ethernet"), LINKTYPE_ETHERNET), b, frames,
               "Ethernet; " + BASE_TEXT_V4 + " with IPv4 options on every packet (IHL 6 Router Alert, IHL 8 "
               "NOP+Record Route, IHL 8 Timestamp, rotating)")

    # IPv6 extension headers on every packet
    b = Builder()
    counter = [0]

    def chain(from_server):
        counter[0] += 1
        dst = C6 if from_server else S6
        return [ext_hop_by_hop(), ext_destination_options(), ext_routing_srh(dst),
                ext_fragment(0x5EED0000 + counter[0])]
    base_conversation(b, "v6", v6_ext=chain)
    frames = b.sorted_frames()
    w.standard("crafted-ipv6-exthdrs", "crafted-ipv6-exthdrs.pcap",
               pcap_bytes(frames_to_records(frames, "ethernet"), LINKTYPE_ETHERNET), b, frames,
               "Ethernet; " + BASE_TEXT_V6 + "; every packet carries Hop-by-Hop (8 B, Router Alert) + "
               "Destination Options (16 B) + Routing (SRH type 4, 24 B, Segments Left 0) + atomic Fragment "
               "header (offset 0, M 0) before TCP")

    craft_skips(w)


def craft_skips(w: Writer):
    b = Builder()
    base_conversation(b)
    t = at(ms=999)
    d = lambda ms: t + at(ms=ms) - at()  # noqa: E731

    def trap_syn(cport, family=4):
        """A SYN from a port that appears nowhere else: if the tool decoded it, connection_attempts
        would grow."""
        src, dst = (C6, S6) if family == 6 else (C4, S4)
        return tcp_segment(src, dst, cport, SERVER_PORT, isn(cport, "c"), 0, SYN, 64240,
                           syn_options(1460, 0x15000000 + cport))

    def add(ts, l3, kind, cat, captured=None, note=""):
        b.add(Frame(ts, l3, kind, False, category=cat, captured_l3=captured, note=note))

    # non-IP: ARP request, STP BPDU (802.3 length + LLC)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, 1, CLIENT_MAC, addr_bytes(C4), b"\0" * 6,
                      addr_bytes(S4))
    add(d(-0.5), arp, "arp", "skipped_non_ip", note="ARP who-has 10.1.0.2")
    bpdu = bytes([0x42, 0x42, 0x03]) + bytes([0, 0, 0, 0, 0]) + struct.pack("!H6sIH6sHHHHH", 0x8000, SWITCH_MAC,
                                                                           0, 0x8000, SWITCH_MAC, 0x8001, 0,
                                                                           20 * 256, 2 * 256, 15 * 256)
    stp = Frame(d(0.2), bpdu, "llc", True, category="skipped_non_ip", note="STP BPDU (802.3/LLC)")
    b.add(stp)

    # non-TCP: UDP DNS query, ICMP echo, ICMPv6 echo
    dns = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03svc\x04test\x00" + struct.pack("!HH", 1, 1)
    udp = l4_with_checksum(C4, S4, 17, struct.pack("!HHHH", 53000, 53, 8 + len(dns), 0) + dns, 6)
    add(d(20), ipv4_packet(C4, S4, 17, udp, ident=0x2001), "ipv4", "skipped_non_tcp", note="UDP DNS")
    icmp = bytearray(struct.pack("!BBHHH", 8, 0, 0, 0x0BAD, 1) + bytes(range(32)))
    icmp[2:4] = struct.pack("!H", inet_checksum(bytes(icmp)))
    add(d(40), ipv4_packet(C4, S4, 1, bytes(icmp), ident=0x2002), "ipv4", "skipped_non_tcp", note="ICMP echo")
    icmp6 = l4_with_checksum(C6, S6, 58, struct.pack("!BBHHH", 128, 0, 0, 0x0BAD, 2) + bytes(range(32)), 2)
    add(d(60), ipv6_packet(C6, S6, 58, icmp6), "ipv6", "skipped_non_tcp", note="ICMPv6 echo")

    # IPv4 fragments of a SYN with 40 bytes of data (80-byte segment): 56 bytes with MF, then 24 at offset 56
    seg = tcp_segment(C4, S4, 40101, SERVER_PORT, isn(40101, "c"), 0, SYN, 64240,
                      syn_options(1460, 0x15000001), request(40))
    add(d(80), ipv4_packet(C4, S4, 6, seg[:56], ident=0x3001, df=False, mf=True), "ipv4", "skipped_fragment",
        note="IPv4 first fragment (MF)")
    add(d(80.01), ipv4_packet(C4, S4, 6, seg[56:], ident=0x3001, df=False, frag_offset=56), "ipv4",
        "skipped_fragment", note="IPv4 second fragment (offset 56)")
    # IPv6 non-atomic fragments of the same kind of segment
    seg6 = tcp_segment(C6, S6, 40102, SERVER_PORT, isn(40102, "c"), 0, SYN, 64800,
                       syn_options(1440, 0x15000002), request(40))
    add(d(90), ipv6_packet(C6, S6, 6, seg6[:56], ext=[ext_fragment(0xF0F00001, 0, True)]), "ipv6",
        "skipped_fragment", note="IPv6 first fragment (offset 0, M 1)")
    add(d(90.01), ipv6_packet(C6, S6, 6, seg6[56:], ext=[ext_fragment(0xF0F00001, 56, False)]), "ipv6",
        "skipped_fragment", note="IPv6 last fragment (offset 56, M 0)")

    # truncated by snaplen inside the TCP header: 20 IPv4 + 10 of 40 TCP bytes captured
    add(d(110), ipv4_packet(C4, S4, 6, trap_syn(40103), ident=0x3003), "ipv4", "skipped_truncated",
        captured=30, note="caplen ends 10 bytes into the TCP header")

    # bad IPv4 headers
    add(d(130), ipv4_packet(C4, S4, 6, trap_syn(40104), ident=0x3004, version=7), "ipv4",
        "skipped_bad_ip_header", note="IP version 7 behind ethertype 0x0800")
    add(d(150), ipv4_packet(C4, S4, 6, trap_syn(40105), ident=0x3005, ihl=3), "ipv4",
        "skipped_ip_header_length_invalid", note="IHL 3")
    add(d(170), ipv4_packet(C4, S4, 6, trap_syn(40106), ident=0x3006, total_length=16), "ipv4",
        "skipped_ip_header_length_invalid", note="total length 16 < the 20-byte header")
    add(d(175), ipv4_packet(C4, S4, 6, trap_syn(40109), ident=0x3009, ihl=15), "ipv4",
        "skipped_tcp_data_offset_invalid", note="IHL 15: the 60-byte IP header leaves no room for TCP")
    add(d(180), ipv4_packet(C4, S4, 6, trap_syn(40110), ident=0x300A, total_length=1500), "ipv4",
        "skipped_ip_length_invalid", note="total length 1500 in a 74-byte frame")
    long6 = bytearray(ipv6_packet(C6, S6, 6, trap_syn(40111, family=6)))
    long6[4:6] = struct.pack("!H", 1000)
    add(d(185), bytes(long6), "ipv6", "skipped_ip_length_invalid", note="IPv6 payload length 1000 in a 94-byte frame")
    short_wire = Frame(d(187), ipv4_packet(C4, S4, 6, trap_syn(40112), ident=0x300C), "ipv4", False,
                       category="skipped_captured_length_invalid",
                       note="record with 74 captured bytes of a packet 40 bytes long on the wire")
    b.add(short_wire)

    # bad TCP headers
    bad3 = tcp_segment(C4, S4, 40107, SERVER_PORT, isn(40107, "c"), 0, SYN, 64240, doff=3)
    add(d(190), ipv4_packet(C4, S4, 6, bad3, ident=0x3007), "ipv4", "skipped_tcp_data_offset_invalid",
        note="TCP data offset 3")
    bad15 = tcp_segment(C4, S4, 40108, SERVER_PORT, isn(40108, "c"), 0, SYN, 64240, doff=15)
    add(d(210), ipv4_packet(C4, S4, 6, bad15, ident=0x3008), "ipv4", "skipped_tcp_data_offset_invalid",
        note="TCP data offset 15 (60 bytes) but the IP payload is 20 bytes")

    frames = b.sorted_frames()
    records = frames_to_records(frames, "ethernet")
    lying = frames.index(short_wire)
    records[lying] = (records[lying][0], records[lying][1], 40)
    notes = "; ".join("%s (%s)" % (f.note, f.category) for f in frames if f.category != "tcp")
    w.standard("crafted-skips", "crafted-skips.pcap",
               pcap_bytes(records, LINKTYPE_ETHERNET), b, frames,
               "Ethernet; " + BASE_TEXT_MIXED + " interleaved with one packet per skip reason: " + notes
               + ". Each trap TCP packet is a SYN from its own port (40101-40112), so decoding one by mistake "
               "would raise connection_attempts")


def single_pcap(w: Writer, stem: str, b: Builder, contents: str, expect_text: str | None = None):
    frames = b.sorted_frames()
    w.standard(stem, stem + ".pcap", pcap_bytes(frames_to_records(frames, "ethernet"), LINKTYPE_ETHERNET),
               b, frames, contents, expect_text)


def craft_edge_cases(w: Writer):
    t = at(ms=100)
    d = lambda ms: t + at(ms=ms) - at()  # noqa: E731

    # RST without ACK but wrong seq (server ISN+1000), then the server answers with data
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "wrong_ack")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(0.51))
    c.kernel_rst(d(0.75), seq=c.sisn + 1000)
    c.server_data(d(5)); c.ack(d(5.05))
    single_pcap(w, "crafted-rst-wrong-seq", b,
                "SYN, SYN-ACK, ACK, data; server RST (no ACK flag) with seq = server ISN+1000 0.25 ms after the "
                "ACK; then server data 5 ms after the ACK and a client ACK")

    # RST+ACK seq = server ISN+1, 5 ms after the ACK (application abort)
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "app_abort")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(0.51))
    c.server_abort(d(5.5))
    single_pcap(w, "crafted-rst-ack-abort", b,
                "SYN, SYN-ACK, ACK, data; server RST+ACK seq = server ISN+1 ack = client ISN+41, window 509, "
                "timestamps, 5 ms after the ACK (socket abort)")

    # refused, and a RST+ACK with a wrong ack that must be ignored
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "refused", sport=CLOSED_PORT)
    c.syn(d(0)); c.refuse(d(0.25))
    c = b.conn(4, 40002, isn(40002, "c"), isn(40002, "s"), "completed")
    c.syn(d(10)); c.refuse(d(10.1), ack=c.cisn + 1 + 0x10000)
    c.synack(d(10.25)); c.ack(d(10.5)); c.data(d(10.51)); c.server_data(d(10.8)); c.ack(d(10.85))
    single_pcap(w, "crafted-refused", b,
                ":40001 -> :8081 SYN answered by RST+ACK seq 0 ack ISN+1; :40002 -> :8080 SYN, RST+ACK with "
                "ack = ISN+1+65536 (wrong, ignored), then the real SYN-ACK, ACK, data, server data")

    # server data then RST with the next seq
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "completed")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(0.51)); c.server_data(d(0.8))
    c.kernel_rst(d(0.9), seq=c.s_nxt)
    single_pcap(w, "crafted-rst-after-data", b,
                "SYN, SYN-ACK, ACK, data, server data (100 B), then server RST (no ACK flag) seq = server "
                "ISN+101 0.4 ms after the ACK")

    # client RST right after its ACK
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "client_reset")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.client_rst(d(0.52))
    single_pcap(w, "crafted-client-rst", b,
                "SYN, SYN-ACK, ACK, then the client's RST+ACK (seq = client ISN+1) 20 us later; nothing from "
                "the server afterwards")

    # retransmissions
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "reset_after_handshake")
    c.syn(d(0)); c.syn(d(1000)); c.synack(d(1000.25)); c.syn(d(3000)); c.synack(d(3000.25))
    c.ack(d(3000.5)); c.kernel_rst(d(3000.75))
    single_pcap(w, "crafted-retransmits", b,
                "SYN at 0 s, SYN again (same ISN) at 1 s, SYN-ACK, SYN again at 3 s, SYN-ACK again (same server "
                "ISN), ACK, kernel RST seq = server ISN+1 0.25 ms later")

    # port reuse with a late RST from the first connection's sequence space
    b = Builder()
    c1 = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "completed")
    c1.syn(d(0)); c1.synack(d(0.25)); c1.ack(d(0.5)); c1.data(d(0.51)); c1.server_data(d(0.8)); c1.ack(d(0.85))
    c1.fin(d(0.9)); c1.server_fin(d(1.15)); c1.ack(d(1.16))
    c2 = b.conn(4, 40001, isn(40001, "c") + 0x01000000, 0x0BADC0DE, "reset_after_handshake")
    c2.syn(d(1000)); c2.synack(d(1000.25)); c2.ack(d(1000.5))
    late = c2.seg(d(1000.6), True, c1.sisn + 1, 0, "R", 0, kernel=True)  # conn 1's signature, now stale
    assert late
    c2.kernel_rst(d(1000.75))
    single_pcap(w, "crafted-port-reuse", b,
                "4-tuple 10.1.0.1:40001 -> 10.1.0.2:8080 used twice: connection 1 completes (data both ways, FIN "
                "exchange); 1 s later a SYN with a new ISN, SYN-ACK (new server ISN), ACK; then a late RST "
                "(no ACK flag) with seq = connection 1's server ISN+1 (ignored), then RST seq = new server ISN+1")

    # late RST: right seq, 1.5 s after the ACK
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "completed")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(0.51))
    c.kernel_rst(d(1500.5))
    single_pcap(w, "crafted-late-rst", b,
                "SYN, SYN-ACK, ACK, data; kernel-style RST seq = server ISN+1 1.5 s after the ACK (default max "
                "delay 1 s: settled as completed before the RST is looked at)")

    # server pure ACK, then RST
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "reset_after_handshake", timestamps=False)
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5), request(40)); c.server_ack(d(0.7))
    c.kernel_rst(d(0.9))
    single_pcap(w, "crafted-server-ack-then-rst", b,
                "SYN, SYN-ACK declining timestamps, handshake ACK carrying 40 bytes, server pure ACK of the data "
                "(no payload: a 54-byte frame with 6 bytes of Ethernet padding, which is not TCP payload), then "
                "RST (no ACK flag) seq = server ISN+1")

    # SYN-ACK with a wrong ack
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "unanswered")
    c.syn(d(0)); c.synack(d(0.25), ack=c.cisn + 2)
    c = b.conn(4, 40002, isn(40002, "c"), isn(40002, "s"), "open_at_end")
    c.syn(d(120000)); c.synack(d(120000.25), ack=c.cisn - 99)
    single_pcap(w, "crafted-synack-wrong-ack", b,
                ":40001 SYN, SYN-ACK with ack = ISN+2 (ignored); 120 s later :40002 SYN, SYN-ACK with ack = "
                "ISN-99 (ignored), end of capture 0.25 ms later (no client RSTs, no SYN retransmissions)")

    # ACK dropped: SYN-ACK retransmitted after the ACK
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "ack_dropped")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.synack(d(500.5))
    other = b.conn(4, 40009, isn(40009, "c"), isn(40009, "s"), "unused")
    b.conns.remove(other)
    other.c_nxt, other.s_nxt = (other.cisn + 5000), (other.sisn + 9000)
    other.seg(d(2000.5), False, other.c_nxt, other.s_nxt, "A", 502, other._ts_opts(d(2000.5), False))
    single_pcap(w, "crafted-ack-dropped", b,
                ":40001 SYN, SYN-ACK, ACK, SYN-ACK retransmitted (same server ISN) 0.5 s after the ACK, no RST or "
                "data; 2 s after the ACK an unrelated mid-stream TCP ACK from :40009 (no SYN seen, not an attempt)")

    # open at end
    b = Builder()
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "open_at_end")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(10.5))
    single_pcap(w, "crafted-open-at-end", b,
                "SYN, SYN-ACK, ACK, and client data 10 ms after the ACK; the capture ends there")

    # sequence wrap-around (extra)
    b = Builder()
    c = b.conn(4, 40001, 0xFFFFFFFF, 0xFFFFFFFF, "reset_after_handshake")
    c.syn(d(0)); c.synack(d(0.25)); c.ack(d(0.5)); c.data(d(0.51)); c.kernel_rst(d(0.75))
    c = b.conn(4, 40002, 0xFFFFFFF0, 0xFFFFFFFE, "completed")
    c.syn(d(10)); c.synack(d(10.25)); c.ack(d(10.5)); c.data(d(10.51)); c.server_data(d(10.8))
    c.ack(d(10.85))
    single_pcap(w, "crafted-seq-wrap", b,
                "(extra) :40001 client ISN = server ISN = 0xffffffff: handshake ACK seq 0 ack 0, RST seq 0 (no "
                "ACK flag) = server ISN+1 mod 2^32; :40002 client ISN 0xfffffff0, server ISN 0xfffffffe, data "
                "crossing the wrap, server data")

    craft_rotated(w)
    craft_truncated(w)
    craft_lying_files(w)
    craft_near_misses(w)
    craft_provenance(w)


def craft_rotated(w: Writer):
    t = at(ms=998.5)
    d = lambda ms: t + at(ms=ms) - at()  # noqa: E731
    b = Builder()
    c1 = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "reset_after_handshake")
    c2 = b.conn(4, 40002, isn(40002, "c"), isn(40002, "s"), "reset_after_handshake")
    c3 = b.conn(4, 40003, isn(40003, "c"), isn(40003, "s"), "completed")
    c1.syn(d(0)); c1.synack(d(0.25))
    c2.syn(d(0.4)); c2.synack(d(0.65)); c2.ack(d(0.9)); c2.data(d(0.91))
    c3.syn(d(1.0)); c3.synack(d(1.25)); c3.ack(d(1.5)); c3.data(d(1.51))
    split = len(b.frames)
    c2.kernel_rst(d(1.6))        # ACK at 0.9 ms in -a, RST in -b (crosses the 1 s second boundary too)
    c1.ack(d(2.0)); c1.data(d(2.01)); c1.kernel_rst(d(2.25))
    c3.server_data(d(2.5)); c3.ack(d(2.55))
    frames = b.sorted_frames()
    assert frames[:split] == b.frames[:split]
    a, bb = frames[:split], frames[split:]
    w.write("crafted-rotated-a.pcap", pcap_bytes(frames_to_records(a, "ethernet"), LINKTYPE_ETHERNET))
    w.write("crafted-rotated-b.pcap", pcap_bytes(frames_to_records(bb, "ethernet"), LINKTYPE_ETHERNET))
    m = summary(frames, b.conns, b)
    w.expected("crafted-rotated", expected_rows(b.conns), m)
    w.describe("crafted-rotated-a.pcap + crafted-rotated-b.pcap",
               "one capture split like tcpdump -C (each file has its own pcap header): -a holds %d packets, "
               "-b %d. :40001 incident: SYN, SYN-ACK in -a; ACK, data, RST in -b. :40002 incident: SYN, SYN-ACK, "
               "ACK, data in -a; RST in -b. :40003 completed: handshake + request in -a; response in -b"
               % (len(a), len(bb)),
               "analysed together (a then b) with crafted-rotated.expected.csv / .expected-summary.csv: "
               + describe_metrics(m) + "; analysed alone, -a would end with open attempts")


def craft_truncated(w: Writer):
    b = Builder()
    base_conversation(b)
    frames = b.sorted_frames()
    recs = frames_to_records(frames, "ethernet")
    full = pcap_bytes(recs, LINKTYPE_ETHERNET)
    # one more record: a client data segment from :40010 (an untracked flow), cut after 30 bytes
    extra_b = Builder()
    c = extra_b.conn(4, 40010, isn(40010, "c"), isn(40010, "s"), "unused")
    c.c_nxt, c.s_nxt = c.cisn + 1, c.sisn + 1
    ts = frames[-1].ts + at(ms=5) - at()
    f = c.seg(ts, False, c.c_nxt, c.s_nxt, "PA", 502, c._ts_opts(ts, False), request(40))
    data, orig = encode_link(f, "ethernet")
    last = pcap_bytes([(f.ts, data, orig)], LINKTYPE_ETHERNET)[24:]
    damaged = full + last[:16 + 30]
    w.write("crafted-truncated.pcap", damaged)
    m = summary(frames, b.conns, b)
    m.update({k: 0 for k in FILE_METRICS}, files_failed=1, files_failed_truncated=1)
    w.expected("crafted-truncated", expected_rows(b.conns), m, METRICS + FILE_METRICS)
    w.describe("crafted-truncated.pcap",
               BASE_TEXT_MIXED + " (all settled), then a final record whose header promises %d bytes but the "
               "file ends after 30 of them" % len(data),
               "libpcap: \"truncated dump file; tried to read %d captured bytes, only got 30\" after %d packets; "
               "the tool must report the error and still the incidents: %s" % (len(data), len(frames),
                                                                               describe_metrics(m)))



def craft_lying_files(w: Writer):
    """Files whose own headers lie: a snap length of 0 or 2^32-1 (libpcap reads 262144), a record that
    claims more bytes than any snap length, a pcapng block with a wrong length. The base conversation comes
    first, so its incidents must be reported all the same."""
    b = Builder()
    base_conversation(b)
    frames = b.sorted_frames()
    recs = frames_to_records(frames, "ethernet")
    keys = METRICS + FILE_METRICS
    for stem, snaplen in [("crafted-snaplen-zero", 0), ("crafted-snaplen-huge", 0xFFFFFFFF)]:
        m = summary(frames, b.conns, b)
        m.update({k: 0 for k in FILE_METRICS}, files_snaplen_invalid=1)
        w.write(stem + ".pcap", pcap_bytes(recs, LINKTYPE_ETHERNET, snaplen=snaplen))
        w.expected(stem, expected_rows(b.conns), m, keys)
        w.describe(stem + ".pcap", BASE_TEXT_MIXED + "; the file header gives a snap length of %d" % snaplen,
                   "counted in files_snaplen_invalid, read as 262144: " + describe_metrics(m))

    # One more record whose header claims 0x7fffffff captured bytes, after the whole conversation.
    m = summary(frames, b.conns, b)
    m.update({k: 0 for k in FILE_METRICS}, files_failed=1, files_failed_bad_record_length=1)
    lie = struct.pack("<IIII", 1700000100, 0, 0x7FFFFFFF, 60) + bytes(60)
    w.write("crafted-record-length-huge.pcap", pcap_bytes(recs, LINKTYPE_ETHERNET) + lie)
    w.expected("crafted-record-length-huge", expected_rows(b.conns), m, keys)
    w.describe("crafted-record-length-huge.pcap",
               BASE_TEXT_MIXED + ", then a record header claiming 2147483647 captured bytes",
               "libpcap: \"invalid packet capture length 2147483647, bigger than snaplen of 262144\" at record "
               "%d, counted in files_failed_bad_record_length; " % (len(frames) + 1) + describe_metrics(m))

    # pcapng: every packet, then a block whose total length (13) is not a multiple of 4.
    blocks = [pcapng_shb(), pcapng_idb(LINKTYPE_ETHERNET, b"eth0")]
    for f in frames:
        data, orig = encode_link(f, "ethernet")
        blocks.append(pcapng_epb(0, f.ts // 1000, data, orig))
    bad = bytearray(blocks[-1])
    bad[4:8] = struct.pack("<I", 13)
    blocks.append(bytes(bad))
    m = summary(frames, b.conns, b)
    m.update({k: 0 for k in FILE_METRICS}, files_failed=1, files_failed_bad_block_length=1)
    w.write("crafted-pcapng-bad-block-length.pcapng", b"".join(blocks))
    w.expected("crafted-pcapng-bad-block-length", expected_rows(b.conns), m, keys)
    w.describe("crafted-pcapng-bad-block-length.pcapng",
               "pcapng: " + BASE_TEXT_MIXED + ", then an Enhanced Packet Block whose total length says 13",
               "libpcap: \"block in pcapng dump file has a length of 13 that is not a multiple of 4\", counted in "
               "files_failed_bad_block_length; " + describe_metrics(m))

def classified_pcap(w: Writer, stem: str, b: Builder, contents: str):
    """An Ethernet pcap with NAME.expected.csv, .expected-summary.csv, .expected-near-misses.csv and
    .expected-origins.csv."""
    single_pcap(w, stem, b, contents)
    w.classified(stem, b.conns)
    files, text, expected = w.readme[-1]
    near = sum(1 for c in b.conns if c.expect in NEAR_MISSES)
    w.readme[-1] = (files, text, expected + "; %s.expected-near-misses.csv lists %d near miss%s, "
                    "%s.expected-origins.csv the rst_origin of each incident"
                    % (stem, near, "" if near == 1 else "es", stem))


def handshake(c: Conn, ts: int, data: bool = True):
    """SYN, SYN-ACK 0.25 ms later, ACK 0.5 ms after the SYN, request 10 us after the ACK."""
    c.syn(ts)
    c.synack(ts + at(us=250) - at())
    c.ack(ts + at(us=500) - at())
    if data:
        c.data(ts + at(us=510) - at())


def craft_near_misses(w: Writer):
    """The near misses of the signature, each by the tool's rule, with one completed connection and one
    incident around them."""
    t = at(ms=100)
    d = lambda ms: t + at(ms=ms) - at()  # noqa: E731
    b = Builder()

    # wrong_ack (1): the client acknowledges a wrong number, the server resets with seq = that number
    c = b.conn(4, 40001, isn(40001, "c"), isn(40001, "s"), "wrong_ack")
    c.syn(d(0)); c.synack(d(0.25))
    wrong = (c.sisn + 1 + 5000) & 0xFFFFFFFF
    c.seg(d(0.5), False, c.c_nxt, wrong, "A", 502, c._ts_opts(d(0.5), False))  # not a handshake ACK
    c.kernel_rst(d(0.75), seq=wrong)
    # (nothing more until 61 s: the attempt ends at the 60 s handshake timeout)

    add_completed(b, 4, 40002, d(61000))
    add_incident(b, 6, 40003, d(61100)).origin = "same-stack"
    add_refused(b, 6, 40004, d(61200))

    # listener_close: 3 IPv4 connections to :8080, reset 20 us apart about 150 ms after their handshakes
    group = [b.conn(4, p, isn(p, "c"), isn(p, "s"), "listener_close") for p in (40005, 40006, 40007)]
    for i, c in enumerate(group):
        handshake(c, d(61300 + i))
    for i, c in enumerate(group):
        c.server_abort(d(61452.5 + 0.02 * i))
    # listener_close: 2 IPv6 connections to :8080, reset 10 us apart
    group = [b.conn(6, p, isn(p, "c"), isn(p, "s"), "listener_close") for p in (40008, 40009)]
    for i, c in enumerate(group):
        handshake(c, d(61600 + 0.5 * i))
    for i, c in enumerate(group):
        c.server_abort(d(61751 + 0.01 * i))

    # app_abort: a lone RST+ACK 5 ms after the ACK
    c = b.conn(4, 40010, isn(40010, "c"), isn(40010, "s"), "app_abort")
    handshake(c, d(61900)); c.server_abort(d(61905.5))
    # app_abort: two RST+ACKs 0.3 ms apart on different server ports (:8080, :8082)
    c1 = b.conn(4, 40011, isn(40011, "c"), isn(40011, "s"), "app_abort")
    c2 = b.conn(4, 40012, isn(40012, "c"), isn(40012, "s"), "app_abort", sport=8082)
    handshake(c1, d(62200)); handshake(c2, d(62201))
    c1.server_abort(d(62250)); c2.server_abort(d(62250.3))
    # app_abort: two RST+ACKs 2 ms apart on the same server port (IPv6 :8080)
    c1 = b.conn(6, 40013, isn(40013, "c"), isn(40013, "s"), "app_abort")
    c2 = b.conn(6, 40014, isn(40014, "c"), isn(40014, "s"), "app_abort")
    handshake(c1, d(62500)); handshake(c2, d(62501))
    c1.server_abort(d(62550)); c2.server_abort(d(62552))

    # wrong_ack (2): correct handshake ACK, then a RST (no ACK flag) with a wrong seq; the capture ends
    c = b.conn(6, 40015, isn(40015, "c"), isn(40015, "s"), "wrong_ack")
    c.syn(d(62800)); c.synack(d(62800.25)); c.ack(d(62800.5))
    c.kernel_rst(d(62800.75), seq=c.sisn + 1 + 3000)

    classified_pcap(w, "crafted-near-misses", b,
                    "Ethernet, IPv4 and IPv6. :40001 (IPv4) SYN, SYN-ACK, client ACK with ack = server ISN+1+5000 "
                    "(wrong: not a handshake ACK), server RST (no ACK flag) seq = ISN+1+5000, then nothing from "
                    "either side until 61 s after the SYN (the attempt ends at the 60 s handshake timeout): "
                    "wrong_ack. From 61 s: :40002 "
                    "(IPv4) completed; :40003 (IPv6) incident (kernel RST, same-stack); :40004 (IPv6) -> :8081 "
                    "refused (RST+ACK seq 0). listener_close: :40005-:40007 (IPv4) handshakes + request 1 ms "
                    "apart, then RST+ACK (seq = SYN-ACK seq+1, ack = client ISN+41, window 509, timestamps) "
                    "from :8080 on each, 20 us apart, about 150 ms after the handshakes; :40008-:40009 (IPv6) "
                    "the same, 10 us apart. app_abort: :40010 (IPv4) a lone RST+ACK 5 ms after its ACK; "
                    ":40011 -> :8080 and :40012 -> :8082 (IPv4) RST+ACKs 0.3 ms apart on different server ports; "
                    ":40013 and :40014 (IPv6) -> :8080 RST+ACKs 2 ms apart on the same port. :40015 (IPv6) "
                    "SYN, SYN-ACK, correct ACK, then RST (no ACK flag) seq = server ISN+1+3000 0.25 ms later "
                    "and the capture ends: wrong_ack. Every RST+ACK to :8080 outside the two listener groups "
                    "is more than 1 ms from any other on the same port; no group mixes IPv4 and IPv6")


def craft_provenance(w: Writer):
    """Incidents only (SYN, SYN-ACK, ACK, request, RST no ACK seq = SYN-ACK seq+1 0.25 ms after the ACK),
    varying how the RST's headers compare with the SYN-ACK's and the client's handshake ACK."""
    t = at(ms=100)
    d = lambda ms: t + at(ms=ms) - at()  # noqa: E731
    b = Builder()
    cases = []

    def incident(family, cport, origin, text, rst=None, server=None, **kw):
        ts = d((cport - 40001) * 100)
        if server is None:
            c = b.conn(family, cport, isn(cport, "c"), isn(cport, "s"), "reset_after_handshake", origin=origin, **kw)
        else:
            c = Conn(b, C4, cport, server, SERVER_PORT, isn(cport, "c"), isn(cport, "s"), "reset_after_handshake",
                     origin=origin, **kw)
        handshake(c, ts)
        c.kernel_rst(ts + at(us=750) - at(), **(rst or {}))
        cases.append(":%d (IPv%d) %s: %s" % (cport, family, origin, text))
        return c

    incident(4, 40001, "same-stack", "client TOS 0x20 on every segment, RST TOS 0x20 (echoed), TTL 64 and source "
             "MAC as the SYN-ACK", client_tos=0x20, rst=dict(tos=0x20))
    incident(4, 40002, "same-host", "TOS 0 on both, TTL 64, same MAC, ID 0 + DF (plain kernel RST, which a "
             "netfilter REJECT on the server would match byte for byte)")
    incident(6, 40003, "same-stack", "client traffic class 0x20, RST traffic class 0x20 (echoed), RST flow label "
             "non-zero (not the SYN-ACK's), hop limit 64", client_tos=0x20, rst=dict(tos=0x20))
    incident(4, 40004, "same-host", "(extra) server %s behind the gateway %s: SYN-ACK and RST both TTL 61 "
             "and from the gateway's MAC" % (ROUTED_SERVER, ":".join("%02x" % x for x in ROUTER_MAC)),
             server=ROUTED_SERVER, server_ttl=61, server_mac=ROUTER_MAC)
    incident(4, 40005, "same-stack", "(extra) client TOS 0x22 (DSCP 0x20 with ECT(0)), RST TOS 0x20: the DSCP "
             "is echoed, the ECN bits are not compared", client_tos=0x22, rst=dict(tos=0x20))
    incident(4, 40006, "other-host", "RST TTL 63, SYN-ACK TTL 64, same MAC", rst=dict(ttl=63))
    incident(4, 40007, "other-host", "RST from source MAC %s (SYN-ACK from the server's), same TTL 64"
             % ":".join("%02x" % x for x in OTHER_MAC), rst=dict(src_mac=OTHER_MAC))
    incident(6, 40008, "other-host", "RST hop limit 63, SYN-ACK 64", rst=dict(ttl=63))
    incident(4, 40009, "firewall-like", "client TOS 0x20, RST TOS 0 with ID 0 + DF, TTL 64 (netfilter REJECT "
             "shape)", client_tos=0x20)
    incident(6, 40010, "firewall-like", "client traffic class 0x20, RST traffic class 0 (RST flow label "
             "non-zero)", client_tos=0x20)
    incident(6, 40011, "firewall-like", "client traffic class 0, RST flow label 0 while the SYN-ACK had one",
             rst=dict(flow=0))
    incident(4, 40012, "other-host", "client TOS 0x20, RST TOS 0 with ID 0x5c1d + DF (not the netfilter "
             "shape)", client_tos=0x20, rst=dict(ipid=0x5C1D))
    incident(4, 40013, "same-stack", "TOS 0 on both, RST ID 0x1f2e + DF (a kernel before 4.20 hashes the ID; "
             "netfilter sends 0)", rst=dict(ipid=0x1F2E))

    classified_pcap(w, "crafted-provenance", b,
                    "Ethernet, IPv4 and IPv6; 13 incidents 100 ms apart, each SYN, SYN-ACK, ACK, request, RST "
                    "(no ACK flag) seq = SYN-ACK seq+1 0.25 ms after the ACK, only the RST's headers differ "
                    "from the kernel shape: " + "; ".join(cases)
                    + ". Verdict rules, in order: other-host if the RST's TTL / hop limit differs from the "
                    "SYN-ACK's or the source MACs differ; other-host if the client's DSCP (handshake ACK TOS & "
                    "0xfc) is non-zero, not echoed, and the RST is IPv4 with a non-zero ID; firewall-like if "
                    "the client's DSCP is non-zero and not echoed, or (IPv6) the SYN-ACK has a flow label and "
                    "the RST has 0; same-stack if the DSCP is echoed, or the RST is IPv6 with a flow label or "
                    "IPv4 with a non-zero ID; same-host otherwise")


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(here), "Tests", "Captures"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    w = Writer(args.out)
    craft_formats(w)
    craft_pcapng(w)
    craft_link_types(w)
    craft_decoding(w)
    craft_edge_cases(w)
    with open(os.path.join(args.out, "CRAFTED.md"), "w") as fh:
        fh.write(readme_markdown(w))
    print("wrote %d files to %s" % (len(w.written), args.out))
    return 0


def readme_markdown(w: Writer) -> str:
    lines = [
        "# Crafted captures (`crafted-*`)",
        "",
        "Written by `python3 scripts/craft-captures.py` (standard library only, deterministic: rerunning it "
        "reproduces every byte). Expected files follow the construction, not a tool run.",
        "",
    ]
    for files, contents, expected in w.readme:
        lines.append("- `%s`: %s. Expected: %s." % (files, contents.rstrip("."), expected.rstrip(".")))
    lines += [
        "",
        "Conventions of the crafted files:",
        "",
        "- Client 10.1.0.1 / 2001:db8::1 (MAC 00:1b:21:3a:4f:10), server 10.1.0.2 / 2001:db8::2 "
        "(MAC 3c:fd:fe:9e:51:20), service port 8080, closed port 8081. The capture point is the client host: "
        "server-sent Ethernet/SLL frames shorter than 60 bytes carry zero padding, which is not TCP payload "
        "(use the IP length).",
        "- Kernel resets look as in KERNEL-FACTS section 6: RST without ACK, seq = server ISN+1, window 0, no options, "
        "IPv4 ID 0 + DF; IPv6 with a non-zero flow label that differs from the SYN-ACK's (as Linux 6.18's "
        "tcp_v6_send_reset, whose control socket uses an auto flow label; here a fixed mix of the ports). "
        "Refusals: RST+ACK, seq 0, ack = client ISN+1 (same IPv4/IPv6 header rules).",
        "- Every record lands in exactly one bucket, so packets = tcp_packets + the sum of skipped_*; "
        "tcp_packets counts only packets whose TCP header was decoded (a bad TCP header is not a TCP packet).",
        "- Timestamps are fixed (2023-11-14 22:13:20 UTC onwards); ISNs are fixed per client port.",
        "",
        "libpcap 1.10.3 findings (checked with a small C program looping on pcap_next_ex):",
        "",
        "- A pcapng whose later IDB has a different link type opens fine; pcap_next_ex returns the packets "
        "before that IDB, then PCAP_ERROR with \"an interface has a type 101 different from the type of the "
        "first interface\". If both IDBs come before the first packet, the error comes at the first "
        "pcap_next_ex (0 packets). A later IDB with the same link type but another snaplen fails the same way "
        "(\"an interface has a snapshot length 65535 different from the snapshot length of the first "
        "interface\"). So with libpcap 1.10.3 mixed link types cannot be decoded per interface; the tool can "
        "only report the error (and what it found before it).",
        "- A record cut short gives PCAP_ERROR \"truncated dump file; tried to read 106 captured bytes, only got "
        "30\" after the complete records.",
        "- libpcap does not decompress: crafted-base.pcap.gz must be gunzipped by the tool (or a pipe).",
        "- LINKTYPE_USER0 (147) opens as DLT_USER0; tcpdump prints the records as UNSUPPORTED.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
