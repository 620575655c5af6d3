"""The storage driver protocol: a path-addressed byte store, and its errors.

Drivers know nothing about registries. Paths are absolute, `/`-separated,
with segments of printable characters (no empty segment, no `.` or `..`):
`check_path` is the one place that says so, and every driver calls it.
All methods are async; a driver that does blocking I/O runs it in a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

# A segment: no '/', no control characters; '.' and '..' are refused apart.
_SEGMENT: Final = re.compile(r"[^/\x00-\x1f\x7f]+")
# A whole valid path other than the root, in one match: the common case.
_VALID_PATH: Final = re.compile(r"(?:/(?!\.\.?(?:/|$))[^/\x00-\x1f\x7f]+)+")


class StorageDriverError(Exception):
    """Base of driver errors; the blob layers translate these."""

    def __init__(self, driver: str, path: str, message: str) -> None:
        super().__init__(f"{driver}: {message}: {path}")
        self.driver = driver
        self.path = path


class PathNotFound(StorageDriverError):
    """Nothing is stored at the path."""

    def __init__(self, driver: str, path: str) -> None:
        super().__init__(driver, path, "path not found")


class InvalidPath(StorageDriverError):
    """The path is not a valid driver path (relative, empty segment, `..`)."""

    def __init__(self, driver: str, path: str, reason: str) -> None:
        super().__init__(driver, path, f"invalid path ({reason})")
        self.reason = reason


class InvalidOffset(StorageDriverError):
    """A read from beyond the end of a file, or a negative offset."""

    def __init__(self, driver: str, path: str, offset: int) -> None:
        super().__init__(driver, path, f"invalid offset {offset}")
        self.offset = offset


def check_path(driver: str, path: str) -> str:
    """Return `path` if valid for a driver, else raise `InvalidPath`.

    `/` (the root) is valid for listing and walking.
    """
    if isinstance(path, str) and _VALID_PATH.fullmatch(path):
        return path
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPath(driver, str(path), "must be absolute")
    if path == "/":
        return path
    segments = path[1:].split("/")
    for segment in segments:
        if segment == "":
            raise InvalidPath(driver, path, "empty segment")
        if segment in (".", ".."):
            raise InvalidPath(driver, path, f"{segment!r} segment")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidPath(driver, path, "control character")
    return path


def check_file_path(driver: str, path: str) -> str:
    """`check_path` for operations on a file: the root (the store itself) can
    be listed and walked, never read, written, moved or deleted."""
    if check_path(driver, path) == "/":
        raise InvalidPath(driver, path, "the root is not a file")
    return path


def child_path(parent: str, name: str) -> str:
    """The path of `name` in directory `parent`."""
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


async def close_driver(driver: StorageDriver) -> None:
    """Release a driver's network clients, if it has any (S3 and Azure hold
    an HTTP session on the event loop that used them)."""
    close = getattr(driver, "aclose", None)
    if close is not None:
        await close()


async def list_concurrently(
    list_one: Callable[[str], Awaitable[list[str]]], paths: Sequence[str], limit: int
) -> list[list[str] | None]:
    """`list_many` for drivers whose listings are requests: at most `limit`
    of them in flight."""
    gate = asyncio.Semaphore(limit)

    async def one(path: str) -> list[str] | None:
        async with gate:
            try:
                return await list_one(path)
            except PathNotFound:
                return None

    return list(await asyncio.gather(*(one(path) for path in paths)))


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What `stat` knows of a path."""

    path: str
    size: int
    mtime: datetime
    is_dir: bool


class FileReader(Protocol):
    """A sequential reader over a stored file, from some offset."""

    async def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all remaining if negative); `b""` at the end."""
        ...

    async def close(self) -> None: ...


class FileWriter(Protocol):
    """An appendable writer. Bytes written are stored (readable, resumable by
    a new writer opened with `append=True`) once `close` or `commit` returns."""

    @property
    def size(self) -> int:
        """Bytes in the file so far, including what earlier writers wrote."""
        ...

    async def write(self, data: bytes | memoryview) -> int: ...

    async def commit(self) -> None:
        """Flush everything; no more writes are accepted."""
        ...

    async def cancel(self) -> None:
        """Remove the file; no more writes are accepted."""
        ...

    async def close(self) -> None:
        """Release the writer; what was written stays, to be appended to later."""
        ...


@runtime_checkable
class StorageDriver(Protocol):
    """A path-addressed byte store."""

    @property
    def name(self) -> str: ...

    async def get_content(self, path: str) -> bytes:
        """The whole file; raises `PathNotFound`. For small files only."""
        ...

    async def put_content(self, path: str, content: bytes) -> None:
        """Store `content` at `path` atomically: a reader sees old or new, whole."""
        ...

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        """A reader from `offset`; `InvalidOffset` if past the end."""
        ...

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        """A writer at `path`: truncating, or continuing the file if `append`."""
        ...

    async def stat(self, path: str) -> FileInfo:
        """Size, mtime and kind of a file or directory; `PathNotFound` if absent."""
        ...

    async def list(self, path: str) -> list[str]:
        """Full paths of the direct children of a directory, sorted."""
        ...

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        """`list` of several directories at once, in order; `None` for one
        that does not exist. One thread hop on a local disk, concurrent
        requests on an object store: for walks that prune as they go."""
        ...

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        """Every file and directory below `path`, depth first, in sorted order."""
        ...

    async def move(self, source: str, dest: str) -> None:
        """Move a file, replacing whatever is at `dest`."""
        ...

    async def delete(self, path: str) -> None:
        """Remove a file or a whole tree; `PathNotFound` if absent."""
        ...

    async def local_path(self, path: str) -> str | None:
        """A local filesystem path for zero-copy serving (`sendfile`), if any."""
        ...

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL the client can fetch the content from directly, if any."""
        ...
