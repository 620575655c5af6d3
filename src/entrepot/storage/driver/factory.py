"""Build a storage driver from its configuration name and parameters.

The names and parameters are those of Distribution's `storage:` section
(`filesystem: {rootdirectory: ...}`, `inmemory: {}`), so its config files
work unchanged. Each driver has a small constructor function here that
imports its module only when asked for, so optional dependencies (an S3 or
Azure client) are needed only by those who configure that driver. Adding a
driver is one function and one entry in `_CONSTRUCTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from entrepot.storage.driver.base import StorageDriver

# Distribution's default storage root.
DEFAULT_ROOT_DIRECTORY: Final = "/var/lib/registry"

DriverConstructor = Callable[[Mapping[str, Any]], StorageDriver]


def _inmemory(params: Mapping[str, Any]) -> StorageDriver:
    from entrepot.storage.driver.inmemory import InMemoryDriver

    return InMemoryDriver()


def _filesystem(params: Mapping[str, Any]) -> StorageDriver:
    from entrepot.storage.driver.filesystem import FilesystemDriver

    root = params.get("rootdirectory", DEFAULT_ROOT_DIRECTORY)
    if not isinstance(root, str) or not root:
        raise ValueError(f"filesystem: rootdirectory must be a non-empty string, not {root!r}")
    # Distribution also reads `maxthreads`; Python's default thread pool
    # bounds the threads here, so it is accepted and ignored like other keys.
    return FilesystemDriver(root)


def _s3(params: Mapping[str, Any]) -> StorageDriver:
    try:
        from entrepot.storage.driver.s3 import S3Driver
    except ModuleNotFoundError as err:
        raise ValueError(
            f"s3: the driver needs {err.name!r}, which is not installed: "
            "install entrepot with its s3 extra (pip install 'entrepot[s3]')"
        ) from err
    return S3Driver.from_parameters(params)


def _azure(params: Mapping[str, Any]) -> StorageDriver:
    try:
        from entrepot.storage.driver.azure import AzureDriver
    except ModuleNotFoundError as err:
        raise ValueError(
            f"azure: the driver needs {err.name!r}, which is not installed: "
            "install entrepot with its azure extra (pip install 'entrepot[azure]')"
        ) from err
    return AzureDriver.from_parameters(params)


_CONSTRUCTORS: Final[Mapping[str, DriverConstructor]] = MappingProxyType(
    {
        "inmemory": _inmemory,
        "filesystem": _filesystem,
        "s3": _s3,
        "azure": _azure,
    }
)


def driver_names() -> list[str]:
    """The driver names `create_driver` knows, sorted."""
    return sorted(_CONSTRUCTORS)


def create_driver(name: str, params: Mapping[str, Any] | None = None) -> StorageDriver:
    """A new driver of the kind `name`, configured by `params`.

    Raises `ValueError` for an unknown name or a bad parameter.
    """
    constructor = _CONSTRUCTORS.get(name)
    if constructor is None:
        known = ", ".join(driver_names())
        raise ValueError(f"unknown storage driver {name!r} (known: {known})")
    return constructor(params or {})
