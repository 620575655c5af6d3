"""Blob GETs on S3 answer 307 to a presigned URL (the content does not pass
through entrepot), unless `storage.redirect.disable`; then they stream."""

from __future__ import annotations

import httpx
import pytest

from entrepot.api import App, Context
from entrepot.digest import Digest
from entrepot.storage.registry import Registry
from tests.storage.driver.s3_server import new_driver

DATA = b"stored on S3 " * 10_000


@pytest.mark.parametrize("redirect", [True, False])
async def test_blob_get_on_s3(redirect: bool) -> None:
    driver = new_driver()
    registry = Registry(driver, redirect=redirect)
    transport = httpx.ASGITransport(app=App(Context(registry)))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
            digest = Digest.of(DATA)
            pushed = await http.post(f"/v2/on/s3/blobs/uploads/?digest={digest}", content=DATA)
            assert pushed.status_code == 201, pushed.text
            head = await http.head(f"/v2/on/s3/blobs/{digest}")
            assert head.status_code == 200
            assert head.headers["Content-Length"] == str(len(DATA))
            got = await http.get(f"/v2/on/s3/blobs/{digest}")
            if redirect:
                assert got.status_code == 307
                assert got.headers["Docker-Content-Digest"] == str(digest)
                async with httpx.AsyncClient() as direct:
                    fetched = await direct.get(got.headers["Location"])
                assert fetched.status_code == 200
                assert fetched.content == DATA
            else:
                assert got.status_code == 200
                assert got.content == DATA
    finally:
        await registry.aclose()
