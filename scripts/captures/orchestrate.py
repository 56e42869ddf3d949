#!/usr/bin/env python3
"""Records one capture of scripts/make-captures and writes its expected files.

  orchestrate.py record NAME --out DIR --work DIR   (namespaces must exist)
  orchestrate.py readme --out DIR --work DIR        (README.md from the summaries)

Run from the host namespace as root. For NAME it sets the server namespace's
sysctls, enables tcp:tcp_send_reset and tcp:tcp_receive_reset in a private tracefs
instance (trace_clock mono), starts tcpdump and the server in rstd-srv, runs the
client in rstd-cli, then joins three views per connection:

  client view   client.py's log: addresses, thread id, times, result
  kernel view   tcp_send_reset events: a reply to a segment (skbaddr != 0) sent by a
                LISTEN socket or with no socket ("no-connection reset"), or an active
                abort of an existing socket (skbaddr == 0); tcp_receive_reset on the
                client side, matched by socket cookie
  server view   server.py's log of every accepted peer

A LISTEN socket's event carries the listener's address, not the client's, so such
an event is tied to the client connection whose thread (the event's pid: the reply
is generated in softirq context while that thread's send() transmits the ACK) was
inside that connection's lifetime at the event's time; failing that, to the only
reset connection alive at that time.

Expected incident (NAME.expected.csv): the client saw reset_after_connect, AND a
no-connection reset answered its handshake ACK (the server kernel's; the kernel of the
host the client steered that ACK to, in other-host; or the server namespace's nft
reject rule, in firewall-reject), AND the server kernel did not actively abort that
4-tuple, AND the server application never accepted it, AND the client's ACK was right.

NAME.expected-near-misses.csv (refused, app_abort, listener_close, wrong_ack) and
NAME.expected-origins.csv (same-stack, firewall-like, other-host per incident) come
from the same joined view plus the server's abort, listener-close and injector logs,
the raw client's own record, the nft rule counters and the other hosts' Tcp OutRsts;
the rules are in Tests/Captures/README.md (README_HEAD below). Any contradiction
between the views is printed as DISAGREEMENT and makes the command exit 1.
"""

import argparse
import collections
import csv
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import (CLI4, CLI6, NS_ALT, NS_ALT2, NS_CLI, NS_PREFIX, NS_RTR, NS_SRV, SRV4, SRV6,  # noqa: E402
                    norm_ip, ns_doc, read_jsonl)
import pcapcheck  # noqa: E402

TRACEFS = "/sys/kernel/tracing"
INSTANCE = TRACEFS + "/instances/%scaptures" % NS_PREFIX
SNAPLEN = 128
PY = sys.executable

# The server and clients of both overflow captures; only the sysctls differ.
OVERFLOW_SERVER = ["overflow", "--port", "8080", "--backlog", "8", "--accept-interval", "0.15", "--max-seconds", "60"]
OVERFLOW_CLIENT = ["overflow", "--port", "8080", "--waves", "4", "--count", "30", "--delay-min", "0.03",
                   "--delay-max", "0.12", "--connect-timeout", "2.5", "--read-timeout", "15", "--wave-gap", "1.0",
                   "--v6-share", "0.25"]

# firewall-reject: netfilter answers the handshake ACK to 8090 (ACK without SYN) with a TCP reset.
FIREWALL_NFT = """table inet rstd {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport 8090 tcp flags & (syn | ack) == ack counter reject with tcp reset
    }
}
"""
# near-misses: the raw-socket client's ports have no socket, so the client kernel would answer
# each SYN-ACK with a RST (no ACK flag); drop those. The raw client's own RST+ACK passes.
RAW_CLIENT_NFT = """table inet rstd {
    chain output {
        type filter hook output priority filter; policy accept;
        tcp sport 30200-30219 tcp flags & (rst | ack) == rst counter drop
    }
}
"""

# nflog: copy every TCP segment the server namespace receives or sends to NFLOG group 5. queue-threshold 1
# sends each message at once: by default the kernel batches them for up to a second, libpcap then
# stamps a whole batch with the time it read it, and at snap length 128 libpcap 1.10.3 kept only 4
# of about 60 records, one of them mangled.
NFLOG_NFT = """table inet rstd_nflog {
    chain input {
        type filter hook input priority filter; policy accept;
        meta l4proto tcp log group 5 queue-threshold 1
    }
    chain output {
        type filter hook output priority filter; policy accept;
        meta l4proto tcp log group 5 queue-threshold 1
    }
}
"""

