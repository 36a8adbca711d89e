"""The test server's HTTP/1.1 on the wire: reading a request, and sending a `Reply` as its fault says.

`Reply` is what the server computed (status, body, headers, or a stream's server-sent events) and
how its bytes must go out: whole, trickled one byte at a time, in chunked encoding `--token-interval`
apart, stalled, slowed by `evalkit.testserver.stream`, or not at all (`_reset`, a TCP reset).
`_read_request` parses one request off a keep-alive connection. Nothing here decides what to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
from dataclasses import dataclass, field

from evalkit.testserver import stream as hostile


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)
    fault: str | None = None          # reset / trickle / stall: how the bytes go out
    events: list[bytes] | None = None  # a streamed reply: its server-sent events, in order
    tokens: int = 0                   # a completion's reply tokens (for --token-interval)


async def _read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
    return method, path, headers, body


async def _send(writer: asyncio.StreamWriter, reply: Reply, args: argparse.Namespace) -> None:
    if reply.events is not None:
        await _send_events(writer, reply, args)
        return
    head = [f"HTTP/1.1 {reply.status} {'OK' if reply.status == 200 else 'Error'}",
            *([] if "content-type" in reply.headers else
              ["content-type: text/html" if reply.body.startswith(b"<") else "content-type: application/json"]),
            f"content-length: {len(reply.body)}"] + [f"{k}: {v}" for k, v in reply.headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    if reply.fault == "trickle":
        await _trickle(writer, reply.body, args.trickle_interval)
        return
    writer.write(reply.body)
    await writer.drain()


async def _trickle(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    await writer.drain()
    for i in range(len(data)):          # one byte at a time: a read timeout never fires
        writer.write(data[i:i + 1])
        await writer.drain()
        await asyncio.sleep(interval)


async def _send_events(writer: asyncio.StreamWriter, reply: Reply, args: argparse.Namespace) -> None:
    """A streamed reply in chunked encoding: each event as it is ready (`--token-interval` apart),
    trickled byte by byte, or stalled after its first event."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    assert reply.events is not None                 # a streamed reply is made of events
    framed = [b"%x\r\n%s\r\n" % (len(e), e) for e in reply.events] + [b"0\r\n\r\n"]
    if reply.fault == "trickle":
        await _trickle(writer, b"".join(framed), args.trickle_interval)
        return
    if reply.fault in ("keepalive", "nodone"):
        await hostile.send_slowly(writer, framed, reply.fault, args)
        return
    for i, frame in enumerate(framed):
        writer.write(frame)
        await writer.drain()
        if reply.fault == "stall" and i == 1:
            await asyncio.sleep(args.stall_seconds)
        elif args.token_interval and 0 < i < len(framed) - 4:
            await asyncio.sleep(args.token_interval)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset, no reply."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
