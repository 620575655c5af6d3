"""entrepot's own HTTP/1.1 server: httptools' parser on the uvloop event
loop, serving an ASGI 3 application, with the pathsend extension answered
by `sendfile(2)` (`entrepot.sendfile`).

It does what the registry needs and no more, which keeps a running registry
small (no uvicorn, click, multiprocessing or email imported: 3.3 MiB)
and its requests cheap:

- persistent connections, and pipelined requests answered in order;
- request bodies with Content-Length or chunked, handed to the application
  in pieces of at least `BODY_PIECE` bytes (all but the last), so uploads
  are written in large writes without the application gathering them;
  reading pauses once that much is waiting, so memory stays bounded;
- `Expect: 100-continue` answered when the application first reads the
  body; a response that leaves such a body unread closes the connection
  (the client may never send it), as Go's server does; any other body left
  unread by an answer is read and dropped, and the connection goes on (as
  uvicorn does; Go closes it past 256 KiB);
- responses with Content-Length, or chunked when the application gives
  none (closed at the end for HTTP/1.0 clients); nothing after the head
  of a HEAD, 204 or 304;
- a head larger than `MAX_HEAD` (Go's default limit) answered with 431, a
  request that does not parse with 400; at most `MAX_PIPELINED` requests
  read ahead of the one being answered (the connection ends after them);
- a connection on which the client sends nothing for `IDLE_TIMEOUT` while
  the server waits for it (between requests, in a head, in a body) is
  closed, and so is one that takes no response bytes for `STALL_TIMEOUT`;
- TLS when given an `ssl.SSLContext` (HTTP/1.1 only; files are then
  streamed by the application, pathsend needing the plain socket);
- a graceful stop: on SIGTERM or SIGINT it stops accepting, closes idle
  connections, lets running requests finish for up to the drain timeout
  (0: none), then cuts the rest; and several worker processes forked on
  one listening socket.

After the client is gone, `send` raises `ClientGone` (an OSError, as ASGI
2.4 says), so an application streaming a body stops reading its source.

One event loop per process; the application runs as one task per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import unquote

import httptools

from entrepot.sendfile import PATHSEND, send_file

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("entrepot.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The body is handed over in pieces of at least this size (but the last),
# and reading pauses while this much waits for the application.
BODY_PIECE: Final = 256 << 10
# The largest request head (request line and headers): Go's default.
MAX_HEAD: Final = 1 << 20
# A connection whose client sends nothing for this long while the server
# waits for it is closed (s).
IDLE_TIMEOUT: Final = 60.0
# A connection that takes no response bytes for this long is closed (s).
STALL_TIMEOUT: Final = 60.0
# Requests read ahead of the one being answered, at most.
MAX_PIPELINED: Final = 32
# How long the application's lifespan shutdown may take (s).
_SHUTDOWN_TIMEOUT: Final = 30.0
# Statuses whose responses have no body.
_NO_BODY: Final = frozenset({204, 304})
_REASONS: Final = {int(status): status.phrase.encode("latin-1") for status in HTTPStatus}
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


class _Clock:
    """The Date header's line, made once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def date_line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            t = time.gmtime(now)
            text = (
                f"date: {_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} "
                f"{t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT\r\n"
            )
            self._second, self._line = now, text.encode("ascii")
        return self._line


class ClientGone(OSError):
    """Raised by `send` once the client has gone away."""


class _Server:
    """What the connections of one process share."""

    __slots__ = ("app", "clock", "connections", "stopping", "tasks", "tls")

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app = app
        self.tls = tls
        self.clock = _Clock()
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()  # the requests running
        self.stopping = False


