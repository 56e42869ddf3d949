#!/usr/bin/env python3
"""Real accept-queue-overflow incidents for the end-to-end test of `rst-detective capture`.

Lab fixture for the Swift test suite (Python 3 standard library only, run as root from the host
namespace). Two network namespaces joined by a veth pair; nothing touches the host's network:

  rstd-live-srv   srv0  10.78.0.2/24  fd78::2/64   the server, and where the tool captures
  rstd-live-cli   cli0  10.78.0.1/24  fd78::1/64   the clients

  live-lab.py up                 (re)create both namespaces; exit 0 when the link carries TCP both
                                 ways, 77 when no namespace can be made (not root, no support)
  live-lab.py traffic --out DIR  real kernel traffic on port 8080 (about 8 s), then DIR/client.csv
  live-lab.py down               delete both namespaces and kill whatever is left in them (exit 0)

traffic sets net.ipv4.tcp_abort_on_overflow=1 and net.ipv4.tcp_syncookies=0 in rstd-live-srv (as in
Tests/Captures accept-overflow) and runs there a server with two listeners, 10.78.0.2:8080 and
[fd78::2]:8080 (IPV6_V6ONLY), backlog 3 each, whose application accepts one connection per listener
every 0.12 s and answers each request line with "OK". In rstd-live-cli it runs clients: sequential
normal connections (replied to), and bursts of 30 concurrent connections (about half IPv6) spread over
0.3 s, each with the handshake ACK deferred 30-120 ms (TCP_QUICKACK=0, the ACK rides on the request).
traffic --flood RATE also connects, all the while, to 127.0.0.1:9 in rstd-live-cli, where nothing listens,
RATE times a second: a flood of RSTs on another port (and namespace) beside the incidents.
Each attempt binds a client port drawn once per run (seeded, shuffled, 20000-59999), so no 4-tuple
repeats in a run: the kernel's own choice may hand a reset connection's port out again.
An ACK that finds its accept queue full is answered by the server kernel with a RST (seq = the ACK's
ack number, ACK flag clear, reason INVALID_SYN): an incident, which the client sees as connect()
succeeding and then ECONNRESET. A SYN that finds a queue full is dropped and retransmitted after 1 s.

DIR/client.csv: client_ip,client_port,server_ip,server_port,result, one row per connection attempt
in start order, from the client's own view as scripts/captures/client.py's attempt() (which the
client calls) classifies it: response, reset_after_connect (connect() succeeded, then send/recv
failed with ECONNRESET or EPIPE before any reply byte; also connect() itself returning ECONNRESET),
refused, timeout (connect, 2.5 s), other:ERRNO (other:EOF, other:ETIMEDOUT for the 3 s read
timeout). IPv6 in RFC 5952 form. The raw logs are kept beside it (client.jsonl, server.jsonl).
stdout gets one summary line.

Exit status of traffic: 0 success; 1 failure (one line on stderr), also when the run produced no
reset_after_connect or no response (--min-resets, default 1). Every process it started is stopped
before it exits; all its loops are bounded in count and time (whole command < 20 s).
"""

import argparse
import csv
import ctypes
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

NS_SRV, NS_CLI = "rstd-live-srv", "rstd-live-cli"
IF_SRV, IF_CLI = "srv0", "cli0"
SRV4, CLI4 = "10.78.0.2", "10.78.0.1"
SRV6, CLI6 = "fd78::2", "fd78::1"
PORT = 8080
PROBE_PORT = 9  # closed in rstd-live-srv: a connect is refused, which proves the link both ways
FLOOD_PORT = 9  # closed on rstd-live-cli's loopback: the target of traffic --flood
SERVER_SYSCTLS = {"net.ipv4.tcp_abort_on_overflow": 1, "net.ipv4.tcp_syncookies": 0,
                  "net.ipv4.tcp_migrate_req": 0}
SELF = os.path.abspath(__file__)
# The capture scripts' helpers, and their client's attempt(), which decides what the client saw.
sys.path.insert(0, os.path.join(os.path.dirname(SELF), "..", "..", "scripts", "captures"))
import client  # noqa: E402
from common import JsonLog, errname, mono, norm_ip, read_jsonl  # noqa: E402
PR_SET_PDEATHSIG = 1


