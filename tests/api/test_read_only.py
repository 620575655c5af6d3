"""Read-only mode (maintenance.readonly): reads are served, writes refused
with 405 UNSUPPORTED, as Distribution does while garbage collection runs."""

from __future__ import annotations

from pathlib import Path

import httpx

from entrepot.api import App, Context
from entrepot.digest import Digest
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry


async def test_reads_pass_and_writes_are_refused(tmp_path: Path) -> None:
    registry = Registry(FilesystemDriver(tmp_path))
    writer = await registry.repository("ro/repo").blobs.create()
    await writer.write(b"kept")
    digest = (await writer.commit(Digest.of(b"kept"))).digest
    app = App(Context(registry, read_only=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
        assert (await http.get(f"/v2/ro/repo/blobs/{digest}")).content == b"kept"
        assert (await http.head(f"/v2/ro/repo/blobs/{digest}")).status_code == 200
        writes = [
            http.post("/v2/ro/repo/blobs/uploads/"),
            http.delete(f"/v2/ro/repo/blobs/{digest}"),
            http.put("/v2/ro/repo/manifests/v1", content=b"{}"),
            http.patch("/v2/ro/repo/blobs/uploads/x", content=b"x"),
        ]
        for write in writes:
            response = await write
            assert response.status_code == 405
            assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert (await registry.repository("ro/repo").blobs.stat(digest)).size == 4
