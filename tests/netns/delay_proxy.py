#!/usr/bin/env python3
"""Transparent TCP proxy that adds a fixed one-way delay, for the network-trouble test.

The kernel of the test machines has no netem, so latency is added in user space. netns_test.sh
runs one proxy inside each worker's network namespace and sends every TCP connection of that
namespace through it with nftables `redirect` rules (outgoing: nat output, incoming: nat
prerouting). The proxy learns where a connection was going from SO_ORIGINAL_DST, connects there
with SO_MARK set (the nftables rules skip marked packets, so the proxy's own connections are not
redirected again), and forwards bytes in both directions, each chunk held back --delay_ms after it
was read. Chunks are pipelined, so this is latency, not a bandwidth limit.

python3 standard library only. On SIGTERM it writes its counters as one JSON line to --stats.
"""
import argparse
import asyncio
import json
import signal
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; not exported by the socket module
SO_MARK = getattr(socket, "SO_MARK", 36)
CHUNK = 65536
QUEUED_CHUNKS = 256  # per direction: back-pressure instead of unbounded buffering

stats = {"connections": 0, "refused": 0, "bytes_out": 0, "bytes_in": 0, "errors": 0}


def refuse(writer, why):
    stats["refused"] += 1
    if stats["refused"] <= 20:  # enough to see why, not a flood while a peer is down
        print(f"delay_proxy: refused a connection: {why}", file=sys.stderr, flush=True)
    writer.close()


def original_destination(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, addr = struct.unpack("!2xH4s8x", raw)
    return socket.inet_ntoa(addr), port


async def pump(reader, writer, delay_s, counter):
    """Copies reader to writer; each chunk leaves delay_s after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue(QUEUED_CHUNKS)

    async def read_side():
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + delay_s, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), b""))

    async def write_side():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                stats[counter] += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            stats["errors"] += 1

    await asyncio.gather(read_side(), write_side())


async def handle(client_reader, client_writer, args):
    sock = client_writer.get_extra_info("socket")
    try:
        host, port = original_destination(sock)
    except OSError as e:
        refuse(client_writer, f"no original destination ({e})")
        return
    if port == args.port:  # a direct connection to the proxy itself: nowhere to go
        refuse(client_writer, f"direct connection to the proxy from {client_writer.get_extra_info('peername')}")
        return
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.setsockopt(socket.SOL_SOCKET, SO_MARK, args.mark)
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(upstream, (host, port)), 30)
        server_reader, server_writer = await asyncio.open_connection(sock=upstream)
    except (OSError, asyncio.TimeoutError) as e:
        # Tell the client the same thing a direct connection would have: refused / reset.
        upstream.close()
        refuse(client_writer, f"{host}:{port}: {e!r}")
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stats["connections"] += 1
    delay_s = args.delay_ms / 1000.0
    try:
        await asyncio.gather(pump(client_reader, server_writer, delay_s, "bytes_out"),
                             pump(server_reader, client_writer, delay_s, "bytes_in"))
    finally:
        server_writer.close()
        client_writer.close()


def write_stats(path):
    if path:
        with open(path, "w") as f:
            f.write(json.dumps(stats) + "\n")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port the redirect rules send to")
    parser.add_argument("--delay_ms", type=float, default=3.0, help="added delay per direction")
    parser.add_argument("--mark", type=int, default=0x6d70, help="SO_MARK of upstream connections")
    parser.add_argument("--stats", default="", help="file for the counters (JSON), on SIGTERM")
    args = parser.parse_args()

    server = await asyncio.start_server(lambda r, w: handle(r, w, args), "0.0.0.0", args.port,
                                        reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"delay_proxy: port {args.port}, {args.delay_ms} ms each way", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()
    write_stats(args.stats)


if __name__ == "__main__":
    asyncio.run(main())