class LabError(Exception):
    pass


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this helper dies, so nothing outlives it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def run(cmd, timeout=10, check=True):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                               (r.stderr or r.stdout).strip().replace("\n", " ")))
    return r


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def ns_exists(ns):
    r = run(["ip", "netns", "list"], check=False)
    return any(line.split()[0] == ns for line in r.stdout.splitlines() if line.strip())


# ---------------------------------------------------------------- up / down


def ns_down():
    for ns in (NS_CLI, NS_SRV):
        if not ns_exists(ns):
            continue
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
        run(["ip", "netns", "delete", ns], check=False)
    # Killed processes may hold a namespace a moment longer; the names are gone already.


def cmd_down(_a):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return 0  # nothing of ours can exist
    ns_down()
    return 0


def cmd_up(_a):
    if os.geteuid() != 0:
        print("live-lab: skip: needs root to create network namespaces", file=sys.stderr)
        return 77
    if shutil.which("ip") is None:
        print("live-lab: skip: iproute2 (ip) not found", file=sys.stderr)
        return 77
    ns_down()
    for ns in (NS_SRV, NS_CLI):
        r = run(["ip", "netns", "add", ns], check=False)
        if r.returncode != 0:
            ns_down()
            print("live-lab: skip: cannot create network namespace %s: %s"
                  % (ns, r.stderr.strip().replace("\n", " ")), file=sys.stderr)
            return 77
    try:
        run(["ip", "link", "add", IF_SRV, "netns", NS_SRV, "type", "veth", "peer", "name", IF_CLI,
             "netns", NS_CLI])
        run(["ip", "-n", NS_SRV, "addr", "add", SRV4 + "/24", "dev", IF_SRV])
        run(["ip", "-n", NS_CLI, "addr", "add", CLI4 + "/24", "dev", IF_CLI])
        run(["ip", "-n", NS_SRV, "addr", "add", SRV6 + "/64", "dev", IF_SRV, "nodad"])
        run(["ip", "-n", NS_CLI, "addr", "add", CLI6 + "/64", "dev", IF_CLI, "nodad"])
        for ns, ifname in ((NS_SRV, IF_SRV), (NS_CLI, IF_CLI)):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", ifname, "up"])
        # Static neighbour entries: no ARP/ND round trips (the first IPv6 SYN could otherwise
        # wait for neighbour discovery) and no non-TCP chatter at traffic time.
        mac_s = run(in_ns(NS_SRV, "cat", "/sys/class/net/%s/address" % IF_SRV)).stdout.strip()
        mac_c = run(in_ns(NS_CLI, "cat", "/sys/class/net/%s/address" % IF_CLI)).stdout.strip()
        for ip in (SRV4, SRV6):
            run(["ip", "-n", NS_CLI, "neigh", "replace", ip, "lladdr", mac_s, "dev", IF_CLI, "nud", "permanent"])
        for ip in (CLI4, CLI6):
            run(["ip", "-n", NS_SRV, "neigh", "replace", ip, "lladdr", mac_c, "dev", IF_SRV, "nud", "permanent"])
        r = run(in_ns(NS_CLI, sys.executable, SELF, "_probe"), timeout=15, check=False)
        if r.returncode != 0:
            raise LabError("link check failed: %s" % (r.stderr.strip().replace("\n", " ") or r.returncode))
    except (LabError, OSError, subprocess.TimeoutExpired) as e:
        ns_down()
        print("live-lab: up: %s" % e, file=sys.stderr)
        return 1
    print("live-lab: up: %s %s/%s <-> %s %s/%s" % (NS_SRV, SRV4, SRV6, NS_CLI, CLI4, CLI6))
    return 0


def cmd_probe(_a):
    """In rstd-live-cli: a SYN to a closed port must come back refused (RST+ACK) on both families."""
    deadline = mono() + 8
    for ip in (SRV4, SRV6):
        while True:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                try:
                    s.connect((ip, PROBE_PORT))
                    err = 0
                except ConnectionRefusedError:
                    break
                except OSError as e:  # e.g. ENETUNREACH before the link is up, timeout
                    err = errname(e)
            if mono() > deadline:
                print("no TCP answer from %s (last: %s)" % (ip, err), file=sys.stderr)
                return 1
            time.sleep(0.1)
    return 0


