"""Zero-copy blob GETs: with a server that offers the ASGI pathsend extension
(granian, and uvicorn on plain TCP through entrepot.zerocopy), a full blob
GET hands the server the blob's file and no byte goes through Python; ranges
and servers without it stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from entrepot.api import App, Context
from entrepot.digest import Digest
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry


async def call(
    app: App, path: str, extensions: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """Run one GET through the ASGI app; return the messages it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": headers,
        "extensions": extensions,
    }
    await app(scope, receive, send)
    return sent


async def pushed_blob(root: Path, data: bytes) -> tuple[App, Digest]:
    registry = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache())
    writer = await registry.repository("zero/copy").blobs.create()
    await writer.write(data)
    descriptor = await writer.commit(Digest.of(data))
    return App(Context(registry)), descriptor.digest


async def test_full_get_is_a_pathsend_of_the_blob_file(tmp_path: Path) -> None:
    data = b"z" * 100_000
    app, digest = await pushed_blob(tmp_path, data)
    sent = await call(app, f"/v2/zero/copy/blobs/{digest}", {"http.response.pathsend": {}}, [])
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    assert (b"content-length", b"100000") in sent[0]["headers"]
    assert [m["type"] for m in sent[1:]] == ["http.response.pathsend"]
    assert await asyncio.to_thread(Path(sent[1]["path"]).read_bytes) == data
    assert Path(sent[1]["path"]).is_relative_to(tmp_path)


async def test_without_pathsend_the_blob_streams(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000
    app, digest = await pushed_blob(tmp_path, data)
    sent = await call(app, f"/v2/zero/copy/blobs/{digest}", {}, [])
    assert all(m["type"] != "http.response.pathsend" for m in sent)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == data


async def test_a_range_streams_even_with_pathsend(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    app, digest = await pushed_blob(tmp_path, data)
    sent = await call(
        app,
        f"/v2/zero/copy/blobs/{digest}",
        {"http.response.pathsend": {}},
        [(b"range", b"bytes=10-19")],
    )
    assert sent[0]["status"] == 206
    assert all(m["type"] != "http.response.pathsend" for m in sent)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == data[10:20]
