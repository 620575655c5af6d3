"""Drivers are built from Distribution's `storage:` configuration names."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrepot.storage.driver.factory import DEFAULT_ROOT_DIRECTORY, create_driver, driver_names
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver


def test_known_names() -> None:
    assert driver_names() == ["filesystem", "inmemory"]


def test_inmemory() -> None:
    driver = create_driver("inmemory", {})
    assert isinstance(driver, InMemoryDriver)
    assert driver.name == "inmemory"


def test_filesystem(tmp_path: Path) -> None:
    driver = create_driver("filesystem", {"rootdirectory": str(tmp_path), "maxthreads": 100})
    assert isinstance(driver, FilesystemDriver)
    assert driver.name == "filesystem"
    assert driver.root == str(tmp_path)


def test_filesystem_default_root() -> None:
    # Building a driver touches no disk, so the default is safe to build here.
    driver = create_driver("filesystem", None)
    assert isinstance(driver, FilesystemDriver)
    assert driver.root == DEFAULT_ROOT_DIRECTORY == "/var/lib/registry"


@pytest.mark.parametrize("root", ["", 42, None])
def test_filesystem_bad_root(root: object) -> None:
    with pytest.raises(ValueError, match="rootdirectory"):
        create_driver("filesystem", {"rootdirectory": root})


@pytest.mark.parametrize("name", ["s4", "", "Filesystem"])
def test_unknown_driver(name: str) -> None:
    with pytest.raises(ValueError, match="unknown storage driver"):
        create_driver(name, {})
