"""Upload purging: remove upload sessions abandoned for longer than an age.

Every repository's `_uploads/<id>/` is looked at, including repositories that
hold nothing but uploads. A session's age comes from its `startedat`; a
session without a readable one falls back to the directory's mtime, so
debris of a crashed commit goes too. A dry run only reports.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from entrepot.storage import paths
from entrepot.storage.driver.base import PathNotFound, StorageDriver
from entrepot.storage.upload import parse_started_at

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PurgeReport:
    """What a purge found: sessions deleted (or that a dry run would delete)."""

    examined: int = 0
    purged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def upload_dirs(
    driver: StorageDriver, directory: str = paths.REPOSITORIES
) -> AsyncIterator[str]:
    """Every `_uploads/<id>` directory below `directory`."""
    try:
        entries = await driver.list(directory)
    except PathNotFound:
        return
    for entry in entries:
        child = entry.rsplit("/", 1)[1]
        if child == "_uploads":
            try:
                sessions = await driver.list(entry)
            except PathNotFound:
                continue
            for session in sessions:
                yield session
        elif not child.startswith("_"):
            async for found in upload_dirs(driver, entry):
                yield found


async def _started_at(driver: StorageDriver, session: str) -> datetime:
    try:
        return parse_started_at((await driver.get_content(f"{session}/startedat")).decode())
    except (PathNotFound, UnicodeDecodeError, ValueError):
        return (await driver.stat(session)).mtime


async def purge_uploads(
    driver: StorageDriver,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[PurgeReport], None] | None = None,
) -> PurgeReport:
    """Delete upload sessions started more than `older_than` ago."""
    cutoff = (now or datetime.now(UTC)) - older_than
    report = PurgeReport()
    async for session in upload_dirs(driver):
        report.examined += 1
        try:
            if await _started_at(driver, session) >= cutoff:
                continue
            if not dry_run:
                await driver.delete(session)
            report.purged.append(session)
        except PathNotFound:
            continue  # committed or cancelled meanwhile
        except Exception as exc:  # one bad session must not stop the purge
            log.warning("purging %s failed: %s", session, exc)
            report.errors.append(session)
        if progress is not None:
            progress(report)
    log.info(
        "upload purge%s: %d examined, %d %s, %d errors",
        " (dry run)" if dry_run else "",
        report.examined,
        len(report.purged),
        "would be purged" if dry_run else "purged",
        len(report.errors),
    )
    return report
