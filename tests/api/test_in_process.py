"""The application in process: settings (delete disabled), answers that must
not depend on what one process has cached, and storage calls per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from entrepot.api import App, Context
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.base import StorageDriver
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.registry import Registry
from tests.api.conftest import CountingDriver, InProcess
from tests.api.helpers import (
    OCI_MANIFEST,
    assert_error,
    join_params,
    push_blob,
    push_image,
    random_bytes,
    sha256,
    start_upload,
)

MakeApp = Callable[..., InProcess]


# -- delete disabled ----------------------------------------------------------------


async def test_delete_disabled_is_405(make_app: MakeApp) -> None:
    writer = make_app()
    image = await push_image(writer.client, "repo", "v1")
    client = make_app(delete_enabled=False).client

    for url in (
        f"/v2/repo/manifests/{image.digest}",
        "/v2/repo/manifests/v1",
        f"/v2/repo/blobs/{sha256(image.config)}",
    ):
        assert_error(await client.delete(url), 405, "UNSUPPORTED")
    # nothing was deleted
    assert (await client.get("/v2/repo/manifests/v1")).content == image.content
    assert (await client.head(f"/v2/repo/blobs/{sha256(image.config)}")).status_code == 200
    # cancelling an upload is not a deletion of content
    location = await start_upload(client, "repo")
    assert (await client.delete(location)).status_code == 204


# -- answers that must not depend on a process's cache ------------------------------


async def test_blob_endpoint_for_a_manifest_digest_agrees_warm_and_cold(
    make_app: MakeApp,
) -> None:
    warm = make_app()
    image = await push_image(warm.client, "repo", "v1")
    cold = make_app()
    url = f"/v2/repo/blobs/{image.digest}"
    warm_status = (await warm.client.head(url)).status_code
    cold_status = (await cold.client.head(url)).status_code
    assert warm_status == cold_status, (warm_status, cold_status)


async def test_manifest_endpoint_for_a_blob_digest_agrees_warm_and_cold(
    make_app: MakeApp,
) -> None:
    warm = make_app()
    digest = await push_blob(warm.client, "repo", b'{"a":"config"}')
    await push_image(warm.client, "repo", "v1")
    cold = make_app()
    url = f"/v2/repo/manifests/{digest}"
    warm_status = (await warm.client.get(url)).status_code
    cold_status = (await cold.client.get(url)).status_code
    assert (warm_status, cold_status) == (404, 404)


async def test_delete_in_one_process_is_seen_by_a_fresh_one(make_app: MakeApp) -> None:
    first = make_app()
    image = await push_image(first.client, "repo", "v1")
    assert (await first.client.get("/v2/repo/manifests/v1")).status_code == 200
    second = make_app()
    assert (await second.client.delete(f"/v2/repo/manifests/{image.digest}")).status_code == 202
    assert_error(await make_app().client.get("/v2/repo/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    # a tag read always goes to storage, so even the warm process sees it
    assert_error(await first.client.get("/v2/repo/manifests/v1"), 404, "MANIFEST_UNKNOWN")


# -- storage calls --------------------------------------------------------------------


async def count(driver: CountingDriver, request: Awaitable[httpx.Response]) -> dict[str, int]:
    driver.reset()
    response = await request
    assert response.status_code < 400, (response.status_code, response.text)
    return dict(driver.calls)


async def test_warm_blob_head_makes_no_storage_call(
    asgi_client: httpx.AsyncClient, counting_driver: CountingDriver
) -> None:
    digest = await push_blob(asgi_client, "repo", random_bytes(1000, seed=1))
    calls = await count(counting_driver, asgi_client.head(f"/v2/repo/blobs/{digest}"))
    assert calls == {}, counting_driver.log


async def test_warm_manifest_get_by_tag_makes_two_storage_calls(
    asgi_client: httpx.AsyncClient, counting_driver: CountingDriver
) -> None:
    image = await push_image(asgi_client, "repo", "v1")
    for method in ("GET", "HEAD"):
        calls = await count(
            counting_driver,
            asgi_client.request(method, "/v2/repo/manifests/v1", headers={"Accept": OCI_MANIFEST}),
        )
        # the tag's current link, then the manifest's content
        assert calls == {"get_content": 2}, (method, counting_driver.log)
    response = await asgi_client.get("/v2/repo/manifests/v1")
    assert response.content == image.content


async def test_warm_manifest_get_by_digest_makes_one_storage_call(
    asgi_client: httpx.AsyncClient, counting_driver: CountingDriver
) -> None:
    image = await push_image(asgi_client, "repo", "v1")
    calls = await count(counting_driver, asgi_client.get(f"/v2/repo/manifests/{image.digest}"))
    assert calls == {"get_content": 1}, counting_driver.log


COLD_PATHS = {
    "blob HEAD": ("HEAD", "/v2/repo/blobs/{blob}"),
    "blob GET": ("GET", "/v2/repo/blobs/{blob}"),
    "blob GET range": ("GET", "/v2/repo/blobs/{blob}"),
    "manifest GET by tag": ("GET", "/v2/repo/manifests/v1"),
    "manifest HEAD by tag": ("HEAD", "/v2/repo/manifests/v1"),
    "manifest GET by digest": ("GET", "/v2/repo/manifests/{manifest}"),
    "tags list": ("GET", "/v2/repo/tags/list"),
}

# Upper bounds of storage calls on a cold cache (a fresh process); observed:
# blob HEAD 2 (layer link + blob stat), blob GET 5, manifest GET by tag 4
# (tag link, revision link, blob stat, content), by digest 3.
COLD_LIMITS = {
    "blob HEAD": 2,
    "blob GET": 5,
    "blob GET range": 4,
    "manifest GET by tag": 4,
    "manifest HEAD by tag": 4,
    "manifest GET by digest": 3,
    "tags list": 1,
}


@pytest.mark.parametrize("path", sorted(COLD_PATHS))
async def test_cold_storage_calls(make_app: MakeApp, path: str) -> None:
    writer = make_app()
    blob = await push_blob(writer.client, "repo", random_bytes(1000, seed=2))
    image = await push_image(writer.client, "repo", "v1")
    cold = make_app()
    method, template = COLD_PATHS[path]
    url = template.format(blob=blob, manifest=image.digest)
    headers = {"Range": "bytes=10-19"} if path.endswith("range") else {}
    calls = await count(cold.driver, cold.client.request(method, url, headers=headers))
    total = sum(calls.values())
    print(f"cold {path}: {total} {calls} {cold.driver.log}")
    assert total <= COLD_LIMITS[path], (path, calls, cold.driver.log)


async def test_storage_calls_of_pushes(make_app: MakeApp) -> None:
    """Not a limit: the counts of the write paths, printed for the record."""
    app = make_app()
    client, driver = app.client, app.driver
    data = random_bytes(3000, seed=3)

    driver.reset()
    await push_blob(client, "repo", data)
    print(f"monolithic POST: {driver.total} {dict(driver.calls)}")

    driver.reset()
    location = await start_upload(client, "repo")
    print(f"upload POST: {driver.total} {dict(driver.calls)}")
    driver.reset()
    await client.patch(location, content=data[:1000], headers={"Content-Range": "0-999"})
    print(f"PATCH: {driver.total} {dict(driver.calls)}")
    driver.reset()
    await client.patch(location, content=data[1000:2000], headers={"Content-Range": "1000-1999"})
    print(f"second PATCH: {driver.total} {dict(driver.calls)}")
    driver.reset()
    await client.get(location)
    print(f"upload status: {driver.total} {dict(driver.calls)}")
    driver.reset()
    done = await client.put(join_params(location, digest=sha256(data[:2000])))
    assert done.status_code == 201
    print(f"PUT commit: {driver.total} {dict(driver.calls)}")

    image = await push_image(client, "repo")
    driver.reset()
    response = await client.put(
        "/v2/repo/manifests/v2", content=image.content, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201
    print(f"manifest PUT by tag: {driver.total} {dict(driver.calls)}")


# -- the same answers on every driver ------------------------------------------------


def _app_on(driver_name: str, root: Path) -> httpx.AsyncClient:
    driver: StorageDriver = (
        InMemoryDriver() if driver_name == "inmemory" else FilesystemDriver(root)
    )
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=App(Context(registry))),
        base_url="http://entrepot.test",
    )


@pytest.mark.parametrize("driver_name", ["filesystem", "inmemory"])
async def test_tags_list_after_the_last_tag_is_deleted(driver_name: str, tmp_path: Path) -> None:
    # end-8a: a repository that is found lists its tags, "MAY be empty".
    async with _app_on(driver_name, tmp_path) as client:
        image = await push_image(client, "repo", "only")
        assert (await client.delete("/v2/repo/manifests/only")).status_code == 202
        response = await client.get("/v2/repo/tags/list")
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "repo", "tags": []}
        # the repository is still there
        assert (await client.get(f"/v2/repo/manifests/{image.digest}")).status_code == 200
        assert (await client.get("/v2/_catalog")).json()["repositories"] == ["repo"]
