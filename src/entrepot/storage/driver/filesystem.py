"""A storage driver on a local directory: driver path `/a/b` is `<root>/a/b`.

The storage root of Distribution's `filesystem` driver, so both registries can
share one. Every blocking call runs in a worker thread (`asyncio.to_thread`),
never on the event loop. `put_content` writes a temporary file next to the
target and renames it into place, so readers see the old or the new content,
whole; the temporary names start with `.`, which no registry path segment
does, and `list` and `walk` hide them.

OS errors become driver errors where they have a meaning for the caller (a
missing path, a file where a directory should be); the rest (no space, no
permission) propagate unchanged.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import errno
import itertools
import os
import re
import stat
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from io import FileIO
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

NAME: Final = "filesystem"

_TEMP_PREFIX: Final = ".tmp-"
_TEMP_NAME: Final = re.compile(r"\.tmp-[0-9a-f]{32}")
# Entries `walk` gathers per thread hop: big enough that the hop is cheap
# next to the scandir and stat calls, small enough to start yielding soon.
_WALK_BATCH: Final = 512
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# `list_many` runs in a thread of its own rather than in the shared pool: a
# listing gives up the interpreter lock for every entry, and several such
# threads at once (a catalog load) spend more time passing the lock between
# them than listing.
_LISTER: Final = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lister")


def _temp_name() -> str:
    return f"{_TEMP_PREFIX}{os.urandom(16).hex()}"


def _is_temp(name: str) -> bool:
    return name.startswith(_TEMP_PREFIX) and _TEMP_NAME.fullmatch(name) is not None


def _info(path: str, st: os.stat_result) -> FileInfo:
    is_dir = stat.S_ISDIR(st.st_mode)
    mtime = _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)
    return FileInfo(path, 0 if is_dir else st.st_size, mtime, is_dir)


@contextmanager
def _os_errors(path: str, *, writing: bool = False) -> Iterator[None]:
    """Translate the OS errors that mean something to a driver's caller.

    Reading, a missing entry, a file in the middle of the path or a directory
    where a file is expected all mean that no file is stored at `path`.
    Writing, the last two are conflicts with what is stored.
    """
    try:
        yield
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise InvalidPath(NAME, path, "name too long") from err
        if not writing and err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            raise PathNotFound(NAME, path) from None
        if writing and err.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY):
            message = f"conflicts with what is stored ({err.strerror})"
            raise StorageDriverError(NAME, path, message) from err
        raise


class FilesystemDriver:
    """A `StorageDriver` over a directory tree rooted at `root`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.abspath(os.fspath(root))

    @property
    def name(self) -> str:
        return NAME

    @property
    def root(self) -> str:
        """The absolute OS path of the storage root (created on first use)."""
        return self._root

    def _os_path(self, path: str) -> str:
        """The OS path of a checked driver path."""
        try:
            os.fsencode(path)
        except UnicodeEncodeError:
            raise InvalidPath(NAME, path, "not encodable as a file name") from None
        return self._root if path == "/" else os.path.join(self._root, path[1:])

    async def get_content(self, path: str) -> bytes:
        full = self._os_path(check_file_path(NAME, path))
        with _os_errors(path):
            return await asyncio.to_thread(_read_file, full)

    async def put_content(self, path: str, content: bytes) -> None:
        full = self._os_path(check_file_path(NAME, path))
        with _os_errors(path, writing=True):
            await asyncio.to_thread(_replace_file, full, content)

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        full = self._os_path(check_file_path(NAME, path))
        if offset < 0:
            raise InvalidOffset(NAME, path, offset)
        with _os_errors(path):
            file = await asyncio.to_thread(_open_reader, full, path, offset)
        return _Reader(file)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        full = self._os_path(check_file_path(NAME, path))
        with _os_errors(path, writing=True):
            file, st = await asyncio.to_thread(_open_writer, full, append)
        return _Writer(file, full, st)

    async def stat(self, path: str) -> FileInfo:
        full = self._os_path(check_path(NAME, path))
        with _os_errors(path):
            st = await asyncio.to_thread(_stat, full, path == "/")
        return _info(path, st)

    async def list(self, path: str) -> builtins.list[str]:
        full = self._os_path(check_path(NAME, path))
        with _os_errors(path):
            names = await asyncio.to_thread(_list_names, full, path == "/")
        return [child_path(path, name) for name in names]

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        fulls = [self._os_path(check_path(NAME, path)) for path in paths]
        roots = [p == "/" for p in paths]
        loop = asyncio.get_running_loop()
        listings = await loop.run_in_executor(_LISTER, _list_many, fulls, roots)
        return [
            None if names is None else [child_path(path, name) for name in names]
            for path, names in zip(paths, listings, strict=True)
        ]

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        full = self._os_path(check_path(NAME, path))
        return self._walk(path, full)

    async def _walk(self, path: str, full: str) -> AsyncIterator[FileInfo]:
        # One generator does the whole walk; each thread hop advances it by a
        # batch, rather than one hop per directory or per entry.
        entries = _walk_tree(path, full)
        try:
            while True:
                with _os_errors(path):
                    batch = await asyncio.to_thread(_take, entries, _WALK_BATCH)
                for info in batch:
                    yield info
                if len(batch) < _WALK_BATCH:
                    return
        finally:
            # Holds no open directory between batches, so closing is pure Python;
            # it fails only if a cancelled hop is still running it in its thread.
            with suppress(ValueError):
                entries.close()

    async def move(self, source: str, dest: str) -> None:
        source_full = self._os_path(check_file_path(NAME, source))
        dest_full = self._os_path(check_file_path(NAME, dest))
        if dest.startswith(source + "/"):
            raise InvalidPath(NAME, dest, "destination inside the source")
        with _os_errors(dest, writing=True):
            await asyncio.to_thread(_move, source_full, dest_full, source)

    async def delete(self, path: str) -> None:
        full = self._os_path(check_file_path(NAME, path))
        with _os_errors(path):
            await asyncio.to_thread(_delete, full)

    async def local_path(self, path: str) -> str | None:
        full = self._os_path(check_file_path(NAME, path))
        with _os_errors(path):
            st = await asyncio.to_thread(os.stat, full)
        if not stat.S_ISREG(st.st_mode):
            raise PathNotFound(NAME, path)
        return full

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        check_file_path(NAME, path)
        return None


