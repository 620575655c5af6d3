"""Zero-copy blob GETs under uvicorn: the ASGI pathsend extension answered
with `sendfile(2)`.

uvicorn has no pathsend; `PathsendProtocol` (its httptools protocol, plus
this) offers it on plain TCP connections and sends the file straight from
the page cache to the socket, never through Python's memory: from threads
of its own while the client takes the bytes, and waiting on the event loop
(no thread held) when the client stops taking them, so slow clients never
tie up threads that other requests need. Over TLS it is not offered (the
bytes must be encrypted in user space) and the application streams the
file instead.

Measured on this project's machine (loopback, one stream): `sendfile` in
pieces of 32 KiB sends 4-5 GB/s, where whole-file `sendfile` calls and
128 KiB pieces stay near 2 GB/s, and granian's pathsend (128 KiB reads
relayed between threads) gives 2-3 GB/s. See docs/performance.md.

The socket is used through a duplicate of its descriptor, so a connection
closed meanwhile by the event loop (the client went away) can never let a
sender write into another connection that reused the number; a stopping
server shuts the connection down, so no send outlives the drain timeout.
Nothing else writes to the connection while the body goes out: uvicorn
runs one response at a time per connection, and the head is flushed first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
# How long a sender thread waits for a client that takes nothing before it
# hands the wait to the event loop (ms): a client reading at speed never
# waits this long; one that stopped holds no thread.
STEP_WAIT_MS: Final = 50
# The sender threads, apart from the pool the storage drivers use, so that
# pulls never queue a storage call behind them.
_SENDERS: Final = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="sendfile")

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
        # it at once: it must be out before the body goes in beside it (a
        # client that takes not even the head within STALL_TIMEOUT is cut).
        waited, delay = 0.0, 0.001
        while transport.get_write_buffer_size() and not transport.is_closing():
            if waited >= STALL_TIMEOUT:
                transport.close()
                break
            await asyncio.sleep(delay)
            waited, delay = waited + delay, min(delay * 2, 0.05)
        sock = transport.get_extra_info("socket")
        if sock is None or transport.is_closing():
            cycle.disconnected = True
        else:
            try:
                sent = await _Sender(os.dup(sock.fileno()), path).send(count)
            except asyncio.CancelledError:
                # Only uvicorn's shutdown cancels a request, once its grace
                # period is over: the connection is cut (see `send`), and
                # this ends as a response to a client that left.
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
    """Sends a file to a connection through a descriptor of its own (`fd`,
    a duplicate of the socket's), in steps on the senders' threads while the
    client takes the bytes; when it stops taking them, the thread is given
    back and the event loop waits for the socket to be writable again.

    `fd` is closed once, by whoever finishes last: the step running in a
    thread, or `send` when no step is running. A `send` cancelled during a
    step shuts the connection down, which ends the step at once.
    """

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self._path = path
        self._lock = threading.Lock()
        self._source: int | None = None
        self._stepping = False
        self._abandoned = False

    async def send(self, count: int) -> int:
        """Send the file's first `count` bytes; the bytes sent (fewer if the
        client went away, stalled for STALL_TIMEOUT, or the file is short)."""
        loop = asyncio.get_running_loop()
        sent = 0
        step: concurrent.futures.Future[tuple[int, str]] | None = None
        try:
            while sent < count:
                with self._lock:
                    self._stepping = True
                step = _SENDERS.submit(self._step, sent, count)
                n, outcome = await asyncio.wrap_future(step)
                sent += n
                if outcome == _ENDED:
                    break
                if outcome == _STALLED and not await self._writable(loop):
                    break
            return sent
        finally:
            with self._lock:
                if self._stepping and step is not None and step.cancel():
                    self._stepping = False  # cancelled before it ran: it never will
                if self._stepping:  # cancelled while a step runs: it closes
                    self._abandoned = True
                    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._fd)) as s:
                        s.shutdown(socket.SHUT_RDWR)
                else:
                    self._close()

    def _step(self, offset: int, count: int) -> tuple[int, str]:
        """In a sender thread: send from `offset` until done, or the client
        stops taking bytes for STEP_WAIT_MS; (bytes sent, outcome)."""
        try:
            if self._source is None:
                try:
                    self._source = os.open(self._path, os.O_RDONLY)
                except FileNotFoundError:  # deleted since the response began
                    return 0, _ENDED
            return _send_from(self._fd, self._source, offset, count)
        finally:
            with self._lock:
                self._stepping = False
                if self._abandoned:
                    self._close()

    def _close(self) -> None:
        os.close(self._fd)
        if self._source is not None:
            os.close(self._source)

    async def _writable(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait (on the event loop, no thread held) until the socket takes
        bytes again; False after STALL_TIMEOUT."""
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(self._fd, wake)
        try:
            await asyncio.wait_for(ready, STALL_TIMEOUT)
        except TimeoutError:
            return False
        finally:
            loop.remove_writer(self._fd)
        return True


_CONTINUE: Final = "continue"
_STALLED: Final = "stalled"
_ENDED: Final = "ended"


def _send_from(fd: int, source: int, offset: int, count: int) -> tuple[int, str]:
    """Write bytes `offset` to `count` of the file `source` to the
    non-blocking socket `fd`, PIECE by PIECE; (bytes sent, outcome): all
    sent (`_CONTINUE` with nothing left), `_STALLED` (the client took
    nothing for STEP_WAIT), or `_ENDED` (the peer is gone, or the file is
    shorter than `count`)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    start = offset
    while offset < count:
        try:
            n = os.sendfile(fd, source, offset, min(PIECE, count - offset))
        except BlockingIOError:
            if not poller.poll(STEP_WAIT_MS):
                return offset - start, _STALLED
            continue
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                return offset - start, _ENDED
            raise
        if n == 0:
            return offset - start, _ENDED
        offset += n
    return offset - start, _CONTINUE


__all__ = ["PATHSEND", "PathsendProtocol"]