SCENARIOS = {
    "reuseport-churn": dict(
        summary="SO_REUSEPORT group of 4 dual-stack listeners on [::]:8080, one worker thread each; "
                "a churner shuts one listener down and opens a new one every 50-100 ms. Each request "
                "takes the worker 20-60 ms, so connections also wait unaccepted in a queue. "
                "4 client threads, 200 connections (about 30% IPv6), each with the handshake ACK "
                "deferred (TCP_QUICKACK=0) and the request sent 20-100 ms after connect().",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["churn", "--port", "8080", "--listeners", "4", "--churn-min", "0.05",
                "--churn-max", "0.10", "--work-min", "0.02", "--work-max", "0.06", "--max-seconds", "60"],
        client=["churn", "--port", "8080", "--count", "200", "--threads", "4", "--delay-min", "0.02",
                "--delay-max", "0.10", "--v6-share", "0.3", "--max-seconds", "40"],
        ports=[8080]),
    "accept-overflow": dict(
        summary="One dual-stack listener on [::]:8080 with backlog 8 whose application accepts one "
                "connection every 150 ms. 4 waves of 30 concurrent clients (about 25% IPv6), 1 s apart, "
                "each with the handshake ACK deferred 30-120 ms (TCP_QUICKACK=0); connect timeout 2.5 s, "
                "read timeout 15 s.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 1,
                 "net.ipv4.tcp_syncookies": 0},
        server=OVERFLOW_SERVER,
        client=OVERFLOW_CLIENT,
        ports=[8080]),
    "syncookie-overflow": dict(
        summary="As accept-overflow (same listener, application and clients) but with "
                "tcp_abort_on_overflow=0 and tcp_syncookies=1 (the default): a full SYN queue is answered "
                "with cookie SYN-ACKs, and an ACK that finds the accept queue full is dropped (the SYN-ACK "
                "of a queued request is retransmitted) instead of answered with a RST.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=OVERFLOW_SERVER,
        client=OVERFLOW_CLIENT,
        ports=[8080]),
    "syncookie-no-timestamps": dict(
        summary="As syncookie-overflow (same listener, application, clients and server sysctls) but with TCP "
                "timestamps off in the CLIENT namespace (net.ipv4.tcp_timestamps=0), so every SYN offers MSS, "
                "SACK-permitted and window scale but no timestamps. Without a timestamp to hold them, Linux's "
                "syncookie SYN-ACK carries MSS only (no window scale, no SACK-permitted), while the SYN-ACK of "
                "a queued request carries MSS, SACK-permitted and window scale. Also writes "
                "syncookie-no-timestamps.expected-summary.csv (synacks_cookie_like).",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        client_sysctls={"net.ipv4.tcp_timestamps": 0},
        server=OVERFLOW_SERVER,
        client=OVERFLOW_CLIENT,
        ports=[8080],
        cookie_summary=True),
    "normal-confounders": dict(
        summary="Confounders, each 2-3 times over IPv4 and IPv6 (client.py role confounders): plain "
                "request/response (also with the ACK piggybacked on the request); SYN to closed port 8089; "
                "client SO_LINGER-0 abort at once and after a response; server SO_LINGER-0 abort right after "
                "accept (port 8081) and after a response (8082); server close() with the request unread (8087); "
                "client writing after the server's FIN "
                "(RST from the orphaned socket); out-of-window RST and RST+ACK injected by a raw socket in the "
                "server namespace (8085); 4-tuples used twice in a row (the client binds the same port with "
                "SO_REUSEADDR) after a client RST and after normal closes that left one side in TIME_WAIT; "
                "a SYN dropped by a full backlog-0 accept queue and retransmitted (8083); a "
                "handshake ACK dropped by TCP_DEFER_ACCEPT and the SYN-ACK retransmitted (8084); an "
                "unaccepted connection reset when its listener closes (8086). Plus 4 real incidents on 8086: "
                "the listener is closed (2) or closed and reopened (2) between the SYN-ACK and the deferred ACK.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["confounders"],
        ports=[8080, 8081, 8082, 8083, 8084, 8085, 8086, 8087, 8089]),
    "any-sll2": dict(
        summary="tcpdump -i any -y LINUX_SLL2 in the server namespace. 4 normal connections (one with the "
                "ACK piggybacked on the request), 2 real incidents on 8086 (IPv4: listener closed and reopened; "
                "IPv6: listener closed), 1 unaccepted connection reset by its listener's close (IPv6). The SLL2 "
                "interface indexes are those of the rstd-srv namespace (tcpdump on the host may print other names).",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["mini"],
        ports=[8080, 8086],
        iface="any", tcpdump=["-y", "LINUX_SLL2"]),
    "nanosecond": dict(
        summary="tcpdump --time-stamp-precision nano on the veth. Same traffic as any-sll2.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["mini"],
        ports=[8080, 8086],
        tcpdump=["--time-stamp-precision", "nano"]),
    "firewall-reject": dict(
        summary="An nftables rule in the server namespace (`tcp dport 8090 tcp flags & (syn | ack) == ack "
                "counter reject with tcp reset`, table inet) answers every segment to port 8090 that has ACK "
                "without SYN, so the handshake ACK to that open listener gets netfilter's RST: SYN, SYN-ACK, ACK, "
                "RST. 8 such connections (IPv4 and IPv6, handshake ACK deferred 50 ms and carrying the request); "
                "for contrast 4 real kernel incidents on 8086 (listener closed, or closed and reopened, between "
                "SYN-ACK and the deferred ACK) and 6 normal connections on 8080. Half of the connections of each "
                "kind set IP_TOS / IPV6_TCLASS 0x20 on the client socket: the kernel's RST echoes the ACK's TOS, "
                "netfilter's carries 0.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["firewall"],
        ports=[8080, 8086, 8090],
        server_nft=FIREWALL_NFT, firewall_ports=[8090]),
    "other-host": dict(
        summary="Captured on the CLIENT side: tcpdump on the bridge rstd-br in rstd-cli, which holds the client's "
                "address and has three ports: a veth to rstd-srv (the server), a veth to rstd-alt (a second host "
                "with the same addresses 10.77.0.2 and fd77::2 and no listener, same L2 segment) and a veth to "
                "rstd-rtr, a router in front of rstd-alt2 (the same addresses again, no listener). For 8 "
                "connections to 8080 (IPv4 and IPv6) the client defers its handshake ACK (TCP_QUICKACK=0), and "
                "50 ms after connect() points its static neighbour entries for 10.77.0.2 and fd77::2 at rstd-alt's "
                "MAC (4 connections) or at the router's MAC (4) before sending the request, and back once the "
                "connection is over: that host's kernel answers the ACK with its no-connection RST (from behind "
                "the router with TTL / hop limit 63 and the router's source MAC). For contrast 3 same-stack "
                "incidents on 8086 (listener closed, or closed and reopened, between SYN-ACK and the deferred ACK) "
                "and 6 normal connections.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["otherhost"],
        ports=[8080, 8086],
        topology="other-host", capture_ns=NS_CLI, iface="rstd-br"),
    "near-misses": dict(
        summary="Near misses, IPv4 and IPv6: one listener close() that resets 3 unaccepted children (8086, two "
                "IPv4, one IPv6) and one that resets 2 (IPv6), and two that reset a lone child; application "
                "aborts after accept before any byte: SO_LINGER 0 at once (8081), SO_LINGER 0 after 50-200 ms "
                "with the request unread (8088), close() with the request unread (8087); 5 handshake ACKs with a "
                "wrong acknowledgement number (SYN-ACK seq + 1 + 1000, 0, +1, +65536) sent by a raw-socket "
                "client from ports 30200-30204, which the server's LISTEN socket answers with RST seq = that "
                "number (an nft rule in the client namespace drops the client kernel's own RST to the SYN-ACK; "
                "afterwards the raw client removes the server's request socket with a RST+ACK); SYNs to the "
                "closed port 8089; 4 normal connections.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["nearmiss", "--raw-port-base", "30200"],
        ports=[8080, 8081, 8086, 8087, 8088, 8089],
        client_nft=RAW_CLIENT_NFT),
    "vxlan-ipv4": dict(
        summary="The client and server namespaces are joined by VXLAN only: a veth pair rstd-uc / rstd-us "
                "carries the IPv4 underlay (10.99.0.1 / 10.99.0.2), and on it a VXLAN device in each namespace "
                "(VNI 4242, UDP destination port 4789, static remote, no learning) holds the usual inner "
                "addresses 10.77.0.1 / fd77::1 and 10.77.0.2 / fd77::2. tcpdump captures the UNDERLAY veth in "
                "rstd-srv, so every TCP segment is inside Ethernet / IPv4 / UDP 4789 / VXLAN / Ethernet. "
                "3 normal connections (one with the ACK piggybacked on the request), 4 real incidents on 8086 "
                "(IPv4 and IPv6: the listener closed, or closed and reopened, between SYN-ACK and the deferred "
                "ACK), 1 unaccepted IPv4 connection reset by its listener's close, 1 more normal one. "
                "expected.csv has a fifth column, `tunnel`: `vxlan vni=4242` on every row. Snap length 192, "
                "since 50 bytes of encapsulation come before the inner frame. The outer UDP checksum is non-zero "
                "but, as captured on the veth, wrong (the kernel leaves it to checksum offload, as it does the "
                "inner TCP checksums): a decoder must not validate it.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["tunnel"],
        ports=[8080, 8086],
        topology="vxlan4", iface="rstd-us", snaplen=192, tunnel="vxlan vni=4242"),
    "vxlan-ipv6": dict(
        summary="As vxlan-ipv4, but the underlay is IPv6 (fd99::1 / fd99::2 on the veth pair) and the VXLAN "
                "devices use VNI 77 and UDP destination port 8472 (the Linux kernel's historical default, which "
                "tshark decodes as VXLAN only when told: `-d udp.port==8472,vxlan`). Every TCP segment is "
                "inside Ethernet / IPv6 / UDP 8472 / VXLAN / Ethernet (70 bytes before the inner frame; the "
                "UDP checksum, which IPv6 requires, is left to offload as in vxlan-ipv4, so wrong as captured). Same traffic as vxlan-ipv4. `tunnel`: "
                "`vxlan vni=77`. Snap length 192.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["tunnel"],
        ports=[8080, 8086],
        topology="vxlan6", iface="rstd-us", snaplen=192, tunnel="vxlan vni=77"),
    "nflog": dict(
        summary="Linux NFLOG, for real: an nftables table in the server namespace logs every TCP segment of "
                "the input and output hooks to netlink group 5 (`meta l4proto tcp log group 5 queue-threshold 1`, "
                "table inet rstd_nflog; nfnetlink_log is built into this kernel; without queue-threshold 1 the "
                "kernel batches messages for up to a second and libpcap 1.10.3 lost most records at snap length "
                "128), and tcpdump captures `-i nflog:5` there, so "
                "each record is an NFLOG header (family, version, resource id 5) and TLVs (prefix, hardware "
                "protocol, hook, the IP packet in NFULA_PAYLOAD ...), link type NFLOG (239), no link-layer header; "
                "snap length 256, because the attributes before the packet take up to 104 bytes. "
                "Same traffic as vxlan-ipv4 over the plain veth: 3 normal connections, 4 real incidents on 8086 "
                "(2 IPv4, 2 IPv6), 1 unaccepted IPv4 connection reset by its listener's close, 1 more normal one. "
                "The log rule only copies packets to userspace; it changes nothing on the wire.",
        sysctls={"net.ipv4.tcp_migrate_req": 0, "net.ipv4.tcp_abort_on_overflow": 0,
                 "net.ipv4.tcp_syncookies": 1},
        server=["confounders", "--max-seconds", "60"],
        client=["tunnel"],
        ports=[8080, 8086],
        capture_nft=NFLOG_NFT, iface="nflog:5", snaplen=256),
}
ORDER = list(SCENARIOS)


def netns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def loud(msg):
    bar = "!" * 78
    print("%s\nDISAGREEMENT: %s\n%s" % (bar, msg, bar), file=sys.stderr, flush=True)


