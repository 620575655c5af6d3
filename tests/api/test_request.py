"""`entrepot.api.http.Request`: what the handlers read of a request."""

from __future__ import annotations

from entrepot.api.http import Message, Request


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
