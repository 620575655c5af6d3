"""Helpers of the HTTP API suite: digests, manifest builders, pushes, and the
assertion of an OCI error envelope."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

API_VERSION: Final = "registry/2.0"

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
DOCKER_SCHEMA2: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

EMPTY_JSON: Final = b"{}"
EMPTY_SHA256: Final = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# The error codes of the distribution spec ("Error Codes"): a JSON error body
# of a 4xx response MUST use one of these.
OCI_CODES: Final = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)

MiB: Final = 1024 * 1024

_names = itertools.count()


async def check_api_version(response: httpx.Response) -> None:
    """Response hook: every response carries the API version header."""
    assert response.headers.get("Docker-Distribution-API-Version") == API_VERSION, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        "without Docker-Distribution-API-Version: registry/2.0"
    )


def unique_name(prefix: str = "repo") -> str:
    """A repository name no other test uses."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:8]}"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def sha512(data: bytes) -> str:
    return f"sha512:{hashlib.sha512(data).hexdigest()}"


def random_bytes(size: int, seed: int | None = None) -> bytes:
    return random.Random(seed).randbytes(size)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image_manifest(
    config: Mapping[str, Any],
    layers: list[dict[str, Any]],
    *,
    media_type: str | None = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    obj: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        obj["mediaType"] = media_type
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["config"] = dict(config)
    obj["layers"] = layers
    if subject is not None:
        obj["subject"] = dict(subject)
    if annotations is not None:
        obj["annotations"] = dict(annotations)
    return dumps(obj)


def index_manifest(
    manifests: list[dict[str, Any]],
    *,
    media_type: str | None = OCI_INDEX,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    obj: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        obj["mediaType"] = media_type
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["manifests"] = manifests
    if subject is not None:
        obj["subject"] = dict(subject)
    if annotations is not None:
        obj["annotations"] = dict(annotations)
    return dumps(obj)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The first error of an OCI error envelope, checking its shape."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert isinstance(errors, list), body
    assert errors, body
    for entry in errors:
        assert isinstance(entry, dict), body
        assert set(entry) <= {"code", "message", "detail"}, body
        assert isinstance(entry["code"], str), body
        assert isinstance(entry.get("message", ""), str), body
    first: dict[str, Any] = errors[0]
    return first


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`response` is an error with this status and (unless HEAD) OCI code."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("Docker-Distribution-API-Version") == API_VERSION
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    entry = error_of(response)
    if code is not None:
        assert entry["code"] == code, entry
    return entry


def join_params(location: str, **params: str) -> str:
    """`location` (relative or absolute) with query parameters added, keeping
    those it already has."""
    url = httpx.URL(location)
    for key, value in params.items():
        url = url.copy_add_param(key, value)
    return str(url)


# -- pushes ------------------------------------------------------------------


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    """A monolithic `POST ?digest=` push; the blob's digest."""
    digest = sha256(data)
    response = await client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


async def start_upload(client: httpx.AsyncClient, name: str) -> str:
    """A new upload session; its (relative) location."""
    response = await client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location: str = response.headers["Location"]
    return location


async def push_manifest(
    client: httpx.AsyncClient, name: str, reference: str, content: bytes, media_type: str
) -> httpx.Response:
    response = await client.put(
        f"/v2/{name}/manifests/{reference}", content=content, headers={"Content-Type": media_type}
    )
    assert response.status_code == 201, response.text
    return response


@dataclass
class Image:
    """A pushed image manifest and what it references."""

    name: str
    content: bytes
    media_type: str
    config: bytes
    layers: list[bytes] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha256(self.content)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return descriptor(self.media_type, self.content, **extra)


async def push_image(
    client: httpx.AsyncClient,
    name: str,
    reference: str | None = None,
    *,
    layers: int = 1,
    docker: bool = False,
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """Push a config, `layers` random layers and an image manifest (OCI or
    Docker schema 2), by `reference` (a tag) or else by digest."""
    config = dumps({"architecture": "amd64", "os": "linux", "nonce": uuid.uuid4().hex})
    layer_blobs = [random_bytes(256 + i) for i in range(layers)]
    await push_blob(client, name, config)
    for blob in layer_blobs:
        await push_blob(client, name, blob)
    media_type = DOCKER_SCHEMA2 if docker else OCI_MANIFEST
    content = image_manifest(
        descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        [descriptor(DOCKER_LAYER if docker else OCI_LAYER, b) for b in layer_blobs],
        media_type=media_type,
        annotations=annotations,
    )
    await push_manifest(client, name, reference or sha256(content), content, media_type)
    return Image(name, content, media_type, config, layer_blobs)


_LINK: Final = re.compile(r'^<(?P<url>[^>]+)>;\s*rel="next"$')


def next_link(response: httpx.Response) -> str | None:
    """The URL of a paginated answer's next page (its `Link` header), if any."""
    header = response.headers.get("Link")
    if header is None:
        return None
    match = _LINK.match(header)
    assert match is not None, header
    return match.group("url")