class _Cycle:
    """One request and its response."""

    __slots__ = (
        "body_complete",
        "body_handed",
        "buffered",
        "chunked",
        "chunks",
        "complete",
        "conn",
        "expect_continue",
        "head",
        "keep_alive",
        "length",
        "pending_head",
        "scope",
        "sent",
        "started",
        "waiter",
    )

    def __init__(
        self, conn: _Connection, scope: Scope, keep_alive: bool, expect_continue: bool
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.head = scope["method"] == "HEAD"
        # The request body.
        self.chunks: list[bytes] = []  # what arrived and was not handed over yet
        self.buffered = 0
        self.body_complete = False
        self.body_handed = False  # the whole body went to the application
        self.waiter: asyncio.Future[None] | None = None
        # The response.
        self.started = False
        self.complete = False
        self.chunked = False
        self.length: int | None = None  # the Content-Length given
        self.sent = 0
        self.pending_head = b""

    # -- the request body ------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.complete:
            return  # the response is done: what is left of the body is dropped
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= BODY_PIECE:
            self.conn.pause_reading()
            self.wake()

    def end_body(self) -> None:
        self.body_complete = True
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def receive(self) -> Message:
        conn = self.conn
        if self.expect_continue:
            self.expect_continue = False
            if not self.started and not self.body_complete and not conn.lost:
                conn.write([_CONTINUE])  # (1.1 only: see on_headers_complete)
        if self.body_handed or self.complete:
            while not (conn.lost or self.complete):
                await self._wait()  # nothing comes but the end
            return {"type": "http.disconnect"}
        while not (conn.lost or self.body_complete or self.buffered >= BODY_PIECE):
            conn.resume_reading()
            conn.watch()  # the client owes bytes now
            await self._wait()
        if conn.lost and not self.body_complete and not self.chunks:
            return {"type": "http.disconnect"}
        # What arrived goes to the application even if the client left
        # (an upload keeps it); the next receive then says it left.
        chunks, self.chunks, self.buffered = self.chunks, [], 0
        # One copy at most, of the exact size (a single chunk goes as it is).
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        self.body_handed = self.body_complete
        conn.resume_reading()
        return {"type": "http.request", "body": body, "more_body": not self.body_handed}

    async def _wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    # -- the response ------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self.conn.lost and not self.complete:
            raise ClientGone("the client went away")
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self._start(message["status"], message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError("http.response.body outside a started response")
            more = bool(message.get("more_body", False))
            await self._body(message.get("body", b""), more)
            if not more:
                self._finish()
        elif kind == PATHSEND:
            if not self.started or self.complete:
                raise RuntimeError("pathsend outside a started response")
            await self._pathsend(message["path"])
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _start(self, status: int, headers: Any) -> None:
        self.started = True
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")), self.conn.date()]
        for name, value in headers:
            lowered = bytes(name).lower()
            if lowered == b"content-length":
                self.length = int(value)
            elif lowered == b"connection":
                if bytes(value).lower() == b"close":
                    self.keep_alive = False
                continue  # said below
            elif lowered == b"transfer-encoding":
                continue  # the framing is the server's
            lines.append(b"%s: %s\r\n" % (name, value))
        no_body = status in _NO_BODY or status < 200
        if no_body:
            self.length = 0
        elif self.length is None and not self.head:
            if self.scope["http_version"] == "1.1":
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # the end of the body is the end of the connection
        if self.expect_continue and not self.body_complete:
            self.keep_alive = False  # the client may not send the body it announced
        if self.conn.server.stopping:
            self.keep_alive = False
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        elif self.scope["http_version"] == "1.0":
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"\r\n")
        self.pending_head = b"".join(lines)

    async def _body(self, body: bytes, more: bool) -> None:
        conn = self.conn
        out = [self.pending_head] if self.pending_head else []
        self.pending_head = b""
        if self.head:
            pass  # a HEAD answer is the head alone
        elif self.chunked:
            if body:
                out += (b"%x\r\n" % len(body), body, b"\r\n")
            if not more:
                out.append(b"0\r\n\r\n")
        elif body:
            self.sent += len(body)
            if self.length is not None and self.sent > self.length:
                raise RuntimeError("response body longer than its Content-Length")
            out.append(body)
        if out and not conn.lost:
            conn.write(out)  # one system call for the head and the body
            await conn.drain()

    async def _pathsend(self, path: str) -> None:
        conn = self.conn
        if self.length is None:
            raise RuntimeError("pathsend needs the response's Content-Length")
        count = self.length
        if self.pending_head and not conn.lost:
            conn.write([self.pending_head])
            self.pending_head = b""
        if count and not self.head and not conn.lost:
            assert conn.transport is not None
            sent = await send_file(conn.transport, path, count)
            self.sent += sent
            if sent < count:  # the client went away or stalled, or the file is short
                conn.close()
        self._finish()

    def _finish(self) -> None:
        self.complete = True
        if self.length is not None and not self.head and self.sent < self.length:
            self.keep_alive = False  # the client waits for bytes that will not come
        self.wake()
        self.conn.response_done(self)

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.complete:
                self.conn.close()  # the server is stopping and cut this request
            return
        except ClientGone:
            return  # the connection is closed already
        except Exception:
            scope = self.scope
            log.exception("the application failed on %s %s", scope["method"], scope["path"])
            if self.complete:
                return  # after its answer: the connection goes on
            if self.started:
                self.conn.close()  # a response left half-sent cannot be framed
                return
            self._start(500, [(b"content-type", b"text/plain"), (b"content-length", b"21")])
            await self._body(b"Internal Server Error", False)
            self._finish()
            return
        if not self.started:
            self._start(500, [(b"content-length", b"0")])
            await self._body(b"", False)
            self._finish()
        elif not self.complete:
            self.conn.close()  # a response left half-sent cannot be framed


class _Connection(asyncio.Protocol):
    """One client connection: httptools' parser fed by uvloop, and the
    requests it carries, answered one at a time in order."""

    __slots__ = (
        "current",
        "drained",
        "eof",
        "head_bytes",
        "headers",
        "idle_timer",
        "in_head",
        "last_seen",
        "local",
        "lost",
        "overflow",
        "parser",
        "parsing",
        "queue",
        "read_paused",
        "remote",
        "scheme",
        "server",
        "transport",
        "upgraded",
        "url",
        "write_paused",
    )

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.scheme = "https" if server.tls else "http"
        self.local: tuple[str, int] | None = None
        self.remote: tuple[str, int] | None = None
        # The request being parsed; those waiting for their turn; the one answered.
        self.parsing: _Cycle | None = None
        self.queue: list[_Cycle] = []  # at most MAX_PIPELINED
        self.current: _Cycle | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = False
        self.head_bytes = 0  # received since the last head was complete
        self.overflow = False  # too many requests read ahead
        self.read_paused = False
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.last_seen = 0.0  # when the client last sent bytes (loop time)
        self.upgraded = False
        self.eof = False

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.local = _address(transport.get_extra_info("sockname"))
        self.remote = _address(transport.get_extra_info("peername"))
        self.server.connections.add(self)
        self.watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self.server.connections.discard(self)
        for cycle in (self.current, self.parsing, *self.queue):
            if cycle is not None:
                cycle.wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            return  # nothing is read after a request that asked for another protocol
        if self.parsing is None:  # in a head, or between requests
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:  # counted here: a header may never end
                self._refuse(431, b"request header fields too large")
                return
        self.watch()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request was read; its answer is HTTP/1.1, and the end of
            # the connection (RFC 9110: a server may ignore Upgrade).
            self.upgraded = True
            for cycle in (self.current, *self.queue):
                if cycle is not None:
                    cycle.keep_alive = False
        except httptools.HttpParserError as exc:
            # What a callback raises comes wrapped in a parser error.
            if self.overflow:
                # Read no more; the connection ends once those read are answered.
                self.upgraded = True
                self.queue[-1].keep_alive = False
            else:
                self._refuse(400, f"bad request: {exc}".encode())

    def eof_received(self) -> bool | None:
        # A client that half-closes after its request still gets the
        # answer; one that ends in the middle of a request is gone.
        self.eof = True
        if self.current is None or self.parsing is not None:
            return None  # close
        return True

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    # -- httptools' callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # not a chunked body's trailer fields
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        if len(self.queue) >= MAX_PIPELINED:
            self.overflow = True
            raise httptools.HttpParserError("too many pipelined requests")
        parser = self.parser
        try:
            parsed = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError as exc:
            raise httptools.HttpParserError(f"invalid URL {self.url[:100]!r}") from exc
        raw_path = parsed.path or b"/"
        version = parser.get_http_version()
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": version,
            "server": self.local,
            "client": self.remote,
            "scheme": self.scheme,
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": self.headers,
        }
        if not self.server.tls:
            scope["extensions"] = {PATHSEND: {}}
        expect = version == "1.1" and any(
            n == b"expect" and v.lower() == b"100-continue" for n, v in self.headers
        )
        cycle = _Cycle(self, scope, parser.should_keep_alive(), expect)
        self.parsing = cycle
        if self.current is None:
            self._run(cycle)
        else:
            self.queue.append(cycle)
            self.pause_reading()  # one request at a time: the rest waits in the kernel

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.feed(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.end_body()
            self.parsing = None

    # -- for the cycles ----------------------------------------------------------------

    def date(self) -> bytes:
        return self.server.clock.date_line()

    def write(self, pieces: list[bytes]) -> None:
        if self.transport is not None and not self.lost:
            self.transport.writelines(pieces)

    async def drain(self) -> None:
        """Wait while the transport holds too much; a client that takes
        nothing for STALL_TIMEOUT is cut off."""
        if self.write_paused and not self.lost:
            self.drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.drained, STALL_TIMEOUT)
            except TimeoutError:
                if self.transport is not None:
                    self.transport.abort()
                raise ClientGone("the client took nothing for too long") from None
            finally:
                self.drained = None

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None and not self.lost:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.lost and not self.queue and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def response_done(self, cycle: _Cycle) -> None:
        if cycle is not self.current:
            return
        self.current = None
        if self.lost:
            return  # what was read ahead is not for anyone any more
        if not cycle.keep_alive or self.server.stopping:
            self.close()
            return
        if self.queue:
            self._run(self.queue.pop(0))
        elif self.eof:
            self.close()
            return
        self.watch()
        self.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # -- inside ------------------------------------------------------------------------

    def watch(self) -> None:
        """(Re)start the clock of a client that may owe bytes: once
        IDLE_TIMEOUT passes with none, the connection is closed if the
        server is still waiting for them. One timer per connection, moved
        on lazily: a read only notes the time."""
        if self.lost or self.transport is None:
            return
        if self.server.stopping and self.current is None:
            self.close()
            return
        loop = asyncio.get_running_loop()
        self.last_seen = loop.time()
        if self.idle_timer is None:
            self.idle_timer = loop.call_at(self.last_seen + IDLE_TIMEOUT, self._timed_out)

    def _timed_out(self) -> None:
        self.idle_timer = None
        loop = asyncio.get_running_loop()
        due = self.last_seen + IDLE_TIMEOUT
        if loop.time() < due:  # bytes came since: wait for the rest
            self.idle_timer = loop.call_at(due, self._timed_out)
            return
        current = self.current
        # Waiting for the client: between requests, in a head, in the rest of
        # an answered request's body, or in the body the application awaits.
        if current is None or (current.waiter is not None and not current.body_complete):
            self.close()
        else:  # the application is working: the clock starts again when it waits
            self.last_seen = loop.time()
            self.idle_timer = loop.call_at(self.last_seen + IDLE_TIMEOUT, self._timed_out)

    def _run(self, cycle: _Cycle) -> None:
        self.current = cycle
        task = asyncio.get_running_loop().create_task(cycle.run(self.server.app))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def _refuse(self, status: int, text: bytes) -> None:
        """After a request that cannot be read: read no more, answer it if
        no other answer is due first, and close."""
        self.upgraded = True
        if self.current is None and self.parsing is None:
            self.write(
                [
                    b"HTTP/1.1 %d %s\r\n%scontent-type: text/plain\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n%s"
                    % (status, _REASONS.get(status, b""), self.date(), len(text), text)
                ]
            )
            self.close()
        elif self.current is None or self.current is self.parsing:
            self.close()  # a body is broken: the application sees the client leave
        else:
            for cycle in (self.current, *self.queue):
                cycle.keep_alive = False


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


