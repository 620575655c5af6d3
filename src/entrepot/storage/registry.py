"""The registry: hands out repositories and enumerates them (the catalog).

Everything a repository needs is built here from one driver and one
descriptor cache, so an application is wired in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

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

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

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
        self._catalog_rounds = _Rounds(self._repositories)

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
        """Up to `n` repository names after `last`, in catalog order.

        Concurrent calls with the same arguments share a walk, but never one
        that began before the call: a repository made before the call is in
        its answer, as with a walk of its own (see `_Rounds`)."""
        return list(await self._catalog_rounds((n, last)))

    async def _repositories(self, page: tuple[int | None, str | None]) -> list[str]:
        n, last = page
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
        names = _names(paths.REPOSITORIES, top)
        async for name in self._walk(paths.REPOSITORIES, (), start, names):
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
                child_directory = f"{directory}/{child}"
                names = _names(child_directory, listing)
                path = (*prefix, child)
                if "_manifests" in names and (start is None or path > start):
                    yield "/".join(path)
                if any(not name.startswith("_") for name in names):
                    async for name in self._walk(child_directory, path, start, names):
                        yield name

    async def _list(self, directory: str) -> list[str] | None:
        try:
            return await self.driver.list(directory)
        except PathNotFound:
            return None


class _Rounds(Generic[K, V]):
    """Runs `work(key)` once for concurrent callers of the same key, in rounds.

    A caller joins the round that has not started yet, or opens one; a round
    starts when the previous round of its key has ended. So every caller gets
    the result of work begun after it called (never a walk already half done
    when it arrived), while a crowd of identical requests (a catalog polled
    by many clients) costs one walk per round instead of one each.
    """

    def __init__(self, work: Callable[[K], Awaitable[V]]) -> None:
        self._work = work
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._latest: dict[K, asyncio.Task[None]] = {}

    async def __call__(self, key: K) -> V:
        result = self._waiting.get(key)
        if result is None:
            loop = asyncio.get_running_loop()
            result = self._waiting[key] = loop.create_future()
            # Marked as seen: a round whose callers all went away must not
            # log its error as never retrieved.
            result.add_done_callback(_retrieve)
            previous = self._latest.get(key)
            self._latest[key] = loop.create_task(self._round(key, result, previous))
        # Shielded: a caller that goes away does not cancel the others' round.
        return await asyncio.shield(result)

    async def _round(
        self, key: K, result: asyncio.Future[V], previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        # Started: callers from now on open the next round.
        del self._waiting[key]
        try:
            value = await self._work(key)
        except Exception as exc:
            result.set_exception(exc)
        else:
            result.set_result(value)
        finally:
            if not result.done():  # cancelled itself (the loop is closing)
                result.cancel()
            if self._latest.get(key) is asyncio.current_task():
                del self._latest[key]


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _names(directory: str, listing: list[str]) -> list[str]:
    """The names in a listing of `directory` (full paths, sorted, so the
    names are sorted too)."""
    start = len(directory) + 1
    return [entry[start:] for entry in listing]