# -- blocking helpers, each run in a worker thread --


def _read_file(full: str) -> bytes:
    with open(full, "rb") as file:
        return file.read()


def _replace_file(full: str, content: bytes) -> None:
    parent = os.path.dirname(full)
    os.makedirs(parent, exist_ok=True)
    temp = os.path.join(parent, _temp_name())
    try:
        # Unbuffered: one write call, no copy of `content` into a buffer.
        with open(temp, "xb", buffering=0) as file:
            _write_all(file, content)
        os.replace(temp, full)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


def _write_all(file: FileIO, data: bytes | memoryview) -> int:
    with memoryview(data) as view, view.cast("B") as octets:
        total = len(octets)
        written = 0
        while written < total:
            written += file.write(octets[written:]) or 0
    return total


def _open_reader(full: str, path: str, offset: int) -> FileIO:
    file = open(full, "rb", buffering=0)  # noqa: SIM115 (owned by the reader)
    try:
        if offset > os.fstat(file.fileno()).st_size:
            raise InvalidOffset(NAME, path, offset)
        file.seek(offset)
    except BaseException:
        file.close()
        raise
    return file


def _open_writer(full: str, append: bool) -> tuple[FileIO, os.stat_result]:
    os.makedirs(os.path.dirname(full), exist_ok=True)
    file = open(full, "ab" if append else "wb", buffering=0)  # noqa: SIM115 (owned by the writer)
    try:
        return file, os.fstat(file.fileno())
    except BaseException:
        file.close()
        raise


def _stat(full: str, is_root: bool) -> os.stat_result:
    if is_root:
        os.makedirs(full, exist_ok=True)
    return os.stat(full)


def _list_names(full: str, is_root: bool) -> builtins.list[str]:
    if is_root:
        os.makedirs(full, exist_ok=True)
    with os.scandir(full) as entries:
        return sorted(entry.name for entry in entries if not _is_temp(entry.name))


def _list_many(
    fulls: builtins.list[str], roots: builtins.list[bool]
) -> builtins.list[builtins.list[str] | None]:
    listings: builtins.list[builtins.list[str] | None] = []
    for full, is_root in zip(fulls, roots, strict=True):
        try:
            listings.append(_list_names(full, is_root))
        except (FileNotFoundError, NotADirectoryError):
            listings.append(None)
    return listings


