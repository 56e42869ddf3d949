#!/usr/bin/env python3
"""Attacks a `--metrics-listen` endpoint as a hostile local user would, for a bounded time.

    python3 Tests/Lab/metrics-attack.py HOST:PORT [--seconds 15] [--pipeliners 8] [--idle 300] [--bad 4]

All at once, from one thread (a selector loop), until --seconds have passed:

- pipeliners: each sends `GET /metrics` over and over on one connection and never reads a reply;
- idle: each connects and sends nothing; a connection the server closes is opened again 50 ms later;
- bad: each sends a request line that is not HTTP, reads the reply and waits for the server to close the
  connection (at most 5 s), then does it again on a new connection.

Prints one JSON object: how many connections each kind opened and saw closed by the server, the bytes the
pipeliners sent, and for the bad requests the status lines received, how many were closed after their
reply, the longest wait for that close, and how many were still open after 5 s. Exit status 0 unless the
server could not be reached at all.
"""

import argparse
import json
import selectors
import socket
import sys
import time

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: metrics\r\n\r\n"
BAD = b"NOT HTTP AT ALL\r\n\r\n"
REOPEN_DELAY = 0.05
CLOSE_WAIT = 5.0


class Attack:
    def __init__(self, address, deadline):
        self.address = address
        self.deadline = deadline
        self.selector = selectors.DefaultSelector()
        self.stats = {
            kind: {"opened": 0, "closed_by_server": 0, "refused": 0} for kind in ("pipeliner", "idle", "bad")
        }
        self.stats["pipeliner"]["bytes_sent"] = 0
        self.stats["bad"].update({"replies": {}, "closed_after_reply": 0, "still_open": 0, "longest_close": 0.0})
        self.reopen = []  # (time, kind)

    def open(self, kind):
        sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET)
        sock.setblocking(False)
        try:
            sock.connect(self.address)
        except BlockingIOError:
            pass
        except OSError:
            self.stats[kind]["refused"] += 1
            sock.close()
            self.reopen.append((time.monotonic() + REOPEN_DELAY, kind))
            return
        self.stats[kind]["opened"] += 1
        state = {"kind": kind, "sent": 0, "reply": b"", "replied_at": None, "started": time.monotonic()}
        # A pipeliner never reads: it learns of a close only when a send fails.
        events = {"pipeliner": selectors.EVENT_WRITE, "idle": selectors.EVENT_READ}.get(
            kind, selectors.EVENT_READ | selectors.EVENT_WRITE)
        self.selector.register(sock, events, state)

    def close(self, sock, state, by_server):
        self.selector.unregister(sock)
        sock.close()
        kind = state["kind"]
        if by_server:
            self.stats[kind]["closed_by_server"] += 1
        self.reopen.append((time.monotonic() + (REOPEN_DELAY if kind == "idle" else 0), kind))

    def readable(self, sock, state):
        try:
            data = sock.recv(65536)
        except ConnectionError:
            data = b""
        except BlockingIOError:
            return
        kind = state["kind"]
        if data:
            if kind == "bad":
                state["reply"] += data
                if state["replied_at"] is None and b"\r\n" in state["reply"]:
                    state["replied_at"] = time.monotonic()
                    line = state["reply"].split(b"\r\n", 1)[0].decode("latin-1")
                    replies = self.stats["bad"]["replies"]
                    replies[line] = replies.get(line, 0) + 1
            return
        if kind == "bad" and state["replied_at"] is not None:
            bad = self.stats["bad"]
            bad["closed_after_reply"] += 1
            bad["longest_close"] = max(bad["longest_close"], time.monotonic() - state["replied_at"])
        self.close(sock, state, by_server=True)

    def writable(self, sock, state):
        kind = state["kind"]
        message = BAD if kind == "bad" else REQUEST
        try:
            if kind == "bad":
                sock.send(message[state["sent"]:])
                state["sent"] = len(message)
                self.selector.modify(sock, selectors.EVENT_READ, state)
                return
            sent = sock.send(REQUEST * 64)
            self.stats["pipeliner"]["bytes_sent"] += sent
        except BlockingIOError:
            return
        except OSError:
            self.close(sock, state, by_server=True)

    def run(self, pipeliners, idle, bad):
        for kind, count in (("pipeliner", pipeliners), ("idle", idle), ("bad", bad)):
            for _ in range(count):
                self.open(kind)
        while (now := time.monotonic()) < self.deadline:
            due = [entry for entry in self.reopen if entry[0] <= now]
            self.reopen = [entry for entry in self.reopen if entry[0] > now]
            for _, kind in due:
                self.open(kind)
            for key, events in self.selector.select(timeout=0.01):
                if key.fileobj.fileno() < 0:
                    continue
                if events & selectors.EVENT_READ:
                    self.readable(key.fileobj, key.data)
                if key.fileobj.fileno() >= 0 and events & selectors.EVENT_WRITE:
                    self.writable(key.fileobj, key.data)
            for key in list(self.selector.get_map().values()):
                state = key.data
                if state["kind"] == "bad" and state["replied_at"] is not None:
                    if now - state["replied_at"] > CLOSE_WAIT:
                        self.stats["bad"]["still_open"] += 1
                        self.close(key.fileobj, state, by_server=False)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        return self.stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("address", help="HOST:PORT of the metrics endpoint")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--pipeliners", type=int, default=8)
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--bad", type=int, default=4)
    arguments = parser.parse_args()
    host, _, port = arguments.address.rpartition(":")
    attack = Attack((host.strip("[]"), int(port)), time.monotonic() + arguments.seconds)
    stats = attack.run(arguments.pipeliners, arguments.idle, arguments.bad)
    json.dump(stats, sys.stdout, sort_keys=True)
    print()
    opened = sum(stats[kind]["opened"] for kind in stats)
    return 0 if opened > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
