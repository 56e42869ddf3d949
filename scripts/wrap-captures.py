#!/usr/bin/env python3
"""Derive test captures from a REAL capture in Tests/Captures: wrap its packets in tunnels the
kernel here cannot make (tunnel-*), re-frame them in other link types (link-*), and cut them at
small snap lengths (cut-*).

Standard library only (Python 3.11), deterministic: rerunning it reproduces every byte. The
inner packets are the source capture's, byte for byte, with its timestamps; only what is put
around them (or cut off them) is made here. So the truth is the source's: each expected.csv is
the source's expected rows (for the inner family the file carries), plus for tunnel-* the
`tunnel` column that names what this script put around them (contract: Tests/Captures/README.md,
"Files per capture"), and for cut-* minus the rows whose deciding fields the cut removes
(reasoned from the snap length and the header offsets below, never from a tool run).

Usage:
    python3 scripts/wrap-captures.py [--out DIR] [--only PREFIX]

Check the results independently with scripts/check-captures (tshark).
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.join(os.path.dirname(HERE), "Tests", "Captures")
sys.path.insert(0, os.path.join(HERE, "captures"))
from common import internet_checksum  # noqa: E402
from pcapcheck import pcap_records  # noqa: E402

# The real source: 12 incidents (6 IPv4, 6 IPv6; 8 netfilter resets on 8090 and 4 kernel resets on
# 8086), 6 normal connections, 130 packets, none cut by the snap length (caplen = len everywhere).
SOURCE = "firewall-reject"
# The link-type and cut files use a smaller real source: 2 incidents (IPv4 :8086, IPv6 :8086).
SMALL_SOURCE = "nanosecond"

LINKTYPE_ETHERNET = 1
ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_9100 = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100
ETH_MPLS, ETH_PPPOE_SESSION, ETH_TEB, ETH_ERSPAN2, ETH_ERSPAN3 = 0x8847, 0x8864, 0x6558, 0x88BE, 0x22EB

# Outer world: documentation addresses (RFC 5737 / RFC 3849) and locally administered MACs.
TEP_A4, TEP_B4, TEP_C4 = "192.0.2.1", "192.0.2.2", "198.51.100.9"
TEP_A6, TEP_B6, TEP_C6 = "2001:db8:1::1", "2001:db8:1::2", "2001:db8:2::9"
MAC_A, MAC_B = bytes.fromhex("020000000a01"), bytes.fromhex("020000000b02")
CLIENTS = {"10.77.0.1", "fd77::1"}  # the source's client addresses: tells the direction of a packet


# --------------------------------------------------------------------------
# pcap in and out
# --------------------------------------------------------------------------


def read_pcap(path):
    """(linktype, nano, [(sec, frac, caplen, wirelen, bytes)]) of a pcap file."""
    with open(path, "rb") as f:
        linktype, _, nano, records = pcap_records(f.read(), path)
    return linktype, nano, records


def write_pcap(path, linktype, nano, recs, snaplen=65535):
    """Little-endian pcap; recs are (sec, frac, wirelen, bytes) and caplen = len(bytes)."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, wirelen, b in recs:
        out.append(struct.pack("<IIII", sec, frac, len(b), wirelen) + b)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def read_expected(name):
    with open(os.path.join(CAPTURES, name + ".expected.csv")) as f:
        return [tuple(r) for r in list(csv.reader(f))[1:]]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# --------------------------------------------------------------------------
# The source's packets
# --------------------------------------------------------------------------


class Packet:
    """One record of the source (Ethernet, untagged): its time, the Ethernet frame, the IP packet."""

    def __init__(self, sec, frac, frame):
        self.sec, self.frac, self.frame = sec, frac, frame
        self.etype = struct.unpack("!H", frame[12:14])[0]
        self.ip = frame[14:]
        if self.etype == ETH_IPV4:
            self.family = 4
            self.ip = self.ip[:struct.unpack("!H", self.ip[2:4])[0]]
            self.src = str(ipaddress.ip_address(self.ip[12:16]))
            proto, t = self.ip[9], (self.ip[0] & 15) * 4
        elif self.etype == ETH_IPV6:
            self.family = 6
            self.ip = self.ip[:40 + struct.unpack("!H", self.ip[4:6])[0]]
            self.src = str(ipaddress.ip_address(self.ip[8:24]))
            proto, t = self.ip[6], 40
        else:
            self.family, self.src, proto, t = None, None, None, 0
        self.tcp = proto == 6
        self.from_client = self.src in CLIENTS
        self.tcp_flags = self.ip[t + 13] if self.tcp else 0
        self.ports = struct.unpack("!HH", self.ip[t:t + 4]) if self.tcp else None

    def kind(self):
        return "ip4" if self.family == 4 else "ip6"


def source_packets(name):
    linktype, nano, recs = read_pcap(os.path.join(CAPTURES, name + ".pcap"))
    assert linktype == LINKTYPE_ETHERNET, name
    for sec, frac, caplen, wirelen, b in recs:
        # Every outer checksum below covers the whole inner packet: the source must be uncut.
        assert caplen == wirelen, "%s: a record is cut by the snap length" % name
    pkts = [Packet(sec, frac, b) for sec, frac, _, _, b in recs]
    for p in pkts:
        p.nano = nano
    return nano, pkts


