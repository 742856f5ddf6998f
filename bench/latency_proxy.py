#!/usr/bin/env python3
"""A loopback TCP proxy that adds a round-trip time, for postie's benchmarks.

    bench/latency_proxy.py --listen 127.0.0.1:P --to 127.0.0.1:Q --rtt-ms 40
    bench/latency_proxy.py --selftest --rtt-ms 40     # measure a ping-pong through it

Each chunk read from one side is written to the other side RTT/2 later (one-way delay),
in the order it was read; so a request/reply exchange costs RTT on top of loopback. It is
a pure delay line: no bandwidth limit, no coalescing. TCP_NODELAY is set on both legs so
the kernel never holds a small delayed write back (no Nagle/delayed-ACK interplay added
by the proxy). A half-close (EOF) is forwarded after the same delay, then the socket
closes when both directions are done.

Prints "ready PORT" on stdout once it listens (PORT is useful with --listen 127.0.0.1:0).
Standard library only. Listens and connects on 127.0.0.0/8 only.

With --stats FILE it appends one line per finished connection:
    turns=T rtts=R c2s=BYTES/READS s2c=BYTES/READS stalls=N stall_ms=MS
  turns: how often the server spoke after the client had (the greeting counts as one);
         R = T - 0.5 is the number of round trips the client waited for, counted the way
         issue 7 counts them (greeting 0.5, every later exchange 1), independent of noise.
  stalls: gaps of STALL_MS or more between two reads in the same direction with nothing
         from the other side in between: one side held back bytes of the same burst,
         the signature of Nagle + delayed ACK (40 ms on Linux) or of slow local work.
"""

import argparse
import asyncio
import ipaddress
import socket
import statistics
import sys
import time

CHUNK = 256 * 1024
# Bound on bytes in flight per direction, so a 1 GB transfer cannot pile up in memory
# when the receiver is slower than the sender: the reader pauses while the queue is full.
MAX_IN_FLIGHT = 8 * 1024 * 1024
# A gap this long inside one direction's burst counts as a stall (see the module docs).
STALL_MS = 15.0


class Stats:
    """Direction turns and same-direction gaps of one proxied connection."""

    def __init__(self):
        self.last_dir = None
        self.last_time = {}
        self.turns = 0
        self.bytes = {"c2s": 0, "s2c": 0}
        self.reads = {"c2s": 0, "s2c": 0}
        self.stalls = []

    def saw(self, direction, n, now):
        if direction == "s2c" and self.last_dir != "s2c":
            self.turns += 1
        if self.last_dir == direction and direction in self.last_time:
            gap = (now - self.last_time[direction]) * 1000
            if gap >= STALL_MS:
                self.stalls.append((direction, gap))
        self.last_dir = direction
        self.last_time[direction] = now
        self.bytes[direction] += n
        self.reads[direction] += 1

    def line(self):
        stall_ms = "+".join(f"{d}:{g:.0f}" for d, g in self.stalls) or "0"
        return (f"turns={self.turns} rtts={max(self.turns - 0.5, 0):g} "
                f"c2s={self.bytes['c2s']}/{self.reads['c2s']} "
                f"s2c={self.bytes['s2c']}/{self.reads['s2c']} "
                f"stalls={len(self.stalls)} stall_ms={stall_ms}")


def loopback(hostport):
    host, _, port = hostport.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"latency_proxy: {host} is not a loopback address")
    return host, int(port)


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def pump(reader, writer, delay, stats, direction):
    """Copy reader -> writer, each chunk delivered `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    in_flight = 0
    room = asyncio.Event()
    room.set()

    async def deliver():
        nonlocal in_flight
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
            in_flight -= len(data)
            if in_flight < MAX_IN_FLIGHT:
                room.set()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            await room.wait()
            data = await reader.read(CHUNK)
            now = loop.time()
            due = now + delay
            if data:
                stats.saw(direction, len(data), now)
            if not data:
                queue.put_nowait((due, None))
                break
            in_flight += len(data)
            if in_flight >= MAX_IN_FLIGHT:
                room.clear()
            queue.put_nowait((due, data))
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        raise


async def handle(client_r, client_w, target, delay, stats_file):
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError as e:
        print(f"latency_proxy: connect {target}: {e}", file=sys.stderr)
        client_w.close()
        return
    nodelay(client_w)
    nodelay(server_w)
    stats = Stats()
    try:
        await asyncio.gather(
            pump(client_r, server_w, delay, stats, "c2s"),
            pump(server_r, client_w, delay, stats, "s2c"),
        )
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        for w in (client_w, server_w):
            w.close()
        if stats_file:
            with open(stats_file, "a") as f:
                f.write(stats.line() + "\n")


async def serve(listen, target, rtt_ms, ready=None, stats_file=None):
    delay = rtt_ms / 2000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay, stats_file), *listen
    )
    port = server.sockets[0].getsockname()[1]
    if ready is None:
        print(f"ready {port}", flush=True)
    else:
        ready.set_result(port)
    async with server:
        await server.serve_forever()


async def selftest(rtt_ms, rounds):
    """Echo server <- proxy <- client; returns per-round-trip seconds."""

    async def echo(r, w):
        nodelay(w)
        try:
            while data := await r.read(CHUNK):
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        w.close()

    echo_srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_srv.sockets[0].getsockname()[1]
    ready = asyncio.get_running_loop().create_future()
    proxy = asyncio.create_task(
        serve(("127.0.0.1", 0), ("127.0.0.1", echo_port), rtt_ms, ready)
    )
    port = await asyncio.wait_for(ready, 5)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    nodelay(w)
    times = []
    for i in range(rounds):
        # Small lines, as SMTP commands are: the case Nagle would stall.
        msg = f"PING {i}\r\n".encode()
        t0 = time.perf_counter()
        w.write(msg)
        await w.drain()
        got = b""
        while len(got) < len(msg):
            got += await asyncio.wait_for(r.read(CHUNK), 5)
        times.append(time.perf_counter() - t0)
    w.close()
    proxy.cancel()
    echo_srv.close()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--to")
    ap.add_argument("--rtt-ms", type=float, default=40.0)
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--stats", metavar="FILE", help="append per-connection statistics")
    a = ap.parse_args()
    if a.selftest:
        times = asyncio.run(selftest(a.rtt_ms, a.rounds))
        med = statistics.median(times) * 1000
        lo, hi = min(times) * 1000, max(times) * 1000
        # The median decides; a single slow round (a busy machine) is reported, not fatal.
        ok = abs(med - a.rtt_ms) <= max(3.0, 0.1 * a.rtt_ms)
        verdict = "PASS" if ok else "FAIL"
        print(
            f"latency proxy self-test: {a.rounds} ping-pongs at {a.rtt_ms:g} ms RTT: "
            f"median {med:.1f} ms (min {lo:.1f}, max {hi:.1f}) {verdict}"
        )
        sys.exit(0 if ok else 1)
    if not a.to:
        ap.error("--to is required")
    try:
        asyncio.run(serve(loopback(a.listen), loopback(a.to), a.rtt_ms, stats_file=a.stats))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
