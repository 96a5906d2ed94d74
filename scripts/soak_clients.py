#!/usr/bin/env python3
"""Clients for scripts/soak.sh that wrk and h2load cannot play.

- gap: a new connection per request, after a random pause of 0-3 s, so the
  proxy's pooled upstream connections have often been closed by the
  upstream (nginx keepalive_timeout 2 s, uvicorn --timeout-keep-alive 1)
  when the next request arrives. GET to both upstreams, and POST with a
  small body to uvicorn (a request with a body must never be lost on a
  stale connection either).
- slow: the request head, and for POST the body, trickled byte by byte
  (a full head in 1-3 s, well under the proxy's header_read_timeout, and
  each body byte far under body_timeout).

Every request must get a 200 with the upstream's body; anything else
(status, body, timeout, reset) is a failure. Runs until the deadline; each
worker thread also stops after a bounded number of requests. Prints one
JSON object per client kind on stdout: requests, failures, p50/p99 latency
(ms), and up to 10 failure descriptions.

Usage: soak_clients.py PORT SECONDS GAP_WORKERS SLOW_WORKERS
Loopback only: the address is always 127.0.0.1.
"""

import json
import random
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
# Per-request bound: a request that takes longer is a hang.
TIMEOUT = 30.0
MAX_PER_WORKER = 100_000

# (Host header, method, body to send, text the answer must contain)
TARGETS = [
    ("ngx.test", "GET", b"", b"hello from nginx"),
    ("uv.test", "GET", b"", b"hello from uvicorn"),
    ("uv.test", "POST", b"k=" + b"v" * 198, b"hello from uvicorn, 200 bytes"),
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.failures = 0
        self.samples = []

    def ok(self, ms):
        with self.lock:
            self.latencies.append(ms)

    def fail(self, what):
        with self.lock:
            self.failures += 1
            if len(self.samples) < 10:
                self.samples.append(what)

    def summary(self, kind):
        lat = sorted(self.latencies)

        def pct(p):
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2)

        return {
            "kind": kind,
            "requests": len(lat) + self.failures,
            "failures": self.failures,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1], 2) if lat else None,
            "samples": self.samples,
        }


def head(host, method, body):
    lines = [f"{method} /index.html HTTP/1.1", f"Host: {host}", "User-Agent: soak", "Connection: close"]
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock):
    """Read to EOF (Connection: close); return (status, body)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    if not data:
        raise ConnectionError("connection closed without a response")
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        raise ConnectionError(f"incomplete response head: {data[:80]!r}")
    status_line = data.split(b"\r\n", 1)[0].split(b" ")
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    return status, data[head_end + 4 :]


def one(target, slow, rng):
    host, method, body, want = target
    raw_head = head(host, method, body)
    t0 = time.monotonic()
    sock = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
    try:
        sock.settimeout(TIMEOUT)
        if slow:
            # 1-3 s for the head, one byte per write (TCP_NODELAY: one byte per segment).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            gap = rng.uniform(1.0, 3.0) / len(raw_head)
            for i in range(len(raw_head)):
                sock.sendall(raw_head[i : i + 1])
                time.sleep(gap)
            for i in range(len(body)):
                sock.sendall(body[i : i + 1])
                time.sleep(0.005)
        else:
            sock.sendall(raw_head + body)
        status, got = read_response(sock)
    finally:
        sock.close()
    ms = (time.monotonic() - t0) * 1000
    return status, got, want, ms


def worker(kind, stats, deadline, seed):
    rng = random.Random(seed)
    for _ in range(MAX_PER_WORKER):
        if kind == "gap":
            pause = rng.uniform(0.0, 3.0)
            if time.monotonic() + pause >= deadline:
                return
            time.sleep(pause)
        elif time.monotonic() >= deadline:
            return
        target = rng.choice(TARGETS)
        try:
            status, got, want, ms = one(target, kind == "slow", rng)
        except Exception as e:  # noqa: BLE001 -- every transport error is a failure to report
            stats.fail(f"{target[1]} {target[0]}: {type(e).__name__}: {e}")
            continue
        if status != 200 or want not in got:
            stats.fail(f"{target[1]} {target[0]}: status {status}, body {got[:80]!r}")
        else:
            stats.ok(ms)


def main():
    global PORT
    if len(sys.argv) != 5:
        sys.exit("usage: soak_clients.py PORT SECONDS GAP_WORKERS SLOW_WORKERS")
    PORT = int(sys.argv[1])
    seconds, gap_workers, slow_workers = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    deadline = time.monotonic() + seconds
    stats = {"gap": Stats(), "slow": Stats()}
    threads = [
        threading.Thread(target=worker, args=(kind, stats[kind], deadline, i), daemon=True)
        for kind, n in (("gap", gap_workers), ("slow", slow_workers))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        # Bounded: a worker ends at the deadline plus at most one request's timeout.
        t.join(seconds + 2 * TIMEOUT + 5)
    for kind in ("gap", "slow"):
        print(json.dumps(stats[kind].summary(kind)), flush=True)


PORT = 0
if __name__ == "__main__":
    main()