def wait_line(stream, needle, timeout):
    """Reads lines from a pipe until one contains needle; returns all lines read."""
    end = time.monotonic() + timeout
    lines = []
    while time.monotonic() < end:
        r, _, _ = select.select([stream], [], [], 0.1)
        if r:
            line = stream.readline()
            if not line:
                break
            lines.append(line)
            if needle in line:
                return lines
    raise RuntimeError("did not see %r within %.0f s: %r" % (needle, timeout, lines))


# ---------------------------------------------------------------- tracefs


def tw(name, value):
    with open(os.path.join(INSTANCE, name), "w") as f:
        f.write(value)


def trace_start():
    if not os.path.isdir(INSTANCE):
        os.mkdir(INSTANCE)
    tw("tracing_on", "0")
    tw("trace_clock", "mono")
    tw("buffer_size_kb", "2048")
    tw("trace", "")
    for ev in ("tcp_send_reset", "tcp_receive_reset"):
        tw("events/tcp/%s/enable" % ev, "1")
    tw("tracing_on", "1")


def trace_stop():
    tw("tracing_on", "0")
    with open(os.path.join(INSTANCE, "trace")) as f:
        text = f.read()
    for ev in ("tcp_send_reset", "tcp_receive_reset"):
        tw("events/tcp/%s/enable" % ev, "0")
    return text


TRACE_LINE = re.compile(r"-(?P<pid>\d+)\s+\[\d+\]\s+(?:\S+\s+)?(?P<ts>\d+\.\d+):\s+"
                        r"(?P<event>tcp_send_reset|tcp_receive_reset):\s+(?P<body>.*)$")


def sockaddr(text):
    """'[fd77::2]:8080', '10.77.0.2:8080', '[::]:0' -> (ip, port)."""
    if text.startswith("["):
        ip, port = text[1:].split("]:")
    else:
        ip, port = text.rsplit(":", 1)
    return norm_ip(ip), int(port)


def parse_trace(text):
    events = []
    for line in text.splitlines():
        m = TRACE_LINE.search(line)
        if not m:
            continue
        kv = dict(p.split("=", 1) for p in m.group("body").split() if "=" in p)
        ev = dict(event=m.group("event"), pid=int(m.group("pid")), ts=float(m.group("ts")), line=line.strip())
        if ev["event"] == "tcp_send_reset":
            ev["skb"] = int(kv["skbaddr"], 16) != 0
            ev["sk"] = int(kv["skaddr"], 16) != 0
            ev["src"] = sockaddr(kv["src"])
            ev["dest"] = sockaddr(kv["dest"])
            ev["state"] = kv["state"]
            ev["reason"] = kv.get("reason", "-")  # the field exists since Linux 6.10
        else:
            fam6 = kv["family"] == "AF_INET6"
            ev["src"] = (norm_ip(kv["saddrv6"] if fam6 else kv["saddr"]), int(kv["sport"]))
            ev["dest"] = (norm_ip(kv["daddrv6"] if fam6 else kv["daddr"]), int(kv["dport"]))
            ev["cookie"] = int(kv["sock_cookie"], 16)
        events.append(ev)
    return events


# ---------------------------------------------------------------- recording


COUNTERS = ("ListenOverflows", "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop", "SyncookiesSent",
            "SyncookiesRecv", "SyncookiesFailed", "TCPDeferAcceptDrop", "TCPAbortOnData", "TCPAbortOnClose",
            "TCPSynRetrans", "TCPMigrateReqSuccess", "TCPMigrateReqFailure")


def tcpext(ns=NS_SRV):
    """All TcpExt counters of a namespace (/proc/net/netstat)."""
    out = subprocess.run(netns(ns, "cat", "/proc/net/netstat"), check=True, capture_output=True,
                         text=True).stdout.splitlines()
    got = {}
    for names, values in zip(out[0::2], out[1::2]):
        if names.startswith("TcpExt:"):
            got = dict(zip(names.split()[1:], map(int, values.split()[1:])))
    return got


def server_counters():
    """Non-zero TcpExt counters of the server namespace (/proc/net/netstat)."""
    got = tcpext(NS_SRV)
    return {k: got[k] for k in COUNTERS if got.get(k)}


def mac(ns, dev):
    out = subprocess.run(netns(ns, "cat", "/sys/class/net/%s/address" % dev), check=True, capture_output=True,
                         text=True)
    return out.stdout.strip()


