"""What the filesystem driver promises beyond the shared suite: the storage
root is a plain directory tree that other programs (Distribution) can share."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from entrepot.storage.driver.base import InvalidPath, PathNotFound
from entrepot.storage.driver.filesystem import FilesystemDriver


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def driver(root: Path) -> FilesystemDriver:
    return FilesystemDriver(root)


def kind(path: Path) -> str | None:
    """What is at `path` on disk: "dir", "file" or None (checked without the driver)."""
    if path.is_dir():
        return "dir"
    return "file" if path.exists() else None


def tree(root: Path) -> list[str]:
    """Every entry under `root`, as sorted relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_the_root_is_created_on_first_use(root: Path, driver: FilesystemDriver) -> None:
    assert driver.root == str(root)
    assert kind(root) is None
    assert await driver.list("/") == []
    assert kind(root) == "dir"


async def test_paths_map_under_the_root(root: Path, driver: FilesystemDriver) -> None:
    await driver.put_content("/docker/registry/v2/blobs/data", b"blob")
    assert (root / "docker/registry/v2/blobs/data").read_bytes() == b"blob"
    assert await driver.local_path("/docker/registry/v2/blobs/data") == str(
        root / "docker/registry/v2/blobs/data"
    )


async def test_reads_a_tree_written_by_someone_else(root: Path, driver: FilesystemDriver) -> None:
    link = root / "docker/registry/v2/repositories/library/ubuntu/_layers/sha256/ab/link"
    link.parent.mkdir(parents=True)
    link.write_bytes(b"sha256:ab")
    assert (
        await driver.get_content(
            "/docker/registry/v2/repositories/library/ubuntu/_layers/sha256/ab/link"
        )
        == b"sha256:ab"
    )
    assert await driver.list("/docker/registry/v2/repositories/library") == [
        "/docker/registry/v2/repositories/library/ubuntu"
    ]


async def test_put_content_leaves_no_temporary_file(root: Path, driver: FilesystemDriver) -> None:
    await asyncio.gather(*(driver.put_content("/a/file", bytes([i]) * 100_000) for i in range(20)))
    await driver.put_content("/a/other", b"x")
    assert tree(root) == ["a", "a/file", "a/other"]


async def test_temporary_files_are_hidden(root: Path, driver: FilesystemDriver) -> None:
    await driver.put_content("/d/real", b"x")
    (root / "d" / (".tmp-" + "0" * 32)).write_bytes(b"left by a crash")
    # Only the driver's own pattern is hidden; other dot files are data.
    (root / "d" / ".tmp-other").write_bytes(b"y")
    assert await driver.list("/d") == ["/d/.tmp-other", "/d/real"]
    assert [info.path async for info in driver.walk("/")] == ["/d", "/d/.tmp-other", "/d/real"]
    await driver.delete("/d")
    assert kind(root / "d") is None


async def test_delete_does_not_prune_parents(root: Path, driver: FilesystemDriver) -> None:
    # As in Distribution: emptied directories stay.
    await driver.put_content("/p/q/file", b"x")
    await driver.delete("/p/q/file")
    assert await driver.list("/p/q") == []


async def test_local_path_of_a_directory(driver: FilesystemDriver) -> None:
    await driver.put_content("/dir/file", b"x")
    with pytest.raises(PathNotFound):
        await driver.local_path("/dir")


async def test_symlinked_file_is_read_and_deleted_as_a_link(
    root: Path, tmp_path: Path, driver: FilesystemDriver
) -> None:
    target = tmp_path / "outside"
    target.write_bytes(b"target")
    await driver.put_content("/links/keep", b"x")
    (root / "links" / "link").symlink_to(target)
    assert await driver.get_content("/links/link") == b"target"
    await driver.delete("/links/link")
    assert target.read_bytes() == b"target"
    assert await driver.list("/links") == ["/links/keep"]


async def test_unencodable_path(driver: FilesystemDriver) -> None:
    with pytest.raises(InvalidPath):
        await driver.put_content("/bad/\ud800", b"x")


async def test_name_too_long(driver: FilesystemDriver) -> None:
    with pytest.raises(InvalidPath, match="too long"):
        await driver.put_content("/" + "x" * 300, b"x")
    with pytest.raises(InvalidPath, match="too long"):
        await driver.stat("/" + "x" * 300)


async def test_a_writer_holds_its_file_open(root: Path, driver: FilesystemDriver) -> None:
    writer = await driver.writer("/open/file")
    await writer.write(b"visible at once")
    assert (root / "open/file").read_bytes() == b"visible at once"
    await writer.write(b"!")
    await writer.close()
    assert (root / "open/file").read_bytes() == b"visible at once!"
