"""The registry: hands out repositories and enumerates them (the catalog).

Everything a repository needs is built here from one driver and one
descriptor cache, so an application is wired in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from entrepot.blobs import BlobDescriptorCacheProvider, BlobStatter
from entrepot.reference import validate_name
from entrepot.storage import paths
from entrepot.storage.blobstore import BlobStore
from entrepot.storage.cache.cachedstatter import CachedBlobStatter
from entrepot.storage.driver.base import PathNotFound, StorageDriver, close_driver
from entrepot.storage.linked import LAYERS, REVISIONS, LinkedBlobStore
from entrepot.storage.manifests import ManifestStore
from entrepot.storage.referrers import ReferrerStore
from entrepot.storage.tags import TagStore

# How many sibling directories the catalog walk lists in one driver call.
_LIST_BATCH: Final = 128


@dataclass(frozen=True, slots=True)
class Repository:
    """One named repository: its blobs, manifests and tags."""

    name: str
    blobs: LinkedBlobStore
    manifests: ManifestStore
    tags: TagStore
    referrers: ReferrerStore


class Registry:
    def __init__(
        self,
        driver: StorageDriver,
        cache: BlobDescriptorCacheProvider | None = None,
        *,
        delete_enabled: bool = True,
        redirect: bool = True,
    ) -> None:
        self.driver = driver
        self.blob_store = BlobStore(driver, redirect=redirect)
        self.cache = cache
        self.delete_enabled = delete_enabled
        self._global_statter: BlobStatter = (
            CachedBlobStatter(cache, self.blob_store) if cache is not None else self.blob_store
        )

    async def aclose(self) -> None:
        """Release the network clients of the driver and the cache, if any."""
        await close_driver(self.driver)
        close = getattr(self.cache, "close", None)
        if close is not None:
            await close()

    def repository(self, name: str) -> Repository:
        """The repository `name` (validated; it need not exist yet)."""
        validate_name(name)
        return Repository(
            name=name,
            blobs=self._linked(name),
            manifests=ManifestStore(self._linked(name, manifests=True)),
            tags=TagStore(self.blob_store, name),
            referrers=ReferrerStore(self.blob_store, name),
        )

    def _linked(self, name: str, manifests: bool = False) -> LinkedBlobStore:
        # Layers and revisions are different link sets: separate cache scopes,
        # or a cached layer would pass for a manifest. No real name has a
        # component starting with "_", so the scope cannot collide.
        scope = f"{name}/_manifests" if manifests else name
        cache = self.cache.repository_scoped(scope) if self.cache is not None else None
        return LinkedBlobStore(
            self.blob_store,
            name,
            REVISIONS if manifests else LAYERS,
            cache,
            global_statter=self._global_statter,
            delete_enabled=self.delete_enabled,
            linked_store=None if manifests else self._layers_of,
        )

    def _layers_of(self, name: str) -> LinkedBlobStore:
        validate_name(name)
        return self._linked(name)

    async def repositories(self, n: int | None = None, last: str | None = None) -> list[str]:
        """Up to `n` repository names after `last`, in catalog order."""
        names: list[str] = []
        if n is not None and n <= 0:
            return names
        async for name in self.walk_repositories(last):
            names.append(name)
            if n is not None and len(names) >= n:
                break
        return names

    async def walk_repositories(self, after: str | None = None) -> AsyncIterator[str]:
        """Repository names in catalog order (component by component, which
        is Distribution's order), starting after `after`; subtrees wholly
        before `after` are not listed at all."""
        start = tuple(after.split("/")) if after else None
        top = await self._list(paths.REPOSITORIES)
        if top is None:
            return
        async for name in self._walk(paths.REPOSITORIES, (), start, _names(top)):
            yield name

    async def _walk(
        self,
        directory: str,
        prefix: tuple[str, ...],
        start: tuple[str, ...] | None,
        children: list[str],
    ) -> AsyncIterator[str]:
        """The repositories below `directory` (whose entries are `children`,
        sorted): a directory holding `_manifests` is one, and may have more
        below it."""
        # Skip a subtree when everything in it sorts at or before `start`.
        below = [
            child
            for child in children
            if not child.startswith("_")
            and (start is None or (*prefix, child) >= start[: len(prefix) + 1])
        ]
        # Sibling directories are listed a batch at a time, in one driver
        # call: on a local disk one thread hop, on an object store requests
        # in flight together.
        for first in range(0, len(below), _LIST_BATCH):
            batch = below[first : first + _LIST_BATCH]
            listings = await self.driver.list_many([f"{directory}/{c}" for c in batch])
            for child, listing in zip(batch, listings, strict=True):
                if listing is None:
                    continue
                names = _names(listing)
                path = (*prefix, child)
                if "_manifests" in names and (start is None or path > start):
                    yield "/".join(path)
                if any(not name.startswith("_") for name in names):
                    async for name in self._walk(f"{directory}/{child}", path, start, names):
                        yield name

    async def _list(self, directory: str) -> list[str] | None:
        try:
            return await self.driver.list(directory)
        except PathNotFound:
            return None


def _names(listing: list[str]) -> list[str]:
    """The last components of a listing's paths, sorted."""
    return sorted(entry.rsplit("/", 1)[1] for entry in listing)
