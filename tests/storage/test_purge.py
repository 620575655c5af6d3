"""Upload purging removes sessions older than the age, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from entrepot.digest import Digest
from entrepot.errors import BlobUploadUnknown
from entrepot.storage import paths
from entrepot.storage.driver.base import StorageDriver
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.purge import purge_uploads
from entrepot.storage.registry import Registry
from entrepot.storage.upload import format_started_at

WEEK = timedelta(days=7)


@pytest.fixture(params=["inmemory", "filesystem"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "inmemory":
        return InMemoryDriver()
    return FilesystemDriver(tmp_path)


async def backdate(driver: StorageDriver, name: str, upload_id: str, age: timedelta) -> None:
    moment = datetime.now(UTC) - age
    await driver.put_content(
        paths.upload_started_at(name, upload_id), format_started_at(moment).encode()
    )


async def test_old_sessions_go_and_recent_ones_stay(driver: StorageDriver) -> None:
    registry = Registry(driver)
    old = await registry.repository("a/b").blobs.create()
    await old.write(b"abandoned")
    await old.close()
    await backdate(driver, "a/b", old.id, WEEK + timedelta(hours=1))
    # A repository holding nothing but an old upload is purged too.
    lonely = await registry.repository("only/uploads").blobs.create()
    await lonely.close()
    await backdate(driver, "only/uploads", lonely.id, timedelta(days=30))
    recent = await registry.repository("a/b").blobs.create()
    await recent.write(b"in progress")
    await recent.close()

    report = await purge_uploads(driver, WEEK)

    assert report.examined == 3
    assert sorted(report.purged) == sorted(
        [paths.upload_dir("a/b", old.id), paths.upload_dir("only/uploads", lonely.id)]
    )
    with pytest.raises(BlobUploadUnknown):
        await registry.repository("a/b").blobs.resume(old.id)
    with pytest.raises(BlobUploadUnknown):
        await registry.repository("only/uploads").blobs.resume(lonely.id)
    resumed = await registry.repository("a/b").blobs.resume(recent.id)
    assert resumed.tell() == len(b"in progress")
    await resumed.write(b"!")
    descriptor = await resumed.commit(Digest.of(b"in progress!"))
    assert descriptor.size == 12


async def test_a_dry_run_deletes_nothing(driver: StorageDriver) -> None:
    registry = Registry(driver)
    old = await registry.repository("dry/run").blobs.create()
    await old.close()
    await backdate(driver, "dry/run", old.id, WEEK * 2)

    report = await purge_uploads(driver, WEEK, dry_run=True)

    assert report.purged == [paths.upload_dir("dry/run", old.id)]
    resumed = await registry.repository("dry/run").blobs.resume(old.id)
    await resumed.cancel()


async def test_a_session_without_startedat_is_aged_by_its_directory(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    registry = Registry(driver)
    broken = await registry.repository("broken/commit").blobs.create()
    await broken.write(b"x")
    await broken.close()
    await driver.delete(paths.upload_started_at("broken/commit", broken.id))

    assert (await purge_uploads(driver, WEEK)).purged == []
    later = datetime.now(UTC) + WEEK + timedelta(minutes=1)
    report = await purge_uploads(driver, WEEK, now=later)
    assert report.purged == [paths.upload_dir("broken/commit", broken.id)]


async def test_nothing_to_purge_on_an_empty_root(driver: StorageDriver) -> None:
    report = await purge_uploads(driver, WEEK)
    assert (report.examined, report.purged, report.errors) == (0, [], [])
