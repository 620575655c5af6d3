"""entrepot's own HTTP/1.1 server (`entrepot.httpserver`), with small ASGI
applications of the tests' own, on a real socket and uvloop: framing of
requests and responses, pipelining, `Expect: 100-continue`, bodies handed
over in large pieces with reading paused meanwhile, bad requests, failing
applications, disconnects, idle connections and the graceful stop.

The registry's own application runs on this server in tests/api (every
test of the HTTP API), tests/test_cli.py (start, drain, signals) and
tests/clients (docker's, podman's and skopeo's clients)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from entrepot import httpserver
from entrepot.httpserver import BODY_PIECE, MAX_HEAD, ASGIApp, Message, Receive, Scope, Send

TIMEOUT = 10.0
MiB = 1 << 20


@dataclass
class Running:
    port: int
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event
    thread: threading.Thread
    log: list[Any] = field(default_factory=list)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return sock


@contextmanager
def running(app: ASGIApp, drain: float = 2.0) -> Iterator[Running]:
    """`app` served by httpserver.serve on a loopback port, in a thread."""
    sock = httpserver.listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        holder["stop"] = stop = asyncio.Event()
        ready.set()
        await httpserver.serve(lambda: _with_lifespan(app), sock, drain, stop=stop)

    thread = threading.Thread(target=uvloop.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT)
    served = Running(port, holder["loop"], holder["stop"], thread)
    try:
        yield served
    finally:
        with contextlib.suppress(RuntimeError):  # stopped already by the test
            served.loop.call_soon_threadsafe(served.stop.set)
        thread.join(TIMEOUT + drain)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def _with_lifespan(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await app(scope, receive, send)

    return wrapped


async def _read_all(receive: Receive) -> tuple[bytes, list[int]]:
    """The whole body and the size of each piece it came in."""
    body, sizes = bytearray(), []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client left")
        sizes.append(len(message["body"]))
        body += message["body"]
        if not message.get("more_body"):
            return bytes(body), sizes


def echo(headers: list[tuple[bytes, bytes]] | None = None) -> ASGIApp:
    """Answers with the request's method, path, query and body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body, _ = await _read_all(receive)
        text = b"%s %s ?%s %s" % (
            scope["method"].encode(),
            scope["path"].encode(),
            scope["query_string"],
            body,
        )
        extra = headers if headers is not None else [(b"content-length", b"%d" % len(text))]
        await send({"type": "http.response.start", "status": 200, "headers": extra})
        await send({"type": "http.response.body", "body": text})

    return app


def read_response(
    sock: socket.socket, pending: bytearray, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length, chunked, or up to the close; only the
    head if `head`), leaving what follows in `pending`."""
    deadline = time.monotonic() + TIMEOUT

    def more() -> bool:
        assert time.monotonic() < deadline, "response not complete"
        chunk = sock.recv(1 << 16)
        pending.extend(chunk)
        return bool(chunk)

    while b"\r\n\r\n" not in pending:
        assert more(), f"closed before a response head: {bytes(pending)!r}"
    raw_head, _, _ = bytes(pending).partition(b"\r\n\r\n")
    del pending[: len(raw_head) + 4]
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    if head or status in (204, 304):
        body = b""
    elif "content-length" in headers:
        length = int(headers["content-length"])
        while len(pending) < length:
            assert more(), "closed in the body"
        body = bytes(pending[:length])
        del pending[:length]
    elif headers.get("transfer-encoding") == "chunked":
        out = bytearray()
        while True:
            while b"\r\n" not in pending:
                assert more(), "closed in a chunk size"
            size_line, _, _ = bytes(pending).partition(b"\r\n")
            size = int(size_line, 16)
            while len(pending) < len(size_line) + 2 + size + 2:
                assert more(), "closed in a chunk"
            out += pending[len(size_line) + 2 : len(size_line) + 2 + size]
            del pending[: len(size_line) + 2 + size + 2]
            if size == 0:
                break
        body = bytes(out)
    else:
        while more():
            pass
        body, pending[:] = bytes(pending), b""
    return status, headers, body


def closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (EOF within TIMEOUT)."""
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# -- framing -------------------------------------------------------------------------------


