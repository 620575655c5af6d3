"""The `driver` fixture: one of every storage driver, fresh for each test.

A new driver joins the shared suite by adding a builder to `DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from entrepot.storage.driver.base import StorageDriver
from entrepot.storage.driver.factory import create_driver

DRIVERS: dict[str, Callable[[Path], StorageDriver]] = {
    "inmemory": lambda tmp_path: create_driver("inmemory", {}),
    # The root does not exist yet: the driver creates it when first needed.
    "filesystem": lambda tmp_path: create_driver(
        "filesystem", {"rootdirectory": str(tmp_path / "registry")}
    ),
}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    name: str = request.param
    return DRIVERS[name](tmp_path)