class _Lifespan:
    """The application's lifespan protocol: startup, then shutdown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self.task = asyncio.ensure_future(self.app(scope, self.inbox.get, self.outbox.put))
        await self._exchange("lifespan.startup")

    async def shutdown(self) -> None:
        await self._exchange("lifespan.shutdown")

    async def _exchange(self, kind: str) -> None:
        assert self.task is not None
        await self.inbox.put({"type": kind})
        answer = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({answer, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            self.task.result()  # raises what the application raised
            raise RuntimeError(f"the application ended during {kind}")
        message = answer.result()
        if message["type"] != f"{kind}.complete":
            raise RuntimeError(f"{kind}: {message.get('message') or message['type']}")


async def serve(
    app_factory: Callable[[], ASGIApp],
    sock: socket.socket,
    drain_timeout: float,
    tls: ssl.SSLContext | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on the listening socket `sock` until `stop` is set or, without
    one, until SIGTERM or SIGINT; then stop gracefully (see the module
    docstring)."""
    loop = asyncio.get_running_loop()
    app = app_factory()
    lifespan = _Lifespan(app)
    await lifespan.startup()
    state = _Server(app, tls is not None)
    signals = () if stop is not None else (signal.SIGTERM, signal.SIGINT)
    stop = stop or asyncio.Event()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    listener = await loop.create_server(
        lambda: _Connection(state), sock=sock, ssl=tls, backlog=2048
    )
    try:
        await stop.wait()
    finally:
        listener.close()
        await _drain(state, drain_timeout)
        for signum in signals:
            loop.remove_signal_handler(signum)
        try:
            await asyncio.wait_for(lifespan.shutdown(), _SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.warning("the application's shutdown took over %.0f s", _SHUTDOWN_TIMEOUT)


async def _drain(state: _Server, grace: float) -> None:
    """Close idle connections; give running requests (also those whose
    client left) `grace` seconds, then cut them off."""
    state.stopping = True
    for conn in list(state.connections):
        if conn.current is None:
            conn.close()
    if state.tasks and grace > 0:
        await asyncio.wait(set(state.tasks), timeout=grace)
    running = [task for task in state.tasks if not task.done()]
    for task in running:
        task.cancel()
    for conn in list(state.connections):
        if conn.transport is not None:
            conn.transport.abort()
    if running:
        log.warning("requests still running after http.draintimeout: cut off")
        await asyncio.wait(running, timeout=5.0)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def run(
    app_factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    workers: int,
    drain_timeout: float,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> int:
    """Serve in this process (one worker) or in `workers` forked processes
    sharing one listening socket; the exit status."""
    import uvloop

    sock = listen(host, port)

    def worker() -> None:
        uvloop.run(serve(app_factory, sock, drain_timeout, tls() if tls is not None else None))

    if workers == 1:
        worker()
        return 0
    return _supervise(worker, workers)


# A worker ending sooner than this after its start failed to start; after
# this many such ends in a row the server gives up.
_QUICK_END: Final = 5.0
_QUICK_ENDS_MAX: Final = 5


def _supervise(worker: Callable[[], None], count: int) -> int:
    """Fork `count` processes running `worker`; start a new one when one
    dies; on SIGTERM or SIGINT pass the signal on and wait for them all.
    The exit status: 1 if workers kept failing at start, else 0."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signals = {signal.SIGTERM, signal.SIGINT}

    def spawn() -> None:
        # Blocked across the fork: a signal then reaches the parent once the
        # child is in `children` (so it is passed on), or the child's own
        # default handler.
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            pid = os.fork()
            if pid == 0:
                for signum in signals:
                    signal.signal(signum, signal.SIG_DFL)
            else:
                children[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
        if pid == 0:
            status = 0
            try:
                worker()
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                status = 1
            finally:
                os._exit(status)

    children: dict[int, float] = {}  # pid: when it started
    quick_ends = 0
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            if not stopping:
                spawn()
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = children.pop(pid, None)
            if stopping or started is None:
                continue
            quick = time.monotonic() - started < _QUICK_END
            quick_ends = quick_ends + 1 if quick else 0
            if quick_ends >= _QUICK_ENDS_MAX:
                log.error("workers keep ending as they start: stopping")
                on_signal(signal.SIGTERM, None)
                continue
            code = os.waitstatus_to_exitcode(status)
            log.warning("worker %d ended (exit status %d); starting another", pid, code)
            time.sleep(0.5 if quick else 0.0)  # a worker that cannot start must not spin
            if not stopping:
                spawn()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if quick_ends >= _QUICK_ENDS_MAX else 0


__all__ = [
    "BODY_PIECE",
    "IDLE_TIMEOUT",
    "MAX_HEAD",
    "MAX_PIPELINED",
    "STALL_TIMEOUT",
    "ClientGone",
    "listen",
    "run",
    "serve",
]
