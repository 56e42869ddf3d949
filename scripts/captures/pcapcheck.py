"""Minimal pcap reader, used only to *check* a finished capture (never to make the
expected files): does each expected incident show SYN, SYN-ACK, ACK and then a RST
without ACK whose seq is the SYN-ACK's seq + 1, and which other flows show that
same shape? Handles pcap (micro/nano), EN10MB, LINUX_SLL2 and NFLOG, IPv4 and IPv6, and VXLAN
(UDP 4789 and 8472) around them.
"""

import ipaddress
import struct

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_NFLOG = 239


def read_pcap(path):
    """Returns (linktype, snaplen, precision, [(ts, caplen, wirelen, bytes)])."""
    with open(path, "rb") as f:
        return parse_pcap(f.read(), path)


def parse_pcap(data, path):
    """read_pcap for the bytes of a file; `path` only names it in the error."""
    linktype, snaplen, nano, records = pcap_records(data, path)
    pkts = [(sec + frac / (1e9 if nano else 1e6), caplen, wirelen, b) for sec, frac, caplen, wirelen, b in records]
    return linktype, snaplen, "nano" if nano else "micro", pkts


def pcap_records(data, path):
    """(linktype, snaplen, nano, [(sec, frac, caplen, wirelen, bytes)]) of a pcap file's bytes, the record
    fields as written, so that a record can be written again unchanged; `path` only names it in the error."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("%s: not a pcap file" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _, _, _, _, snaplen, linktype = struct.unpack(endian + "HHiIII", data[4:24])
    off, records = 24, []
    while off + 16 <= len(data):
        sec, frac, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        records.append((sec, frac, caplen, wirelen, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return linktype & 0xFFFF, snaplen, nano, records


# UDP destination ports whose payload is VXLAN (RFC 7348): IANA's 4789 and Linux's old default 8472.
VXLAN_PORTS = (4789, 8472)


def tcp_headers(path):
    """Yields (ts, packet, src, dst, tcp_offset, tcp_length) for every IPv4 or IPv6 TCP packet of an
    Ethernet (VLAN tags skipped) or Linux cooked v2 capture, also inside VXLAN (the inner addresses);
    tcp_length comes from the IP length fields, so it survives the snap length."""
    for ts, b, src, dst, t, tcp_len, _ in tcp_headers_tunnels(path):
        yield ts, b, src, dst, t, tcp_len


def tcp_headers_tunnels(path):
    """tcp_headers plus the encapsulation of each packet, as the `tunnel` column of expected.csv
    writes it ("vxlan vni=N" per VXLAN layer, outermost first, joined by " / "; "" for none)."""
    linktype, _, _, pkts = read_pcap(path)
    for ts, _, _, b in pkts:
        if linktype == LINKTYPE_ETHERNET:
            etype, off = struct.unpack("!H", b[12:14])[0], 14
        elif linktype == LINKTYPE_LINUX_SLL2:
            etype, off = struct.unpack("!H", b[0:2])[0], 20
        elif linktype == LINKTYPE_NFLOG:
            etype, off = nflog_payload(b)
        else:
            raise ValueError("unsupported link type %d" % linktype)
        layers = []
        for _ in range(8):  # bounded: at most 8 encapsulation layers
            while etype in (0x8100, 0x88A8) and len(b) >= off + 4:
                etype, off = struct.unpack("!H", b[off + 2:off + 4])[0], off + 4
            if etype == 0x0800 and len(b) >= off + 20:
                ihl = (b[off] & 15) * 4
                proto = b[off + 9]
                src, dst = ipaddress.ip_address(b[off + 12:off + 16]), ipaddress.ip_address(b[off + 16:off + 20])
                t = off + ihl
                ip_len = struct.unpack("!H", b[off + 2:off + 4])[0] - ihl
            elif etype == 0x86DD and len(b) >= off + 40:
                proto = b[off + 6]
                src, dst = ipaddress.ip_address(b[off + 8:off + 24]), ipaddress.ip_address(b[off + 24:off + 40])
                t = off + 40
                ip_len = struct.unpack("!H", b[off + 4:off + 6])[0]
            else:
                break
            if proto == 6:
                yield ts, b, src, dst, t, ip_len, " / ".join(layers)
                break
            if proto == 17 and len(b) >= t + 16 and struct.unpack("!H", b[t + 2:t + 4])[0] in VXLAN_PORTS:
                vni = int.from_bytes(b[t + 12:t + 15], "big")
                layers.append("vxlan vni=%d" % vni)
                off = t + 16 + 14  # UDP, VXLAN, inner Ethernet
                if len(b) < off:
                    break
                etype = struct.unpack("!H", b[off - 2:off])[0]
                continue
            break


def nflog_payload(b):
    """(ethertype, offset) of the packet in an NFLOG record: a 4-byte header (family: 2 IPv4, 10 IPv6)
    then TLVs (host-endian 16-bit length including the 4-byte TLV header, 16-bit type, padded to 4);
    type 9, NFULA_PAYLOAD, holds the packet from its IP header."""
    etype = {2: 0x0800, 10: 0x86DD}.get(b[0], 0)
    off = 4
    while off + 4 <= len(b):
        length, typ = struct.unpack("<HH", b[off:off + 4])
        if length < 4:
            break
        if typ & 0x7FFF == 9:
            return etype, off + 4
        off += (length + 3) & ~3
    return 0, len(b)


def tunnel_census(path):
    """{tunnel string: TCP packets} over the whole capture."""
    out = {}
    for *_, tunnel in tcp_headers_tunnels(path):
        out[tunnel] = out.get(tunnel, 0) + 1
    return out


def tcp_segments(path):
    """Yields (ts, src, sport, dst, dport, seq, ack, flags, payload_len) for every TCP
    segment; payload_len comes from the IP length fields, so it survives the snap length."""
    for ts, b, src, dst, t, tcp_len in tcp_headers(path):
        if len(b) < t + 14:
            continue
        sport, dport, seq, ack, doff, flags = struct.unpack("!HHIIBB", b[t:t + 14])
        yield ts, str(src), sport, str(dst), dport, seq, ack, flags, tcp_len - (doff >> 4) * 4


def signature_flows(path, server_ports):
    """Client 4-tuples (client_ip, client_port, server_ip, server_port) whose server sent
    a RST without ACK with seq == SYN-ACK seq + 1 after a SYN-ACK and a client ACK."""
    synack = {}
    acked = set()
    hits = set()
    for _, src, sport, dst, dport, seq, ack, flags, _ in tcp_segments(path):
        syn, rst, ackf = flags & 0x02, flags & 0x04, flags & 0x10
        if sport in server_ports:
            key = (dst, dport, src, sport)
            if syn and ackf:
                synack[key] = seq
            elif rst and not ackf and key in synack and key in acked and seq == (synack[key] + 1) & 0xFFFFFFFF:
                hits.add(key)
        elif dport in server_ports:
            key = (src, sport, dst, dport)
            if syn and not ackf:
                acked.discard(key)
                synack.pop(key, None)
            elif ackf and not syn and key in synack and ack == (synack[key] + 1) & 0xFFFFFFFF:
                acked.add(key)
    return hits


def summary(path):
    linktype, snaplen, precision, pkts = read_pcap(path)
    return dict(linktype=linktype, snaplen=snaplen, precision=precision, packets=len(pkts))


def handshake_ack_delays(path, server_ports):
    """Per flow: seconds from the (first) SYN-ACK to the client's first ACK of it, and
    whether that ACK carried data (the request piggybacked on the handshake ACK)."""
    synack = {}
    out = {}
    for ts, src, sport, dst, dport, seq, ack, flags, plen in tcp_segments(path):
        syn, ackf = flags & 0x02, flags & 0x10
        if sport in server_ports and syn and ackf:
            synack.setdefault((dst, dport, src, sport), (ts, seq))
        elif dport in server_ports:
            key = (src, sport, dst, dport)
            if syn and not ackf:
                synack.pop(key, None)
                out.pop(key, None)
            elif ackf and key in synack and key not in out and ack == (synack[key][1] + 1) & 0xFFFFFFFF:
                out[key] = (ts - synack[key][0], plen > 0)
    return out


def rst_shapes(path, server_ports):
    """Per client 4-tuple, its last attempt (from its last SYN): the first SYN-ACK seq, the
    first RST the server side sent (flags, seq), and whether the server had sent payload or
    FIN before that RST."""
    out = {}
    for _, src, sport, dst, dport, seq, ack, flags, plen in tcp_segments(path):
        syn, rst, ackf, fin = flags & 0x02, flags & 0x04, flags & 0x10, flags & 0x01
        if dport in server_ports and syn and not ackf:
            out[(src, sport, dst, dport)] = dict(synack=None, rst=None, data_before=False)
        elif sport in server_ports:
            f = out.get((dst, dport, src, sport))
            if f is None or f["rst"] is not None:
                continue
            if syn and ackf:
                if f["synack"] is None:
                    f["synack"] = seq
            elif rst:
                f["rst"] = (flags, seq)
            elif plen > 0 or fin:
                f["data_before"] = True
    return out


def near_miss_mismatch(f, kind):
    """None if the wire agrees with the near-miss kind, else why not."""
    if f is None:
        return "no SYN from the client in the capture"
    if f["rst"] is None:
        return "no RST from the server side"
    flags, seq = f["rst"]
    if kind == "refused":
        return None if f["synack"] is None and flags & 0x10 else "not a RST+ACK to an unanswered SYN"
    if f["synack"] is None:
        return "no SYN-ACK"
    if f["data_before"]:
        return "the server sent payload or FIN before the RST"
    right = seq == (f["synack"] + 1) & 0xFFFFFFFF
    if kind in ("app_abort", "listener_close"):
        return None if flags & 0x10 and right else "first RST is flags 0x%02x seq %d, SYN-ACK seq %d" % (
            flags, seq, f["synack"])
    if kind == "wrong_ack":
        return None if not right else "RST seq is SYN-ACK seq + 1"
    return "unknown kind %r" % kind


def tcp_option_kinds(path):
    """Yields (ts, src, sport, dst, dport, seq, flags, kinds) for every TCP segment, kinds being
    the set of TCP option kinds it carries (2 MSS, 3 window scale, 4 SACK-permitted,
    8 timestamps). Needs the whole TCP header in the snap length (128 is enough)."""
    for ts, b, src, dst, t, _ in tcp_headers(path):
        if len(b) < t + 20:
            continue
        sport, dport, seq, _, doff, flags = struct.unpack("!HHIIBB", b[t:t + 14])
        end = t + (doff >> 4) * 4
        if len(b) < end:
            raise ValueError("%s: TCP header cut by the snap length" % path)
        kinds, i = set(), t + 20
        while i < end:
            kind = b[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= end or b[i + 1] < 2:
                raise ValueError("%s: malformed TCP option at byte %d" % (path, i))
            kinds.add(kind)
            i += b[i + 1]
        yield ts, str(src), sport, str(dst), dport, seq, flags, kinds


MSS, WSCALE, SACK_OK, TSTAMP = 2, 3, 4, 8


def synack_option_census(path, server_ports):
    """Reads the handshake options on the wire. Per attempt (a client SYN with a new ISN on a
    4-tuple), the options of its SYNs and of every SYN-ACK the server sent. Returns a dict:
      syns_ws_sack_no_ts / syns_other: attempts whose SYN offered WS and SACK-permitted without
        timestamps / anything else;
      cookie_like_synacks: SYN-ACK packets answering a WS+SACK, no-TS SYN with MSS and none of
        WS, SACK-permitted, timestamps (a Linux syncookie SYN-ACK for such a SYN);
      cookie_like_flows: attempts with at least one such SYN-ACK;
      full_synacks: SYN-ACK packets carrying MSS, WS and SACK-permitted (a request socket's);
      other_synacks: any other SYN-ACK; mixed_flows: attempts with both kinds of SYN-ACK."""
    syn_of = {}     # 4-tuple -> (isn, kinds) of the current attempt
    flows = {}      # (4-tuple, isn) -> kinds of SYN-ACKs seen
    out = dict(syns_ws_sack_no_ts=0, syns_other=0, cookie_like_synacks=0, full_synacks=0, other_synacks=0)
    for _, src, sport, dst, dport, seq, flags, kinds in tcp_option_kinds(path):
        syn, ackf = flags & 0x02, flags & 0x10
        if not syn:
            continue
        if dport in server_ports and not ackf:
            key = (src, sport, dst, dport)
            if syn_of.get(key, (None,))[0] != seq:
                syn_of[key] = (seq, kinds)
                flows[(key, seq)] = set()
                if {WSCALE, SACK_OK} <= kinds and TSTAMP not in kinds:
                    out["syns_ws_sack_no_ts"] += 1
                else:
                    out["syns_other"] += 1
        elif sport in server_ports and ackf:
            key = (dst, dport, src, sport)
            if key not in syn_of:
                out["other_synacks"] += 1
                continue
            isn, syn_kinds = syn_of[key]
            offered = {WSCALE, SACK_OK} <= syn_kinds and TSTAMP not in syn_kinds
            if offered and MSS in kinds and not kinds & {WSCALE, SACK_OK, TSTAMP}:
                out["cookie_like_synacks"] += 1
                flows[(key, isn)].add("cookie")
            elif {MSS, WSCALE, SACK_OK} <= kinds:
                out["full_synacks"] += 1
                flows[(key, isn)].add("full")
            else:
                out["other_synacks"] += 1
                flows[(key, isn)].add("other")
    out["cookie_like_flows"] = sum(1 for v in flows.values() if "cookie" in v)
    out["mixed_flows"] = sum(1 for v in flows.values() if len(v) > 1)
    return out