# --------------------------------------------------------------------------
# Encapsulation layers. Each takes (kind, bytes) and returns (kind, bytes, names): kind is what
# the bytes are ("eth", "ip4", "ip6", "gre", "udp", "mpls", "pppoe"); names are tunnel layers for
# the `tunnel` column, outermost first.
# --------------------------------------------------------------------------


ETHERTYPE_OF = {"ip4": ETH_IPV4, "ip6": ETH_IPV6, "mpls": ETH_MPLS, "pppoe": ETH_PPPOE_SESSION, "eth": ETH_TEB}
IPPROTO_OF = {"ip4": 4, "ip6": 41, "gre": 47, "udp": 17}


class Layered:
    def __init__(self, kind, data, names=()):
        self.kind, self.data, self.names = kind, data, list(names)


def eth(inner, tags=(), src=MAC_A, dst=MAC_B):
    """Ethernet with VLAN tags [(tpid, vid)], outermost first; VLAN tags are never named."""
    hdr = dst + src
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return Layered("eth", hdr + struct.pack("!H", ETHERTYPE_OF[inner.kind]) + inner.data, inner.names)


def ip_name(inner):
    """IP directly inside IP is named after the inner version (IP protocol 4 or 41)."""
    return ["ip-in-ip"] if inner.kind == "ip4" else ["ipv6-in-ip"] if inner.kind == "ip6" else []


def ip4(inner, src, dst, ident=0x1234):
    proto = IPPROTO_OF[inner.kind]
    payload = inner.data
    if inner.kind == "udp":
        payload = udp_checksum(payload, ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
                               + struct.pack("!BBH", 0, 17, len(payload)))
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                      ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    hdr = hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]
    return Layered("ip4", hdr + payload, ip_name(inner) + inner.names)


def ip6(inner, src, dst):
    proto = IPPROTO_OF[inner.kind]
    payload = inner.data
    if inner.kind == "udp":
        payload = udp_checksum(payload, ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
                               + struct.pack("!IxxxB", len(payload), 17))
    hdr = struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64,
                      ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    return Layered("ip6", hdr + payload, ip_name(inner) + inner.names)


