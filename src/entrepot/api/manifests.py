"""Manifest endpoints: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<ref>`
(a tag or a digest), and the referrers API `GET /v2/<name>/referrers/<digest>`.

A pushed manifest is parsed and validated for its media type, every blob
it references must be in the repository and every child manifest of an
index too; only then is it stored, linked, tagged, and indexed under its
`subject`.
"""

from __future__ import annotations

import json
from typing import Final

from entrepot.api.context import Context
from entrepot.api.http import Request, Response
from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import (
    BlobInvalidDigest,
    BlobUnknown,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    Unsupported,
)
from entrepot.manifest import (
    MANIFEST_MAX_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    parse_manifest,
)
from entrepot.reference import validate_tag
from entrepot.storage.registry import Repository

_OCI_TYPES: Final = frozenset({OCI_MANIFEST, OCI_INDEX})


def _is_digest(ref: str) -> bool:
    return ":" in ref


async def _resolve(repo: Repository, ref: str) -> Digest:
    if _is_digest(ref):
        return Digest.parse(ref)
    return await repo.tags.get(validate_tag(ref))


def _accepts(request: Request, media_type: str) -> bool:
    """Distribution's negotiation: an OCI manifest is only served to a client
    that accepts OCI (or sends no Accept at all, or a wildcard)."""
    if media_type not in _OCI_TYPES:
        return True
    header = request.headers.get("accept", "")
    if not header:
        return True
    accepted = {part.split(";", 1)[0].strip().lower() for part in header.split(",")}
    return bool(accepted & {media_type, "*/*", "application/*"})


async def get_manifest(ctx: Context, request: Request, name: str, ref: str) -> Response:
    repo = ctx.registry.repository(name)
    digest = await _resolve(repo, ref)
    manifest = await repo.manifests.get(digest)
    if not _accepts(request, manifest.media_type):
        raise ManifestUnknown(ref)
    headers = {
        "Content-Type": manifest.media_type,
        "Content-Length": str(len(manifest.content)),
        "Docker-Content-Digest": str(manifest.digest),
        "ETag": f'"{manifest.digest}"',
    }
    return Response(200, headers, manifest.content)


async def put_manifest(ctx: Context, request: Request, name: str, ref: str) -> Response:
    repo = ctx.registry.repository(name)
    tag = None if _is_digest(ref) else validate_tag(ref)
    expected = Digest.parse(ref) if tag is None else None
    content = await request.body(MANIFEST_MAX_SIZE)
    manifest = parse_manifest(content, request.headers.get("content-type"))
    if expected is not None and Digest.of(content, expected.algorithm) != expected:
        raise BlobInvalidDigest(expected, "the manifest does not hash to the digest it was put by")
    _check_layer_urls(ctx, manifest)
    for blob in manifest.blobs:
        try:
            await repo.blobs.stat(blob.digest)
        except BlobUnknown as exc:
            raise ManifestBlobUnknown(blob.digest) from exc
    for child in manifest.manifests:
        if not await repo.manifests.exists(child.digest):
            raise ManifestBlobUnknown(child.digest)
    descriptor = await repo.manifests.put(content, manifest.media_type)
    if expected is not None and expected != descriptor.digest:
        # Put by a non-canonical digest: make the manifest reachable by it too.
        await repo.manifests.link(descriptor, expected)
    if manifest.subject is not None:
        await repo.referrers.add(manifest.subject.digest, descriptor.digest)
    if tag is not None:
        await repo.tags.tag(tag, descriptor.digest)
    # The spec wants the digest the client put by, when it put by one.
    digest = expected or descriptor.digest
    headers = {
        "Location": ctx.url(f"/v2/{name}/manifests/{digest}"),
        "Docker-Content-Digest": str(digest),
        "Content-Length": "0",
    }
    if manifest.subject is not None:
        headers["OCI-Subject"] = str(manifest.subject.digest)
    return Response(201, headers)


def _check_layer_urls(ctx: Context, manifest: Manifest) -> None:
    """Foreign layers (with `urls`) only as `validation.manifests.urls` allows."""
    policy = ctx.url_policy
    if policy is None:
        return
    for layer in manifest.layers:
        for url in layer.urls:
            if not policy.allows(url):
                raise ManifestInvalid(
                    f"layer {layer.digest}: URL {url!r} is not allowed (validation.manifests.urls)"
                )


async def delete_manifest(ctx: Context, request: Request, name: str, ref: str) -> Response:
    registry = ctx.registry
    if not registry.delete_enabled:
        raise Unsupported("deletion is disabled")
    repo = registry.repository(name)
    if not _is_digest(ref):
        await repo.tags.untag(validate_tag(ref))
        return Response(202, {"Content-Length": "0"})
    digest = Digest.parse(ref)
    stored = await repo.manifests.get(digest)
    for tag in await repo.tags.lookup(digest):
        await repo.tags.untag(tag)
    subject = _subject_of(stored.content)
    await repo.manifests.delete(digest)
    if subject is not None:
        await repo.referrers.remove(subject, stored.digest)
    return Response(202, {"Content-Length": "0"})


def _subject_of(content: bytes) -> Digest | None:
    try:
        obj = json.loads(content)
        return Descriptor.from_json(obj["subject"]).digest
    except (ValueError, KeyError, TypeError, ManifestInvalid):
        return None


async def referrers(ctx: Context, request: Request, name: str, ref: str) -> Response:
    subject = Digest.parse(ref)
    repo = ctx.registry.repository(name)
    wanted = request.query.get("artifactType")
    descriptors = []
    for digest in await repo.referrers.list(subject):
        try:
            stored = await repo.manifests.get(digest)
            manifest = parse_manifest(stored.content, stored.media_type)
        except (ManifestUnknown, ManifestInvalid):
            continue  # deleted since, or unreadable: not a referrer any more
        descriptor = manifest.descriptor()
        if wanted is not None and descriptor.artifact_type != wanted:
            continue
        descriptors.append(descriptor.to_json())
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    ).encode()
    headers = {"Content-Type": OCI_INDEX}
    if wanted is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    return Response(200, headers, body)


METHODS: Final = {
    "GET": get_manifest,
    "HEAD": get_manifest,
    "PUT": put_manifest,
    "DELETE": delete_manifest,
}
