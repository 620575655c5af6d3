"""The directory tree of an object store, which has no directories.

On S3 and Azure a directory is a key prefix ending in `/`: it exists while
some object lies below it, and is listed with one delimited listing per
level. `ObjectStoreTree` gives a driver on such a store `list`, `list_many`
and `walk` (and the directory half of `stat`) from the three requests the
store answers its own way: a delimited listing of one level, the first
object below a prefix, and the key prefix of a path.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from entrepot.storage.driver.base import (
    FileInfo,
    PathNotFound,
    check_path,
    child_path,
    list_concurrently,
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Directory listings in flight at once in `list_many` (each a request).
LIST_CONCURRENCY: Final = 16


@dataclass(frozen=True, slots=True)
class Entry:
    """A direct child of a directory, as a delimited listing shows it."""

    name: str
    is_dir: bool
    size: int = 0
    mtime: datetime = EPOCH


class ObjectStoreTree(ABC):
    """Directory operations of a driver on an object store."""

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def _dir_prefix(self, path: str) -> str:
        """The key prefix of what lies below a checked path."""

    @abstractmethod
    async def _list_level(self, prefix: str) -> builtins.list[Entry]:
        """The direct children of the directory `prefix` (ends with `/`, or
        is the root's prefix), all pages, sorted by name."""

    @abstractmethod
    async def _first_below(self, prefix: str) -> datetime | None:
        """The time of the first object below `prefix`, None if there is none."""

    async def _directory_info(self, path: str) -> FileInfo:
        """`stat` of a checked path that is no object: a directory if some
        object lies below it (the root always is one)."""
        mtime = await self._first_below(self._dir_prefix(path))
        if mtime is None:
            if path != "/":
                raise PathNotFound(self.name, path)
            mtime = EPOCH
        return FileInfo(path, 0, mtime, is_dir=True)

    async def list(self, path: str) -> builtins.list[str]:
        check_path(self.name, path)
        entries = await self._list_level(self._dir_prefix(path))
        if not entries and path != "/":
            raise PathNotFound(self.name, path)
        return sorted({child_path(path, entry.name) for entry in entries})

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        for path in paths:  # all refused before any request is made
            check_path(self.name, path)
        return await list_concurrently(self.list, paths, LIST_CONCURRENCY)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        check_path(self.name, path)
        return self._walk(path, self._dir_prefix(path))

    async def _walk(self, path: str, prefix: str) -> AsyncIterator[FileInfo]:
        # One delimited listing per directory, so the order is the one every
        # driver gives (depth first, names sorted), which a flat listing of
        # keys is not: `a-b/x` sorts before `a/x`.
        entries = await self._list_level(prefix)
        if not entries and path != "/":
            raise PathNotFound(self.name, path)
        # Listings fetched ahead (to date a directory) and not walked yet.
        ahead: dict[str, builtins.list[Entry]] = {}
        async for info in self._walk_level(path, prefix, entries, ahead):
            yield info

    async def _walk_level(
        self,
        path: str,
        prefix: str,
        entries: builtins.list[Entry],
        ahead: dict[str, builtins.list[Entry]],
    ) -> AsyncIterator[FileInfo]:
        for entry in entries:
            child = child_path(path, entry.name)
            if not entry.is_dir:
                yield FileInfo(child, entry.size, entry.mtime, is_dir=False)
                continue
            child_prefix = f"{prefix}{entry.name}/"
            below = ahead.pop(child_prefix, None)
            if below is None:
                below = await self._list_level(child_prefix)
            if not below:
                continue  # emptied since its parent was listed
            mtime = await self._level_mtime(child_prefix, below, ahead)
            yield FileInfo(child, 0, mtime, is_dir=True)
            async for info in self._walk_level(child, child_prefix, below, ahead):
                yield info

    async def _level_mtime(
        self,
        prefix: str,
        entries: builtins.list[Entry],
        ahead: dict[str, builtins.list[Entry]],
    ) -> datetime:
        """A directory's time: the newest of its files, or else that of its
        first subdirectory, whose listing is kept for the walk to use next."""
        files = [entry.mtime for entry in entries if not entry.is_dir]
        if files:
            return max(files)
        for entry in entries:
            child_prefix = f"{prefix}{entry.name}/"
            below = ahead.get(child_prefix)
            if below is None:
                below = ahead[child_prefix] = await self._list_level(child_prefix)
            if below:
                return await self._level_mtime(child_prefix, below, ahead)
        return EPOCH