def out_rsts(ns):
    """Tcp OutRsts of a namespace (/proc/net/snmp): every RST its kernel sent."""
    out = subprocess.run(netns(ns, "cat", "/proc/net/snmp"), check=True, capture_output=True,
                         text=True).stdout.splitlines()
    for names, values in zip(out[0::2], out[1::2]):
        if names.startswith("Tcp:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:])))["OutRsts"]
    raise RuntimeError("no Tcp OutRsts in %s" % ns)


def nft_counter(ns):
    """Packets counted by the single rule of table inet rstd in a namespace."""
    out = subprocess.run(netns(ns, "nft", "list", "table", "inet", "rstd"), check=True, capture_output=True,
                         text=True).stdout
    counts = [int(n) for n in re.findall(r"counter packets (\d+)", out)]
    if len(counts) != 1:
        raise RuntimeError("expected one nft counter in %s: %r" % (ns, out))
    return counts[0]


def set_sysctls(sysctls, ns=NS_SRV):
    for key, value in sysctls.items():
        subprocess.run(netns(ns, "sysctl", "-qw", "%s=%s" % (key, value)), check=True)
    got = {}
    for key in sysctls:
        out = subprocess.run(netns(ns, "sysctl", "-n", key), check=True, capture_output=True, text=True)
        got[key] = int(out.stdout.strip())
    if got != {k: int(v) for k, v in sysctls.items()}:
        raise RuntimeError("sysctls not applied: %r" % got)
    return got


def record(name, out_dir, work_dir):
    sc = SCENARIOS[name]
    work = os.path.join(work_dir, name)
    os.makedirs(work, exist_ok=True)
    client_log, server_log = os.path.join(work, "client.jsonl"), os.path.join(work, "server.jsonl")
    ctl = os.path.join(work, "ctl.sock")
    tmp_pcap = os.path.join(work, name + ".pcap")
    for p in (client_log, server_log, tmp_pcap):
        if os.path.exists(p):
            os.unlink(p)
    sysctls = set_sysctls(sc["sysctls"])
    client_sysctls = set_sysctls(sc["client_sysctls"], NS_CLI) if sc.get("client_sysctls") else {}
    iface = sc.get("iface", "rstd-s")
    cap_ns = sc.get("capture_ns", NS_SRV)
    for ns, key in ((NS_SRV, "server_nft"), (NS_CLI, "client_nft"), (NS_SRV, "capture_nft")):
        if sc.get(key):
            subprocess.run(netns(ns, "nft", "-f", "-"), input=sc[key], text=True, check=True)
    client_args = list(sc["client"])
    if sc.get("topology") == "other-host":
        client_args += ["--dev", "rstd-br", "--home-mac", mac(NS_SRV, "rstd-s"), "--alt-mac", mac(NS_ALT, "rstd-a"),
                        "--rtr-mac", mac(NS_RTR, "rstd-r0")]
        out_rsts_before = {ns: out_rsts(ns) for ns in (NS_ALT, NS_ALT2)}
    procs = []
    cookies_before = tcpext(NS_SRV).get("SyncookiesSent", 0)
    try:
        trace_start()
        tcpdump = subprocess.Popen(
            netns(cap_ns, "tcpdump", "-i", iface, "-s", str(sc.get("snaplen", SNAPLEN)), "--immediate-mode", "-U", "-Z", "root",
                  "-w", tmp_pcap, *sc.get("tcpdump", [])),
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        procs.append(tcpdump)
        wait_line(tcpdump.stderr, "listening on", 10)
        server = subprocess.Popen(
            netns(NS_SRV, PY, os.path.join(HERE, "server.py"), *sc["server"], "--log", server_log, "--ctl", ctl),
            stdout=subprocess.PIPE, text=True)
        procs.append(server)
        wait_line(server.stdout, "READY", 10)
        t0 = time.monotonic()
        subprocess.run(netns(NS_CLI, PY, os.path.join(HERE, "client.py"), *client_args, "--log", client_log,
                             "--ctl", ctl), check=True, timeout=50)
        client_seconds = time.monotonic() - t0
        counters = server_counters()
        views = dict(firewall_ports=set(sc.get("firewall_ports", [])))
        if sc.get("server_nft"):
            views["firewall_counter"] = nft_counter(NS_SRV)
        if sc.get("client_nft"):
            views["client_nft_counter"] = nft_counter(NS_CLI)
        if sc.get("topology") == "other-host":
            views["alt_out_rsts"] = {ns: out_rsts(ns) - out_rsts_before[ns] for ns in (NS_ALT, NS_ALT2)}
        time.sleep(0.5)  # let closing handshakes finish
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        time.sleep(0.2)
        trace_text = trace_stop()
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(10)
        tcpdump_err = tcpdump.stderr.read()
        cookies_sent = tcpext(NS_SRV).get("SyncookiesSent", 0) - cookies_before
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.path.isdir(INSTANCE):
            tw("tracing_on", "0")
    with open(os.path.join(work, "trace.txt"), "w") as f:
        f.write(trace_text)
    m = re.search(r"(\d+) packets? dropped by kernel", tcpdump_err)
    kernel_drops = int(m.group(1)) if m else None
    problems = []
    if kernel_drops:
        problems.append("%s: tcpdump reports %d packets dropped by kernel" % (name, kernel_drops))
    m1 = re.search(r"(\d+) packets? captured", tcpdump_err)
    m2 = re.search(r"(\d+) packets? received by filter", tcpdump_err)
    if not (m1 and m2) or m1.group(1) != m2.group(1):
        problems.append("%s: tcpdump did not write every packet it received: %r" % (name, tcpdump_err))

    conns = [r for r in read_jsonl(client_log) if r.get("ev") == "conn"]
    server_events = read_jsonl(server_log)
    events = parse_trace(trace_text)
    result = analyze(name, sc, conns, server_events, events, views)

    write_csv(os.path.join(work, name + ".client.csv"),
              ["client_ip", "client_port", "server_ip", "server_port", "result"],
              [(c["client_ip"], c["client_port"], c["server_ip"], c["server_port"], c["result"])
               for c in sorted(conns, key=lambda c: c["t_start"])])
    expected = sorted(result["expected"], key=lambda k: (k[1], k[0]))
    if sc.get("tunnel"):
        # Tunnel captures: the fifth column names the encapsulation, outermost first (the contract is in
        # Tests/Captures/README.md, "Files per capture").
        write_csv(os.path.join(work, name + ".expected.csv"),
                  ["client_ip", "client_port", "server_ip", "server_port", "tunnel"],
                  [(*k, sc["tunnel"]) for k in expected])
    else:
        write_csv(os.path.join(work, name + ".expected.csv"),
                  ["client_ip", "client_port", "server_ip", "server_port"], expected)
    near = sorted(result["near_misses"], key=lambda r: (r[1], r[3], r[0]))
    write_csv(os.path.join(work, name + ".expected-near-misses.csv"),
              ["client_ip", "client_port", "server_ip", "server_port", "kind"], near)
    origins = sorted(result["origins"], key=lambda r: (r[1], r[0]))
    if [r[:4] for r in origins] != expected:
        problems.append("%s: origins do not list exactly the expected incidents" % name)
    write_csv(os.path.join(work, name + ".expected-origins.csv"),
              ["client_ip", "client_port", "server_ip", "server_port", "rst_origin"], origins)
    final_pcap = tmp_pcap

    # Wire check (information only; the expected file is already written).
    wire = pcapcheck.signature_flows(final_pcap, set(sc["ports"]))
    missing = sorted(set(expected) - wire)
    extra = sorted(wire - set(expected))
    for k in extra:
        problems.append("%s: %s shows SYN/SYN-ACK/ACK/RST(seq=ISN+1, no ACK) on the wire but is not an "
                        "expected incident" % (name, k))
    for k in missing:
        problems.append("%s: expected incident %s has no SYN/SYN-ACK/ACK/RST(seq=ISN+1, no ACK) on the wire"
                        % (name, k))
    # Near misses on the wire (information only, like the check above).
    shapes = pcapcheck.rst_shapes(final_pcap, set(sc["ports"]))
    for row in near:
        why = pcapcheck.near_miss_mismatch(shapes.get(tuple(row[:4])), row[4])
        if why:
            problems.append("%s: near miss %s (%s) on the wire: %s" % (name, tuple(row[:4]), row[4], why))
    cookie = None
    if sc.get("cookie_summary"):
        # synacks_cookie_like from the server kernel's own count of cookie SYN-ACKs it sent
        # (TcpExt SyncookiesSent over the run), checked against a reading of the wire.
        census = pcapcheck.synack_option_census(final_pcap, set(sc["ports"]))
        cookie = dict(census, syncookies_sent=cookies_sent)
        if census["cookie_like_synacks"] != cookies_sent:
            problems.append("%s: SyncookiesSent grew by %d, but the capture holds %d cookie-like SYN-ACKs"
                            % (name, cookies_sent, census["cookie_like_synacks"]))
        if census["cookie_like_flows"] != census["cookie_like_synacks"]:
            problems.append("%s: %d cookie-like SYN-ACKs on %d attempts (one per attempt expected)"
                            % (name, census["cookie_like_synacks"], census["cookie_like_flows"]))
        if census["mixed_flows"] or census["other_synacks"] or census["syns_other"]:
            problems.append("%s: unexpected handshake options: %r" % (name, census))
        if cookies_sent <= 0:
            problems.append("%s: no syncookie SYN-ACK was sent (the SYN queue never overflowed)" % name)
        write_csv(os.path.join(work, name + ".expected-summary.csv"), ["metric", "value"],
                  [("synacks_cookie_like", cookies_sent)])
    census = None
    if sc.get("tunnel"):
        # Every TCP segment must sit inside the scenario's tunnel (information for the README too).
        census = pcapcheck.tunnel_census(final_pcap)
        if set(census) != {sc["tunnel"]}:
            problems.append("%s: TCP segments by encapsulation %r, expected all inside %r"
                            % (name, census, sc["tunnel"]))
    for p in problems:
        loud(p)
    result["disagreements"].extend(problems)
    info = pcapcheck.summary(final_pcap)
    delays = pcapcheck.handshake_ack_delays(final_pcap, set(sc["ports"]))
    ms = sorted(d * 1000 for d, _ in delays.values())
    ack_delay = dict(flows=len(ms), with_data=sum(1 for _, data in delays.values() if data),
                     min_ms=round(ms[0], 3) if ms else None, median_ms=round(ms[len(ms) // 2], 3) if ms else None,
                     max_ms=round(ms[-1], 3) if ms else None)
    summary = dict(
        name=name, summary=sc["summary"], sysctls=sysctls, client_sysctls=client_sysctls, cookie=cookie,
        iface=iface, tcpdump_args=sc.get("tcpdump", []), tunnel_census=census,
        snaplen=sc.get("snaplen", SNAPLEN), linktype=info["linktype"], precision=info["precision"], packets=info["packets"],
        bytes=os.path.getsize(final_pcap), kernel_drops=kernel_drops, client_seconds=round(client_seconds, 1),
        connections=len(conns), results=dict(collections.Counter(c["result"] for c in conns)),
        incidents=len(expected), server_counters=counters, ack_delay=ack_delay,
        near_misses=dict(collections.Counter(r[4] for r in near)),
        origins=dict(collections.Counter(r[4] for r in origins)),
        capture_ns=cap_ns, firewall_counter=views.get("firewall_counter"),
        client_nft_counter=views.get("client_nft_counter"), alt_out_rsts=views.get("alt_out_rsts"),
        wire_signature_not_expected=[list(k) for k in extra],
        wire_missing=[list(k) for k in missing], **result["stats"])
    summary["labels_steered"] = dict(collections.Counter(c["steered"] for c in conns if c.get("steered")))
    summary["churns"] = sum(e.get("churns", 0) for e in server_events if e.get("ev") == "churn_done")
    with open(os.path.join(work_dir, "summary-%s.json" % name), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    # Publish the capture, its two CSVs and its README section together.
    suffixes = [".pcap", ".client.csv", ".expected.csv", ".expected-near-misses.csv", ".expected-origins.csv"]
    if cookie is not None:
        suffixes.append(".expected-summary.csv")
    for suffix in suffixes:
        os.replace(os.path.join(work, name + suffix), os.path.join(out_dir, name + suffix))
    readme(out_dir, work_dir)
    print_summary(summary)
    return result["disagreements"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------- analysis

OURS = {SRV4, SRV6, CLI4, CLI6}
NO_CONNECTION_STATES = {"UNKNOWN", "TCP_LISTEN", "TCP_NEW_SYN_RECV"}


def conn_key(c):
    return (c["client_ip"], c["client_port"], c["server_ip"], c["server_port"])


def latest_before(cands, ts):
    """The connection on a 4-tuple that most recently started before ts."""
    best = None
    for c in cands:
        if c["t_start"] <= ts + 0.001 and (best is None or c["t_start"] > best["t_start"]):
            best = c
    return best


def analyze(name, sc, conns, server_events, events, extra=None):
    extra = extra or {}
    ports = set(sc["ports"])
    fw_ports = extra.get("firewall_ports", set())
    tids = {c["tid"] for c in conns}
    by_key = collections.defaultdict(list)
    for c in conns:
        c.update(active=[], noconn=[], socket_reply=[], client_sent=[], alt=[], rx=0, accepted=False,
                 aborts=[], injects=[], first_data=[])
        by_key[conn_key(c)].append(c)
    by_cookie = {c["cookie"]: c for c in conns if "cookie" in c}

    closes = []  # listener closes logged by the server: port, closing thread, [t0, t1]
    for e in server_events:
        ev = e.get("ev")
        if ev == "listener_close" and "tid" in e:
            closes.append(dict(e, children=[]))
        if ev not in ("accept", "abort", "inject", "first_data"):
            continue
        local = e.get("local_ip") or (SRV6 if ":" in e["peer_ip"] else SRV4)
        c = latest_before(by_key.get((e["peer_ip"], e["peer_port"], local, e["server_port"]), []), e["t"])
        if c is None:
            continue
        if ev == "accept":
            c["accepted"] = True
        elif ev == "abort":
            c["aborts"].append(e)
        elif ev == "inject":
            c["injects"].append(e)
        else:
            c["first_data"].append(e)

    for e in events:
        if e["event"] == "tcp_receive_reset" and e["cookie"] in by_cookie:
            by_cookie[e["cookie"]].setdefault("rx_ts", e["ts"])

    histogram = collections.Counter()
    attribution = collections.Counter()
    disagreements = []
    unattributed = []
    deferred = []  # LISTEN replies that no thread id ties to a connection
    for e in events:
        if e["event"] == "tcp_receive_reset":
            c = by_cookie.get(e["cookie"])
            if c:
                c["rx"] += 1
            continue
        (sip, sport), (dip, dport) = e["src"], e["dest"]
        kind = "active" if not e["skb"] else ("no-connection reply" if e["state"] in NO_CONNECTION_STATES
                                                else "reply from socket")
        if dport != 0 and sip in (SRV4, SRV6):
            # other-host: the tracepoint is global, and rstd-alt / rstd-alt2 own the server's
            # addresses. Their replies are told apart by the client's own steering record: the
            # connection was steered to that host, and the event lies within the steering window.
            c = latest_before(by_key.get((dip, dport, sip, sport), []), e["ts"])
            if c and c.get("steered") and c["t_steer"] - 0.001 <= e["ts"] <= c.get("t_unsteer", c["t_end"]) + 0.001:
                histogram[("other host " + c["steered"], kind, e["state"], e["reason"])] += 1
                c["alt"].append(e)
                attribution["4-tuple+steering"] += 1
                continue
        if dport == 0:  # LISTEN socket: the event carries the listener's address only
            if sport not in ports and e["pid"] not in tids:
                continue  # someone else's listener
            side = "server"
        elif sip in (SRV4, SRV6):
            side = "server"
        elif sip in (CLI4, CLI6):
            side = "client"
        else:
            continue  # another namespace's traffic
        histogram[(side, kind, e["state"], e["reason"])] += 1
        if side == "client":
            c = latest_before(by_key.get((sip, sport, dip, dport), []), e["ts"])
            if c:
                c["client_sent"].append(e)
            continue
        if dport != 0:
            c = latest_before(by_key.get((dip, dport, sip, sport), []), e["ts"])
            how = "4-tuple"
        else:
            c, how = by_thread(e, conns)
            if c is None:
                deferred.append((e, kind))
                continue
        if c is None:
            unattributed.append(e)
            continue
        attribution[how] += 1
        {"active": c["active"], "no-connection reply": c["noconn"],
         "reply from socket": c["socket_reply"]}[kind].append(e)
        if how == "pid+time" and not in_reset_window(e, c):
            disagreements.append("%s: %s tied by thread id to %s, outside that connection's send-to-RST "
                                 "window" % (name, e["line"], conn_key(c)))
    for e, kind, c in by_time(deferred, conns):
        if c is None:
            unattributed.append(e)
            continue
        attribution["time"] += 1
        {"active": c["active"], "no-connection reply": c["noconn"],
         "reply from socket": c["socket_reply"]}[kind].append(e)

    # Listener closes: an unaccepted child's active reset is sent inside its listener's
    # close(), in the closing thread (event pid = that thread, time within [t0, t1]).
    for c in conns:
        if c["accepted"]:
            continue
        for e in c["active"]:
            hits = [cl for cl in closes if cl["port"] == e["src"][1] and cl["tid"] == e["pid"]
                    and cl["t0"] - 0.002 <= e["ts"] <= cl["t1"] + 0.002]
            if len(hits) == 1:
                hits[0]["children"].append(c)
                c["closed_by"] = hits[0]
            else:
                disagreements.append("%s: active reset of unaccepted %s matches %d logged listener closes: %s"
                                     % (name, conn_key(c), len(hits), e["line"]))

    expected, near_misses, origins = [], [], []
    labels = collections.Counter()
    fw_conns = 0
    steered = collections.Counter()
    for c in sorted(conns, key=lambda c: c["t_start"]):
        key = conn_key(c)
        reset = c["result"] == "reset_after_connect"
        fw = c["server_port"] in fw_ports
        noconn = c["noconn"] or c["alt"]
        desc = "%s %s result=%s" % (c["kind"], key, c["result"])
        incident = (reset and (bool(noconn) or fw) and not c["active"] and not c["accepted"]
                    and not c.get("raw"))
        c["incident"] = incident
        if incident:
            expected.append(key)
            origin = "firewall-like" if fw else "other-host" if c["alt"] else "same-stack"
            origins.append(key + (origin,))
        labels[label(c)] += 1
        server_any = c["noconn"] or c["active"] or c["socket_reply"]
        if reset and not (server_any or c["alt"] or fw):
            disagreements.append("%s: client saw a reset but the server kernel sent none for it" % desc)
        if reset and c["rx"] == 0:
            disagreements.append("%s: client saw a reset but its kernel logged no tcp_receive_reset" % desc)
        if c["noconn"] and c["result"] not in ("reset_after_connect", "refused", "raw_reset"):
            disagreements.append("%s: server kernel sent a no-connection reset, client saw %s"
                                 % (desc, c["result"]))
        if c["noconn"] and (c["active"] or c["accepted"]) and c["result"] != "refused":
            disagreements.append("%s: no-connection reset AND (active abort=%d, accepted=%s)"
                                 % (desc, len(c["active"]), c["accepted"]))
        if fw:
            fw_conns += 1
            if not (reset and not server_any and not c["accepted"]):
                disagreements.append("%s: firewalled port, but result %s, server kernel resets %d, accepted %s"
                                     % (desc, c["result"], len(server_any), c["accepted"]))
        if c.get("steered"):
            steered[c["steered"]] += 1
            if not (reset and len(c["alt"]) == 1 and not server_any):
                disagreements.append("%s: steered to %s, but %d resets from that host, %d from the server"
                                     % (desc, c["steered"], len(c["alt"]), len(server_any)))
        elif c["alt"]:
            disagreements.append("%s: not steered, but tied to another host's reset" % desc)

        # Near misses (one kind per attempt).
        kind = None
        if c["result"] == "refused":
            kind = "refused"
        elif reset and c["active"] and c["accepted"]:
            if c["aborts"] and all(a.get("bytes_sent") == 0 for a in c["aborts"]):
                kind = "app_abort"
            else:
                disagreements.append("%s: accepted and reset by the server, but the application logged no "
                                     "abort before any byte" % desc)
        elif reset and c["active"] and "closed_by" in c:
            kind = "listener_close" if len(c["closed_by"]["children"]) >= 2 else "app_abort"
        elif c.get("raw"):
            wrong = c.get("ack_sent") is not None and c["ack_sent"] != (c["synack_seq"] + 1) & 0xFFFFFFFF
            if c["result"] == "raw_reset" and wrong and c["rst_seq"] == c["ack_sent"] and c["noconn"] \
                    and not c["active"] and not c["accepted"]:
                kind = "wrong_ack"
            else:
                disagreements.append("%s: raw client: ack sent %s, RST seq %s, server no-connection resets %d"
                                     % (desc, c.get("ack_sent"), c.get("rst_seq"), len(c["noconn"])))
        elif c["injects"] and not incident:
            # The injector's own record: a RST whose seq is not the server's snd_nxt (which is
            # SYN-ACK seq + 1 while the server has sent no byte), sent before the first reply byte.
            first = min((d["t"] for d in c["first_data"]), default=float("inf"))
            inj = [i for i in c["injects"] if i["t_sent"] < first and i["rst_seq"] != i["snd_nxt"]]
            if inj:
                kind = "wrong_ack"
        if kind:
            near_misses.append(key + (kind,))
    for e in unattributed:
        disagreements.append("%s: kernel reset not attributable to any client connection: %s" % (name, e["line"]))
    seen = collections.Counter(expected)
    for k, n in seen.items():
        if n > 1:
            disagreements.append("%s: 4-tuple %s is an incident %d times" % (name, k, n))
    seen = collections.Counter(r[:4] for r in near_misses)
    for k, n in seen.items():
        if n > 1:
            disagreements.append("%s: 4-tuple %s is a near miss %d times" % (name, k, n))
    if "firewall_counter" in extra and extra["firewall_counter"] != fw_conns:
        disagreements.append("%s: the nft reject rule counted %d packets for %d connections to port(s) %s"
                             % (name, extra["firewall_counter"], fw_conns, sorted(fw_ports)))
    if "alt_out_rsts" in extra:
        got = extra["alt_out_rsts"]
        want = {NS_ALT: steered["alt-l2"], NS_ALT2: steered["alt-router"]}
        if got != want:
            disagreements.append("%s: Tcp OutRsts of the other hosts %s, steered connections %s" % (name, got, want))
    listener_closes = [len(cl["children"]) for cl in closes if cl["children"]]
    for d in disagreements:
        loud(d)
    stats = dict(
        reset_events=[dict(side=s, kind=k, state=st, reason=r, count=n)
                      for (s, k, st, r), n in sorted(histogram.items())],
        attribution=dict(attribution), labels=dict(labels), disagreements=disagreements,
        accepted=sum(1 for c in conns if c["accepted"]), listener_close_children=sorted(listener_closes))
    return dict(expected=expected, near_misses=near_misses, origins=origins, stats=stats,
                disagreements=disagreements)


def by_thread(e, conns):
    """A LISTEN socket's reply carries no client address. It is generated in softirq
    context, normally inside the client thread's own send() of the ACK, so the event's
    pid is that thread: tie it to that thread's connection alive at that moment."""
    ts = e["ts"]
    cands = [c for c in conns if c["tid"] == e["pid"] and c["t_start"] <= ts <= c["t_end"]]
    if len(cands) == 1:
        return cands[0], "pid+time"
    return None, None


def in_reset_window(e, c):
    """The event lies between the client's first chance to send the ACK and the client's
    own receipt of a RST (tcp_receive_reset), or its end if it logged none."""
    return c.get("t_send", c["t_start"]) - 0.001 <= e["ts"] <= c.get("rx_ts", c["t_end"])


def by_time(deferred, conns):
    """Fallback when softirq ran elsewhere (e.g. ksoftirqd): a reply must lie between the
    moment its client could send the ACK and that client's own receipt of a RST. Events
    with a single candidate are tied first, which can leave single candidates for others;
    whatever stays ambiguous is returned with None."""
    taken = {id(c) for c in conns if c["noconn"]}
    cands = []
    for e, kind in deferred:
        cands.append([c for c in conns if c["result"] in ("reset_after_connect", "raw_reset")
                      and c["server_port"] == e["src"][1]
                      and in_reset_window(e, c)])
    chosen = [None] * len(deferred)
    for _ in range(len(deferred)):
        progress = False
        for i, cs in enumerate(cands):
            if chosen[i] is None:
                left = [c for c in cs if id(c) not in taken]
                if len(left) == 1:
                    chosen[i] = left[0]
                    taken.add(id(left[0]))
                    progress = True
        if not progress:
            break
    return [(e, kind, c) for (e, kind), c in zip(deferred, chosen)]


def label(c):
    r = c["result"]
    if c["incident"] and c["alt"]:
        return "incident (another host's no-connection reset, steered ACK, never accepted)"
    if c["incident"] and not c["noconn"]:
        return "incident (netfilter reset of the handshake ACK, never accepted)"
    if c["incident"]:
        return "incident (no-connection reset, never accepted)"
    if r == "raw_reset":
        return "raw client, wrong ack number: RST from the LISTEN socket"
    if r == "reset_after_connect":
        if c["active"] and c["accepted"]:
            return "reset_after_connect: server application abort (RST+ACK)"
        if c["active"]:
            return "reset_after_connect: unaccepted connection aborted by listener close (RST+ACK)"
        return "reset_after_connect: other"
    if r == "response" and c["active"]:
        return "response, then server abort (RST+ACK)"
    if r == "response" and c["socket_reply"]:
        return "response, then RST from the server's socket"
    if r == "refused":
        return "refused (no-connection RST+ACK to the SYN)" if c["noconn"] else "refused"
    return r


def print_summary(s):
    print("== %s: %d bytes, %d packets, %d connections, results %s, incidents %d"
          % (s["name"], s["bytes"], s["packets"], s["connections"], s["results"], s["incidents"]))
    print("   origins: %s; near misses: %s" % (counts(s["origins"]) or "none", counts(s["near_misses"]) or "none"))
    for e in s["reset_events"]:
        print("   reset events: %(side)s %(kind)s state=%(state)s reason=%(reason)s x%(count)d" % e)
    print("   attribution: %s; labels: %s" % (s["attribution"], s["labels"]))
    print("   server TcpExt counters: %s" % s["server_counters"])
    if s["wire_signature_not_expected"]:
        print("   wire shape without incident: %s" % s["wire_signature_not_expected"])


# ---------------------------------------------------------------- README


def readme(out_dir, work_dir):
    path = os.path.join(out_dir, "README.md")
    old = open(path).read() if os.path.exists(path) else ""
    sections = {}
    for name in ORDER:
        m = re.search(r"<!-- capture:%s -->\n.*?<!-- /capture:%s -->\n" % (re.escape(name), re.escape(name)),
                      old, re.S)
        if m:
            sections[name] = m.group(0)
        sp = os.path.join(work_dir, "summary-%s.json" % name)
        if os.path.exists(sp):
            with open(sp) as f:
                sections[name] = section(json.load(f))
    # Hand-written text after the last capture section (the compressed copies) is kept as it is.
    ends = [m.end() for m in re.finditer(r"<!-- /capture:[^>]*-->\n", old)]
    tail = old[ends[-1]:].lstrip("\n") if ends else ""
    with open(path, "w") as f:
        f.write(README_HEAD)
        for name in ORDER:
            if name in sections:
                f.write(sections[name] + "\n")
        if tail:
            f.write("\n" + tail)


def counts(d):
    return ", ".join("%s %d" % kv for kv in sorted((d or {}).items()))


def fmt_ms(v):
    return "%.3g" % v if v < 1 else "%.0f" % v


LINKTYPES = {1: "EN10MB (Ethernet)", 239: "NFLOG", 276: "LINUX_SLL2"}


def section(s):
    results = ", ".join("%s %d" % (k, v) for k, v in sorted(s["results"].items(), key=lambda kv: -kv[1]))
    sysctls = ", ".join("%s=%s" % (k.replace("net.ipv4.", ""), v) for k, v in sorted(s["sysctls"].items()))
    lines = [
        "<!-- capture:%s -->" % s["name"],
        "### %s.pcap" % s["name"],
        "",
        s["summary"],
        "",
        "- Server namespace sysctls: %s." % sysctls,
    ]
    if s.get("client_sysctls"):
        lines.append("- Client namespace sysctls: %s." % ", ".join(
            "%s=%s" % (k.replace("net.ipv4.", ""), v) for k, v in sorted(s["client_sysctls"].items())))
    lines += [
        "- Capture: `tcpdump -i %s -s %d --immediate-mode -U%s` in %s; link type %s, %s-second timestamps, "
        "%d packets, "
        "%d bytes." % (s["iface"], s["snaplen"], "".join(" " + a for a in s["tcpdump_args"]),
                       ns_doc(s.get("capture_ns", NS_SRV)),
                       LINKTYPES.get(s["linktype"], s["linktype"]), s["precision"], s["packets"], s["bytes"]),
        "- Client view (%d attempts): %s." % (s["connections"], results),
        "- Expected incidents: **%d**; RST origins: %s." % (s["incidents"], counts(s.get("origins")) or "none"),
        "- Expected near misses: **%d**; by kind: %s." % (sum((s.get("near_misses") or {}).values()),
                                                          counts(s.get("near_misses")) or "none"),
    ]
    if s.get("listener_close_children"):
        lines.append("- Listener closes that reset unaccepted children, children per close: %s." % ", ".join(
            map(str, s["listener_close_children"])))
    if s.get("firewall_counter") is not None:
        lines.append("- The nft reject rule's packet counter: %d (connections to the rejected port: %d)." % (
            s["firewall_counter"], (s.get("origins") or {}).get("firewall-like", 0)))
    if s.get("alt_out_rsts"):
        lines.append("- Tcp OutRsts of the other hosts during the run: %s (connections steered there: %d and %d)." % (
            ", ".join("%s %d" % kv for kv in sorted(s["alt_out_rsts"].items())),
            s["labels_steered"].get("alt-l2", 0), s["labels_steered"].get("alt-router", 0)))
    if s.get("client_nft_counter") is not None:
        lines.append("- The client namespace's nft rule dropped %d of the client kernel's RSTs to the raw "
                     "client's SYN-ACKs." % s["client_nft_counter"])
    a = s["ack_delay"]
    if a["flows"]:
        lines.append("- Wire: the client's handshake ACK followed the SYN-ACK after %s ms median (%s-%s ms) over "
                     "%d handshakes; %d of those ACKs carried the request." % (
                         fmt_ms(a["median_ms"]), fmt_ms(a["min_ms"]), fmt_ms(a["max_ms"]), a["flows"], a["with_data"]))
    if s.get("tunnel_census"):
        lines.append("- TCP segments by encapsulation (scripts/captures/pcapcheck.py): %s." % "; ".join(
            "`%s` %d" % (k or "none", v) for k, v in sorted(s["tunnel_census"].items())))
    lines.append("- Wire check: %d of %d expected incidents show SYN, SYN-ACK, ACK, then RST without ACK with "
                 "seq = SYN-ACK seq + 1; %d other flows show that shape." % (
                     s["incidents"] - len(s["wire_missing"]), s["incidents"], len(s["wire_signature_not_expected"])))
    if s["server_counters"]:
        lines.append("- Server namespace TcpExt counters (non-zero): %s." % ", ".join(
            "%s %d" % kv for kv in sorted(s["server_counters"].items())))
    ck = s.get("cookie")
    if ck:
        lines.append(
            "- Cookie SYN-ACKs (`%s.expected-summary.csv`: synacks_cookie_like **%d**): the server's TcpExt "
            "SyncookiesSent grew by %d over the run; on the wire, %d SYN-ACKs (on %d attempts) answer a SYN "
            "offering window scale and SACK-permitted without timestamps with MSS but no window scale, "
            "SACK-permitted or timestamps; the other %d SYN-ACKs carry MSS, window scale and SACK-permitted; "
            "%d of %d SYNs offered window scale and SACK-permitted without timestamps." % (
                s["name"], ck["syncookies_sent"], ck["syncookies_sent"], ck["cookie_like_synacks"],
                ck["cookie_like_flows"], ck["full_synacks"], ck["syns_ws_sack_no_ts"],
                ck["syns_ws_sack_no_ts"] + ck["syns_other"]))
    if s.get("churns"):
        lines.append("- Listener changes made by the churner: %d." % s["churns"])
    labels = "; ".join("%s %d" % (k, v) for k, v in sorted(s["labels"].items()))
    lines.append("- Connections by joined view: %s." % labels)
    ev = "; ".join("%(side)s %(kind)s %(state)s/%(reason)s x%(count)d" % e for e in s["reset_events"])
    lines.append("- tcp_send_reset events (side, kind, state/reason): %s." % (ev or "none"))
    if s["disagreements"]:
        lines.append("- DISAGREEMENTS between views: %s" % "; ".join(s["disagreements"]))
    else:
        lines.append("- Disagreements between views: none.")
    lines.append("<!-- /capture:%s -->" % s["name"])
    return "\n".join(lines) + "\n"


README_HEAD = """# Test captures

Real captures made by `scripts/make-captures` on Linux: real kernel clients
(`scripts/captures/client.py`, namespace `rstd-cli`: 10.77.0.1, fd77::1) and servers
(`scripts/captures/server.py`, namespace `rstd-srv`: 10.77.0.2, fd77::2) joined by a veth pair,
captured with tcpdump inside `rstd-srv` (other-host: inside `rstd-cli`, on a bridge that also
leads to two more hosts owning the server's addresses, see its section). Each capture gets fresh
namespaces; they are removed on exit. No netem or iptables. Crafted packets only where a section
says so: the raw-socket RST injections in normal-confounders and the raw-socket client with wrong
handshake ACKs in near-misses. nftables rules only in firewall-reject (the server's REJECT) and
near-misses (the client namespace drops its own kernel's RSTs to the raw client's SYN-ACKs). The
hand-crafted edge cases (`crafted-*`) are described in [CRAFTED.md](CRAFTED.md), the captures
derived from real ones by `scripts/wrap-captures.py` (tunnels the kernel here cannot make,
other link types, cut headers: `tunnel-*`, `link-*`, `cut-*`) in [DERIVED.md](DERIVED.md), and the
reuseport listener lab (`reuseport-lab.*`, which listener the kernel chose for each connection)
in [../Lab/README.md](../Lab/README.md).

Regenerate (as root; needs iproute2, tcpdump, nftables (`nft`), tracefs, and VXLAN and
nfnetlink_log in the kernel; overwrites every file listed here and this README; about two minutes):

    scripts/make-captures            # or: scripts/make-captures NAME...

Timing differs per run, so ports and counts change, but each expected file is made in the same run
as its capture and this README is rewritten from that run. `KEEP_WORK=1` keeps the logs and trace;
`RSTD_NS_PREFIX=rstd16-` (say) renames the namespaces and the tracefs instance, so that two runs on
one machine do not meet (the tracepoint is global, though: runs that overlap in time may still see
each other's resets if they use the same addresses). `scripts/check-captures` checks the tunnel,
NFLOG and derived captures with tshark.

## Files per capture

- `NAME.pcap`: pcap, snap length 128 (vxlan-ipv4, vxlan-ipv6: 192, for the encapsulation; nflog: 256, for
  the attributes before the packet, which take 100 bytes).
- `NAME.client.csv`: one row per connection attempt, the client program's own view, in start order:
  `client_ip,client_port,server_ip,server_port,result`. Result: `response` (got reply bytes),
  `reset_after_connect` (connect() succeeded, then send/recv failed with ECONNRESET or EPIPE before
  any reply byte; also connect() itself returning ECONNRESET, which Linux does only after the
  handshake completed), `refused`, `timeout` (connect), `client_reset` (the client aborted with
  SO_LINGER 0, possibly after a reply), `raw_reset` (near-misses' raw-socket client: it sent its
  handshake ACK and received a RST), `other:ERRNO` (`other:EOF`, `other:ETIMEDOUT` for a read).
  IPv6 in RFC 5952 form.
- `NAME.expected.csv`: the incidents the tool must report, exactly:
  `client_ip,client_port,server_ip,server_port`, sorted by client port; may be header only.
  Captures of tunnelled traffic (vxlan-*, and the wrapped `tunnel-*` files of CRAFTED.md) add a
  fifth column, `tunnel`: the encapsulation layers outside the inner IP packet, outermost first,
  joined by ` / `; each layer one of `vxlan vni=N`, `geneve vni=N`, `gre key=N` or `gre` (no
  key), `erspan session=N` (types II and III; `erspan` for type I; the GRE that carries ERSPAN is
  not named separately), `mpls label=N` (one layer per label), `pppoe session=N`, `ip-in-ip` (IP
  protocol 4), `ipv6-in-ip` (IP protocol 41), numbers in decimal; VLAN tags are never named;
  empty when there is no encapsulation. Example: `vxlan vni=4242 / gre key=5`. The addresses
  and ports are the inner packet's; the outer addresses are not part of a flow's identity, but
  the tunnel is (the same inner 4-tuple in two tenants is two flows).
- `NAME.expected-near-misses.csv`: the near misses, exactly, one row per connection attempt:
  `client_ip,client_port,server_ip,server_port,kind`, sorted by client port, then server port;
  may be header only. Kinds below.
- `NAME.expected-origins.csv`: one row per expected incident (exactly the rows of
  `NAME.expected.csv`, same order): `client_ip,client_port,server_ip,server_port,rst_origin` with
  `same-stack`, `firewall-like` or `other-host`, rules below.
- `NAME.expected-summary.csv` (syncookie-no-timestamps only): `metric,value` with one row,
  `synacks_cookie_like`: the cookie SYN-ACKs the server kernel sent, from its TcpExt
  `SyncookiesSent` counter over the run, checked against the wire: the SYN-ACKs that answer a SYN
  offering window scale and SACK-permitted without timestamps with MSS but none of window scale,
  SACK-permitted or timestamps (a Linux syncookie has no room for them without timestamps). The
  two must be equal, with one such SYN-ACK per connection attempt, every SYN offering window scale
  and SACK-permitted without timestamps and every other SYN-ACK carrying MSS, window scale and
  SACK-permitted; otherwise `DISAGREEMENT`.

All these expected files come from the joined view below (and the kernel's counters), never
from rst-detective.

## Expected-file rule

A connection attempt is an incident iff

1. the client saw `reset_after_connect`, and
2. a **no-connection reset** answered its handshake ACK: a `tcp:tcp_send_reset` event, recorded in
   the same run, that replies to a received segment (`skbaddr` non-zero) from a LISTEN socket or
   from no socket (state `TCP_LISTEN` or `UNKNOWN`), i.e. tcp_v4/v6_send_reset, sent by the server
   namespace or (other-host) by the host the client steered that ACK to; or (firewall-reject) the
   server namespace's nft rule rejected it (below), and
3. the server kernel did **not** actively abort that 4-tuple (`skbaddr` zero: an existing socket's
   RST+ACK, e.g. SO_LINGER-0 close after accept, or an unaccepted connection reset when its
   listener closes), and
4. the server application never accepted it (its own accept log), and
5. the client's handshake ACK acknowledged SYN-ACK seq + 1 (always so for a kernel client; the raw
   client of near-misses logs the number it sent).

Events without a socket carry the client's 4-tuple. A LISTEN socket's event carries only the
listener's address (`[::]:8080`), so it is tied to a connection by its pid: the reply is generated
in softirq inside the client thread's send() of the ACK, and that thread must be inside that
connection's lifetime. It must also fall between the client's send and the client socket's own
`tcp:tcp_receive_reset` (matched by socket cookie); if the pid matches no thread, that window alone
is used, tying unique candidates first. `make-captures` prints `DISAGREEMENT` and exits 1 when the
views contradict: a client reset with no server reset, a no-connection reset for a connection that
did not see `reset_after_connect` (other than a refused SYN or the raw client) or that was also
aborted or accepted, an event it cannot tie to a connection, a client reset without
`tcp_receive_reset`, lost packets, or an incident whose SYN, SYN-ACK, ACK, RST-without-ACK with
seq = SYN-ACK seq + 1 is not in the capture (or a flow with that shape that is not an incident);
also for the near-miss and origin checks below. Neither the tool nor Swift code is used.

## Near misses (`NAME.expected-near-misses.csv`)

One kind per connection attempt, from these independent views:

- `refused`: the client's connect() got ECONNREFUSED (its SYN was answered by RST+ACK).
- `app_abort`: the server application accepted the connection (its accept log) and aborted it
  before writing any byte or FIN (its own abort log: SO_LINGER 0 close, or close() with the request
  unread), the server kernel actively reset that 4-tuple (`tcp_send_reset` with `skbaddr` 0), and
  the client saw `reset_after_connect`. **Also** a lone unaccepted child reset by its listener's
  close (next item): on the wire that RST+ACK is identical to an application abort after accept
  (same flags, seq = SYN-ACK seq + 1, window, options), so it is labelled `app_abort`.
- `listener_close`: an unaccepted connection (never in the accept log) that the client saw
  `reset_after_connect` for, reset by the server kernel's active reset inside a listener close
  that reset **at least 2** unaccepted children. The server logs each listener close with the
  closing thread id and the time before and after it; the kernel resets the children inside that
  call, so a child's event is tied to the close whose thread id equals the event's pid and whose
  time span holds the event, and the children of one close are counted there. A close that reset
  exactly one child makes that child `app_abort` (above).
- `wrong_ack`: the server side sent a RST on the attempt after its SYN-ACK and before any server
  payload or FIN, whose sequence number is not SYN-ACK seq + 1, and the attempt is not an incident.
  Views: near-misses' raw-socket client logs the SYN-ACK seq, the wrong acknowledgement number it
  sent and the RST it got back (seq = that number), and the server's LISTEN socket logged the
  no-connection reset (tied by pid as above); normal-confounders' injector (port 8085) logs each
  RST it sent (seq = the server's snd_nxt ± 2^30, where snd_nxt is SYN-ACK seq + 1 while the
  server has sent nothing) and the server logs its first reply byte after it.

Each near miss is also checked on the wire: `refused` must be a server RST+ACK to an unanswered
SYN; `app_abort` and `listener_close` a server RST+ACK with seq = SYN-ACK seq + 1 before any server
payload or FIN; `wrong_ack` a server RST with another seq before any server payload or FIN.

## RST origins (`NAME.expected-origins.csv`)

- `same-stack`: the server namespace's kernel sent the no-connection reset (its
  `tcp_send_reset` event tied to the connection as above).
- `firewall-like`: firewall-reject's nft rule in the server namespace (`tcp dport 8090 tcp flags &
  (syn | ack) == ack counter reject with tcp reset`) answered the handshake ACK: known from the
  rule (the connection's server port is 8090), and checked: the rule's packet counter equals the
  number of connections to 8090, each of which saw `reset_after_connect` and has no
  `tcp_send_reset` event from the server at all.
- `other-host`: other-host's client steered the handshake ACK to rstd-alt or rstd-alt2 (its own
  record of which connections it steered and when), and that host's kernel answered: a
  `tcp_send_reset` event without socket that carries the client's 4-tuple within the steering
  window (the tracepoint is global; the steering record tells it from the server's). Checked: each
  steered connection has exactly one such event and none from the server, and the Tcp OutRsts
  counter of rstd-alt and rstd-alt2 grew by exactly the number of connections steered to each.

## Captures

"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["record", "readme", "list", "topology"])
    p.add_argument("name", nargs="?")
    p.add_argument("--out", default=".")
    p.add_argument("--work", default="/tmp")
    a = p.parse_args()
    # SIGTERM (from make-captures' trap or timeout) unwinds like an exception, so the
    # finally blocks stop tcpdump and the server and tracing is switched off.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.command == "list":
        print("\n".join(ORDER))
        return 0
    if a.command == "topology":
        print(SCENARIOS[a.name].get("topology", "veth"))
        return 0
    if a.command == "readme":
        readme(a.out, a.work)
        return 0
    if a.name not in SCENARIOS:
        print("unknown capture %r; known: %s" % (a.name, " ".join(ORDER)), file=sys.stderr)
        return 2
    disagreements = record(a.name, a.out, a.work)
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
