"""Drivers are built from Distribution's `storage:` configuration names."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrepot.storage.driver.azure import AzureDriver
from entrepot.storage.driver.factory import DEFAULT_ROOT_DIRECTORY, create_driver, driver_names
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.driver.s3 import S3Driver


def test_known_names() -> None:
    assert driver_names() == ["azure", "filesystem", "inmemory", "s3"]


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


def test_s3() -> None:
    # Building an S3 driver makes no request: its client comes on first use.
    driver = create_driver(
        "s3", {"bucket": "images", "region": "eu-west-3", "chunksize": "6291456"}
    )
    assert isinstance(driver, S3Driver)
    assert driver.name == "s3"
    assert driver.bucket == "images"
    assert driver.options.chunk_size == 6 * 1024 * 1024


def test_s3_from_the_config_model() -> None:
    # The config's S3 section, dumped with its defaults (None where unset).
    from entrepot.config import S3Settings

    settings = S3Settings(region="us-east-1", bucket="images", rootdirectory="/registry")
    driver = create_driver("s3", settings.as_dict())
    assert isinstance(driver, S3Driver)
    assert driver.options.root_directory == "/registry"
    assert driver.options.object_acl == "private"


@pytest.mark.parametrize(
    "params", [{}, {"bucket": "b"}, {"bucket": "b", "region": "r", "chunksize": 1}]
)
def test_s3_bad_parameters(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="s3"):
        create_driver("s3", params)


def test_azure() -> None:
    # Building an Azure driver makes no request: its client comes on first use.
    driver = create_driver(
        "azure", {"accountname": "acct", "accountkey": "a2V5", "container": "images"}
    )
    assert isinstance(driver, AzureDriver)
    assert driver.name == "azure"
    assert driver.options.service_url == "https://acct.blob.core.windows.net"


@pytest.mark.parametrize(
    "params", [{}, {"accountname": "a"}, {"accountname": "a", "container": "c"}]
)
def test_azure_bad_parameters(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="azure"):
        create_driver("azure", params)


@pytest.mark.parametrize("name", ["s4", "", "Filesystem"])
def test_unknown_driver(name: str) -> None:
    with pytest.raises(ValueError, match="unknown storage driver"):
        create_driver(name, {})
