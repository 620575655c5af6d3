"""An in-memory storage driver: a tree of dicts with a bytearray per file.

For tests and single-process development. Directories are implicit, as on
object stores: a directory exists while some file lives below it, and goes
away with its last file. Each operation lets other tasks run once, as real
I/O would, before it looks at the tree, and never while it changes it, so
every operation is atomic with respect to other tasks on the event loop.

A file's bytearray only ever grows. Anything that replaces a file's content
(`put_content`, a truncating `writer`) installs a new `_File`, the way a
rename installs a new inode: readers and writers opened earlier keep the
old one, so a reader never sees a mix of two versions.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from entrepot.storage.driver.base import (
    FileInfo,
    FileReader,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriverError,
    check_file_path,
    check_path,
    child_path,
)

NAME: Final = "inmemory"


async def _checkpoint() -> None:
    # Let other tasks run, as a driver doing real I/O would, so that code
    # tested against this driver meets the interleavings it will meet in
    # production. The tree is only changed after this, never across it.
    await asyncio.sleep(0)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class _File:
    data: bytearray = field(default_factory=bytearray)
    mtime: datetime = field(default_factory=_now)


@dataclass(slots=True, eq=False)
class _Dir:
    children: dict[str, _File | _Dir] = field(default_factory=dict)
    mtime: datetime = field(default_factory=_now)


def _segments(path: str) -> builtins.list[str]:
    return [] if path == "/" else path[1:].split("/")


class InMemoryDriver:
    """A `StorageDriver` that keeps everything in this process's memory."""

    def __init__(self) -> None:
        self._root = _Dir()

    @property
    def name(self) -> str:
        return NAME

    # -- tree helpers (synchronous: never await while the tree changes) --

    def _find(self, path: str) -> _File | _Dir | None:
        node: _File | _Dir = self._root
        for segment in _segments(path):
            if not isinstance(node, _Dir):
                return None
            child = node.children.get(segment)
            if child is None:
                return None
            node = child
        return node

    def _find_file(self, path: str) -> _File:
        node = self._find(path)
        if not isinstance(node, _File):
            raise PathNotFound(NAME, path)
        return node

    def _make_parents(self, path: str) -> tuple[_Dir, str]:
        """The directory that holds `path` (created as needed) and its name in it."""
        *parents, name = _segments(path)
        node = self._root
        for segment in parents:
            child = node.children.get(segment)
            if child is None:
                child = _Dir()
                node.children[segment] = child
                node.mtime = _now()
            elif isinstance(child, _File):
                raise StorageDriverError(NAME, path, "a parent is a file")
            node = child
        return node, name

    def _attach(self, path: str, node: _File | _Dir) -> None:
        """Put `node` at `path`, replacing a file there (never a directory)."""
        parent, name = self._make_parents(path)
        if isinstance(parent.children.get(name), _Dir):
            raise StorageDriverError(NAME, path, "is a directory")
        parent.children[name] = node
        parent.mtime = _now()

    def _detach(self, path: str) -> _File | _Dir:
        """Remove whatever is at `path`, pruning directories left empty."""
        trail: builtins.list[tuple[_Dir, str]] = []
        node: _File | _Dir = self._root
        for segment in _segments(path):
            if not isinstance(node, _Dir) or (child := node.children.get(segment)) is None:
                raise PathNotFound(NAME, path)
            trail.append((node, segment))
            node = child
        now = _now()
        for parent, name in reversed(trail):
            del parent.children[name]
            parent.mtime = now
            if parent.children or parent is self._root:
                break
        return node

    # -- the StorageDriver protocol --

    async def get_content(self, path: str) -> bytes:
        await _checkpoint()
        return bytes(self._find_file(check_file_path(NAME, path)).data)

    async def put_content(self, path: str, content: bytes) -> None:
        await _checkpoint()
        self._attach(check_file_path(NAME, path), _File(bytearray(content)))

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        await _checkpoint()
        file = self._find_file(check_file_path(NAME, path))
        if offset < 0 or offset > len(file.data):
            raise InvalidOffset(NAME, path, offset)
        return _Reader(file.data, offset)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        await _checkpoint()
        check_file_path(NAME, path)
        existing = self._find(path)
        if append and isinstance(existing, _File):
            return _Writer(self, path, existing)
        file = _File()
        self._attach(path, file)
        return _Writer(self, path, file)

    async def stat(self, path: str) -> FileInfo:
        await _checkpoint()
        node = self._find(check_path(NAME, path))
        if node is None:
            raise PathNotFound(NAME, path)
        if isinstance(node, _Dir):
            return FileInfo(path, 0, node.mtime, is_dir=True)
        return FileInfo(path, len(node.data), node.mtime, is_dir=False)

    async def list(self, path: str) -> builtins.list[str]:
        await _checkpoint()
        node = self._find(check_path(NAME, path))
        if not isinstance(node, _Dir):
            raise PathNotFound(NAME, path)
        return [child_path(path, name) for name in sorted(node.children)]

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        listings: builtins.list[builtins.list[str] | None] = []
        for path in paths:
            try:
                listings.append(await self.list(path))
            except PathNotFound:
                listings.append(None)
        return listings

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        return self._walk(check_path(NAME, path))

    async def _walk(self, path: str) -> AsyncIterator[FileInfo]:
        await _checkpoint()
        top = self._find(path)
        if not isinstance(top, _Dir):
            raise PathNotFound(NAME, path)
        # Each level is a sorted snapshot, so changes made by other tasks while
        # the caller consumes the walk cannot break the iteration.
        stack = [_sorted_children(top)]
        parents = [path]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                parents.pop()
                continue
            name, node = entry
            child = child_path(parents[-1], name)
            if isinstance(node, _Dir):
                yield FileInfo(child, 0, node.mtime, is_dir=True)
                await _checkpoint()
                stack.append(_sorted_children(node))
                parents.append(child)
            else:
                yield FileInfo(child, len(node.data), node.mtime, is_dir=False)

    async def move(self, source: str, dest: str) -> None:
        await _checkpoint()
        check_file_path(NAME, source)
        check_file_path(NAME, dest)
        if dest.startswith(source + "/"):
            raise InvalidPath(NAME, dest, "destination inside the source")
        node = self._find(source)
        if node is None:
            raise PathNotFound(NAME, source)
        if source == dest:
            return
        # Check the destination before detaching, so a failed move changes nothing.
        target = self._find(dest)
        if isinstance(target, _Dir):
            raise StorageDriverError(NAME, dest, "is a directory")
        if any(isinstance(self._find(p), _File) for p in _ancestors(dest)):
            raise StorageDriverError(NAME, dest, "a parent is a file")
        self._detach(source)
        self._attach(dest, node)

    async def delete(self, path: str) -> None:
        await _checkpoint()
        self._detach(check_file_path(NAME, path))

    async def local_path(self, path: str) -> str | None:
        check_file_path(NAME, path)
        return None

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        check_file_path(NAME, path)
        return None

    def _remove_file(self, path: str, file: _File) -> None:
        """Remove `path` if it still holds `file` (a cancelled writer's file)."""
        if self._find(path) is file:
            self._detach(path)


