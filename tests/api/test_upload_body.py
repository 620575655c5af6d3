"""How a request body reaches the upload writer: gathered into writes of at
least `WRITE_SIZE` (a chunk that size or larger goes on its own), every byte
kept when the client leaves mid-body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from entrepot.api.http import ClientDisconnected, Request
from entrepot.api.uploads import WRITE_SIZE, _write_body
from entrepot.storage.upload import UploadWriter

KiB = 1024


class Recorder:
    """Stands in for an `UploadWriter`: keeps a copy of each write, as the
    real writers copy or store the data before returning."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes | memoryview) -> int:
        self.writes.append(bytes(data))
        return len(self.writes[-1])


def request(chunks: Sequence[bytes], *, disconnect: bool = False) -> Request:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]
    messages.append(
        {"type": "http.disconnect"}
        if disconnect
        else {"type": "http.request", "body": b"", "more_body": False}
    )

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"type": "http", "method": "PATCH", "path": "/", "headers": []}
    return Request(scope, receive)


def chunk(size: int, fill: int) -> bytes:
    return bytes([fill % 256]) * size


async def test_chunks_are_gathered_into_writes_of_at_least_write_size() -> None:
    # As many small chunks as make two writes, and three left over.
    per_write = -(-WRITE_SIZE // (48 * KiB))
    small = [chunk(48 * KiB, n) for n in range(2 * per_write + 3)]
    large = chunk(WRITE_SIZE, 99)
    body = [*small, large, chunk(100, 7)]
    writer = Recorder()
    written = await _write_body(request(body), cast(UploadWriter, writer))
    expected = b"".join(body)
    assert written == len(expected)
    assert b"".join(writer.writes) == expected
    sizes = [len(write) for write in writer.writes]
    # Each write is as many small chunks as reach WRITE_SIZE (the one
    # crossing it included whole); the three left over go with the large
    # chunk; the last 100 bytes go when the body ends.
    gathered = per_write * 48 * KiB
    assert sizes == [gathered, gathered, 3 * 48 * KiB + WRITE_SIZE, 100]


async def test_a_large_chunk_with_nothing_gathered_goes_as_it_is() -> None:
    body = [chunk(WRITE_SIZE + 5, 1), chunk(10, 2)]
    writer = Recorder()
    await _write_body(request(body), cast(UploadWriter, writer))
    assert writer.writes == body


async def test_a_client_leaving_mid_body_loses_none_of_the_bytes_that_arrived() -> None:
    body = [chunk(WRITE_SIZE + 1, 1), chunk(10 * KiB, 2), chunk(5, 3)]
    writer = Recorder()
    with pytest.raises(ClientDisconnected):
        await _write_body(request(body, disconnect=True), cast(UploadWriter, writer))
    assert b"".join(writer.writes) == b"".join(body)
