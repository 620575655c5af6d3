"""The linked blob store: one repository's view of the global blob store.

A repository sees a blob only if it holds a link to it (`_layers/...` for
layers, `_manifests/revisions/...` for manifests: one class serves both,
told which link paths to use). It is the only way to write into the global
store: upload sessions, commit, cross-repository mount, delete of a link.
Link checks go through a cached statter, so a warm HEAD costs no storage
call at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from entrepot.blobs import BlobDescriptorService, BlobStatter
from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, BlobUploadUnknown, DigestInvalid, Unsupported
from entrepot.storage import paths
from entrepot.storage.blobstore import BlobReader, BlobStore
from entrepot.storage.cache.cachedstatter import CachedBlobStatter
from entrepot.storage.driver.base import PathNotFound
from entrepot.storage.upload import UploadWriter, new_upload, resume_upload

LinkPath = Callable[[str, Digest], str]

# Upload ids are path segments: only what `new_upload` makes is accepted.
_UPLOAD_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class LinkSet:
    """Where a kind of link lives: the paths that make a blob visible."""

    link_path: LinkPath


LAYERS: Final = LinkSet(paths.layer_link)
REVISIONS: Final = LinkSet(paths.revision_link)


async def read_link(store: BlobStore, path: str) -> Digest:
    """The digest a link file points to; `BlobUnknown` if absent or corrupt."""
    try:
        content = await store.driver.get_content(path)
    except PathNotFound as exc:
        raise BlobUnknown() from exc
    try:
        return Digest.parse(content.decode("ascii", "replace").strip())
    except DigestInvalid as exc:
        raise BlobUnknown() from exc


async def write_link(store: BlobStore, path: str, digest: Digest) -> None:
    await store.driver.put_content(path, str(digest).encode("ascii"))


class LinkedBlobStatter:
    """Stat through a repository's links: the link names the canonical blob,
    which the global statter (itself cached: content is immutable) describes."""

    def __init__(
        self, store: BlobStore, name: str, links: LinkSet, global_statter: BlobStatter
    ) -> None:
        self._store = store
        self._name = name
        self._links = links
        self._global = global_statter

    async def stat(self, digest: Digest) -> Descriptor:
        try:
            target = await read_link(self._store, self._links.link_path(self._name, digest))
        except BlobUnknown as exc:
            raise BlobUnknown(digest) from exc
        # target differs from digest when a provisional digest (say sha512)
        # maps to the canonical one: the answer is the canonical descriptor.
        return await self._global.stat(target)


class LinkedBlobStore:
    """A repository's blobs (or manifest revisions), reached through links."""

    def __init__(
        self,
        store: BlobStore,
        name: str,
        links: LinkSet,
        cache: BlobDescriptorService | None,
        *,
        global_statter: BlobStatter | None = None,
        delete_enabled: bool = True,
        linked_store: Callable[[str], LinkedBlobStore] | None = None,
    ) -> None:
        self.name = name
        self._store = store
        self._links = links
        backend = LinkedBlobStatter(store, name, links, global_statter or store)
        self._statter: LinkedBlobStatter | CachedBlobStatter = (
            CachedBlobStatter(cache, backend) if cache is not None else backend
        )
        self._delete_enabled = delete_enabled
        self._other = linked_store

    # -- reading --------------------------------------------------------

    async def stat(self, digest: Digest) -> Descriptor:
        return await self._statter.stat(digest)

    async def get(self, digest: Digest) -> bytes:
        descriptor = await self.stat(digest)
        return await self._store.get(descriptor.digest)

    async def open(self, digest: Digest) -> BlobReader:
        return self._store.open(await self.stat(digest))

    async def local_path(self, digest: Digest) -> str | None:
        return await self._store.local_path((await self.stat(digest)).digest)

    async def redirect_url(self, digest: Digest, method: str = "GET") -> str | None:
        return await self._store.redirect_url((await self.stat(digest)).digest, method)

    # -- writing --------------------------------------------------------

    async def put(self, media_type: str, content: bytes) -> Descriptor:
        """Store small content (a manifest) and link it here."""
        descriptor = await self._store.put(media_type, content)
        await self.link(descriptor, (descriptor.digest,))
        return descriptor

    async def create(self) -> UploadWriter:
        """Start an upload session."""
        return await new_upload(self._store.driver, self.name, self._commit_upload)

    async def resume(self, upload_id: str) -> UploadWriter:
        """Continue an upload session, possibly started by another process."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobUploadUnknown()
        return await resume_upload(self._store.driver, self.name, upload_id, self._commit_upload)

    async def mount(self, source: str, digest: Digest) -> Descriptor:
        """Link a blob that repository `source` holds; `BlobUnknown` if it does not."""
        if self._other is None:
            raise Unsupported("cross-repository mount is not available here")
        descriptor = await self._other(source).stat(digest)
        await self.link(descriptor, (digest,))
        return descriptor

    async def link(self, canonical: Descriptor, aliases: tuple[Digest, ...] = ()) -> None:
        """Make `canonical` visible here under its digest and every alias."""
        digests = dict.fromkeys((canonical.digest, *aliases))
        for digest in digests:
            await write_link(
                self._store, self._links.link_path(self.name, digest), canonical.digest
            )
        for digest in digests:
            await self._statter_set(digest, canonical)

    async def delete(self, digest: Digest) -> None:
        """Remove this repository's link to a blob (the content stays)."""
        if not self._delete_enabled:
            raise Unsupported("deletion is disabled")
        await self.stat(digest)
        try:
            await self._store.driver.delete(self._links.link_path(self.name, digest))
        except PathNotFound as exc:
            raise BlobUnknown(digest) from exc
        finally:
            await self._statter_clear(digest)

    # -- internals ------------------------------------------------------

    async def _commit_upload(
        self, writer: UploadWriter, canonical: Digest, size: int, provisional: Descriptor
    ) -> Descriptor:
        """Move verified upload data into the global store and link it."""
        await writer.move_into(canonical, self._store)
        media_type = provisional.media_type or OCTET_STREAM
        descriptor = Descriptor(digest=canonical, size=size, media_type=media_type)
        await self.link(descriptor, (provisional.digest,))
        return descriptor

    async def _statter_set(self, digest: Digest, descriptor: Descriptor) -> None:
        if isinstance(self._statter, CachedBlobStatter):
            await self._statter.set(digest, descriptor)

    async def _statter_clear(self, digest: Digest) -> None:
        if isinstance(self._statter, CachedBlobStatter):
            await self._statter.clear(digest)
