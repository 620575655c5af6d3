"""The `driver` fixture: one of every storage driver, fresh for each test.

A new driver joins the shared suite by adding a builder to `DRIVERS`, and
saying in `TRAITS` what it does where the protocol lets drivers differ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from entrepot.storage.driver.base import StorageDriver
from entrepot.storage.driver.factory import create_driver


def _s3(tmp_path: Path) -> StorageDriver:
    # A bucket of its own on the test process's moto server (s3_server.py).
    from tests.storage.driver.s3_server import new_driver

    return new_driver()


def _azure(tmp_path: Path) -> StorageDriver:
    # A container of its own on the test process's Azurite (azurite_server.py).
    from tests.storage.driver.azurite_server import new_driver

    return new_driver()


DRIVERS: dict[str, Callable[[Path], StorageDriver]] = {
    "inmemory": lambda tmp_path: create_driver("inmemory", {}),
    # The root does not exist yet: the driver creates it when first needed.
    "filesystem": lambda tmp_path: create_driver(
        "filesystem", {"rootdirectory": str(tmp_path / "registry")}
    ),
    "s3": _s3,
    "azure": _azure,
}


@dataclass(frozen=True, slots=True)
class Traits:
    """What a driver does where the protocol lets drivers differ."""

    # What a closed, uncommitted writer wrote can be read. On an object store
    # it is the parts of a multipart upload until `commit`: resumable by
    # another writer, not readable.
    reads_unfinished_writes: bool = True
    # A path cannot be a file and a directory at once. An object store has
    # keys, and `a` and `a/b` can both be there.
    exclusive_files_and_dirs: bool = True
    # `local_path` gives a local file to send with sendfile.
    local_files: bool = False
    # `redirect_url` gives a URL the client can fetch the content from.
    redirects: bool = False
    # Characters a valid path may have that the store cannot keep in a name:
    # paths with them are refused (`InvalidPath`). Azure turns `\` into `/`,
    # and its listings (XML) cannot carry U+FFFE and U+FFFF.
    unstorable_characters: str = ""


TRAITS: dict[str, Traits] = {
    "inmemory": Traits(),
    "filesystem": Traits(local_files=True),
    "s3": Traits(reads_unfinished_writes=False, exclusive_files_and_dirs=False, redirects=True),
    # Append blobs are readable as they grow: a closed writer's bytes are there.
    "azure": Traits(
        exclusive_files_and_dirs=False, redirects=True, unstorable_characters="\\\ufffe\uffff"
    ),
}


def traits(driver: StorageDriver) -> Traits:
    return TRAITS[driver.name]


async def close_driver(driver: StorageDriver) -> None:
    """Release a driver's connections, for drivers that hold some (S3, Azure)."""
    aclose = getattr(driver, "aclose", None)
    if aclose is not None:
        await aclose()


@pytest.fixture(params=sorted(DRIVERS))
async def driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageDriver]:
    name: str = request.param
    built = DRIVERS[name](tmp_path)
    yield built
    await close_driver(built)
