#!/usr/bin/env python3
"""Record which SO_REUSEPORT listener accepts each IPv4 connection, on the real kernel.

Lab fixture for the Swift test suite. In a private network namespace (the host's
network is never touched) it opens N listeners on 10.66.0.1:PORT in listen() order,
makes deterministic connections from 10.66.0.2-7, and records which listener accepted
each one (phase1.csv). It then closes one listener, emulates the kernel's socks[] move
(the last entry takes the freed slot, KERNEL-FACTS.md section 4) and repeats with new
client ports (phase2.csv), recording indices per that emulated order. tcpdump captures
everything to lab.pcap. The Swift tests use this to recover the kernel's hash secret and
to check that the capture analyser assigns each connection to the right listener.

Usage: reuseport-accepts.py OUTDIR [--listeners 8] [--connections 40] [--close-index 2] [--port 8080]
Exit: 0 success, 77 cannot create a network namespace (skip), 1 any other failure.
"""
import argparse, ctypes, os, platform, select, signal, socket, subprocess, sys, time

CLONE_NEWNET = 0x40000000
SERVER_IP = "10.66.0.1"
CLIENT_IPS = [f"10.66.0.{2 + k}" for k in range(6)]
TIMEOUT = 5.0


class LabError(Exception):
    pass


def enter_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        print(f"skip: unshare(CLONE_NEWNET) failed: {os.strerror(err)} (need root and network namespaces)",
              file=sys.stderr)
        sys.exit(77)
    cmds = [["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{SERVER_IP}/24", "dev", "lo"]]
    cmds += [["ip", "addr", "add", f"{ip}/32", "dev", "lo"] for ip in CLIENT_IPS]
    for cmd in cmds:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise LabError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def start_tcpdump(outdir, port):
    cmd = ["tcpdump", "-i", "lo", "-n", "-s", "128", "-U", "--immediate-mode",
           "-w", os.path.join(outdir, "lab.pcap"), "tcp", "port", str(port)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    buf, deadline = b"", time.monotonic() + 10
    while b"listening on" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stderr], [], [], left)[0]:
            proc.kill(); proc.wait()
            raise LabError("tcpdump did not report 'listening on' within 10 s")
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            proc.wait()
            raise LabError(f"tcpdump exited ({proc.returncode}): {buf.decode(errors='replace').strip()}")
        buf += chunk
    return proc, buf


def run_phase(socks, port, base_port, count):
    """Connect `count` times; return rows (index in socks, client ip, client port)."""
    rows = []
    for i in range(count):
        cip, cport = CLIENT_IPS[i % len(CLIENT_IPS)], base_port + 37 * i
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as cli:
            cli.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            cli.settimeout(TIMEOUT)
            cli.bind((cip, cport))
            cli.connect((SERVER_IP, port))
            ready = select.select(socks, [], [], TIMEOUT)[0]
            if len(ready) != 1:
                raise LabError(f"connection {i} from {cip}:{cport}: {len(ready)} listeners readable, expected 1")
            conn, peer = ready[0].accept()
            with conn:
                if peer != (cip, cport):
                    raise LabError(f"connection {i}: accepted peer {peer}, expected {(cip, cport)}")
                conn.settimeout(TIMEOUT)
                cli.sendall(b"lab\n")
                if conn.recv(16) != b"lab\n":
                    raise LabError(f"connection {i}: server did not receive the client's bytes")
            if cli.recv(16) != b"":  # wait for the server's FIN, then close
                raise LabError(f"connection {i}: unexpected data from server")
        rows.append((socks.index(ready[0]), cip, cport))
    return rows


def write_csv(path, rows, port):
    with open(path, "w") as f:
        f.write("listener,client_ip,client_port,server_ip,server_port\n")
        for idx, cip, cport in rows:
            f.write(f"{idx},{cip},{cport},{SERVER_IP},{port}\n")


def on_alarm(*_):
    raise LabError("overall time limit (25 s) hit")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--listeners", type=int, default=8)
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--close-index", type=int, default=2)
    ap.add_argument("--port", type=int, default=8080)
    a = ap.parse_args()
    if not (2 <= a.listeners <= 64 and 1 <= a.connections <= 200 and 0 <= a.close_index < a.listeners
            and 1 <= a.port <= 65535 and a.port not in range(20000, 50000)):
        ap.error("need 2<=listeners<=64, 1<=connections<=200, 0<=close-index<listeners, port outside 20000-49999")

    # A parent (the Swift test runner) may leave SIGINT, SIGTERM or SIGALRM blocked, and children inherit
    # the mask: unblock everything, or tcpdump would ignore the SIGINT that stops it.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    enter_namespace()  # exits 77 if impossible; from here on we only touch the private namespace
    os.makedirs(a.outdir, exist_ok=True)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(25)
    tcpdump, socks = None, []
    try:
        tcpdump, _ = start_tcpdump(a.outdir, a.port)
        for _ in range(a.listeners):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((SERVER_IP, a.port))
            s.listen(128)
            s.setblocking(False)
            socks.append(s)

        phase1 = run_phase(socks, a.port, 20000, a.connections)
        write_csv(os.path.join(a.outdir, "phase1.csv"), phase1, a.port)

        k = a.close_index  # kernel rule: the last entry moves into the freed slot
        socks[k].close()
        last = socks.pop()
        if k < len(socks):
            socks[k] = last
        phase2 = run_phase(socks, a.port, 40000, a.connections)
        write_csv(os.path.join(a.outdir, "phase2.csv"), phase2, a.port)

        time.sleep(0.3)
        tcpdump.send_signal(signal.SIGINT)
        _, err = tcpdump.communicate(timeout=10)
        err = err.decode(errors="replace")
        tcpdump = None
        if "0 packets dropped by kernel" not in err.splitlines():
            raise LabError(f"tcpdump did not report '0 packets dropped by kernel': {err.strip()!r}")
        captured = next((l.split()[0] for l in err.splitlines() if "packets captured" in l), "?")

        d1, d2 = len({r[0] for r in phase1}), len({r[0] for r in phase2})
        with open(os.path.join(a.outdir, "lab.txt"), "w") as f:
            f.write(f"kernel {platform.release()}\nlisteners {a.listeners}\nclose_index {a.close_index}\n"
                    f"port {a.port}\nphase1_connections {len(phase1)}\nphase2_connections {len(phase2)}\n"
                    f"phase1_distinct_listeners {d1}\nphase2_distinct_listeners {d2}\n"
                    f"packets_captured {captured}\n")
        print(f"listeners {a.listeners} (closed index {a.close_index}), connections {a.connections} per phase, "
              f"distinct listeners: phase1 {d1}/{a.listeners}, phase2 {d2}/{a.listeners - 1}, "
              f"packets {captured}")
    except Exception as e:  # LabError, OSError, timeouts...: one line, no tcpdump left running
        if tcpdump is not None:
            tcpdump.kill(); tcpdump.wait()
        print(f"reuseport-accepts: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        signal.alarm(0)
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
