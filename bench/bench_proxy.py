"""Benchmark of the embedded Toxiproxy: throughput and added round-trip latency, no toxic.

Run on demand: ``.venv/bin/python bench/bench_proxy.py [--megabytes 256] [--rounds 5000]``.

Three processes, all on 127.0.0.1: an upstream server (asyncio), the embedded
proxy (its own process and event loop, as ``aftershock proxy`` runs it) and
this client (blocking sockets). Each measurement is taken against the upstream
directly and through the proxy in the same run, so the table shows what the
proxy adds on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import struct
import time
from multiprocessing.connection import Connection

import httpx

CHUNK = 256 * 1024
PING = b"x" * 64


# ---------------------------------------------------------------- upstream process


async def _upstream_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        mode = await reader.readexactly(1)
        if mode == b"S":  # source: send the requested number of bytes
            (size,) = struct.unpack("!Q", await reader.readexactly(8))
            block = b"\0" * CHUNK
            while size > 0:
                writer.write(block[: min(size, CHUNK)])
                size -= CHUNK
                await writer.drain()
            await reader.read()
        else:  # echo
            writer.write(mode)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass  # a cancelled client task re-raises in asyncio's stream callback
    finally:
        writer.close()


def _run_upstream(pipe: Connection) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_upstream_client, "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        server.close()

    asyncio.run(main())


def _run_proxy(pipe: Connection) -> None:
    from aftershock.proxy import EmbeddedToxiproxy

    async def main() -> None:
        async with EmbeddedToxiproxy() as server:
            pipe.send(server.api_url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


# ---------------------------------------------------------------- client


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def throughput(port: int, megabytes: int) -> float:
    """MB/s received from the source upstream through ``port``."""
    size = megabytes * 1_000_000
    with _connect(port) as sock:
        buffer = bytearray(CHUNK)
        began = time.perf_counter()
        sock.sendall(b"S" + struct.pack("!Q", size))
        received = 0
        while received < size:
            count = sock.recv_into(buffer)
            if not count:
                raise ConnectionError("upstream closed early")
            received += count
        elapsed = time.perf_counter() - began
    return megabytes / elapsed


def round_trips(port: int, rounds: int) -> list[float]:
    """Microseconds for each of ``rounds`` 64-byte echoes through ``port``."""
    samples: list[float] = []
    with _connect(port) as sock:
        sock.sendall(b"E")
        sock.recv(1)
        for _ in range(rounds + rounds // 10):
            began = time.perf_counter()
            sock.sendall(PING)
            received = 0
            while received < len(PING):
                received += len(sock.recv(65536))
            samples.append((time.perf_counter() - began) * 1e6)
    return samples[rounds // 10 :]  # the first tenth warms up


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``samples``."""
    return statistics.quantiles(samples, n=1000)[int(fraction * 1000) - 1]


def main() -> None:
    """Run both measurements directly and through the proxy; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256, help="bytes moved per throughput run")
    parser.add_argument("--rounds", type=int, default=5000, help="echoes per latency run")
    args = parser.parse_args()

    upstream_pipe, upstream_child = multiprocessing.Pipe()
    proxy_pipe, proxy_child = multiprocessing.Pipe()
    upstream = multiprocessing.Process(target=_run_upstream, args=(upstream_child,))
    proxy = multiprocessing.Process(target=_run_proxy, args=(proxy_child,))
    upstream.start()
    proxy.start()
    try:
        upstream_port = upstream_pipe.recv()
        api_url = proxy_pipe.recv()
        answer = httpx.post(
            f"{api_url}/proxies",
            json={
                "name": "bench",
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{upstream_port}",
            },
        )
        answer.raise_for_status()
        proxy_port = int(answer.json()["listen"].rpartition(":")[2])

        results = {}
        for label, port in (("direct", upstream_port), ("proxied", proxy_port)):
            throughput(port, max(args.megabytes // 8, 1))  # warm-up
            rtts = round_trips(port, args.rounds)
            results[label] = (
                throughput(port, args.megabytes),
                percentile(rtts, 0.50),
                percentile(rtts, 0.99),
            )
    finally:
        upstream_pipe.send("stop")
        proxy_pipe.send("stop")
        upstream.join(10)
        proxy.join(10)

    direct, proxied = results["direct"], results["proxied"]
    print(f"embedded Toxiproxy, no toxic ({args.megabytes} MB, {args.rounds} round trips)")
    print(f"{'':18}{'direct':>12}{'proxied':>12}{'added':>12}")
    print(f"{'throughput MB/s':18}{direct[0]:>12.1f}{proxied[0]:>12.1f}{'':>12}")
    for name, index in (("RTT p50 µs", 1), ("RTT p99 µs", 2)):
        added = proxied[index] - direct[index]
        print(f"{name:18}{direct[index]:>12.1f}{proxied[index]:>12.1f}{added:>+12.1f}")


if __name__ == "__main__":
    main()
