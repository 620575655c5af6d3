"""`http.prefix` serves the API under a path; `http.host` makes Location and
Link headers absolute (unless `relativeurls`)."""

from __future__ import annotations

from pathlib import Path

import httpx

from entrepot.api import App, Context
from entrepot.digest import Digest
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry


def client_for(context: Context) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=App(context)), base_url="http://registry"
    )


async def test_prefix_and_host(tmp_path: Path) -> None:
    registry = Registry(FilesystemDriver(tmp_path))
    context = Context(registry, prefix="/registry/", host="https://r.example.com")
    async with client_for(context) as http:
        assert (await http.get("/registry/v2/")).status_code == 200
        assert (await http.get("/v2/")).status_code == 404
        started = await http.post("/registry/v2/a/b/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        assert location.startswith("https://r.example.com/registry/v2/a/b/blobs/uploads/")
        path = location.removeprefix("https://r.example.com")
        committed = await http.put(f"{path}?digest={Digest.of(b'x')}", content=b"x")
        assert committed.status_code == 201
        assert committed.headers["Location"] == (
            f"https://r.example.com/registry/v2/a/b/blobs/{Digest.of(b'x')}"
        )
        for name in ("c/one", "c/two"):
            await http.put(
                f"/registry/v2/{name}/manifests/v1",
                content=b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
                b'"manifests":[]}',
                headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
            )
        page = await http.get("/registry/v2/_catalog?n=1")
        assert page.headers["Link"].startswith("<https://r.example.com/registry/v2/_catalog?")


async def test_relative_locations_by_default(tmp_path: Path) -> None:
    async with client_for(Context(Registry(FilesystemDriver(tmp_path)))) as http:
        started = await http.post("/v2/a/b/blobs/uploads/")
        assert started.headers["Location"].startswith("/v2/a/b/blobs/uploads/")
