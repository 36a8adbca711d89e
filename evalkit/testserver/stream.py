"""Hostile streams for the test server: what a server may do to a client that reads server-sent
events, each within the protocol's letter (`--fault KIND=RATE` of `evalkit.testserver`).

- `keepalive`: after the role chunk, an SSE comment (`: keep-alive`) every 0.5 s and no token
  for `--stall-seconds`, then the reply.
- `bigevent`: the first content chunk spread over `--huge-bytes` of `data:` lines (whitespace,
  which JSON allows, then the chunk), so one event is huge while its text is small.
- `emptyevents`: `--huge-bytes` of events without content (`{"choices": []}`) before the reply.
- `nodone`: the whole reply (finish_reason and usage included), then neither `[DONE]` nor the end
  of the body for `--stall-seconds`.
"""

from __future__ import annotations

import asyncio

KEEPALIVE_EVERY = 0.5


def shaped(events: list[bytes], fault: str | None, args) -> list[bytes]:
    """The events of a reply as `fault` shapes them (the timing is `send_slowly`'s)."""
    if fault == "bigevent":
        pad = b"data: " + b" " * 1018 + b"\n"
        first = events[1].removeprefix(b"data: ")
        return [events[0], pad * max(1, args.huge_bytes // len(pad)) + b"data: " + first, *events[2:]]
    if fault == "emptyevents":
        empty = b'data: {"choices": []}\n\n'
        return [events[0], empty * max(1, args.huge_bytes // len(empty)), *events[1:]]
    if fault == "nodone":
        return events[:-1]
    return events


async def send_slowly(writer: asyncio.StreamWriter, framed: list[bytes], fault: str, args) -> None:
    """`keepalive`: comments between the role chunk and the rest; `nodone`: the reply, then silence
    with the body left open (no final empty chunk)."""
    if fault == "nodone":
        writer.write(b"".join(framed[:-1]))
        await writer.drain()
        await asyncio.sleep(args.stall_seconds)
        return
    writer.write(framed[0])
    await writer.drain()
    comment = b": keep-alive\n\n"
    for _ in range(int(args.stall_seconds / KEEPALIVE_EVERY)):
        writer.write(b"%x\r\n%s\r\n" % (len(comment), comment))
        await writer.drain()
        await asyncio.sleep(KEEPALIVE_EVERY)
    writer.write(b"".join(framed[1:]))
    await writer.drain()