# ---------------------------------------------------------------- server (in rstd-live-srv)


def cmd_server(a):
    stop, drain = threading.Event(), threading.Event()
    log = JsonLog(a.log)

    def on_term(*_):
        drain.set()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    handlers = []
    hlock = threading.Lock()

    def serve(conn, peer):
        try:
            conn.settimeout(2.0)
            buf = b""
            while b"\n" not in buf and len(buf) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                buf += chunk
            if buf:
                conn.sendall(b"OK\n")
        except OSError as e:
            log.write(ev="handle_error", peer_ip=norm_ip(peer[0]), peer_port=peer[1], error=errname(e))
        finally:
            conn.close()

    def acceptor(sock):
        """One accept per interval; on SIGTERM accept whatever is queued at once, then stop."""
        sock.settimeout(0.05)
        while not stop.is_set():
            if not drain.is_set():
                drain.wait(a.accept_interval)
            try:
                conn, peer = sock.accept()
            except socket.timeout:
                if drain.is_set():
                    break  # queue empty
                continue
            except OSError:
                break
            log.write(ev="accept", peer_ip=norm_ip(peer[0]), peer_port=peer[1],
                      local_ip=norm_ip(conn.getsockname()[0]), server_port=PORT)
            t = threading.Thread(target=serve, args=(conn, peer), daemon=True)
            with hlock:
                handlers.append(t)
            t.start()

    socks = []
    for fam, ip in ((socket.AF_INET, SRV4), (socket.AF_INET6, SRV6)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((ip, PORT))
        s.listen(a.backlog)
        socks.append(s)
        log.write(ev="listen", ip=ip, port=PORT, backlog=a.backlog)
    threads = [threading.Thread(target=acceptor, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    print("READY", flush=True)
    deadline = mono() + a.max_seconds
    while not drain.is_set() and mono() < deadline:
        drain.wait(0.1)
    drain.set()
    for t in threads:
        t.join(2.0)
    stop.set()
    with hlock:
        hs = list(handlers)
    end = mono() + 2.5
    for t in hs:
        t.join(max(0.0, end - mono()))
    for s in socks:
        s.close()
    log.write(ev="server_exit")
    log.close()
    return 0


# ---------------------------------------------------------------- clients (in rstd-live-cli)


def cmd_client(a):
    client.LOG = JsonLog(a.log)
    rng = random.Random(a.seed)
    deadline = mono() + a.max_seconds
    # Every attempt takes the next port of one shuffled list: no 4-tuple repeats in the run.
    order, taken = rng.sample(range(20000, 60000), 40000), threading.Lock()

    def next_port():
        with taken:
            return order.pop()
    kw = dict(connect_timeout=a.connect_timeout, read_timeout=a.read_timeout, ports=next_port)

    def normals(tag, ips):
        for ip, delay in ips:
            if mono() < deadline:
                client.attempt(ip, PORT, tag, trick=delay, **kw)

    def burst(n):
        jobs = []
        for _ in range(a.burst_size):
            ip = SRV6 if rng.random() < a.v6_share else SRV4
            start = rng.uniform(0, a.spread)
            delay = rng.uniform(a.delay_min, a.delay_max)
            jobs.append((start, ip, delay))
        t0 = mono()

        def one(start, ip, delay):
            time.sleep(max(0.0, t0 + start - mono()))
            client.attempt(ip, PORT, "burst%d" % n, trick=delay, **kw)
        ts = [threading.Thread(target=one, args=job) for job in sorted(jobs)]
        for t in ts:
            t.start()
        limit = mono() + a.spread + a.connect_timeout + a.read_timeout + 2
        for t in ts:
            t.join(max(0.0, limit - mono()))
        return not any(t.is_alive() for t in ts)

    flood, flood_stop = None, threading.Event()
    if a.flood:
        flood = threading.Thread(target=reset_flood, args=(a.flood, deadline, flood_stop), daemon=True)
        flood.start()
    # Quiet queues: plain and deferred-ACK connections that get their reply.
    normals("normal", [(SRV4, None), (SRV6, None), (SRV4, 0.05), (SRV6, 0.05)])
    for n in range(a.bursts):
        if mono() + a.spread + a.connect_timeout + 1.5 > deadline:
            break
        if not burst(n):
            print("burst %d did not finish in time" % n, file=sys.stderr)
            return 1
        # Right after a burst the queues are still draining: these wait their turn and get replies.
        normals("after_burst%d" % n, [(SRV4, None), (SRV6, 0.03)])
    if flood:
        flood_stop.set()
        flood.join(2.0)
    client.LOG.close()
    return 0


def reset_flood(rate, deadline, stop):
    """Connections to 127.0.0.1:9 in this namespace, where nothing listens, at `rate` a second until the
    clients are done (`stop` set): each SYN is answered with a RST, a flood of tcp_send_reset events on another port
    (as clients retrying a closed port make) beside the incidents. Logs how many were refused."""
    refused, start = 0, mono()
    while not stop.is_set() and mono() < deadline:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", FLOOD_PORT))
        except ConnectionRefusedError:
            refused += 1
        except OSError:
            pass
        s.close()
        ahead = start + refused / rate - mono()
        if ahead > 0:
            time.sleep(ahead)
    client.LOG.write(ev="flood", port=FLOOD_PORT, refused=refused, seconds=round(mono() - start, 3))


# ---------------------------------------------------------------- traffic (host namespace)


def wait_line(proc, needle, timeout):
    end = mono() + timeout
    buf = b""
    while needle not in buf:
        left = end - mono()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise LabError("server did not print %r within %.0f s" % (needle.decode(), timeout))
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise LabError("server exited (%s) before %r" % (proc.wait(), needle.decode()))
        buf += chunk


def stop(proc, grace):
    if proc is None or proc.poll() is not None:
        return
    if grace > 0:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait()


def cmd_traffic(a):
    t_begin = mono()
    if os.geteuid() != 0:
        raise LabError("needs root")
    for ns in (NS_SRV, NS_CLI):
        if not ns_exists(ns):
            raise LabError("namespace %s does not exist (run 'live-lab.py up' first)" % ns)
    for key, value in SERVER_SYSCTLS.items():
        run(in_ns(NS_SRV, "sysctl", "-qw", "%s=%s" % (key, value)))
        got = run(in_ns(NS_SRV, "sysctl", "-n", key)).stdout.strip()
        if got != str(value):
            raise LabError("sysctl %s is %s in %s, wanted %s" % (key, got, NS_SRV, value))
    os.makedirs(a.out, exist_ok=True)
    client_log, server_log = os.path.join(a.out, "client.jsonl"), os.path.join(a.out, "server.jsonl")
    for p in (client_log, server_log, os.path.join(a.out, "client.csv")):
        if os.path.exists(p):
            os.unlink(p)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    server = client = None
    try:
        server = subprocess.Popen(
            in_ns(NS_SRV, sys.executable, SELF, "_server", "--log", server_log, "--backlog", str(a.backlog),
                  "--accept-interval", str(a.accept_interval), "--max-seconds", "30"),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, preexec_fn=die_with_parent)
        wait_line(server, b"READY", 10)
        client = subprocess.Popen(
            in_ns(NS_CLI, sys.executable, SELF, "_client", "--log", client_log, "--seed", str(seed),
                  "--bursts", str(a.bursts), "--burst-size", str(a.burst_size), "--max-seconds", "12",
                  "--flood", str(a.flood)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent)
        try:
            _, err = client.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            raise LabError("clients did not finish within 15 s")
        if client.returncode != 0:
            raise LabError("clients failed (%d): %s" % (client.returncode,
                                                         err.decode(errors="replace").strip().replace("\n", " ")))
        client = None
        stop(server, 3.0)  # SIGTERM: the server accepts and answers what is still queued, then exits
        server = None
    finally:
        stop(client, 0)
        stop(server, 0)
    conns = sorted((r for r in read_jsonl(client_log) if r.get("ev") == "conn"), key=lambda r: r["t_start"])
    with open(os.path.join(a.out, "client.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["client_ip", "client_port", "server_ip", "server_port", "result"])
        for c in conns:
            w.writerow([c["client_ip"], c["client_port"], c["server_ip"], c["server_port"], c["result"]])
    counts = {}
    for c in conns:
        counts[c["result"]] = counts.get(c["result"], 0) + 1
    v6 = sum(1 for c in conns if ":" in c["server_ip"])
    v6_resets = sum(1 for c in conns if ":" in c["server_ip"] and c["result"] == "reset_after_connect")
    floods = [r for r in read_jsonl(client_log) if r.get("ev") == "flood"]
    print("live-lab: traffic: %d attempts (%d IPv6) in %.1f s, seed %d: %s; IPv6 reset_after_connect %d%s" % (
        len(conns), v6, mono() - t_begin, seed,
        ", ".join("%s %d" % kv for kv in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), v6_resets,
        "".join("; flood: %d resets from port %d in %.1f s" % (f["refused"], f["port"], f["seconds"]) for f in floods)),
        flush=True)
    if a.flood and not any(f["refused"] for f in floods):
        raise LabError("the flood of resets did not happen")
    # An attempt that failed before the kernel gave it a port (client_port 0) put nothing on the wire to
    # match; any other 4-tuple must be unique, or the client's log could not be matched with a capture.
    keys = [(c["client_ip"], c["client_port"], c["server_ip"], c["server_port"]) for c in conns if c["client_port"]]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise LabError("a 4-tuple was used twice in one run: %s" % ", ".join("%s:%s -> %s:%s" % k for k in twice))
    if counts.get("reset_after_connect", 0) < a.min_resets:
        raise LabError("only %d reset_after_connect (wanted at least %d)"
                       % (counts.get("reset_after_connect", 0), a.min_resets))
    if not counts.get("response"):
        raise LabError("no connection got a response")
    return 0


def main():
    # The Swift test runner's children inherit a mask that blocks SIGINT and SIGTERM; ours must be
    # stoppable, and our children inherit this mask in turn.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    t = sub.add_parser("traffic")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--bursts", type=int, default=3, choices=range(1, 5))
    t.add_argument("--burst-size", type=int, default=30, choices=range(5, 41))
    t.add_argument("--backlog", type=int, default=3, choices=range(1, 17))
    t.add_argument("--accept-interval", type=float, default=0.12)
    t.add_argument("--min-resets", type=int, default=1)
    t.add_argument("--flood", type=int, default=0, choices=range(0, 20001), metavar="RATE")
    # Internal roles, run inside the namespaces.
    sub.add_parser("_probe")
    s = sub.add_parser("_server")
    s.add_argument("--log", required=True)
    s.add_argument("--backlog", type=int, default=3)
    s.add_argument("--accept-interval", type=float, default=0.12)
    s.add_argument("--max-seconds", type=float, default=30)
    c = sub.add_parser("_client")
    c.add_argument("--log", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--bursts", type=int, default=3)
    c.add_argument("--burst-size", type=int, default=30)
    c.add_argument("--spread", type=float, default=0.3)
    c.add_argument("--delay-min", type=float, default=0.03)
    c.add_argument("--delay-max", type=float, default=0.12)
    c.add_argument("--v6-share", type=float, default=0.5)
    c.add_argument("--connect-timeout", type=float, default=2.5)
    c.add_argument("--read-timeout", type=float, default=3.0)
    c.add_argument("--max-seconds", type=float, default=12)
    c.add_argument("--flood", type=int, default=0)
    a = p.parse_args()
    if a.command == "traffic":
        # SIGTERM/SIGINT unwind through the finally blocks, which kill the server and clients.
        def on_signal(signum, _frame):
            raise LabError("stopped by signal %d" % signum)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            return cmd_traffic(a)
        except (LabError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
            print("live-lab: traffic: %s" % e, file=sys.stderr)
            return 1
    return {"up": cmd_up, "down": cmd_down, "_probe": cmd_probe, "_server": cmd_server,
            "_client": cmd_client}[a.command](a)


if __name__ == "__main__":
    sys.exit(main())
