"""Manifest revisions of one repository, stored as blobs and linked under
`_manifests/revisions`. This layer stores and returns raw bytes; parsing and
validation by media type live in `entrepot.manifest`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, ManifestUnknown
from entrepot.storage.linked import LinkedBlobStore

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: Digest
    media_type: str
    content: bytes


def sniff_media_type(content: bytes) -> str:
    """The media type a stored manifest declares (or implies, for OCI ones
    that leave `mediaType` out)."""
    try:
        obj = json.loads(content)
    except ValueError:
        return OCI_MANIFEST
    if not isinstance(obj, dict):
        return OCI_MANIFEST
    media_type = obj.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if obj.get("schemaVersion") == 1:
        # Written by Distribution before 2.8: signed schema 1.
        return "application/vnd.docker.distribution.manifest.v1+prettyjws"
    return OCI_INDEX if "manifests" in obj else OCI_MANIFEST


class ManifestStore:
    def __init__(self, revisions: LinkedBlobStore) -> None:
        self._revisions = revisions
        self.name = revisions.name

    async def exists(self, digest: Digest) -> bool:
        try:
            await self._revisions.stat(digest)
        except BlobUnknown:
            return False
        return True

    async def stat(self, digest: Digest) -> Descriptor:
        try:
            return await self._revisions.stat(digest)
        except BlobUnknown as exc:
            raise ManifestUnknown(digest) from exc

    async def get(self, digest: Digest) -> StoredManifest:
        try:
            content = await self._revisions.get(digest)
        except BlobUnknown as exc:
            raise ManifestUnknown(digest) from exc
        return StoredManifest(digest, sniff_media_type(content), content)

    async def put(self, content: bytes, media_type: str) -> Descriptor:
        """Store a manifest revision; its digest is the canonical one of `content`."""
        return await self._revisions.put(media_type, content)

    async def link(self, descriptor: Descriptor, alias: Digest) -> None:
        """Make a stored revision reachable by another digest of it too."""
        await self._revisions.link(descriptor, (alias,))

    async def delete(self, digest: Digest) -> None:
        try:
            await self._revisions.delete(digest)
        except BlobUnknown as exc:
            raise ManifestUnknown(digest) from exc
