"""Zero-copy blob GETs under uvicorn: the ASGI pathsend extension answered
with `sendfile(2)`.

uvicorn has no pathsend; `PathsendProtocol` (its httptools protocol, plus
this) offers it on plain TCP connections and sends the file from a worker
thread, straight from the page cache to the socket, never through Python's
memory. Over TLS it is not offered (the bytes must be encrypted in user
space) and the application streams the file instead.

Measured on this project's machine (loopback, one stream): `sendfile` in
pieces of 32 KiB sends 4-5 GB/s, where whole-file `sendfile` calls and
128 KiB pieces stay near 2 GB/s, and granian's pathsend (128 KiB reads
relayed between threads) gives 2-3 GB/s. See docs/performance.md.

The socket is used through a duplicate of its descriptor, so a connection
closed meanwhile by the event loop (the client went away) can never let the
thread write into another connection that reused the number; a stopping
server shuts the connection down, so no send outlives the drain timeout. Nothing else
writes to the connection while the body goes out: uvicorn runs one
response at a time per connection, and the headers are flushed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PATHSEND: Final = "http.response.pathsend"
# One sendfile call's size: see the module docstring.
PIECE: Final = 32 * 1024
# How long a connection may accept nothing before the send gives up (s).
STALL_TIMEOUT: Final = 60.0
# Bound on the wait for the response head to leave the transport's buffer.
_FLUSH_POLLS: Final = 2000
_FLUSH_INTERVAL: Final = 0.001

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Send], Awaitable[None]]


class PathsendProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the pathsend extension (plain TCP)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.transport.get_extra_info("sslcontext") is not None:
            super()._start_asgi_task(cycle, app)
            return
        scope: MutableMapping[str, Any] = cycle.scope  # type: ignore[assignment]
        scope["extensions"] = {**(scope.get("extensions") or {}), PATHSEND: {}}
        super()._start_asgi_task(cycle, _answering_pathsend(app, cycle))  # type: ignore[arg-type]


def _answering_pathsend(app: ASGIApp, cycle: RequestResponseCycle) -> ASGIApp:
    async def wrapped(scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        async def send_or_pathsend(message: Message) -> None:
            if message["type"] == PATHSEND:
                await _pathsend(cycle, message["path"])
            else:
                await send(message)

        await app(scope, receive, send_or_pathsend)

    return wrapped


async def _pathsend(cycle: RequestResponseCycle, path: str) -> None:
    """Send the file at `path` as the body whose head was sent, then end the
    response as uvicorn ends one."""
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError("pathsend outside a started response")
    count = cycle.expected_content_length
    transport = cycle.transport
    if count and not cycle.disconnected and cycle.scope["method"] != "HEAD":
        # The head is in the transport's buffer if the socket did not take
        # it at once: it must be out before the body goes in beside it.
        for _ in range(_FLUSH_POLLS):
            if transport.get_write_buffer_size() == 0 or transport.is_closing():
                break
            await asyncio.sleep(_FLUSH_INTERVAL)
        sock = transport.get_extra_info("socket")
        if sock is None or transport.is_closing():
            cycle.disconnected = True
        else:
            sender = _Sender(os.dup(sock.fileno()))
            try:
                sent = await asyncio.to_thread(sender.send_file, path, count)
            except asyncio.CancelledError:
                # Only uvicorn's shutdown cancels a request, once its grace
                # period is over: cut the connection (the thread ends at
                # once) and end here, as a response to a client that left.
                sender.abort()
                sent = 0
            if sent < count:  # the client went away, or the file is short
                cycle.disconnected = True
                transport.close()
    cycle.expected_content_length = 0
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    cycle.on_response()


class _Sender:
    """Sends a file to a socket through a descriptor of its own (`fd`, a
    duplicate), which only the sending thread closes, when it is done; until
    then `abort` may shut the connection down to end the send at once."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._closed = False

    def send_file(self, path: str, count: int) -> int:
        try:
            return _send_file(self._fd, path, count)
        finally:
            with self._lock:
                self._closed = True
                os.close(self._fd)

    def abort(self) -> None:
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)


def _send_file(fd: int, path: str, count: int) -> int:
    """Write `count` bytes of the file at `path` to the non-blocking socket
    `fd`; the bytes sent (fewer if the peer is gone or stalls too long)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    sent = 0
    with open(path, "rb", buffering=0) as file:
        source = file.fileno()
        while sent < count:
            try:
                n = os.sendfile(fd, source, sent, min(PIECE, count - sent))
            except BlockingIOError:
                if not poller.poll(int(STALL_TIMEOUT * 1000)):
                    return sent  # the client has taken nothing for a minute
                continue
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                    return sent
                raise
            if n == 0:
                return sent  # the file is shorter than it said
            sent += n
    return sent


__all__ = ["PATHSEND", "PathsendProtocol"]
