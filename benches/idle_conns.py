#!/usr/bin/env python3
"""Opens N keep-alive TLS connections (--plain: plain HTTP/1.1) to a loopback proxy, one request
each, then holds them idle and reports the proxy's resident memory (summed over --pid).

Prints one row for benches/compare_table.py: "idle", name, connections still open when the RSS
is read, RSS MiB while holding, RSS MiB before. --handshake-first also prints (to stderr) the
RSS with every connection open but no request sent yet. Loopback only; closes everything before it exits.
"""

import argparse
import asyncio
import re
import resource
import ssl
import sys


def rss_mib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024.0


async def connect(port, ctx, gate):
    async with gate:
        try:
            return await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        except (OSError, ssl.SSLError) as err:
            print(f"connection failed: {err}", file=sys.stderr)
            return None


async def ask(conn, request, gate, held):
    if conn is None:
        return
    reader, writer = conn
    async with gate:
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            # The body too, so that an end of stream from the proxy later shows as at_eof().
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(length.group(1)) if length else 0)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as err:
            print(f"connection failed: {err}", file=sys.stderr)
            return
    if not head.startswith(b"HTTP/1.1 200"):
        print(f"unexpected answer: {head[:40]!r}", file=sys.stderr)
    held.append((reader, writer))


async def one(port, request, ctx, gate, held):
    await ask(await connect(port, ctx, gate), request, gate, held)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--pid", type=int, nargs="+", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--path", default="/admin/x")
    parser.add_argument("--plain", action="store_true", help="plain HTTP/1.1, no TLS")
    parser.add_argument(
        "--settle",
        type=float,
        default=2,
        help="seconds between the last answer and reading the RSS",
    )
    parser.add_argument(
        "--handshake-first",
        action="store_true",
        help="open every connection first and print the RSS then (to stderr), then send",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if not args.plain:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {args.token}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    before = rss_mib(args.pid)
    held = []
    gate = asyncio.Semaphore(64)
    if args.handshake_first:
        conns = await asyncio.gather(*(connect(args.port, ctx, gate) for _ in range(args.count)))
        await asyncio.sleep(2)
        opened = sum(1 for c in conns if c is not None)
        print(f"{args.name}: {opened} connections after the handshake only: "
              f"{rss_mib(args.pid):.1f} MiB", file=sys.stderr)
        await asyncio.gather(*(ask(c, request, gate, held) for c in conns))
    else:
        await asyncio.gather(*(one(args.port, request, ctx, gate, held) for _ in range(args.count)))
    await asyncio.sleep(args.settle)
    holding = rss_mib(args.pid)
    # Only connections the proxy still holds count: one it closed (a timeout shorter than the
    # time it took to open all of them) has freed its memory.
    still_open = sum(1 for reader, _ in held if not reader.at_eof())
    if still_open < len(held):
        print(f"{len(held) - still_open} connections closed by the proxy", file=sys.stderr)
    print(f"idle\t{args.name}\t{still_open}\t{holding:.1f}\t{before:.1f}\t-")
    for _, writer in held:
        writer.close()
    await asyncio.sleep(1)


asyncio.run(main())
