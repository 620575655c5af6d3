"""Zero-copy blob GETs (`entrepot.sendfile`) on a real `entrepot serve`,
on entrepot's own server and on uvicorn (`entrepot.zerocopy`): whole blobs
go out with sendfile(2) from a worker thread, and the connection goes on as
HTTP/1.1 requires (keep-alive, pipelining, a client that leaves mid-body);
the default `--server auto` picks entrepot's own server for plain HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrepot.sendfile import _send_from
from tests.cli_support import Serving, free_port, push_blob, serve, write_config

MiB = 1024 * 1024
BLOB = os.urandom(24 * MiB + 12345)  # not a multiple of the 32 KiB pieces
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


def _config(directory: Path, port: int, http: str = "") -> Path:
    """A config.yml in `directory`: filesystem storage, `http.addr` on
    `port`, and more `http` keys."""
    return write_config(
        directory / "config.yml",
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {directory / 'root'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{http}",
    )


def _stalled_get(port: int, repository: str) -> socket.socket:
    """A connection whose blob GET has started and whose client then reads
    no more: a small receive window, set before connecting (which turns the
    kernel's autotuning off), so the body cannot all be buffered."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /v2/{repository}/blobs/{DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")  # the body is on its way
    return sock


# The servers that send files themselves on plain HTTP (None: the default).
ZERO_COPY_SERVERS = (None, "uvicorn")


@pytest.fixture(scope="module", params=ZERO_COPY_SERVERS, ids=["default", "uvicorn"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serving]:
    """`entrepot serve` on one of ZERO_COPY_SERVERS, holding BLOB."""
    directory = tmp_path_factory.mktemp("zerocopy")
    port = free_port()
    config = _config(directory, port)
    with serve(config, f"http://127.0.0.1:{port}", server=request.param) as running:
        with running.client() as http:
            assert push_blob(http, "zero/copy", BLOB) == DIGEST
        yield running


def _port(serving: Serving) -> int:
    return int(serving.url.rsplit(":", 1)[1])


def _read_response(sock: socket.socket, pending: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """One response from `sock` (Content-Length bodies only), leaving what
    follows it in `pending`."""
    deadline = time.monotonic() + 30
    while b"\r\n\r\n" not in pending:
        assert time.monotonic() < deadline, "no response head"
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response head: {bytes(pending[:200])!r}"
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        assert time.monotonic() < deadline, "body not complete"
        chunk = sock.recv(4 * MiB)
        assert chunk, f"closed with {length - len(body)} bytes to come"
        body += chunk
    pending[:] = body[length:]
    return lines[0].encode(), headers, bytes(body[:length])


def test_a_whole_blob_is_sent_by_the_server(registry: Serving) -> None:
    """The default server for plain HTTP is entrepot's own; each sends the
    blob itself (no body bytes through the application)."""
    assert re.search(r"\(http, (builtin|uvicorn)\)", registry.log())
    with registry.client() as http:
        response = http.get(f"/v2/zero/copy/blobs/{DIGEST}")
    assert response.headers.get("server") == ("uvicorn" if "uvicorn" in registry.log() else None)
    assert response.headers["content-length"] == str(len(BLOB))
    assert response.content == BLOB


def test_keep_alive_goes_on_after_a_zero_copy_body(registry: Serving) -> None:
    with registry.client() as http:
        for _ in range(3):
            response = http.get(f"/v2/zero/copy/blobs/{DIGEST}")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == DIGEST.split(":")[1]
        # The same connection then answers an ordinary request.
        assert http.get("/v2/").status_code == 200
        tail = http.get(f"/v2/zero/copy/blobs/{DIGEST}", headers={"Range": "bytes=-100"})
        assert (tail.status_code, tail.content) == (206, BLOB[-100:])


def test_pipelined_requests_after_a_zero_copy_body(registry: Serving) -> None:
    request = f"GET /v2/zero/copy/blobs/{DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    last = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", _port(registry)), timeout=30) as sock:
        sock.sendall(request + request + last)  # all three before any answer
        pending = bytearray()
        for _ in range(2):
            status, _, body = _read_response(sock, pending)
            assert status.endswith(b"200 OK"), status
            assert body == BLOB
        status, _, body = _read_response(sock, pending)
        assert status.endswith(b"200 OK")
        assert body == b"{}"
        assert pending == b""


def test_a_client_leaving_mid_body_does_not_hurt_the_server(registry: Serving) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", _port(registry)), timeout=30) as sock:
            sock.sendall(f"GET /v2/zero/copy/blobs/{DIGEST} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = 0
            while received < MiB:
                received += len(sock.recv(65536))
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        # closed with a reset, most of the body unsent
    with registry.client() as http:
        for _ in range(3):
            assert http.get(f"/v2/zero/copy/blobs/{DIGEST}").content == BLOB
    assert "Traceback" not in registry.log()


def test_clients_that_stop_reading_do_not_hold_up_other_requests(registry: Serving) -> None:
    """Many pulls stuck on clients that read nothing hold no thread that
    other requests need: uploads, pushes and pulls go on."""
    stuck: list[socket.socket] = []
    try:
        for _ in range(40):
            stuck.append(_stalled_get(_port(registry), "zero/copy"))
        time.sleep(0.5)
        started = time.monotonic()
        with registry.client() as http:
            small = os.urandom(1000)
            digest = push_blob(http, "zero/other", small)
            assert http.get(f"/v2/zero/other/blobs/{digest}").content == small
            assert http.head(f"/v2/zero/copy/blobs/{DIGEST}").status_code == 200
        assert time.monotonic() - started < 5.0
    finally:
        for sock in stuck:
            sock.close()


@pytest.mark.parametrize("choice", ZERO_COPY_SERVERS, ids=["default", "uvicorn"])
def test_sigterm_does_not_wait_for_a_client_that_stopped_reading(
    tmp_path: Path, choice: str | None
) -> None:
    """A blob GET whose client reads nothing holds the send in its thread;
    at the drain timeout the connection is shut down and the server exits,
    rather than waiting out the stall."""
    port = free_port()
    config = _config(tmp_path, port, "  draintimeout: 2s\n")
    with serve(config, f"http://127.0.0.1:{port}", server=choice) as running:
        with running.client() as http:
            push_blob(http, "zero/stall", BLOB)
        with _stalled_get(port, "zero/stall"):
            time.sleep(0.5)
            running.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            try:
                returncode: int | None = running.process.wait(20)
            except subprocess.TimeoutExpired:
                returncode = None
            exited_after = time.monotonic() - signalled
    assert returncode is not None, "still running 20 s after SIGTERM"
    assert exited_after < 2.0 + 4.0, exited_after


def test_send_from_sends_every_piece_stops_at_a_stall_and_at_a_gone_peer(
    tmp_path: Path,
) -> None:
    size = 5 * MiB + 7
    source = tmp_path / "data"
    source.write_bytes(BLOB[:size])
    ours, theirs = socket.socketpair()
    with source.open("rb") as file, ours, theirs:
        ours.setblocking(False)
        received = bytearray()

        def drain() -> None:
            while len(received) < size:
                received.extend(theirs.recv(MiB))

        reader = threading.Thread(target=drain)
        reader.start()
        assert _send_from(ours.fileno(), file.fileno(), 0, size) == (size, "continue")
        reader.join(30)
        assert bytes(received) == BLOB[:size]

        # A client that takes nothing: what the buffers hold, then "stalled".
        sent, outcome = _send_from(ours.fileno(), file.fileno(), 0, size)
        assert outcome == "stalled"
        assert 0 < sent < size
        # Taken up again from where it stopped once the client reads.
        theirs.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while theirs.recv(MiB):
                pass
        more, _ = _send_from(ours.fileno(), file.fileno(), sent, size)
        assert more > 0

    # A file shorter than announced, and a peer that is gone: "ended".
    short = tmp_path / "short"
    short.write_bytes(b"x" * 1000)
    ours, theirs = socket.socketpair()
    with short.open("rb") as file, ours, theirs:
        ours.setblocking(False)
        assert _send_from(ours.fileno(), file.fileno(), 0, 5000) == (1000, "ended")
        assert theirs.recv(5000) == b"x" * 1000
        theirs.close()
        assert _send_from(ours.fileno(), file.fileno(), 0, 1000)[1] == "ended"


def test_a_configuration_asking_for_http2_gets_granian(tmp_path: Path) -> None:
    """`auto` picks granian when the configuration asks for HTTP/2 (h2c here,
    which needs no certificate; TLS is tests/clients/test_tls.py)."""
    port = free_port()
    config = _config(tmp_path, port, "  h2c:\n    enabled: true\n")
    with serve(config, f"http://127.0.0.1:{port}", server=None) as running:
        assert "(http, granian)" in running.log()
        with running.client() as http:
            assert http.get("/v2/").headers.get("server") != "uvicorn"
