"""`entrepot.api.http`: what the handlers read of a request (`Request`), and
how a response goes out (`send_response`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from entrepot.api.http import ClientDisconnected, Message, Request, Response, send_response


async def _nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers}, _nothing)


def test_repeated_headers_are_joined_in_order_and_names_are_case_blind() -> None:
    request = _request(
        [
            (b"Accept", b"application/vnd.oci.image.index.v1+json"),
            (b"host", b"registry"),
            (b"accept", b"application/vnd.oci.image.manifest.v1+json"),
            (b"ACCEPT", b"*/*"),
        ]
    )
    assert request.headers == {
        "accept": "application/vnd.oci.image.index.v1+json, "
        "application/vnd.oci.image.manifest.v1+json, */*",
        "host": "registry",
    }


def test_many_repeats_of_one_header_are_all_kept() -> None:
    """A client may send a header any number of times (within the server's
    head limit); each value is kept, once."""
    count = 50_000
    request = _request([(b"a", b"%d" % n) for n in range(count)])
    values = request.headers["a"].split(", ")
    assert values == [str(n) for n in range(count)]


async def _chunks(*parts: bytes | Exception) -> AsyncIterator[bytes]:
    for part in parts:
        if isinstance(part, Exception):
            raise part
        yield part


async def test_a_send_failing_with_an_os_error_is_a_client_gone() -> None:
    """ASGI 2.4: a server's send raises an OSError once its client left."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == 2:
            raise ConnectionResetError("gone")
        sent.append(message)

    response = Response(200, {"Content-Length": "6"}, stream=_chunks(b"abc", b"def"))
    with pytest.raises(ClientDisconnected):
        await send_response({}, send, response, head=False)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_a_storage_error_while_streaming_is_not_a_client_gone() -> None:
    """An OSError from the body's source (a disk or network read) is the
    registry's failure, not the client's leaving: it is not hidden as one."""

    async def send(message: Message) -> None:
        pass

    response = Response(200, {"Content-Length": "6"}, stream=_chunks(b"abc", TimeoutError()))
    with pytest.raises(TimeoutError):
        await send_response({}, send, response, head=False)