def udp_checksum(seg, pseudo):
    c = internet_checksum(pseudo + seg[:6] + b"\0\0" + seg[8:]) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def udp(payload, sport, dport):
    """UDP with checksum 0 here; ip4/ip6 fill it in."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def vxlan(inner, vni, sport=49152, dport=4789):
    assert inner.kind == "eth"
    hdr = struct.pack("!II", 0x08000000, vni << 8)
    return Layered("udp", udp(hdr + inner.data, sport, dport), ["vxlan vni=%d" % vni] + inner.names)


def geneve(inner, vni, options=b"", sport=49153):
    """Geneve (RFC 8926) on UDP 6081, options given as bytes (a multiple of 4)."""
    assert len(options) % 4 == 0
    hdr = struct.pack("!BBHI", len(options) // 4, 0, ETHERTYPE_OF[inner.kind], vni << 8) + options
    return Layered("udp", udp(hdr + inner.data, sport, 6081), ["geneve vni=%d" % vni] + inner.names)


def geneve_option(cls, typ, data):
    assert len(data) % 4 == 0
    return struct.pack("!HBB", cls, typ, len(data) // 4) + data


def gre(inner, key=None, checksum=False, seq=None):
    """GRE (RFC 2784/2890) with optional checksum, key and sequence number."""
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    hdr = struct.pack("!HH", flags, ETHERTYPE_OF[inner.kind])
    opt = b""
    if checksum:
        opt += b"\0\0\0\0"
    if key is not None:
        opt += struct.pack("!I", key)
    if seq is not None:
        opt += struct.pack("!I", seq)
    data = hdr + opt + inner.data
    if checksum:
        c = internet_checksum(data)
        data = data[:4] + struct.pack("!H", c) + data[6:]
    return Layered("gre", data, ["gre key=%d" % key if key is not None else "gre"] + inner.names)


def erspan(inner, version, session=0, seq=0, timestamp=0):
    """ERSPAN in GRE: type I (GRE 0x88BE, no sequence number, no ERSPAN header), type II (GRE 0x88BE
    with a sequence number, 8-byte header, version 1) or type III (GRE 0x22EB, 12-byte header,
    version 2, no platform subheader). The GRE that carries it is not named separately."""
    assert inner.kind == "eth"
    if version == 1:
        return Layered("gre", struct.pack("!HH", 0, ETH_ERSPAN2) + inner.data, ["erspan"] + inner.names)
    if version == 2:
        hdr = struct.pack("!HHI", 0x1000, ETH_ERSPAN2, seq)
        # Ver 1, VLAN 0, COS 0, En 0, T 0, Session ID; Reserved 0, Index 0x42.
        hdr += struct.pack("!HHI", (1 << 12) | 0, session & 0x3FF, 0x42)
    else:
        hdr = struct.pack("!HHI", 0x1000, ETH_ERSPAN3, seq)
        # Ver 2, VLAN 0, COS 0, BSO 0, T 0, Session ID; Timestamp; SGT 0, P 0, FT 0, Hw ID 1, D 0,
        # Gra 3 (IEEE 1588), O 0.
        hdr += struct.pack("!HH", (2 << 12) | 0, session & 0x3FF) + struct.pack("!I", timestamp)
        hdr += struct.pack("!HH", 0, (1 << 4) | (3 << 1))
    return Layered("gre", hdr + inner.data, ["erspan session=%d" % session] + inner.names)


def mpls(inner, labels):
    assert inner.kind in ("ip4", "ip6")
    hdr = b"".join(struct.pack("!I", (lab << 12) | ((1 if i == len(labels) - 1 else 0) << 8) | 64)
                   for i, lab in enumerate(labels))
    return Layered("mpls", hdr + inner.data, ["mpls label=%d" % lab for lab in labels] + inner.names)


def pppoe(inner, session):
    proto = {"ip4": 0x0021, "ip6": 0x0057}[inner.kind]
    ppp = struct.pack("!H", proto) + inner.data
    return Layered("pppoe", struct.pack("!BBHH", 0x11, 0, session, len(ppp)) + ppp,
                   ["pppoe session=%d" % session] + inner.names)


def inner_of(p, what):
    """The source packet as the innermost layer: its Ethernet frame or its IP packet."""
    return Layered("eth", p.frame) if what == "eth" else Layered(p.kind(), p.ip)


def teps(p, fam, asym=False):
    """Outer (src, dst) for packet p: A <-> B, or with asym the server side sends from C to A
    (the two directions of one flow have different outer address pairs)."""
    a, b, c = (TEP_A4, TEP_B4, TEP_C4) if fam == 4 else (TEP_A6, TEP_B6, TEP_C6)
    if p.from_client:
        return a, b
    return (c, a) if asym else (b, a)


def outer_ip(p, inner, fam, asym=False, ident=0):
    src, dst = teps(p, fam, asym)
    return ip4(inner, src, dst, ident) if fam == 4 else ip6(inner, src, dst)


# --------------------------------------------------------------------------
# tunnel-* files
# --------------------------------------------------------------------------

# Each: name -> (families carried, builder(p, i) -> Layered outer Ethernet frame, description).
# The builder gets the source packet and its index among the carried packets.


def opts():
    return geneve_option(0x0102, 0x80, b"\x00\x00\x00\x2a") + geneve_option(0xFFFF, 0x01, b"rstd" + b"\0" * 4)


TUNNELS = {
    "tunnel-gre": (
        (4, 6), lambda p, i: eth(outer_ip(p, gre(inner_of(p, "ip")), 4)),
        "GRE without options (RFC 2784, 4 bytes) in IPv4 192.0.2.1 <-> 192.0.2.2; GRE protocol 0x0800 / 0x86DD "
        "carrying the source's IPv4 and IPv6 packets. `tunnel`: `gre`."),
    "tunnel-gre-options": (
        (4, 6), lambda p, i: eth(outer_ip(p, gre(inner_of(p, "ip"), key=5, checksum=True, seq=i), 6, asym=True)),
        "GRE with checksum, key 5 and sequence number (the packet's index) (RFC 2890, 16 bytes) in IPv6; "
        "client-to-server packets go 2001:db8:1::1 -> 2001:db8:1::2, server-to-client 2001:db8:2::9 -> "
        "2001:db8:1::1 (the two directions of a flow have different outer addresses). `tunnel`: `gre key=5`."),
    "tunnel-gre-eth": (
        (4, 6), lambda p, i: eth(outer_ip(p, gre(eth(inner_of(p, "ip"), tags=((ETH_VLAN, 30),), src=p.frame[6:12],
                                                     dst=p.frame[0:6]), key=7), 4)),
        "GRE key 7, protocol 0x6558 (transparent Ethernet bridging) in IPv4: the source's Ethernet frames, each "
        "given an 802.1Q tag (VID 30) at this inner level. `tunnel`: `gre key=7`."),
    "tunnel-erspan1": (
        (4, 6), lambda p, i: eth(outer_ip(p, erspan(inner_of(p, "eth"), 1), 4)),
        "ERSPAN type I: GRE protocol 0x88BE without sequence number, then the mirrored Ethernet frame directly, "
        "in IPv4. `tunnel`: `erspan`."),
    "tunnel-erspan2": (
        (4, 6), lambda p, i: eth(outer_ip(p, erspan(inner_of(p, "eth"), 2, session=100, seq=i), 4)),
        "ERSPAN type II (GRE 0x88BE with sequence number, 8-byte ERSPAN header version 1, session 100) in IPv4. "
        "`tunnel`: `erspan session=100`."),
    "tunnel-erspan3": (
        (4, 6), lambda p, i: eth(outer_ip(p, erspan(inner_of(p, "eth"), 3, session=200, seq=i,
                                                    timestamp=1000 * i), 6)),
        "ERSPAN type III (GRE 0x22EB with sequence number, 12-byte ERSPAN header version 2, session 200, no "
        "platform subheader) in IPv6. `tunnel`: `erspan session=200`."),
    "tunnel-geneve": (
        (4, 6), lambda p, i: eth(outer_ip(p, geneve(inner_of(p, "eth"), 1234, opts()), 4, asym=True)),
        "Geneve on UDP 6081, VNI 1234, protocol 0x6558, with 20 bytes of options (class 0x0102 type 0x80 4 "
        "bytes; class 0xFFFF type 0x01 8 bytes), in IPv4 with the UDP checksum; client-to-server 192.0.2.1 -> "
        "192.0.2.2, server-to-client 198.51.100.9 -> 192.0.2.1. `tunnel`: `geneve vni=1234`."),
    "tunnel-ipip": (
        (4,), lambda p, i: eth(outer_ip(p, inner_of(p, "ip"), 4)),
        "IPv4 in IPv4 (IP protocol 4, RFC 2003): the source's IPv4 packets only. `tunnel`: `ip-in-ip`."),
    "tunnel-ip6ip": (
        (6,), lambda p, i: eth(outer_ip(p, inner_of(p, "ip"), 4)),
        "IPv6 in IPv4 (IP protocol 41, RFC 4213, as SIT): the source's IPv6 packets only. `tunnel`: "
        "`ipv6-in-ip`."),
    "tunnel-ip6ip6": (
        (6,), lambda p, i: eth(outer_ip(p, inner_of(p, "ip"), 6)),
        "IPv6 in IPv6 (next header 41, RFC 2473): the source's IPv6 packets only. `tunnel`: `ipv6-in-ip`."),
    "tunnel-ip4ip6": (
        (4,), lambda p, i: eth(outer_ip(p, inner_of(p, "ip"), 6)),
        "IPv4 in IPv6 (next header 4, RFC 2473): the source's IPv4 packets only. `tunnel`: `ip-in-ip`."),
    "tunnel-mpls1": (
        (4, 6), lambda p, i: eth(mpls(inner_of(p, "ip"), [100])),
        "Ethernet 0x8847, one MPLS label (100, bottom of stack, TTL 64), then the source's IPv4 or IPv6 packet "
        "(told apart by its version nibble). `tunnel`: `mpls label=100`."),
    "tunnel-mpls3": (
        (4, 6), lambda p, i: eth(mpls(inner_of(p, "ip"), [16, 17, 18])),
        "Ethernet 0x8847, three MPLS labels 16, 17, 18 (bottom of stack on 18), then IPv4 or IPv6. `tunnel`: "
        "`mpls label=16 / mpls label=17 / mpls label=18`."),
    "tunnel-pppoe": (
        (4, 6), lambda p, i: eth(pppoe(inner_of(p, "ip"), 0x1234), tags=((ETH_VLAN, 7),)),
        "802.1Q VID 7, PPPoE session stage (0x8864, session 0x1234), PPP protocol 0x0021 (IPv4) or 0x0057 "
        "(IPv6). `tunnel`: `pppoe session=4660`."),
    "tunnel-vxlan-tags": (
        (4, 6), lambda p, i: eth(outer_ip(p, vxlan(eth(inner_of(p, "ip"), src=p.frame[6:12], dst=p.frame[0:6],
                                                        tags=((ETH_QINQ, 100), (ETH_VLAN, 200)) if i % 3 == 0 else
                                                        ((ETH_9100, 300), (ETH_VLAN, 301)) if i % 3 == 1 else
                                                        ((ETH_VLAN, 400),)), 4242), 4),
                                 tags=((ETH_VLAN, 10),)),
        "Outer 802.1Q VID 10, IPv4, UDP 4789, VXLAN VNI 4242; the inner Ethernet frames carry, in turn, "
        "802.1ad 100 + 802.1Q 200, 0x9100 300 + 802.1Q 301, and 802.1Q 400 alone. `tunnel`: `vxlan vni=4242`."),
    "tunnel-nested3": (
        (4, 6), lambda p, i: eth(mpls(ip4(gre(ip4(vxlan(inner_of(p, "eth"), 42), "10.0.0.1", "10.0.0.2"), key=5),
                                          *teps(p, 4)), [100])),
        "VXLAN in GRE in MPLS: Ethernet / MPLS 100 / IPv4 / GRE key 5 / IPv4 10.0.0.1 -> 10.0.0.2 / UDP 4789 / "
        "VXLAN 42 / the source's Ethernet frame. `tunnel`: `mpls label=100 / gre key=5 / vxlan vni=42`."),
    "tunnel-nested8": (
        (4, 6), lambda p, i: nested(p, 8),
        "8 named layers: Ethernet / MPLS 1 / MPLS 2 / IPv4 / GRE key 3 / IPv4 / UDP 4789 / VXLAN 4 / Ethernet / "
        "PPPoE 5 / IPv4 / IPv4 (ip-in-ip) / UDP 6081 / Geneve 7 / Ethernet / IPv4 / GRE / the source's IP "
        "packet. `tunnel`: `mpls label=1 / mpls label=2 / gre key=3 / vxlan vni=4 / pppoe session=5 / "
        "ip-in-ip / geneve vni=7 / gre`. The deepest the decoder must go."),
    "tunnel-nested9": (
        (4, 6), lambda p, i: nested(p, 9),
        "As tunnel-nested8 with a ninth layer, GRE key 9, between the Geneve Ethernet and the last GRE: one "
        "layer more than the decoder's bound of 8, so every packet must be skipped (not decoded, not a crash). "
        "Expected: no incidents."),
}


def nested(p, depth):
    x = gre(inner_of(p, "ip"))                                      # 8: gre
    x = ip4(x, "10.8.0.1", "10.8.0.2")
    if depth == 9:
        x = ip4(gre(x, key=9), "10.9.0.1", "10.9.0.2")              # one layer too many
    x = geneve(eth(x), 7)                                           # 7: geneve vni=7
    x = ip4(ip4(x, "10.7.0.1", "10.7.0.2"), "10.6.0.1", "10.6.0.2")  # 6: ip-in-ip
    x = eth(pppoe(x, 5))                                            # 5: pppoe session=5
    x = ip4(vxlan(x, 4), "10.4.0.1", "10.4.0.2")                    # 4: vxlan vni=4
    x = ip4(gre(x, key=3), *teps(p, 4))                             # 3: gre key=3
    return eth(mpls(x, [1, 2]))                                     # 1, 2: mpls


def tenants(nano, pkts, expected):
    """tunnel-tenants: the source's IPv4 and IPv6 packets twice, in VXLAN VNI 10 and VNI 20 (outer
    IPv4, same outer addresses), VNI 20's copy 0.5 ms later. The SAME inner 4-tuples, different
    outcomes: in VNI 10 the server's RSTs of the odd-numbered incidents (in expected.csv order) are
    left out, in VNI 20 those of the even-numbered ones; so each incident happens in exactly one
    tenant, and a tool that ignored the VNI would see every incident (twice over)."""
    inc = {(r[0], int(r[1]), r[2], int(r[3])): n for n, r in enumerate(expected)}
    recs, rows = [], []
    for vni, dropped_parity, shift_us in ((10, 1, 0), (20, 0, 500)):
        for i, p in enumerate(pkts):
            if p.family is None:
                continue
            if p.tcp and p.tcp_flags & 0x04 and not p.from_client:
                dst = str(ipaddress.ip_address(p.ip[16:20] if p.family == 4 else p.ip[24:40]))
                n = inc.get((dst, p.ports[1], p.src, p.ports[0]))
                if n is not None and n % 2 == dropped_parity:
                    continue
            recs.append(shifted(p, nano, shift_us, eth(outer_ip(p, vxlan(inner_of(p, "eth"), vni), 4)).data))
        rows += [r + ("vxlan vni=%d" % vni,) for n, r in enumerate(expected) if n % 2 != dropped_parity]
    recs.sort(key=lambda r: (r[0], r[1]))
    return recs, rows


def shifted(p, nano, us, data):
    unit = 1000 if nano else 1
    per = 10 ** 9 if nano else 10 ** 6
    frac = p.frac + us * unit
    return (p.sec + frac // per, frac % per, len(data), data)


def family_of(row):
    return 6 if ":" in row[0] else 4


def make_tunnels(out, only):
    nano, pkts = source_packets(SOURCE)
    expected = read_expected(SOURCE)
    docs = []
    for name, (fams, build, text) in TUNNELS.items():
        if only and not name.startswith(only):
            continue
        carried = [p for p in pkts if p.family in fams]
        recs, tunnel = [], None
        for i, p in enumerate(carried):
            x = build(p, i)
            recs.append((p.sec, p.frac, len(x.data), x.data))
            t = " / ".join(x.names)
            assert tunnel in (None, t), (name, tunnel, t)
            tunnel = t
        rows = [] if name == "tunnel-nested9" else [r + (tunnel,) for r in expected if family_of(r) in fams]
        write_pcap(os.path.join(out, name + ".pcap"), LINKTYPE_ETHERNET, nano, recs)
        write_csv(os.path.join(out, name + ".expected.csv"),
                  ["client_ip", "client_port", "server_ip", "server_port", "tunnel"], rows)
        docs.append((name, text, len(recs), sum(p.tcp for p in carried), len(rows), fams))
    if not only or "tunnel-tenants".startswith(only) or only.startswith("tunnel-tenants"):
        recs, rows = tenants(nano, pkts, expected)
        write_pcap(os.path.join(out, "tunnel-tenants.pcap"), LINKTYPE_ETHERNET, nano, recs)
        write_csv(os.path.join(out, "tunnel-tenants.expected.csv"),
                  ["client_ip", "client_port", "server_ip", "server_port", "tunnel"], rows)
        docs.append(("tunnel-tenants", tenants.__doc__.split(":", 1)[1].strip().replace("\n    ", " "),
                     len(recs), None, len(rows), (4, 6)))
    return docs


# --------------------------------------------------------------------------
# link-* files: the small source's IP packets in other link-layer framings
# --------------------------------------------------------------------------

STA_CLIENT, STA_SERVER = bytes.fromhex("02000000c001"), bytes.fromhex("02000000c002")
BSSID = bytes.fromhex("02000000a001")
LLC_SNAP = bytes.fromhex("aaaa03000000")


def wlan(p, i):
    """An 802.11 data frame: client -> server goes to the AP (ToDS: addr1 BSSID, addr2 client, addr3
    server), server -> client comes from it (FromDS: addr1 client, addr2 BSSID, addr3 server); odd
    records are QoS data frames (subtype 8, 2 more header bytes, TID 0); then LLC/SNAP and the
    ethertype. No FCS. Sequence number = record index."""
    qos = i % 2 == 1
    fc = bytes([0x88 if qos else 0x08, 0x01 if p.from_client else 0x02])
    addrs = BSSID + STA_CLIENT + STA_SERVER if p.from_client else STA_CLIENT + BSSID + STA_SERVER
    hdr = fc + struct.pack("<H", 44) + addrs + struct.pack("<H", (i & 0xFFF) << 4)
    if qos:
        hdr += b"\0\0"
    return hdr + LLC_SNAP + struct.pack("!H", p.etype) + p.ip


def radiotap(p, i):
    """Radiotap (version 0, 10 bytes: present = Flags + Rate; flags 0, so no FCS; rate 0x6c = 54 Mb/s)
    and the 802.11 frame of wlan()."""
    return struct.pack("<BBHI", 0, 0, 10, 0x06) + bytes([0x00, 0x6C]) + wlan(p, i)


def ppi(p, i):
    """PPI (version 0, flags 0, length 8, no fields, DLT 105) and the 802.11 frame of wlan()."""
    return struct.pack("<BBHI", 0, 0, 8, 105) + wlan(p, i)


def ppp_proto(p):
    return struct.pack("!H", 0x0021 if p.family == 4 else 0x0057)


def usb_linux(p, i):
    """A USB Ethernet adapter (CDC ECM) seen by usbmon: a 48-byte usbmon header (URB id, 'C'
    complete, bulk, endpoint 0x81 in for server -> client, 0x02 out for client -> server, device 3,
    bus 1, data present, time, status 0, lengths) and the Ethernet frame as the bulk data."""
    frame = p.frame
    return struct.pack("<QBBBBHbbqiiII", 0xFFFF8880DEAD0000 + i, ord("C"), 3, 0x02 if p.from_client else 0x81,
                       3, 1, ord("-"), 0, p.sec, p.frac // (1000 if p.nano else 1), 0, len(frame),
                       len(frame)) + b"\0" * 8 + frame


LINKS = {
    "link-ppp": (9, lambda p, i: (b"\xff\x03" if i % 2 == 0 else b"") + ppp_proto(p) + p.ip,
                 "LINKTYPE_PPP (9): the PPP protocol field (0x0021 IPv4, 0x0057 IPv6) then the IP packet; even "
                 "records start with the HDLC-like address and control bytes ff 03, odd ones without (both forms "
                 "are allowed by the link type)."),
    "link-ppp-hdlc": (50, lambda p, i: b"\xff\x03" + ppp_proto(p) + p.ip,
                      "LINKTYPE_PPP_HDLC (50, DLT_PPP_SERIAL): PPP in HDLC-like framing, ff 03, the PPP protocol, "
                      "the IP packet (no FCS, no byte stuffing)."),
    "link-c-hdlc": (104, lambda p, i: bytes([0x0F if i % 2 == 0 else 0x8F, 0]) + struct.pack("!H", p.etype) + p.ip,
                    "LINKTYPE_C_HDLC (104): Cisco HDLC, address 0x0f (unicast; every odd record 0x8f, broadcast), "
                    "control 0, the ethertype, the IP packet."),
    "link-ipoib": (242, lambda p, i: (STA_SERVER + b"\0" * 14 if p.from_client else STA_CLIENT + b"\0" * 14)
                   + (STA_CLIENT + b"\0" * 14 if p.from_client else STA_SERVER + b"\0" * 14)
                   + struct.pack("!HH", p.etype, 0) + p.ip,
                   "LINKTYPE_IPOIB (242): a 44-byte header, destination and source IPoIB link-layer addresses (20 "
                   "bytes each), the ethertype and 2 reserved bytes (as tcpdump's print-ipoib.c and tshark read "
                   "it; tshark does not decode the 4-byte RFC 4391 header alone), then the IP packet."),
    "link-ieee802-11": (105, wlan, "LINKTYPE_IEEE802_11 (105): " + wlan.__doc__.split(":", 1)[1].strip()),
    "link-radiotap": (127, radiotap, "LINKTYPE_IEEE802_11_RADIOTAP (127): " + radiotap.__doc__),
    "link-ppi": (192, ppi, "LINKTYPE_PPI (192): " + ppi.__doc__),
    "link-usb-linux": (189, usb_linux,
                       "LINKTYPE_USB_LINUX (189), a link type the tool does not decode: " + usb_linux.__doc__
                       + " Expected: no incidents; every record counted as an unknown link type."),
}


def make_links(out, only):
    nano, pkts = source_packets(SMALL_SOURCE)
    expected = read_expected(SMALL_SOURCE)
    docs = []
    for name, (linktype, build, text) in LINKS.items():
        if only and not name.startswith(only):
            continue
        recs = []
        for i, p in enumerate(pkts):
            p.nano = nano
            assert p.family is not None
            data = build(p, i)
            recs.append((p.sec, p.frac, len(data), data))
        rows = [] if linktype == 189 else expected
        write_pcap(os.path.join(out, name + ".pcap"), linktype, nano, recs)
        write_csv(os.path.join(out, name + ".expected.csv"),
                  ["client_ip", "client_port", "server_ip", "server_port"], rows)
        summary = [("packets", len(recs)), ("incidents", len(rows))]
        summary.append(("skipped_unknown_link_type", len(recs)) if linktype == 189
                       else ("tcp_packets", sum(p.tcp for p in pkts)))
        write_csv(os.path.join(out, name + ".expected-summary.csv"), ["metric", "value"], summary)
        docs.append((name, text, len(recs), sum(p.tcp for p in pkts), len(rows), ", ".join(
            "%s=%s" % kv for kv in summary)))
    return docs


# --------------------------------------------------------------------------
# cut-* files: the small source cut at snap lengths 54..96
# --------------------------------------------------------------------------

# Bytes needed up to and including the TCP flags: link header, IP header, then TCP bytes 0..13
# (ports, seq, ack, data offset, flags). IPv4 without options: 14 + 20 + 14 = 48; IPv6 (no extension
# headers in the source): 14 + 40 + 14 = 68; IPv4 with the 12 bytes of options cut-ipopt adds:
# 14 + 32 + 14 = 60.
NEEDED = {4: 48, 6: 68}
# Router Alert (4 bytes), NOP, Record Route with one empty slot (type 7, length 7, pointer 4): 12 bytes.
IP_OPTIONS = bytes.fromhex("94040000") + bytes.fromhex("01") + bytes.fromhex("070704") + bytes(4)


def with_ip_options(p):
    """The IPv4 packet with 12 bytes of options (Router Alert, NOP, an empty Record Route of one slot),
    IHL 8, total length + 12, header checksum recomputed; TCP untouched (its checksum does not cover
    the IP header beyond the addresses)."""
    ip = p.ip
    hdr = bytes([0x48]) + ip[1:2] + struct.pack("!H", len(ip) + 12) + ip[4:10] + b"\0\0" + ip[12:20] + IP_OPTIONS
    hdr = hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]
    return p.frame[:14] + hdr + ip[20:]


def make_cuts(out, only):
    nano, pkts = source_packets(SMALL_SOURCE)
    expected = read_expected(SMALL_SOURCE)
    docs = []
    for snap in range(54, 97):
        name = "cut-%d" % snap
        if only and not name.startswith(only):
            continue
        recs = [(p.sec, p.frac, len(p.frame), p.frame[:snap]) for p in pkts]
        rows = [r for r in expected if snap >= NEEDED[family_of(r)]]
        write_pcap(os.path.join(out, name + ".pcap"), LINKTYPE_ETHERNET, nano, recs, snaplen=snap)
        write_csv(os.path.join(out, name + ".expected.csv"), ["client_ip", "client_port", "server_ip", "server_port"],
                  rows)
        lost = [r for r in expected if r not in rows]
        docs.append((name, None, len(recs), sum(p.tcp for p in pkts), len(rows),
                     "; not found: " + ", ".join("%s:%s" % (r[0], r[1]) for r in lost) if lost else ""))
    for snap in (59, 60, 64):
        name = "cut-ipopt-%d" % snap
        if only and not name.startswith(only):
            continue
        v4 = [p for p in pkts if p.family == 4]
        frames = [with_ip_options(p) for p in v4]
        recs = [(p.sec, p.frac, len(f), f[:snap]) for p, f in zip(v4, frames)]
        rows = [r for r in expected if family_of(r) == 4 and snap >= 60]
        write_pcap(os.path.join(out, name + ".pcap"), LINKTYPE_ETHERNET, nano, recs, snaplen=snap)
        write_csv(os.path.join(out, name + ".expected.csv"), ["client_ip", "client_port", "server_ip", "server_port"],
                  rows)
        docs.append((name, None, len(recs), len(v4), len(rows), ""))
    return docs


def write_doc(out, tun, links, cuts):
    src_rows = read_expected(SOURCE)
    small_rows = read_expected(SMALL_SOURCE)
    lines = [
        "# Captures derived from real ones (`tunnel-*`, `link-*`, `cut-*`)",
        "",
        "Written by `python3 scripts/wrap-captures.py` (standard library only, deterministic: rerunning it "
        "reproduces every byte) from two REAL captures of `scripts/make-captures` (README.md): the inner "
        "packets are the real ones, byte for byte, with their timestamps; only what is put around them (or cut "
        "off them) is made by the script. So the truth is the real capture's: each `expected.csv` holds the "
        "source's expected rows for the inner family the file carries, never a tool run. Check them with "
        "`scripts/check-captures --source-check` (tshark decodes every inner TCP segment; the script names "
        "the encapsulation from tshark's fields and compares the incident signatures with expected.csv and "
        "the inner segments with the source's).",
        "",
        "- `tunnel-*`: from `%s.pcap` (130 packets, 123 TCP: 62 IPv4, 61 IPv6; %d incidents, 6 IPv4 and 6 IPv6: "
        "8 netfilter resets on :8090 and 4 kernel resets on :8086). Outer Ethernet 02:00:00:00:0a:01 -> "
        "02:00:00:00:0b:02; outer addresses 192.0.2.1 <-> 192.0.2.2 or 2001:db8:1::1 <-> 2001:db8:1::2 (where "
        "a file says so, the server-to-client direction comes from 198.51.100.9 or 2001:db8:2::9: flow identity "
        "must ignore outer addresses); outer IPv4 headers ID 0 (0x1234 in the middle layers of nested files), DF, TTL 64, header checksum correct; UDP checksums "
        "computed (also over IPv4), GRE checksum correct where present. Snap length 65535, nothing cut. "
        "`expected.csv` has the `tunnel` column (contract in README.md, \"Files per capture\"). The decoder's "
        "bound is 8 named layers (the layers of the tunnel string): tunnel-nested8 must decode, tunnel-nested9 "
        "must be skipped." % (SOURCE, len(src_rows)),
        "- `link-*`: from `%s.pcap` (57 packets, all IP: 53 TCP (33 IPv4, 20 IPv6) and 4 ICMPv6; %d incidents, "
        "IPv4 and IPv6 on :8086; nanosecond timestamps), each IP packet re-framed in another link type. "
        "`expected-summary.csv` pins packets, incidents and tcp_packets (or skipped_unknown_link_type). "
        "For Linux NFLOG see the real capture `nflog.pcap` in README.md (the kernel has nfnetlink_log)."
        % (SMALL_SOURCE, len(small_rows)),
        "- `cut-*`: from `%s.pcap`, every record cut to the snap length (as `editcap -s N`; the file header "
        "gives N; wire lengths kept). An incident is expected exactly when its packets keep the 14 TCP bytes "
        "through the flags (ports, sequence and acknowledgement numbers, data offset, flags): Ethernet 14 + "
        "IPv4 20 + 14 = 48 bytes, so the IPv4 incident (%s:%s) is expected at every N from 54; Ethernet 14 + "
        "IPv6 40 + 14 = 68, so the IPv6 incident (%s:%s) is expected from N = 68 and cannot be found at 54-67. "
        "TCP options are cut too: the TCP headers are 40 bytes on SYNs and SYN-ACKs, 32 on most other segments "
        "(timestamps), 20 on the kernel's RSTs, so the options end at N = 74 / 66 (IPv4) and 94 / 86 (IPv6); "
        "payload lengths come from the IP length fields, which are always present. tshark decodes no TCP "
        "field unless the 16 TCP bytes through the window are present, so it confirms the IPv6 incident only "
        "from N = 70 (and the cut-ipopt one from 62); scripts/check-captures allows for that."
        % ((SMALL_SOURCE,) + tuple(next(r[:2] for r in small_rows if ":" not in r[0]))
           + tuple(next(r[:2] for r in small_rows if ":" in r[0]))),
        "",
        "## tunnel-*",
        "",
    ]
    for name, text, packets, tcp, rows, _ in tun:
        lines.append("- `%s.pcap`: %s %d packets%s; expected: %d incidents." % (
            name, text, packets, "" if tcp is None else " (%d TCP)" % tcp, rows))
    lines += ["", "## link-*", ""]
    for name, text, packets, tcp, rows, summary in links:
        lines.append("- `%s.pcap`: %s %d packets (%d TCP); expected: %d incidents; summary: %s." % (
            name, text, packets, tcp, rows, summary))
    lines += ["", "## cut-*", ""]
    lines.append("- `cut-54.pcap` ... `cut-96.pcap` (43 files): %s. Expected: %s." % (
        "57 packets each", "; ".join("%s %d%s" % (n[4:], r, extra) for n, _, _, _, r, extra in cuts
                                     if not n.startswith("cut-ipopt"))))
    lines.append("- `cut-ipopt-59.pcap`, `cut-ipopt-60.pcap`, `cut-ipopt-64.pcap`: the source's 33 IPv4 packets only, "
                 "each given 12 bytes of IPv4 options (" + with_ip_options.__doc__.split("options (")[1].split(")")[0]
                 + "; IHL 8, total length and header checksum fixed up), then cut to 59, 60 or 64 bytes: the flags "
                 "end at byte 14 + 32 + 14 = 60, so at 59 the IPv4 incident cannot be found (0 expected), at 60 and "
                 "64 it is (1 expected).")
    with open(os.path.join(out, "DERIVED.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=CAPTURES)
    p.add_argument("--only", default="", help="only the files whose name starts with this")
    a = p.parse_args()
    tun, links, cuts = make_tunnels(a.out, a.only), make_links(a.out, a.only), make_cuts(a.out, a.only)
    for name, _, packets, _, rows, _ in tun + links + cuts:
        print("%-22s %4d packets, %s incidents" % (name, packets, rows))
    if not a.only:
        write_doc(a.out, tun, links, cuts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
