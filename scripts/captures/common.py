"""Shared helpers for scripts/make-captures (Python standard library only).

The capture scripts run a real client (namespace rstd-cli) against a real server
(namespace rstd-srv) over a veth pair. Client and server write JSON-lines logs;
orchestrate.py joins them with the kernel's tcp:tcp_send_reset tracepoint to
decide which connections are incidents.
"""

import errno
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time

# RSTD_NS_PREFIX (default "rstd-", set by make-captures) renames the namespaces and the tracefs
# instance, so that two runs on one machine do not meet; the docs use the default names.
NS_PREFIX = os.environ.get("RSTD_NS_PREFIX", "rstd-")
NS_CLI = NS_PREFIX + "cli"
NS_SRV = NS_PREFIX + "srv"
NS_ALT = NS_PREFIX + "alt"    # other-host: same addresses as the server, same L2 segment, no listener
NS_RTR = NS_PREFIX + "rtr"    # other-host: a router between the client's segment and rstd-alt2
NS_ALT2 = NS_PREFIX + "alt2"  # other-host: same addresses as the server, behind rstd-rtr, no listener


def ns_doc(ns):
    """The namespace's name as the docs write it (with the default prefix)."""
    return "rstd-" + ns[len(NS_PREFIX):] if ns.startswith(NS_PREFIX) else ns
CLI4, SRV4 = "10.77.0.1", "10.77.0.2"
CLI6, SRV6 = "fd77::1", "fd77::2"

# Linux values that Python's socket module does not export.
SO_COOKIE = 57

RESULTS = ("response", "reset_after_connect", "refused", "timeout", "client_reset")


def norm_ip(text):
    """RFC 5952 text of an address; IPv4-mapped IPv6 becomes plain IPv4."""
    text = text.strip().strip("[]").split("%")[0]
    addr = ipaddress.ip_address(text)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def errname(err):
    """'ECONNRESET' for an OSError/errno number, 'EOF'/'timeout' for the special cases."""
    if isinstance(err, socket.timeout):
        return "ETIMEDOUT"
    num = err.errno if isinstance(err, OSError) else err
    return errno.errorcode.get(num, str(num))


def mono():
    """CLOCK_MONOTONIC seconds: the same clock as trace_clock 'mono'."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def tid():
    return threading.get_native_id()


class JsonLog:
    """Append-only JSON-lines log shared by threads; every line is flushed."""

    def __init__(self, path):
        self._f = open(path, "a", buffering=1)
        self._lock = threading.Lock()

    def write(self, **rec):
        rec.setdefault("t", mono())
        line = json.dumps(rec, sort_keys=True)
        with self._lock:
            self._f.write(line + "\n")

    def close(self):
        with self._lock:
            self._f.close()


def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def linger0(sock):
    """SO_LINGER {on, 0}: close() then aborts with a RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def tcp_checksum(pseudo, tcp):
    """Internet checksum of pseudo header + TCP segment (checksum field zero)."""
    return internet_checksum(pseudo + tcp)


def internet_checksum(data):
    """RFC 1071: the one's complement of the one's complement sum of the 16-bit words of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def die(msg):
    print(msg, file=sys.stderr, flush=True)
    sys.exit(1)
