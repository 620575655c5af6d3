"""Tags of one repository: `_manifests/tags/<tag>/current/link` names the
manifest a tag points to now; `index/<alg>/<hex>/link` every manifest it has
pointed to (as Distribution keeps them)."""

from __future__ import annotations

from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, NameUnknown, TagUnknown
from entrepot.reference import validate_tag
from entrepot.storage import paths
from entrepot.storage.blobstore import BlobStore
from entrepot.storage.driver.base import PathNotFound
from entrepot.storage.linked import read_link, write_link


class TagStore:
    def __init__(self, store: BlobStore, name: str) -> None:
        self._store = store
        self._driver = store.driver
        self.name = name

    async def get(self, tag: str) -> Digest:
        """The digest `tag` points to (one storage read, no stat)."""
        validate_tag(tag)
        try:
            return await read_link(self._store, paths.tag_current_link(self.name, tag))
        except BlobUnknown as exc:
            raise TagUnknown(tag) from exc

    async def tag(self, tag: str, digest: Digest) -> None:
        """Point `tag` at `digest` (index link first, then the current link)."""
        validate_tag(tag)
        await write_link(self._store, paths.tag_index_link(self.name, tag, digest), digest)
        await write_link(self._store, paths.tag_current_link(self.name, tag), digest)

    async def untag(self, tag: str) -> None:
        validate_tag(tag)
        try:
            await self._driver.delete(paths.tag_dir(self.name, tag))
        except PathNotFound as exc:
            raise TagUnknown(tag) from exc

    async def all(self) -> list[str]:
        """Every tag, sorted; `NameUnknown` if there is no such repository."""
        try:
            entries = await self._driver.list(paths.tags(self.name))
        except PathNotFound:
            entries = []
            try:
                await self._driver.stat(paths.manifests(self.name))
            except PathNotFound as exc:
                raise NameUnknown(self.name) from exc
        return sorted(entry.rsplit("/", 1)[1] for entry in entries)

    async def lookup(self, digest: Digest) -> list[str]:
        """The tags currently pointing at `digest`.

        A tag that never pointed at `digest` has no index link for it, so one
        stat rules it out; only the rest have their current link read.
        """
        try:
            tags = await self.all()
        except NameUnknown:
            return []
        found = []
        for tag in tags:
            try:
                await self._driver.stat(paths.tag_index_link(self.name, tag, digest))
                current = await self.get(tag)
            except (PathNotFound, TagUnknown):
                continue
            if current == digest:
                found.append(tag)
        return found