def _scan(full: str, path: str) -> builtins.list[tuple[FileInfo, str]]:
    """A directory's entries, sorted, with what `stat` says of each."""
    with os.scandir(full) as it:
        entries = sorted((e for e in it if not _is_temp(e.name)), key=lambda e: e.name)
    scanned = []
    for entry in entries:
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue  # removed since the scan
        scanned.append((_info(child_path(path, entry.name), st), entry.path))
    return scanned


def _walk_tree(path: str, full: str) -> Generator[FileInfo, None, None]:
    if path == "/":
        os.makedirs(full, exist_ok=True)
    yield from _walk_entries(_scan(full, path))


def _walk_entries(entries: builtins.list[tuple[FileInfo, str]]) -> Generator[FileInfo, None, None]:
    for info, full in entries:
        yield info
        if info.is_dir:
            try:
                children = _scan(full, info.path)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed or replaced since its parent was scanned
            yield from _walk_entries(children)


def _take(entries: Iterator[FileInfo], count: int) -> builtins.list[FileInfo]:
    return builtins.list(itertools.islice(entries, count))


def _move(source_full: str, dest_full: str, source: str) -> None:
    try:
        os.lstat(source_full)
    except (FileNotFoundError, NotADirectoryError):
        raise PathNotFound(NAME, source) from None
    try:
        try:
            os.replace(source_full, dest_full)
        except FileNotFoundError:
            # Usually a missing destination directory: the source was just there.
            os.makedirs(os.path.dirname(dest_full), exist_ok=True)
            os.replace(source_full, dest_full)
    except FileNotFoundError:
        raise PathNotFound(NAME, source) from None


def _remove_tree(top: str) -> None:
    """Remove the directory `top` and all it holds, bottom up (what
    `shutil.rmtree` does, without keeping shutil, bz2 and lzma in memory
    for it, nor importing them in the purge thread while a server forks).
    Links are removed, never followed."""
    for root, dirs, files in os.walk(top, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.unlink(path)
            else:
                os.rmdir(path)
    os.rmdir(top)


def _delete(full: str) -> None:
    if not stat.S_ISDIR(os.lstat(full).st_mode):
        os.unlink(full)
        return
    try:
        _remove_tree(full)
    except FileNotFoundError:
        # Another deleter got to some entries first; what counts is that it's gone.
        if os.path.lexists(full):
            raise


class _Reader:
    """Reads an open file in worker threads.

    The lock keeps `close` from closing the descriptor under a read still
    running in its thread (a cancelled `read` does not stop the thread).
    """

    def __init__(self, file: FileIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    async def read(self, size: int = -1) -> bytes:
        if self._file.closed:
            raise ValueError("read from a closed reader")
        return await asyncio.to_thread(self._read, size)

    def _read(self, size: int) -> bytes:
        with self._lock:
            data = self._file.readall() if size < 0 else self._file.read(size)
        return data or b""

    async def close(self) -> None:
        if not self._file.closed:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._file.close()


class _Writer:
    """Writes to an open file in worker threads, one hop per `write`.

    Writes go straight to the file (no buffer, no copy), so bytes written are
    readable at once. The lock serializes writes and keeps `close` from
    closing the descriptor under a write still running in its thread.
    """

    def __init__(self, file: FileIO, full: str, opened: os.stat_result) -> None:
        self._file = file
        self._full = full
        self._opened = opened  # identifies the file, to cancel only our own
        self._size = opened.st_size
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes | memoryview) -> int:
        if self._file.closed:
            raise ValueError("write to a closed writer")
        return await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes | memoryview) -> int:
        with self._lock:
            if self._file.closed:
                raise ValueError("write to a closed writer")
            written = _write_all(self._file, data)
            self._size += written
            return written

    async def commit(self) -> None:
        if self._file.closed:
            raise ValueError("commit of a closed writer")
        await asyncio.to_thread(self._close)

    async def cancel(self) -> None:
        await asyncio.to_thread(self._cancel)

    async def close(self) -> None:
        if not self._file.closed:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._file.close()

    def _cancel(self) -> None:
        with self._lock:
            # Remove the file only if it is still ours: a put_content or a
            # truncating writer may have replaced it since.
            self._file.close()
            try:
                ours = os.path.samestat(self._opened, os.stat(self._full))
            except (FileNotFoundError, NotADirectoryError):
                ours = False
            if ours:
                with suppress(FileNotFoundError):
                    os.unlink(self._full)
