"""The storage driver suite: every driver must pass every test here.

Like Distribution's `driver/testsuites`, it runs against each driver of the
`driver` fixture (see `conftest.py`), so a new driver joins by adding itself
there. The tests say what the `StorageDriver` protocol promises.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.storage.driver.base import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    StorageDriverError,
)
from tests.storage.driver.conftest import DRIVERS, TRAITS, close_driver, traits

MiB = 1024 * 1024


# -- helpers --


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def pseudo_random_chunks(count: int, size: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.randbytes(size)


async def read_back(
    driver: StorageDriver, path: str, offset: int = 0, chunk_size: int = 64 * 1024
) -> bytes:
    reader = await driver.reader(path, offset)
    try:
        parts = []
        while chunk := await reader.read(chunk_size):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        await reader.close()


async def write_file(
    driver: StorageDriver, path: str, chunks: list[bytes], append: bool = False
) -> None:
    writer = await driver.writer(path, append=append)
    for chunk in chunks:
        await writer.write(chunk)
    await writer.commit()


async def collect(entries: AsyncIterator[FileInfo]) -> list[FileInfo]:
    return [info async for info in entries]


def expected_walk(files: Mapping[str, int], top: str) -> list[tuple[str, bool, int]]:
    """(path, is_dir, size) in walk order for `files` (path to size) below `top`."""
    prefix = "" if top == "/" else top
    tree: dict[str, Any] = {}
    for path, size in files.items():
        if not path.startswith(prefix + "/"):
            continue
        *dirs, name = path[len(prefix) + 1 :].split("/")
        node = tree
        for segment in dirs:
            node = node.setdefault(segment, {})
        node[name] = size
    order: list[tuple[str, bool, int]] = []

    def visit(node: dict[str, Any], parent: str) -> None:
        for name in sorted(node):
            child = f"{parent}/{name}"
            if isinstance(node[name], dict):
                order.append((child, True, 0))
                visit(node[name], child)
            else:
                order.append((child, False, node[name]))

    visit(tree, prefix)
    return order


def walked(infos: list[FileInfo]) -> list[tuple[str, bool, int]]:
    return [(info.path, info.is_dir, info.size) for info in infos]


def is_recent(moment: datetime) -> bool:
    return moment.tzinfo is not None and abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


# -- identity --


async def test_driver_satisfies_the_protocol(driver: StorageDriver) -> None:
    assert isinstance(driver, StorageDriver)
    assert driver.name in DRIVERS


# -- round trips --


@pytest.mark.parametrize("size", [0, 1, 4096, 1_000_003])
async def test_put_content_round_trip(driver: StorageDriver, size: int) -> None:
    content = random_bytes(size, seed=size)
    await driver.put_content("/round/trip/file", content)
    assert await driver.get_content("/round/trip/file") == content
    assert await read_back(driver, "/round/trip/file") == content
    assert (await driver.stat("/round/trip/file")).size == size


@pytest.mark.parametrize("size", [0, 1, 4096, 1_000_003])
async def test_writer_round_trip(driver: StorageDriver, size: int) -> None:
    content = random_bytes(size, seed=size)
    writer = await driver.writer("/round/trip/streamed")
    with memoryview(content) as view:
        for start in range(0, size, 65536):
            assert await writer.write(view[start : start + 65536]) == min(65536, size - start)
    await writer.commit()
    assert writer.size == size
    assert await driver.get_content("/round/trip/streamed") == content
    assert (await driver.stat("/round/trip/streamed")).size == size


@pytest.mark.slow
async def test_stream_256_mib(driver: StorageDriver) -> None:
    path = "/big/data"
    written = hashlib.sha256()
    writer = await driver.writer(path)
    last = b""
    for chunk in pseudo_random_chunks(256, MiB, seed=256):
        written.update(chunk)
        assert await writer.write(chunk) == MiB
        last = chunk
    await writer.commit()
    assert writer.size == 256 * MiB
    assert (await driver.stat(path)).size == 256 * MiB

    read = hashlib.sha256()
    total = 0
    reader = await driver.reader(path)
    while chunk := await reader.read(MiB):
        read.update(chunk)
        total += len(chunk)
    await reader.close()
    assert total == 256 * MiB
    assert read.hexdigest() == written.hexdigest()
    assert await read_back(driver, path, offset=255 * MiB, chunk_size=MiB) == last


async def test_put_content_overwrites(driver: StorageDriver) -> None:
    await driver.put_content("/overwrite", b"a longer first version")
    await driver.put_content("/overwrite", b"short")
    assert await driver.get_content("/overwrite") == b"short"
    assert (await driver.stat("/overwrite")).size == 5


async def test_get_content_of_missing_or_directory(driver: StorageDriver) -> None:
    await driver.put_content("/dir/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.get_content("/missing")
    with pytest.raises(PathNotFound):
        await driver.get_content("/dir")
    with pytest.raises(PathNotFound):
        await driver.get_content("/dir/file/below")


# -- readers --


CONTENT = bytes(range(256)) * 4


@pytest.mark.parametrize("offset", [0, 1, 500, len(CONTENT) - 1, len(CONTENT)])
async def test_reader_from_offset(driver: StorageDriver, offset: int) -> None:
    await driver.put_content("/offsets", CONTENT)
    assert await read_back(driver, "/offsets", offset, chunk_size=100) == CONTENT[offset:]


async def test_reader_reads_in_pieces_then_empty(driver: StorageDriver) -> None:
    await driver.put_content("/pieces", CONTENT)
    reader = await driver.reader("/pieces", 1000)
    assert await reader.read(10) == CONTENT[1000:1010]
    assert await reader.read() == CONTENT[1010:]
    assert await reader.read() == b""
    assert await reader.read(10) == b""
    await reader.close()
    await reader.close()


@pytest.mark.parametrize("offset", [len(CONTENT) + 1, 10 * len(CONTENT), -1])
async def test_reader_past_end_or_negative(driver: StorageDriver, offset: int) -> None:
    await driver.put_content("/offsets", CONTENT)
    with pytest.raises(InvalidOffset) as raised:
        await driver.reader("/offsets", offset)
    assert raised.value.offset == offset


async def test_reader_of_missing_or_directory(driver: StorageDriver) -> None:
    await driver.put_content("/dir/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.reader("/missing")
    with pytest.raises(PathNotFound):
        await driver.reader("/dir")


# -- writers --


async def test_append_resumes_across_writers(driver: StorageDriver) -> None:
    path = "/uploads/data"
    writer = await driver.writer(path)
    await writer.write(b"abc")
    await writer.close()
    if traits(driver).reads_unfinished_writes:
        assert await driver.get_content(path) == b"abc"
    else:
        with pytest.raises(PathNotFound):
            await driver.get_content(path)

    writer = await driver.writer(path, append=True)
    assert writer.size == 3
    await writer.write(b"defg")
    assert writer.size == 7
    await writer.close()

    writer = await driver.writer(path, append=True)
    assert writer.size == 7
    await writer.write(b"h")
    await writer.commit()
    assert await driver.get_content(path) == b"abcdefgh"
    assert (await driver.stat(path)).size == 8


async def test_append_to_missing_file_starts_it(driver: StorageDriver) -> None:
    writer = await driver.writer("/fresh/data", append=True)
    assert writer.size == 0
    await writer.write(b"first")
    await writer.commit()
    assert await driver.get_content("/fresh/data") == b"first"


async def test_writer_without_append_truncates(driver: StorageDriver) -> None:
    await driver.put_content("/truncated", b"old content")
    writer = await driver.writer("/truncated")
    assert writer.size == 0
    await writer.write(b"new")
    await writer.commit()
    assert await driver.get_content("/truncated") == b"new"


async def test_empty_commit_stores_an_empty_file(driver: StorageDriver) -> None:
    writer = await driver.writer("/empty")
    await writer.commit()
    assert await driver.get_content("/empty") == b""
    assert (await driver.stat("/empty")).size == 0


async def test_write_accepts_memoryview(driver: StorageDriver) -> None:
    content = random_bytes(5000, seed=1)
    writer = await driver.writer("/view")
    assert await writer.write(memoryview(content)[100:1100]) == 1000
    assert await writer.write(memoryview(bytearray(b"tail"))) == 4
    await writer.commit()
    assert await driver.get_content("/view") == content[100:1100] + b"tail"


async def test_cancel_removes_the_file(driver: StorageDriver) -> None:
    await driver.put_content("/cancel/keep", b"keep")
    writer = await driver.writer("/cancel/gone")
    await writer.write(b"partial")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await driver.get_content("/cancel/gone")
    with pytest.raises(PathNotFound):
        await driver.stat("/cancel/gone")
    assert await driver.list("/cancel") == ["/cancel/keep"]


async def test_cancel_of_resumed_writer_removes_the_file(driver: StorageDriver) -> None:
    await driver.put_content("/cancel/resumed", b"earlier")
    writer = await driver.writer("/cancel/resumed", append=True)
    await writer.write(b" and later")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await driver.stat("/cancel/resumed")


async def test_cancel_spares_a_file_replaced_meanwhile(driver: StorageDriver) -> None:
    writer = await driver.writer("/cancel/replaced")
    await writer.write(b"abandoned")
    await driver.put_content("/cancel/replaced", b"replacement")
    await writer.cancel()
    assert await driver.get_content("/cancel/replaced") == b"replacement"


@pytest.mark.parametrize("end", ["commit", "close", "cancel"])
async def test_finished_writer_refuses_writes(driver: StorageDriver, end: str) -> None:
    writer = await driver.writer("/finished")
    await writer.write(b"x")
    await getattr(writer, end)()
    with pytest.raises(ValueError, match="closed"):
        await writer.write(b"more")
    await writer.close()  # closing again is harmless


async def test_concurrent_writers(driver: StorageDriver) -> None:
    contents = {
        f"/concurrent/{i:02}/data": [random_bytes(65536, seed=i * 100 + j) for j in range(8)]
        for i in range(16)
    }

    async def write(path: str, chunks: list[bytes]) -> None:
        writer = await driver.writer(path)
        for chunk in chunks:
            await writer.write(chunk)
            await asyncio.sleep(0)
        await writer.commit()

    await asyncio.gather(*(write(path, chunks) for path, chunks in contents.items()))
    for path, chunks in contents.items():
        assert await driver.get_content(path) == b"".join(chunks)
    assert len(await driver.list("/concurrent")) == 16


async def test_readers_during_a_write_see_a_prefix(driver: StorageDriver) -> None:
    chunks = [random_bytes(65536, seed=i) for i in range(32)]
    final = b"".join(chunks)
    writer = await driver.writer("/growing")
    done = asyncio.Event()

    async def write() -> None:
        for chunk in chunks:
            await writer.write(chunk)
            await asyncio.sleep(0)
        await writer.commit()
        done.set()

    async def watch() -> list[bytes]:
        seen = []
        while not done.is_set():
            try:
                seen.append(await read_back(driver, "/growing"))
            except PathNotFound:
                seen.append(b"")  # a driver may show the file only once it is closed
            await asyncio.sleep(0)
        return seen

    _, *observations = await asyncio.gather(write(), watch(), watch())
    for seen in observations:
        assert seen
        for data in seen:
            assert final.startswith(data)
    assert await driver.get_content("/growing") == final


async def test_put_content_is_atomic_for_readers(driver: StorageDriver) -> None:
    path = "/atomic/value"
    first = b"a" * (4 * MiB)
    second = b"b" * (4 * MiB + 12345)
    await driver.put_content(path, first)
    done = asyncio.Event()
    reads: list[int] = []

    async def hammer() -> None:
        for i in range(40):
            await driver.put_content(path, second if i % 2 == 0 else first)
            await asyncio.sleep(0)
        done.set()

    async def get() -> None:
        while not done.is_set():
            data = await driver.get_content(path)
            assert data in (first, second)
            reads.append(len(data))
            await asyncio.sleep(0)  # a driver need not yield to the loop

    async def read() -> None:
        while not done.is_set():
            data = await read_back(driver, path, chunk_size=256 * 1024)
            assert data in (first, second)
            reads.append(len(data))
            await asyncio.sleep(0)  # a driver need not yield to the loop

    async def look() -> None:
        # Whatever the driver does to replace a file stays out of sight.
        while not done.is_set():
            assert await driver.list("/atomic") == [path]
            assert [info.path for info in await collect(driver.walk("/atomic"))] == [path]
            await asyncio.sleep(0)

    await asyncio.gather(hammer(), get(), get(), read(), read(), look())
    assert reads


# -- stat, list and walk --


async def test_stat_of_a_file(driver: StorageDriver) -> None:
    await driver.put_content("/stat/file", b"12345")
    info = await driver.stat("/stat/file")
    assert info.path == "/stat/file"
    assert info.size == 5
    assert not info.is_dir
    assert is_recent(info.mtime)


async def test_stat_of_a_directory(driver: StorageDriver) -> None:
    await driver.put_content("/stat/dir/below/file", b"x")
    for path in ("/stat", "/stat/dir", "/stat/dir/below", "/"):
        info = await driver.stat(path)
        assert info.path == path
        assert info.is_dir
        assert is_recent(info.mtime)


async def test_stat_of_missing(driver: StorageDriver) -> None:
    await driver.put_content("/stat/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.stat("/stat/missing")
    with pytest.raises(PathNotFound):
        await driver.stat("/stat/file/below")


async def test_list_of_direct_children(driver: StorageDriver) -> None:
    for path in ("/l/b/1", "/l/b/2", "/l/c", "/l/d/e/f", "/l-x/y", "/l0"):
        await driver.put_content(path, b"x")
    assert await driver.list("/") == ["/l", "/l-x", "/l0"]
    assert await driver.list("/l") == ["/l/b", "/l/c", "/l/d"]
    assert await driver.list("/l/b") == ["/l/b/1", "/l/b/2"]
    assert await driver.list("/l/d/e") == ["/l/d/e/f"]


async def test_empty_root(driver: StorageDriver) -> None:
    assert await driver.list("/") == []
    assert await collect(driver.walk("/")) == []
    assert (await driver.stat("/")).is_dir


async def test_list_of_missing_or_file(driver: StorageDriver) -> None:
    await driver.put_content("/l/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.list("/missing")
    with pytest.raises(PathNotFound):
        await driver.list("/l/file")


async def test_list_many_is_list_of_each(driver: StorageDriver) -> None:
    for path in ("/m/a/1", "/m/a/2", "/m/b/c/d", "/m/file"):
        await driver.put_content(path, b"x")
    paths = ["/m/b", "/m/missing", "/m/a", "/", "/m/file", "/m/b/c"]
    assert await driver.list_many(paths) == [
        ["/m/b/c"],
        None,  # absent
        ["/m/a/1", "/m/a/2"],
        ["/m"],
        None,  # a file, not a directory
        ["/m/b/c/d"],
    ]
    assert await driver.list_many([]) == []
    # Many at once: more than an object store keeps in flight together.
    for i in range(40):
        await driver.put_content(f"/n/{i:02d}/leaf", b"x")
    listings = await driver.list_many([f"/n/{i:02d}" for i in range(40)])
    assert listings == [[f"/n/{i:02d}/leaf"] for i in range(40)]


async def test_list_many_checks_every_path(driver: StorageDriver) -> None:
    with pytest.raises(InvalidPath):
        await driver.list_many(["/ok", "/bad/../path"])


DEEP_TREE = {
    **{
        f"/w/{a}/{b}/{c}/file-{d}": i
        for i, (a, b, c, d) in enumerate(
            (a, b, c, d) for a in "ab" for b in "cd" for c in "ef" for d in "01"
        )
    },
    "/w/a/top": 100,
    # '-' sorts before '/': depth first means "/w/a-b" comes after all of "/w/a/".
    "/w/a-b/file": 101,
    "/w/z": 102,
    "/outside/file": 103,
}


async def test_walk_of_a_deep_tree(driver: StorageDriver) -> None:
    for path, size in DEEP_TREE.items():
        await driver.put_content(path, b"x" * size)
    infos = await collect(driver.walk("/w"))
    assert walked(infos) == expected_walk(DEEP_TREE, "/w")
    assert len([info for info in infos if not info.is_dir]) == len(DEEP_TREE) - 1
    assert walked(await collect(driver.walk("/"))) == expected_walk(DEEP_TREE, "/")
    assert walked(await collect(driver.walk("/w/b/c"))) == expected_walk(DEEP_TREE, "/w/b/c")
    assert all(is_recent(info.mtime) for info in infos)


async def test_walk_of_missing_or_file(driver: StorageDriver) -> None:
    await driver.put_content("/w/file", b"x")
    with pytest.raises(PathNotFound):
        await collect(driver.walk("/missing"))
    with pytest.raises(PathNotFound):
        await collect(driver.walk("/w/file"))


async def test_walk_can_stop_early(driver: StorageDriver) -> None:
    for path, size in DEEP_TREE.items():
        await driver.put_content(path, b"x" * size)
    entries = driver.walk("/w")
    assert (await anext(entries)).path == "/w/a"
    aclose = getattr(entries, "aclose", None)
    if aclose is not None:
        await aclose()
    assert await driver.get_content("/w/z") == b"x" * 102


# -- move --


async def test_move_replaces_the_destination(driver: StorageDriver) -> None:
    await driver.put_content("/move/source", b"new")
    await driver.put_content("/move/dest", b"old and longer")
    await driver.move("/move/source", "/move/dest")
    assert await driver.get_content("/move/dest") == b"new"
    with pytest.raises(PathNotFound):
        await driver.stat("/move/source")
    assert await driver.list("/move") == ["/move/dest"]


async def test_move_creates_destination_directories(driver: StorageDriver) -> None:
    await driver.put_content("/uploads/u1/data", b"blob")
    await driver.move("/uploads/u1/data", "/blobs/sha256/ab/abcd/data")
    assert await driver.get_content("/blobs/sha256/ab/abcd/data") == b"blob"
    assert await driver.list("/blobs/sha256/ab") == ["/blobs/sha256/ab/abcd"]
    with pytest.raises(PathNotFound):
        await driver.get_content("/uploads/u1/data")


async def test_move_of_missing_source(driver: StorageDriver) -> None:
    await driver.put_content("/move/dest", b"untouched")
    with pytest.raises(PathNotFound) as raised:
        await driver.move("/move/missing", "/move/dest")
    assert raised.value.path == "/move/missing"
    assert await driver.get_content("/move/dest") == b"untouched"


async def test_move_into_itself_is_refused(driver: StorageDriver) -> None:
    await driver.put_content("/move/file", b"x")
    with pytest.raises(InvalidPath):
        await driver.move("/move/file", "/move/file/inside")
    assert await driver.get_content("/move/file") == b"x"


# -- delete --


async def test_delete_of_a_file(driver: StorageDriver) -> None:
    await driver.put_content("/del/file", b"x")
    await driver.put_content("/del/other", b"y")
    await driver.delete("/del/file")
    with pytest.raises(PathNotFound):
        await driver.get_content("/del/file")
    assert await driver.list("/del") == ["/del/other"]


async def test_delete_of_a_tree(driver: StorageDriver) -> None:
    below = ["/del/tree/a", "/del/tree/b/c", "/del/tree/b/d/e"]
    spared = ["/del/tree-sibling/f", "/del/treex", "/del/tre"]
    for path in below + spared:
        await driver.put_content(path, path.encode())
    await driver.delete("/del/tree")
    for path in [*below, "/del/tree/b", "/del/tree"]:
        with pytest.raises(PathNotFound):
            await driver.stat(path)
    assert await driver.list("/del") == ["/del/tre", "/del/tree-sibling", "/del/treex"]
    for path in spared:
        assert await driver.get_content(path) == path.encode()
    assert not [info for info in await collect(driver.walk("/")) if "/del/tree/" in info.path]


async def test_delete_of_missing(driver: StorageDriver) -> None:
    await driver.put_content("/del/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.delete("/del/missing")
    with pytest.raises(PathNotFound):
        await driver.delete("/del/file/below")


async def test_delete_then_store_again(driver: StorageDriver) -> None:
    await driver.put_content("/again/file", b"first")
    await driver.delete("/again")
    await driver.put_content("/again/file", b"second")
    assert await driver.get_content("/again/file") == b"second"


# -- conflicts between files and directories --


async def test_a_file_and_a_directory_under_one_name(driver: StorageDriver) -> None:
    """A hierarchical store refuses a file where a directory is and the other
    way round; an object store allows both under one name (Distribution's
    drivers do not check either)."""
    if traits(driver).exclusive_files_and_dirs:
        await driver.put_content("/conflict/file", b"x")
        with pytest.raises(StorageDriverError):
            await driver.put_content("/conflict/file/below", b"y")
        with pytest.raises(StorageDriverError):
            await driver.writer("/conflict/file/below")
        await driver.put_content("/conflict/dir/child", b"z")
        with pytest.raises(StorageDriverError):
            await driver.put_content("/conflict/dir", b"y")
        with pytest.raises(StorageDriverError):
            await driver.move("/conflict/file", "/conflict/dir")
        assert await driver.get_content("/conflict/file") == b"x"
        assert await driver.get_content("/conflict/dir/child") == b"z"
    else:
        await driver.put_content("/shared/name", b"file")
        await driver.put_content("/shared/name/below", b"below")
        assert await driver.get_content("/shared/name") == b"file"
        assert await driver.get_content("/shared/name/below") == b"below"
        assert await driver.list("/shared") == ["/shared/name"]
        assert await driver.list("/shared/name") == ["/shared/name/below"]
        assert not (await driver.stat("/shared/name")).is_dir  # the file shows first


# -- paths --


BAD_PATHS = [
    "a/b",
    "",
    "/a//b",
    "/a/../b",
    "/a/./b",
    "/a/b/",
    "/a/\x00",
    "//",
    "/..",
    "/a/b\nc",
    "/a/\x7f",
]

Operation = Callable[[StorageDriver, str], Awaitable[object]]

FILE_OPERATIONS: dict[str, Operation] = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: d.reader(p),
    "writer": lambda d, p: d.writer(p),
    "append_writer": lambda d, p: d.writer(p, append=True),
    "move_source": lambda d, p: d.move(p, "/ok/dest"),
    "move_dest": lambda d, p: d.move("/ok/file", p),
    "delete": lambda d, p: d.delete(p),
    "local_path": lambda d, p: d.local_path(p),
    "redirect_url": lambda d, p: d.redirect_url(p),
}

OPERATIONS: dict[str, Operation] = {
    **FILE_OPERATIONS,
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "walk": lambda d, p: collect(d.walk(p)),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("path", BAD_PATHS)
async def test_bad_paths_are_refused(driver: StorageDriver, operation: str, path: str) -> None:
    await driver.put_content("/ok/file", b"ok")
    with pytest.raises(InvalidPath):
        await OPERATIONS[operation](driver, path)
    assert await driver.get_content("/ok/file") == b"ok"
    assert await driver.list("/") == ["/ok"]


@pytest.mark.parametrize("operation", sorted(FILE_OPERATIONS))
async def test_root_is_not_a_file(driver: StorageDriver, operation: str) -> None:
    await driver.put_content("/ok/file", b"ok")
    with pytest.raises(InvalidPath):
        await FILE_OPERATIONS[operation](driver, "/")
    assert await driver.get_content("/ok/file") == b"ok"


async def test_unicode_names(driver: StorageDriver) -> None:
    path = "/données/日本語/ü.txt"
    await driver.put_content(path, "contenu ü".encode())
    assert await driver.get_content(path) == "contenu ü".encode()
    assert await driver.list("/") == ["/données"]
    assert await driver.list("/données") == ["/données/日本語"]
    assert await driver.list("/données/日本語") == [path]
    assert walked(await collect(driver.walk("/"))) == [
        ("/données", True, 0),
        ("/données/日本語", True, 0),
        (path, False, 10),
    ]
    await driver.move(path, "/données/日本語/ß.txt")
    assert await read_back(driver, "/données/日本語/ß.txt", offset=3) == "tenu ü".encode()


# -- serving --


async def test_local_path(driver: StorageDriver) -> None:
    await driver.put_content("/serve/file", b"served")
    local = await driver.local_path("/serve/file")
    if not traits(driver).local_files:
        assert local is None
    else:
        assert local is not None
        assert await asyncio.to_thread(Path(local).read_bytes) == b"served"


async def test_local_path_of_missing(driver: StorageDriver) -> None:
    if not traits(driver).local_files:
        assert await driver.local_path("/serve/missing") is None
        return
    with pytest.raises(PathNotFound):
        await driver.local_path("/serve/missing")


async def test_redirect_url(driver: StorageDriver) -> None:
    await driver.put_content("/serve/file", b"served")
    if not traits(driver).redirects:
        assert await driver.redirect_url("/serve/file") is None
        assert await driver.redirect_url("/serve/file", "HEAD") is None
        return
    for method in ("GET", "HEAD"):
        url = await driver.redirect_url("/serve/file", method)
        assert url is not None
        assert url.startswith(("http://", "https://"))


# -- properties over arbitrary valid paths --

# Segments any driver must store: printable, not '.' or '..', short enough
# for a file name once encoded.
SEGMENTS = st.text(
    st.characters(codec="utf-8", exclude_characters="/", exclude_categories=["Cc"]),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
FILE_SETS = st.dictionaries(
    st.lists(SEGMENTS, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s)),
    st.integers(0, 64),
    min_size=1,
    max_size=8,
)


def without_ancestors(files: dict[str, int]) -> dict[str, int]:
    """Drop files whose path is a directory of another file."""
    return {p: n for p, n in files.items() if not any(q.startswith(p + "/") for q in files)}


@pytest.mark.parametrize("name", sorted(DRIVERS))
@settings(max_examples=50, deadline=None)
@given(files=FILE_SETS)
def test_any_valid_paths_round_trip(name: str, files: dict[str, int]) -> None:
    unstorable = set(TRAITS[name].unstorable_characters)
    refused = [path for path in files if unstorable & set(path)]
    files = without_ancestors({p: n for p, n in files.items() if p not in refused})

    async def check(driver: StorageDriver) -> None:
        for path in refused:
            with pytest.raises(InvalidPath):
                await driver.put_content(path, b"x")
        for path, size in files.items():
            await driver.put_content(path, path.encode() * size)
        for path, size in files.items():
            assert await driver.get_content(path) == path.encode() * size
        assert walked(await collect(driver.walk("/"))) == expected_walk(
            {p: len(p.encode()) * n for p, n in files.items()}, "/"
        )
        assert await driver.list("/") == sorted({"/" + p.split("/")[1] for p in files})

    async def run(driver: StorageDriver) -> None:
        try:
            await check(driver)
        finally:
            await close_driver(driver)

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(DRIVERS[name](Path(tmp))))