def _sorted_children(node: _Dir) -> Iterator[tuple[str, _File | _Dir]]:
    return iter(sorted(node.children.items(), key=lambda item: item[0]))


def _ancestors(path: str) -> builtins.list[str]:
    segments = _segments(path)
    return ["/" + "/".join(segments[:i]) for i in range(1, len(segments))]


class _Reader:
    """Reads a file's bytearray from an offset; sees bytes appended meanwhile."""

    def __init__(self, data: bytearray, offset: int) -> None:
        self._data: bytearray | None = data
        self._offset = offset

    async def read(self, size: int = -1) -> bytes:
        await _checkpoint()
        if self._data is None:
            raise ValueError("read from a closed reader")
        start = self._offset
        end = len(self._data) if size < 0 else min(start + size, len(self._data))
        if start >= end:
            return b""
        # Through a memoryview the slice is copied once, not twice; the view
        # is released at once, as a live export would stop writers from
        # growing the bytearray.
        with memoryview(self._data) as view, view[start:end] as chunk:
            result = chunk.tobytes()
        self._offset = end
        return result

    async def close(self) -> None:
        self._data = None


class _Writer:
    """Appends to a file's bytearray: bytes are visible as soon as written."""

    def __init__(self, driver: InMemoryDriver, path: str, file: _File) -> None:
        self._driver = driver
        self._path = path
        self._file = file
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._file.data)

    async def write(self, data: bytes | memoryview) -> int:
        await _checkpoint()
        if self._closed:
            raise ValueError("write to a closed writer")
        self._file.data += data
        self._file.mtime = _now()
        return len(data) if isinstance(data, bytes) else data.nbytes

    async def commit(self) -> None:
        await _checkpoint()
        if self._closed:
            raise ValueError("commit of a closed writer")
        self._closed = True

    async def cancel(self) -> None:
        await _checkpoint()
        self._closed = True
        self._driver._remove_file(self._path, self._file)

    async def close(self) -> None:
        self._closed = True