def test_keep_alive_and_pipelined_requests_are_answered_in_order() -> None:
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(
            b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"PUT /b%20c HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        pending = bytearray()
        answers = [read_response(sock, pending) for _ in range(3)]
        sock.sendall(b"GET /last HTTP/1.1\r\nHost: h\r\n\r\n")
        last = read_response(sock, pending)
    assert [body for _, _, body in answers] == [
        b"GET /a ?x=1 ",
        b"PUT /b c ? hello",
        b"POST /d ? abcde",
    ]
    assert last[2] == b"GET /last ? "
    assert all(status == 200 for status, _, _ in answers)
    assert "date" in answers[0][1]
    assert "connection" not in answers[0][1]


def test_a_response_without_length_is_chunked_or_ends_with_the_connection() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b""):
            await send({"type": "http.response.body", "body": part, "more_body": bool(part)})

    with running(app) as served:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
            assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"one two ")
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
            assert (status, headers["connection"], body) == (200, "close", b"one two ")


def test_head_and_no_content_answers_have_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        status = 204 if scope["path"] == "/none" else 200
        headers = [(b"content-length", b"5")] if status == 200 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if status == 204 else b"12345"})

    with running(app) as served, served.connect() as sock:
        sock.sendall(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /none HTTP/1.1\r\nHost: h\r\n\r\n")
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        pending = bytearray()
        status, headers, _ = read_response(sock, pending, head=True)
        assert (status, headers["content-length"]) == (200, "5")
        # HEAD's answer had no body: the next bytes are the next answer.
        while len(pending) < 9:
            pending += sock.recv(100)
        assert pending.startswith(b"HTTP/1.1 ")
        status, headers, _ = read_response(sock, pending)
        assert status == 204
        assert "transfer-encoding" not in headers
        assert read_response(sock, pending)[2] == b"12345"


def test_http_1_0_keep_alive_when_asked() -> None:
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        pending = bytearray()
        _, headers, _ = read_response(sock, pending)
        assert headers["connection"] == "keep-alive"
        sock.sendall(b"GET /2 HTTP/1.0\r\n\r\n")
        _, headers, body = read_response(sock, pending)
        assert (body, headers["connection"]) == (b"GET /2 ? ", "close")
        assert closed(sock)


# -- request bodies --------------------------------------------------------------------------


def test_a_large_body_comes_in_pieces_of_at_least_body_piece_with_reading_paused() -> None:
    """The application gets every byte, in pieces of BODY_PIECE or more but
    the last; while it is slow, the server holds no more than about one
    piece (reading is paused, the rest waits in the kernel)."""
    sizes: list[int] = []
    digests: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        import hashlib

        hashed = hashlib.sha256()
        while True:
            message = await receive()
            sizes.append(len(message["body"]))
            hashed.update(message["body"])
            await asyncio.sleep(0.02)  # a slow writer
            if not message.get("more_body"):
                break
        digests.append(hashed.digest())
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    import hashlib
    import os

    data = os.urandom(12 * MiB + 123)
    with running(app) as served, served.connect() as sock:
        sock.sendall(b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(data))
        sock.sendall(data)
        status, _, _ = read_response(sock, bytearray())
    assert status == 201
    assert digests == [hashlib.sha256(data).digest()]
    assert sum(sizes) == len(data)
    assert all(size >= BODY_PIECE for size in sizes[:-1]), sizes
    # Never much more than a piece: one more socket read at most.
    assert max(sizes) <= BODY_PIECE + 512 * 1024, sizes


def test_expect_100_continue_is_answered_when_the_body_is_read() -> None:
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(
            b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        status, headers, body = read_response(sock, bytearray())
    assert (status, body) == (200, b"PUT /x ? body")
    assert "connection" not in headers


def test_an_answer_before_an_expected_body_closes_the_connection() -> None:
    """The client may never send a body it was not asked for: the
    connection cannot go on, and says so."""

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with running(refuse) as served, served.connect() as sock:
        sock.sendall(
            b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, _ = read_response(sock, bytearray())
        assert (status, headers["connection"]) == (401, "close")
        assert closed(sock)


def test_an_unread_body_is_dropped_and_the_connection_goes_on() -> None:
    async def ignore(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    data = b"z" * (3 * MiB)
    with running(ignore) as served, served.connect() as sock:
        sock.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(data))
        pending = bytearray()
        assert read_response(sock, pending)[0] == 404
        sock.sendall(data + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock, pending)[0] == 404


def test_a_client_leaving_mid_body_gives_what_arrived_then_a_disconnect() -> None:
    seen: list[Message] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append({k: (len(v) if k == "body" else v) for k, v in message.items()})
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        done.set()

    with running(app) as served:
        with served.connect() as sock:
            sock.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + b"a" * 300)
            time.sleep(0.2)
        assert done.wait(TIMEOUT)
    assert seen == [
        {"type": "http.request", "body": 300, "more_body": True},
        {"type": "http.disconnect"},
    ]


# -- what goes wrong -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: h\r\nX: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "bad-length", "head-too-large"],
)
def test_a_request_that_cannot_be_read_gets_4xx_and_a_close(
    request_bytes: bytes, status: int
) -> None:
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(request_bytes)
        answer = read_response(sock, bytearray())
        assert answer[0] == status
        assert answer[1]["connection"] == "close"
        assert closed(sock)


def test_a_failing_application_gets_500_or_a_cut_connection() -> None:
    """Failing before its answer: 500. After a whole answer: the connection
    goes on. In the middle of one: the connection is cut."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if scope["path"] == "/after":
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})
        raise RuntimeError("boom (expected by the test)")

    with running(app) as served, served.connect() as sock:
        sock.sendall(b"GET /early HTTP/1.1\r\nHost: h\r\n\r\n")
        pending = bytearray()
        assert read_response(sock, pending)[0] == 500
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock, pending)[::2] == (202, b"done")
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(sock, pending)[::2] == (202, b"done")
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: h\r\n\r\n")
        data = bytearray()
        while chunk := sock.recv(1 << 16):
            data += chunk
        # The chunked body never got its last chunk: the client sees a cut.
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert not data.endswith(b"0\r\n\r\n")


def test_an_upgrade_request_is_answered_in_http_1_1_then_closed() -> None:
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(
            b"GET /v2/ HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        status, headers, body = read_response(sock, bytearray())
        assert (status, body) == (200, b"GET /v2/ ? ")
        assert headers["connection"] == "close"
        assert closed(sock)


def test_an_idle_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpserver, "IDLE_TIMEOUT", 0.3)
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        read_response(sock, bytearray())
        started = time.monotonic()
        assert closed(sock)
        assert time.monotonic() - started < 3.0


# -- stopping --------------------------------------------------------------------------------


def _slow(seconds: float) -> Callable[[Scope, Receive, Send], Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    return app


def test_stopping_lets_a_running_request_finish_and_closes_idle_connections() -> None:
    with running(_slow(0.5), drain=5.0) as served:
        idle = served.connect()
        busy = served.connect()
        busy.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(0.1)
        served.loop.call_soon_threadsafe(served.stop.set)
        status, headers, body = read_response(busy, bytearray())
        assert (status, body, headers["connection"]) == (200, b"late", "close")
        assert closed(idle)
        idle.close()
        busy.close()


def test_stopping_cuts_a_request_running_past_the_drain_timeout() -> None:
    with running(_slow(30), drain=0.5) as served, served.connect() as busy:
        busy.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(0.1)
        started = time.monotonic()
        served.loop.call_soon_threadsafe(served.stop.set)
        assert closed(busy)
        assert time.monotonic() - started < 5.0


def test_workers_that_keep_failing_at_start_stop_the_server() -> None:
    """A worker that cannot start is replaced, but not for ever: after a few
    quick failures in a row the supervisor gives up with status 1."""

    def failing() -> None:
        raise RuntimeError("cannot start (expected by the test)")

    started = time.monotonic()
    assert httpserver._supervise(failing, 2) == 1
    assert time.monotonic() - started < 10.0


# -- limits and clients that misbehave ---------------------------------------------------------


def test_a_header_that_never_ends_gets_431() -> None:
    """The head limit counts the bytes received, not the headers parsed: a
    header line without an end cannot grow the server's memory."""
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nX: ")
        sent, piece = 0, b"a" * 65536
        with contextlib.suppress(ConnectionError):
            while sent <= MAX_HEAD + len(piece):
                sock.sendall(piece)
                sent += len(piece)
        status, headers, _ = read_response(sock, bytearray())
        assert (status, headers["connection"]) == (431, "close")


def test_requests_read_ahead_are_bounded_and_dropped_with_their_client() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    many = httpserver.MAX_PIPELINED + 20
    with running(app) as served:
        with served.connect() as sock:
            sock.sendall(
                b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n" + b"GET /next HTTP/1.1\r\n\r\n" * many
            )
            time.sleep(0.3)
            served.loop.call_soon_threadsafe(release.set)
            pending = bytearray()
            answers = [read_response(sock, pending) for _ in range(1 + httpserver.MAX_PIPELINED)]
            assert all(status == 200 for status, _, _ in answers)
            assert answers[-1][1]["connection"] == "close"
            assert closed(sock)
        assert len(calls) == 1 + httpserver.MAX_PIPELINED

        # A client that leaves: what it sent ahead is not run for nobody.
        calls.clear()
        served.loop.call_soon_threadsafe(release.clear)
        with served.connect() as sock:
            sock.sendall(
                b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n" + b"GET /next HTTP/1.1\r\n\r\n" * 5
            )
            time.sleep(0.3)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        time.sleep(0.2)
        served.loop.call_soon_threadsafe(release.set)
        time.sleep(0.3)
    # Reading is paused while requests wait their turn, so the reset shows
    # when the first answer is written: one more request may have started.
    assert calls[0] == "/slow"
    assert len(calls) <= 2, calls


@pytest.mark.parametrize(
    "sent",
    [b"GET / HTTP/1.1\r\n", b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"],
    ids=["half-a-head", "part-of-a-body"],
)
def test_a_client_that_stops_sending_is_cut_off(
    monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    monkeypatch.setattr(httpserver, "IDLE_TIMEOUT", 0.3)
    with running(echo()) as served, served.connect() as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert closed(sock)
        assert time.monotonic() - started < 5.0


def test_stopping_waits_for_a_request_whose_client_left() -> None:
    """A request still running when its client resets is waited for (it may
    be committing an upload), before the application shuts down."""
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await asyncio.sleep(0.8)
        events.append("request finished")

    sock = httpserver.listen("127.0.0.1", 0)
    holder: dict[str, Any] = {}

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        holder["stop"] = stop = asyncio.Event()
        await httpserver.serve(lambda: app, sock, 5.0, stop=stop)

    thread = threading.Thread(target=uvloop.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while "stop" not in holder and time.monotonic() < deadline:
        time.sleep(0.01)
    with socket.create_connection(sock.getsockname()[:2], timeout=TIMEOUT) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(0.2)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    time.sleep(0.1)
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    thread.join(TIMEOUT)
    sock.close()
    assert not thread.is_alive()
    assert events == ["lifespan.startup", "request finished", "lifespan.shutdown"]


def test_sending_to_a_client_that_left_raises_an_os_error() -> None:
    outcome: list[str] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(2000):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            outcome.append("all sent")
        except OSError:
            outcome.append("OSError")
        finally:
            done.set()

    with running(app) as served:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        assert done.wait(TIMEOUT)
    assert outcome == ["OSError"]


def test_trailer_fields_are_not_request_headers() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _read_all(receive)
        seen.append(list(scope["headers"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with running(app) as served, served.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Request-Id: injected\r\n\r\n"
        )
        assert read_response(sock, bytearray())[0] == 204
    assert seen == [[(b"host", b"h"), (b"transfer-encoding", b"chunked")]]


def test_odd_but_valid_requests() -> None:
    """An absolute URL without a path is for "/"; an HTTP/1.0 client's
    Expect is ignored (no 100 Continue, RFC 9110)."""
    with running(echo()) as served:
        with served.connect() as sock:
            sock.sendall(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(sock, bytearray())[::2] == (200, b"GET / ? ")
        with served.connect() as sock:
            sock.sendall(b"PUT /x HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
            status, _, body = read_response(sock, bytearray())
            assert (status, body) == (200, b"PUT /x ? hi")


def test_pathsend_without_a_length_ends_the_connection(tmp_path: Any) -> None:
    """A file whose length the head did not give cannot be framed: the
    connection ends rather than carry bytes the client cannot place."""
    path = tmp_path / "file"
    path.write_bytes(b"content")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    with running(app) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
        assert b"content" not in data
        assert data.count(b"HTTP/1.1 200") <= 1
