"""Manifests (end-3, end-7, end-9): the four formats, validation, content
negotiation and deletion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from entrepot.api import App, Context
from entrepot.api.context import UrlPolicy
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry
from tests.api.helpers import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA2,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    MiB,
    assert_error,
    descriptor,
    dumps,
    error_of,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    sha512,
    unique_name,
)

MANIFEST_MAX = 4 * MiB


async def assert_served(
    client: httpx.AsyncClient, name: str, reference: str, content: bytes, media_type: str
) -> None:
    """GET and HEAD of `reference` answer with exactly `content`."""
    accept = {"Accept": media_type}
    get = await client.get(f"/v2/{name}/manifests/{reference}", headers=accept)
    assert get.status_code == 200, get.text
    assert get.headers["Content-Type"] == media_type
    assert get.headers["Docker-Content-Digest"] == sha256(content)
    assert get.headers["Content-Length"] == str(len(content))
    assert get.content == content
    head = await client.head(f"/v2/{name}/manifests/{reference}", headers=accept)
    assert head.status_code == 200
    assert head.headers["Content-Type"] == media_type
    assert head.headers["Docker-Content-Digest"] == sha256(content)
    assert head.headers["Content-Length"] == str(len(content))
    assert head.content == b""


async def test_put_and_get_oci_manifest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config, layer = dumps({"os": "linux"}), random_bytes(1000, seed=1)
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    content = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    digest = sha256(content)

    response = await push_manifest(client, name, "v1", content, OCI_MANIFEST)
    assert response.headers["Location"] == f"/v2/{name}/manifests/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest

    await assert_served(client, name, "v1", content, OCI_MANIFEST)
    await assert_served(client, name, digest, content, OCI_MANIFEST)
    pulled = await client.get(response.headers["Location"])
    assert pulled.content == content


async def test_manifest_bytes_are_kept_exactly(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    # unusual but valid JSON layout: spaces, key order, trailing newline
    content = (
        b'{\n  "layers" : [ ],\n  "config" : '
        + json.dumps(descriptor(OCI_CONFIG, config), indent=4).encode()
        + b',\n  "schemaVersion":2 ,"mediaType": "'
        + OCI_MANIFEST.encode()
        + b'"}\n'
    )
    await push_manifest(client, name, "odd", content, OCI_MANIFEST)
    await assert_served(client, name, "odd", content, OCI_MANIFEST)


async def test_content_type_parameters_are_ignored(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    content = image_manifest(descriptor(OCI_CONFIG, config), [])
    await push_manifest(client, name, "v1", content, f"{OCI_MANIFEST}; charset=utf-8")
    await assert_served(client, name, "v1", content, OCI_MANIFEST)


async def test_oci_manifest_without_media_type_field(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    content = image_manifest(descriptor(OCI_CONFIG, config), [], media_type=None)
    await push_manifest(client, name, "v1", content, OCI_MANIFEST)
    await assert_served(client, name, "v1", content, OCI_MANIFEST)


async def test_docker_schema2(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "latest", layers=2, docker=True)
    await assert_served(client, name, "latest", image.content, DOCKER_SCHEMA2)
    await assert_served(client, name, image.digest, image.content, DOCKER_SCHEMA2)


async def test_a_foreign_layer_is_refused_by_default(client: httpx.AsyncClient) -> None:
    # Distribution's default: validation on, no `allow` pattern, no URL allowed.
    name = unique_name()
    config = dumps({"os": "windows"})
    await push_blob(client, name, config)
    foreign = descriptor(
        DOCKER_FOREIGN_LAYER, b"foreign", urls=["https://example.com/layer.tar.gz"]
    )
    content = image_manifest(
        descriptor(DOCKER_CONFIG, config), [foreign], media_type=DOCKER_SCHEMA2
    )
    response = await client.put(
        f"/v2/{name}/manifests/win", content=content, headers={"Content-Type": DOCKER_SCHEMA2}
    )
    assert_error(response, 400, "MANIFEST_INVALID")
    assert "validation.manifests.urls" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://example.com/layer.tar.gz", True),
        ("http://mirror.example.com/layer.tar.gz", True),
        ("https://www.example.com/layer.tar.gz", False),  # denied
        ("https://elsewhere.org/layer.tar.gz", False),  # not allowed
        ("ftp://example.com/layer.tar.gz", False),  # not http(s)
    ],
)
async def test_foreign_layers_as_the_url_policy_says(
    tmp_path: Path, url: str, accepted: bool
) -> None:
    # Foreign layers (with urls) are not in the registry; they need not be pushed.
    policy = UrlPolicy(
        (re.compile(r"^https?://([^/]+\.)*example\.com/"),),
        (re.compile(r"^https?://www\.example\.com/"),),
    )
    registry = Registry(FilesystemDriver(tmp_path))
    app = App(Context(registry, url_policy=policy))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry"
    ) as client:
        name = unique_name()
        config = dumps({"os": "windows"})
        await push_blob(client, name, config)
        foreign = descriptor(DOCKER_FOREIGN_LAYER, b"foreign", urls=[url])
        content = image_manifest(
            descriptor(DOCKER_CONFIG, config), [foreign], media_type=DOCKER_SCHEMA2
        )
        if accepted:
            await push_manifest(client, name, "win", content, DOCKER_SCHEMA2)
            await assert_served(client, name, "win", content, DOCKER_SCHEMA2)
        else:
            response = await client.put(
                f"/v2/{name}/manifests/win",
                content=content,
                headers={"Content-Type": DOCKER_SCHEMA2},
            )
            assert_error(response, 400, "MANIFEST_INVALID")


async def test_docker_schema2_without_media_type_field_is_invalid(
    client: httpx.AsyncClient,
) -> None:
    # manifest-v2-2.md: mediaType is required in schema 2 (Distribution refuses
    # it too); accepted, it would be served back as an OCI manifest.
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    content = image_manifest(descriptor(DOCKER_CONFIG, config), [], media_type=None)
    response = await client.put(
        f"/v2/{name}/manifests/v1", content=content, headers={"Content-Type": DOCKER_SCHEMA2}
    )
    assert_error(response, 400, "MANIFEST_INVALID")


async def test_oci_index(client: httpx.AsyncClient) -> None:
    name = unique_name()
    amd64 = await push_image(client, name)
    arm64 = await push_image(client, name)
    content = index_manifest(
        [
            amd64.descriptor(platform={"architecture": "amd64", "os": "linux"}),
            arm64.descriptor(platform={"architecture": "arm64", "os": "linux"}),
        ]
    )
    response = await push_manifest(client, name, "multi", content, OCI_INDEX)
    assert response.headers["Docker-Content-Digest"] == sha256(content)
    await assert_served(client, name, "multi", content, OCI_INDEX)
    await assert_served(client, name, sha256(content), content, OCI_INDEX)


async def test_docker_manifest_list(client: httpx.AsyncClient) -> None:
    name = unique_name()
    amd64 = await push_image(client, name, docker=True)
    arm64 = await push_image(client, name, docker=True)
    content = index_manifest(
        [
            amd64.descriptor(platform={"architecture": "amd64", "os": "linux"}),
            arm64.descriptor(platform={"architecture": "arm64", "os": "linux"}),
        ],
        media_type=DOCKER_LIST,
    )
    await push_manifest(client, name, "multi", content, DOCKER_LIST)
    await assert_served(client, name, "multi", content, DOCKER_LIST)


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
async def test_index_with_a_missing_child(client: httpx.AsyncClient, media_type: str) -> None:
    name = unique_name()
    present = await push_image(client, name)
    missing = descriptor(OCI_MANIFEST, b'{"not":"pushed"}')
    content = index_manifest([present.descriptor(), missing], media_type=media_type)
    response = await client.put(
        f"/v2/{name}/manifests/multi", content=content, headers={"Content-Type": media_type}
    )
    error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert missing["digest"] in json.dumps(error.get("detail"))
    assert_error(await client.get(f"/v2/{name}/manifests/multi"), 404, "MANIFEST_UNKNOWN")


async def test_index_child_that_is_only_a_blob(client: httpx.AsyncClient) -> None:
    name = unique_name()
    blob = dumps({"schemaVersion": 2, "pretends": "to be a manifest"})
    await push_blob(client, name, blob)
    content = index_manifest([descriptor(OCI_MANIFEST, blob)])
    response = await client.put(
        f"/v2/{name}/manifests/multi", content=content, headers={"Content-Type": OCI_INDEX}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_index_child_of_another_repository(client: httpx.AsyncClient) -> None:
    name, other = unique_name(), unique_name()
    image = await push_image(client, other)
    content = index_manifest([image.descriptor()])
    response = await client.put(
        f"/v2/{name}/manifests/multi", content=content, headers={"Content-Type": OCI_INDEX}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("missing", ["config", "layer"])
async def test_manifest_referencing_a_missing_blob(client: httpx.AsyncClient, missing: str) -> None:
    name = unique_name()
    config, layer = dumps({"os": "linux"}), random_bytes(100, seed=2)
    if missing != "config":
        await push_blob(client, name, config)
    if missing != "layer":
        await push_blob(client, name, layer)
    content = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    response = await client.put(
        f"/v2/{name}/manifests/v1", content=content, headers={"Content-Type": OCI_MANIFEST}
    )
    error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    absent = sha256(config if missing == "config" else layer)
    assert absent in json.dumps(error.get("detail"))
    assert_error(await client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


async def test_manifest_referencing_a_blob_of_another_repository(
    client: httpx.AsyncClient,
) -> None:
    name, other = unique_name(), unique_name()
    config = dumps({"os": "linux", "where": "elsewhere"})
    await push_blob(client, other, config)
    content = image_manifest(descriptor(OCI_CONFIG, config), [])
    response = await client.put(
        f"/v2/{name}/manifests/v1", content=content, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


CONFIG_DESC = descriptor(OCI_CONFIG, b"{}")

INVALID_MANIFESTS = {
    "not json": (b"this is not json", OCI_MANIFEST),
    "truncated json": (b'{"schemaVersion": 2, "config": ', OCI_MANIFEST),
    "not utf-8": (b'{"schemaVersion": 2, "x": "\xff\xfe"}', OCI_MANIFEST),
    "array": (b"[1, 2, 3]", OCI_MANIFEST),
    "string": (b'"manifest"', OCI_MANIFEST),
    "null": (b"null", OCI_MANIFEST),
    "empty": (b"", OCI_MANIFEST),
    "media type mismatch": (image_manifest(CONFIG_DESC, []), DOCKER_SCHEMA2),
    "media type mismatch index": (index_manifest([]), OCI_MANIFEST),
    "no config": (dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}), None),
    "layers not a list": (
        dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG_DESC, "layers": 1}),
        None,
    ),
    "schema version 3": (
        dumps({"schemaVersion": 3, "mediaType": OCI_MANIFEST, "config": CONFIG_DESC, "layers": []}),
        None,
    ),
    "bad descriptor digest": (
        image_manifest({**CONFIG_DESC, "digest": "sha256:zzz"}, []),
        None,
    ),
    "negative size": (image_manifest({**CONFIG_DESC, "size": -1}, []), None),
    "unknown media type": (dumps({"schemaVersion": 2, "mediaType": "text/plain"}), "text/plain"),
    "index manifests not a list": (
        dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}),
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_MANIFESTS))
async def test_invalid_manifest(client: httpx.AsyncClient, case: str) -> None:
    content, media_type = INVALID_MANIFESTS[case]
    name = unique_name()
    response = await client.put(
        f"/v2/{name}/manifests/v1",
        content=content,
        headers={"Content-Type": media_type or OCI_MANIFEST},
    )
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(await client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1, OCI_MANIFEST, "application/json"])
async def test_schema1_is_not_supported(client: httpx.AsyncClient, content_type: str) -> None:
    name = unique_name()
    content = dumps(
        {"schemaVersion": 1, "name": name, "tag": "v1", "architecture": "amd64", "fsLayers": []}
    )
    response = await client.put(
        f"/v2/{name}/manifests/v1", content=content, headers={"Content-Type": content_type}
    )
    error = assert_error(response, 400, "MANIFEST_INVALID")
    message = error["message"].lower()
    assert "schema 1" in message, message
    assert "not supported" in message, message


async def test_manifest_over_4_mib_is_413(client: httpx.AsyncClient) -> None:
    name = unique_name()
    content = b'{"schemaVersion":2,"pad":"' + b"x" * MANIFEST_MAX + b'"}'
    response = await client.put(
        f"/v2/{name}/manifests/big", content=content, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 413)


async def test_manifest_of_exactly_4_mib_is_accepted(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    small = image_manifest(descriptor(OCI_CONFIG, config), [], annotations={"pad": ""})
    content = small.replace(b'"pad":""', b'"pad":"' + b"x" * (MANIFEST_MAX - len(small)) + b'"')
    assert len(content) == MANIFEST_MAX
    await push_manifest(client, name, "big", content, OCI_MANIFEST)
    await assert_served(client, name, "big", content, OCI_MANIFEST)


async def test_put_by_digest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    content = image_manifest(descriptor(OCI_CONFIG, config), [])
    digest = sha256(content)

    wrong = await client.put(
        f"/v2/{name}/manifests/{sha256(b'other')}",
        content=content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(wrong, 400, "DIGEST_INVALID")
    assert_error(await client.get(f"/v2/{name}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")

    response = await push_manifest(client, name, digest, content, OCI_MANIFEST)
    assert response.headers["Location"] == f"/v2/{name}/manifests/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    await assert_served(client, name, digest, content, OCI_MANIFEST)


async def test_put_by_sha512_digest(client: httpx.AsyncClient) -> None:
    # end-7: Docker-Content-Digest "MUST be equal to the client provided digest".
    name = unique_name()
    config = dumps({"os": "linux"})
    await push_blob(client, name, config)
    content = image_manifest(descriptor(OCI_CONFIG, config), [])
    response = await push_manifest(client, name, sha512(content), content, OCI_MANIFEST)
    get = await client.get(f"/v2/{name}/manifests/{sha512(content)}")
    assert get.status_code == 200
    assert get.content == content
    assert (await client.get(response.headers["Location"])).content == content
    assert response.headers["Docker-Content-Digest"] == sha512(content)


@pytest.mark.parametrize("digest", ["sha256:zzz", "md5:abc", "sha256:" + "A" * 64, "sha512:ab"])
async def test_malformed_digest_reference_is_400(client: httpx.AsyncClient, digest: str) -> None:
    name = unique_name()
    await push_image(client, name, "v1")
    for method in ("GET", "HEAD", "DELETE"):
        response = await client.request(method, f"/v2/{name}/manifests/{digest}")
        assert_error(response, 400, None if method == "HEAD" else "DIGEST_INVALID")
    put = await client.put(
        f"/v2/{name}/manifests/{digest}", content=b"{}", headers={"Content-Type": OCI_MANIFEST}
    )
    assert 400 <= put.status_code < 500
    assert put.status_code == 400


async def test_unknown_manifest_is_404(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "v1")
    unknown_digest = sha256(b"no such manifest")
    for reference in ("nope", unknown_digest):
        assert_error(await client.get(f"/v2/{name}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
        assert_error(await client.head(f"/v2/{name}/manifests/{reference}"), 404)
    # a manifest of another repository is unknown here
    other = unique_name()
    await push_image(client, other, "v1")
    response = await client.get(f"/v2/{other}/manifests/{image.digest}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_a_blob_is_not_a_manifest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "v1")
    for blob in (image.config, image.layers[0]):
        url = f"/v2/{name}/manifests/{sha256(blob)}"
        assert_error(await client.get(url), 404, "MANIFEST_UNKNOWN")
        assert_error(await client.head(url), 404)
        assert_error(await client.delete(url), 404, "MANIFEST_UNKNOWN")
    # the blobs are still there
    assert (await client.head(f"/v2/{name}/blobs/{sha256(image.config)}")).status_code == 200


async def test_manifest_of_unknown_repository_is_404(client: httpx.AsyncClient) -> None:
    name = unique_name()
    response = await client.get(f"/v2/{name}/manifests/latest")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


# -- content negotiation -----------------------------------------------------------


async def _get_without_accept(client: httpx.AsyncClient, url: str, method: str) -> httpx.Response:
    request = client.build_request(method, url)
    del request.headers["Accept"]
    return await client.send(request)


async def test_accept_negotiation_of_an_oci_manifest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "v1")
    url = f"/v2/{name}/manifests/v1"
    for method in ("GET", "HEAD"):
        only_docker = await client.request(method, url, headers={"Accept": DOCKER_SCHEMA2})
        assert_error(only_docker, 404, None if method == "HEAD" else "MANIFEST_UNKNOWN")
        bare = await _get_without_accept(client, url, method)
        assert bare.status_code == 200
        assert bare.headers["Content-Type"] == OCI_MANIFEST
    for accept in (
        OCI_MANIFEST,
        f"{DOCKER_SCHEMA2}, {OCI_MANIFEST}",
        f"{DOCKER_SCHEMA2};q=0.9, {OCI_MANIFEST};q=0.5",
        "*/*",
        f"{DOCKER_SCHEMA2}, */*;q=0.1",
    ):
        response = await client.get(url, headers={"Accept": accept})
        assert response.status_code == 200, accept
        assert response.content == image.content


async def test_accept_negotiation_of_an_oci_index(client: httpx.AsyncClient) -> None:
    name = unique_name()
    child = await push_image(client, name)
    content = index_manifest([child.descriptor()])
    await push_manifest(client, name, "multi", content, OCI_INDEX)
    url = f"/v2/{name}/manifests/multi"
    only_manifests = await client.get(url, headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_SCHEMA2}"})
    assert_error(only_manifests, 404, "MANIFEST_UNKNOWN")
    assert (await _get_without_accept(client, url, "GET")).status_code == 200
    assert (await client.get(url, headers={"Accept": OCI_INDEX})).status_code == 200


# -- tags and deletion ----------------------------------------------------------------


async def test_retag_moves_the_tag(client: httpx.AsyncClient) -> None:
    name = unique_name()
    first = await push_image(client, name, "latest")
    second = await push_image(client, name, "latest")
    response = await client.get(f"/v2/{name}/manifests/latest")
    assert response.content == second.content
    assert (await client.get(f"/v2/{name}/manifests/{first.digest}")).content == first.content


async def test_delete_manifest_by_digest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "a")
    await push_manifest(client, name, "b", image.content, OCI_MANIFEST)
    other = await push_image(client, name, "c")

    response = await client.delete(f"/v2/{name}/manifests/{image.digest}")
    assert response.status_code == 202
    assert_error(await client.get(f"/v2/{name}/manifests/{image.digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.head(f"/v2/{name}/manifests/{image.digest}"), 404)
    for tag in ("a", "b"):
        assert_error(await client.get(f"/v2/{name}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")
    tags = await client.get(f"/v2/{name}/tags/list")
    assert tags.json() == {"name": name, "tags": ["c"]}
    assert (await client.get(f"/v2/{name}/manifests/c")).content == other.content
    # the blobs stay
    assert (await client.head(f"/v2/{name}/blobs/{sha256(image.config)}")).status_code == 200
    # deleting again
    again = await client.delete(f"/v2/{name}/manifests/{image.digest}")
    assert_error(again, 404, "MANIFEST_UNKNOWN")


async def test_delete_keeps_a_tag_that_moved_on(client: httpx.AsyncClient) -> None:
    name = unique_name()
    first = await push_image(client, name, "moving")
    second = await push_image(client, name, "moving")
    assert (await client.delete(f"/v2/{name}/manifests/{first.digest}")).status_code == 202
    response = await client.get(f"/v2/{name}/manifests/moving")
    assert response.status_code == 200
    assert response.content == second.content


async def test_delete_by_tag_untags_only(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "a")
    await push_manifest(client, name, "b", image.content, OCI_MANIFEST)
    response = await client.delete(f"/v2/{name}/manifests/a")
    assert response.status_code == 202
    assert_error(await client.get(f"/v2/{name}/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert (await client.get(f"/v2/{name}/manifests/b")).content == image.content
    assert (await client.get(f"/v2/{name}/manifests/{image.digest}")).content == image.content
    tags = await client.get(f"/v2/{name}/tags/list")
    assert tags.json()["tags"] == ["b"]
    assert_error(await client.delete(f"/v2/{name}/manifests/a"), 404, "MANIFEST_UNKNOWN")


async def test_delete_unknown_manifest_is_404(client: httpx.AsyncClient) -> None:
    name = unique_name()
    await push_image(client, name, "v1")
    unknown = sha256(b"unknown manifest")
    assert_error(await client.delete(f"/v2/{name}/manifests/{unknown}"), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.delete(f"/v2/{name}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    other = unique_name()
    response = await client.delete(f"/v2/{other}/manifests/{unknown}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


async def test_push_again_after_delete(client: httpx.AsyncClient) -> None:
    name = unique_name()
    image = await push_image(client, name, "v1")
    assert (await client.delete(f"/v2/{name}/manifests/{image.digest}")).status_code == 202
    await push_manifest(client, name, "v1", image.content, OCI_MANIFEST)
    await assert_served(client, name, "v1", image.content, OCI_MANIFEST)


async def test_same_manifest_in_two_repositories(client: httpx.AsyncClient) -> None:
    first, second = unique_name(), unique_name()
    image = await push_image(client, first, "v1")
    for blob in (image.config, *image.layers):
        await push_blob(client, second, blob)
    await push_manifest(client, second, "v1", image.content, OCI_MANIFEST)
    assert (await client.delete(f"/v2/{first}/manifests/{image.digest}")).status_code == 202
    await assert_served(client, second, "v1", image.content, OCI_MANIFEST)
    await assert_served(client, second, image.digest, image.content, OCI_MANIFEST)


async def test_docker_image_with_docker_layer_types(client: httpx.AsyncClient) -> None:
    name = unique_name()
    config, layer = dumps({"os": "linux"}), random_bytes(10, seed=3)
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    content = image_manifest(
        descriptor(DOCKER_CONFIG, config),
        [descriptor(DOCKER_LAYER, layer)],
        media_type=DOCKER_SCHEMA2,
    )
    # no Content-Type: the mediaType field decides
    response = await client.put(f"/v2/{name}/manifests/v1", content=content)
    assert response.status_code == 201, response.text
    await assert_served(client, name, "v1", content, DOCKER_SCHEMA2)
