#!/usr/bin/env python3
"""Opens N keep-alive TLS connections (--plain: plain HTTP/1.1) to a loopback proxy, one request
each, then holds them idle and reports the proxy's resident memory (summed over --pid).
--mode h2: HTTP/2 over TLS (ALPN h2; a minimal client written here: preface, SETTINGS, one
GET in HPACK literals, SETTINGS acknowledged); --mode ws: a WebSocket upgrade (101) through the
proxy, then 4 bytes sent and read back through the tunnel, which is then held open.

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


def hpack_int(n):
    """An HPACK integer with a 7-bit prefix (string lengths, no Huffman bit)."""
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + [n])


def h2_frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_request(path, token):
    """Preface, empty SETTINGS, then HEADERS (END_STREAM | END_HEADERS) on stream 1."""
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", path.encode()),
              (b":authority", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
    # Literal header field without indexing, new name: 0x00, name, value.
    block = b"".join(b"\x00" + hpack_int(len(n)) + n + hpack_int(len(v)) + v for n, v in fields)
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
            + h2_frame(1, 0x5, 1, block))


async def h2_answer(reader, writer):
    """Reads frames until stream 1 ends; True when its :status was 200."""
    ok = False
    while True:
        head = await reader.readexactly(9)
        length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await reader.readexactly(length)
        if kind == 4 and not flags & 1:
            writer.write(h2_frame(4, 1, 0, b""))  # acknowledge the server's SETTINGS
        elif kind == 7:
            return False  # GOAWAY
        if stream == 1 and kind == 1:
            ok = payload[:1] == b"\x88"  # :status 200, indexed (HPACK static table 8)
        if stream == 1 and kind in (0, 1) and flags & 1:
            return ok


async def h1_answer(reader, writer, mode):
    """Reads one HTTP/1.1 answer; for ws, checks the tunnel with 4 bytes both ways."""
    head = await reader.readuntil(b"\r\n\r\n")
    # The body too, so that an end of stream from the proxy later shows as at_eof().
    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    await reader.readexactly(int(length.group(1)) if length else 0)
    if mode == "ws":
        if not head.startswith(b"HTTP/1.1 101"):
            return head.split(b"\r\n")[0]
        writer.write(b"ping")
        echoed = await reader.readexactly(4)
        return echoed == b"ping" or echoed
    return head.startswith(b"HTTP/1.1 200") or head.split(b"\r\n")[0]


async def ask(conn, request, gate, held, mode):
    if conn is None:
        return
    reader, writer = conn
    async with gate:
        try:
            writer.write(request)
            if mode == "h2":
                ok = await h2_answer(reader, writer)
            else:
                ok = await h1_answer(reader, writer, mode)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as err:
            print(f"connection failed: {err}", file=sys.stderr)
            return
    if ok is not True:
        # Not held: a connection that is not what is being measured would skew the average.
        print(f"unexpected answer ({mode}): {ok!r}", file=sys.stderr)
        writer.close()
        return
    held.append((reader, writer))


async def one(port, request, ctx, gate, held, mode):
    await ask(await connect(port, ctx, gate), request, gate, held, mode)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--pid", type=int, nargs="+", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--path", default="/admin/x")
    parser.add_argument("--plain", action="store_true", help="plain HTTP/1.1, no TLS")
    parser.add_argument("--mode", choices=["h1", "h2", "ws"], default="h1",
                        help="h1: a GET; h2: a GET over HTTP/2 (TLS only); ws: a WebSocket tunnel")
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
        ctx.set_alpn_protocols(["h2" if args.mode == "h2" else "http/1.1"])
    elif args.mode == "h2":
        parser.error("--mode h2 needs TLS")
    upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {args.token}\r\n"
        + (upgrade if args.mode == "ws" else "Content-Length: 0\r\n") + "\r\n"
    ).encode()
    if args.mode == "h2":
        request = h2_request(args.path, args.token)
    before = rss_mib(args.pid)
    held = []
    gate = asyncio.Semaphore(64)
    if args.handshake_first:
        conns = await asyncio.gather(*(connect(args.port, ctx, gate) for _ in range(args.count)))
        await asyncio.sleep(2)
        opened = sum(1 for c in conns if c is not None)
        print(f"{args.name}: {opened} connections after the handshake only: "
              f"{rss_mib(args.pid):.1f} MiB", file=sys.stderr)
        await asyncio.gather(*(ask(c, request, gate, held, args.mode) for c in conns))
    else:
        await asyncio.gather(*(one(args.port, request, ctx, gate, held, args.mode)
                               for _ in range(args.count)))
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
