"""Robustness: names that look like routes, caches that must not go stale,
repeated pushes, and bodies that are not what they claim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    MiB,
    assert_error,
    descriptor,
    dumps,
    image_manifest,
    index_manifest,
    join_params,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    start_upload,
    unique_name,
)

ROUTE_LIKE_NAMES = [
    "{}/manifests",
    "{}/blobs",
    "{}/blobs/uploads",
    "{}/tags/list",
    "{}/referrers",
    "{}/manifests/blobs/uploads",
]


@pytest.mark.parametrize("template", ROUTE_LIKE_NAMES)
async def test_repository_names_that_look_like_routes(
    client: httpx.AsyncClient, template: str
) -> None:
    name = template.format(unique_name())
    data = random_bytes(300, seed=1)
    location = await start_upload(client, name)
    assert location.startswith(f"/v2/{name}/blobs/uploads/")
    patched = await client.patch(location, content=data, headers={"Content-Range": "0-299"})
    assert patched.status_code == 202
    assert (await client.get(location)).status_code == 204
    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201
    assert done.headers["Location"] == f"/v2/{name}/blobs/{sha256(data)}"
    assert (await client.get(f"/v2/{name}/blobs/{sha256(data)}")).content == data

    image = await push_image(client, name, "manifests")
    assert (await client.get(f"/v2/{name}/manifests/manifests")).content == image.content
    assert (await client.get(f"/v2/{name}/tags/list")).json() == {
        "name": name,
        "tags": ["manifests"],
    }
    listed = await client.get(f"/v2/{name}/referrers/{image.digest}")
    assert listed.status_code == 200
    # and the parent name is a repository of its own, still unknown
    parent = name.rsplit("/", 1)[0]
    assert_error(await client.get(f"/v2/{parent}/tags/list"), 404, "NAME_UNKNOWN")


async def test_pushing_the_same_blob_twice(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(1000, seed=2)
    await push_blob(client, name, data)
    await push_blob(client, name, data)
    location = await start_upload(client, name)
    done = await client.put(join_params(location, digest=sha256(data)), content=data)
    assert done.status_code == 201
    assert (await client.get(f"/v2/{name}/blobs/{sha256(data)}")).content == data


async def test_pushing_the_same_manifest_twice(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "v1")
    again = await push_manifest(client, name, "v1", image.content, OCI_MANIFEST)
    assert again.headers["Docker-Content-Digest"] == image.digest
    assert (await client.get(f"/v2/{name}/tags/list")).json()["tags"] == ["v1"]


# -- caches must not answer for what storage no longer has ----------------------------


async def test_mount_from_a_repository_that_deleted_the_blob(client: httpx.AsyncClient) -> None:
    source, target = unique_name(), unique_name()
    digest = await push_blob(client, source, random_bytes(100, seed=3))
    assert (await client.head(f"/v2/{source}/blobs/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/{source}/blobs/{digest}")).status_code == 202
    response = await client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert response.status_code == 202, response.text
    assert_error(await client.head(f"/v2/{target}/blobs/{digest}"), 404)


async def test_manifest_referencing_a_deleted_blob(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux", "deleted": True})
    digest = await push_blob(client, name, config)
    assert (await client.head(f"/v2/{name}/blobs/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/{name}/blobs/{digest}")).status_code == 202
    content = image_manifest(descriptor(OCI_CONFIG, config), [])
    response = await client.put(
        f"/v2/{name}/manifests/v1", content=content, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_index_referencing_a_deleted_manifest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    child = await push_image(client, name)
    assert (await client.get(f"/v2/{name}/manifests/{child.digest}")).status_code == 200
    assert (await client.delete(f"/v2/{name}/manifests/{child.digest}")).status_code == 202
    content = index_manifest([child.descriptor()])
    response = await client.put(
        f"/v2/{name}/manifests/multi", content=content, headers={"Content-Type": OCI_INDEX}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


# -- bodies that are not what they claim ------------------------------------------------


async def test_streamed_manifest_over_4_mib_is_413(client: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"schemaVersion":2,"pad":"'
        for _ in range(5):
            yield b"x" * MiB
        yield b'"}'

    response = await client.put(
        f"/v2/{unique_name()}/manifests/big",
        content=body(),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(response, 413)


async def test_chunk_whose_length_disagrees_with_its_range(client: httpx.AsyncClient) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    response = await client.patch(location, content=b"x" * 50, headers={"Content-Range": "0-99"})
    assert 400 <= response.status_code < 500
    current = await client.get(location)
    assert current.headers["Range"] == "0-0"
    ok = await client.patch(location, content=b"x" * 100, headers={"Content-Range": "0-99"})
    assert ok.status_code == 202
    assert ok.headers["Range"] == "0-99"


@pytest.mark.parametrize("header", ["bytes 0-", "abc", "5", "9-0", "-1-3"])
async def test_malformed_content_range_is_a_client_error(
    client: httpx.AsyncClient, header: str
) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    response = await client.patch(
        location, content=b"0123456789", headers={"Content-Range": header}
    )
    assert 400 <= response.status_code < 500, response.status_code
    assert (await client.get(location)).headers["Range"] == "0-0"
