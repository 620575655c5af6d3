"""How a request body reaches the upload writer: large chunks as they come,
small ones gathered, every byte kept when the client leaves mid-body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from entrepot.api.http import ClientDisconnected, Request
from entrepot.api.uploads import PASS_THROUGH, WRITE_SIZE, _write_body
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


async def test_large_chunks_go_through_as_they_are_and_small_ones_are_gathered() -> None:
    small = [chunk(4 * KiB, n) for n in range(WRITE_SIZE // (4 * KiB) + 3)]
    large = [chunk(PASS_THROUGH, 1000), chunk(256 * KiB, 1001)]
    body = [*small, large[0], chunk(100, 7), large[1]]
    writer = Recorder()
    written = await _write_body(request(body), cast(UploadWriter, writer))
    expected = b"".join(body)
    assert written == len(expected)
    assert b"".join(writer.writes) == expected
    sizes = [len(write) for write in writer.writes]
    # The small chunks: one write of WRITE_SIZE, then what was left of them
    # ahead of the first large chunk, which goes on its own.
    assert sizes == [WRITE_SIZE, 3 * 4 * KiB, PASS_THROUGH, 100, 256 * KiB]


async def test_a_client_leaving_mid_body_loses_none_of_the_bytes_that_arrived() -> None:
    body = [chunk(PASS_THROUGH, 1), chunk(10 * KiB, 2), chunk(5, 3)]
    writer = Recorder()
    with pytest.raises(ClientDisconnected):
        await _write_body(request(body, disconnect=True), cast(UploadWriter, writer))
    assert b"".join(writer.writes) == b"".join(body)
