"""Sending a file to a connection with `sendfile(2)`, for the servers'
pathsend (the ASGI extension a blob GET answers with): entrepot's own server
(`entrepot.httpserver`) and uvicorn's (`entrepot.zerocopy`).

The file goes straight from the page cache to the socket, never through
Python's memory: from threads of its own while the client takes the bytes,
and waiting on the event loop (no thread held) when the client stops taking
them, so slow clients never tie up threads that other requests need.

Measured on this project's machine (loopback, one stream): `sendfile` in
pieces of 32 KiB sends 4-5 GB/s, where whole-file `sendfile` calls and
128 KiB pieces stay near 2 GB/s, and granian's pathsend (128 KiB reads
relayed between threads) gives 2-3 GB/s. See docs/performance.md.

The socket is used through a duplicate of its descriptor, so a connection
closed meanwhile by the event loop (the client went away) can never let a
sender write into another connection that reused the number. A caller that
stops (a server shutting down) cancels `send`, which shuts the connection
down, so no send outlives the drain timeout.
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
from typing import Final

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


async def send_file(transport: asyncio.WriteTransport, path: str, count: int) -> int:
    """Send the first `count` bytes of the file at `path` on the connection
    of `transport`, after what the transport still holds (the response's
    head, which must be out before the body goes in beside it); the bytes
    sent: fewer if the client went away, took nothing for STALL_TIMEOUT, or
    the file is short. Cancelled (a server stopping), it cuts the connection
    and returns 0."""
    waited, delay = 0.0, 0.001
    while transport.get_write_buffer_size() and not transport.is_closing():
        if waited >= STALL_TIMEOUT:  # a client that takes not even the head
            transport.close()
            return 0
        await asyncio.sleep(delay)
        waited, delay = waited + delay, min(delay * 2, 0.05)
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing():
        return 0
    try:
        return await Sender(os.dup(sock.fileno()), path).send(count)
    except asyncio.CancelledError:
        return 0


class Sender:
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


__all__ = ["PATHSEND", "Sender", "send_file"]
