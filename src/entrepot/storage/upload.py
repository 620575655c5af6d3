"""Upload sessions whose state lives in storage, not in the process.

An upload is `_uploads/<uuid>/` in the repository: `startedat`, the `data`
written so far, and `hashstates/sha256/<offset>`, the running SHA-256 after
`<offset>` bytes in Go's binary format (so entrepot and Distribution resume
each other's uploads). Any process sharing the storage can resume a session:
its offset is the size of `data`; its hash continues from the state saved at
that offset, or from a re-hash of the data when there is none. A state is stored
on every `close`, so a chunked push hashes each byte once, whichever process
each chunk reaches.

Each chunk is hashed and written in one pass, the two in parallel threads
(ctypes releases the GIL while OpenSSL hashes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from entrepot import metrics
from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import CANONICAL, Digest
from entrepot.errors import (
    BlobInvalidDigest,
    BlobInvalidLength,
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
)
from entrepot.hashstate import HashStateInvalid, ResumableHash
from entrepot.storage import paths
from entrepot.storage.driver.base import FileWriter, PathNotFound, StorageDriver

if TYPE_CHECKING:
    from entrepot.storage.blobstore import BlobStore

log = logging.getLogger(__name__)

CHUNK_SIZE: Final = 1 << 20
# Below this, a thread hop costs more than hashing in place.
_INLINE_HASH: Final = 64 << 10

CommitHook = Callable[["UploadWriter", Digest, int, Descriptor], Awaitable[Descriptor]]


def format_started_at(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as Distribution writes `startedat`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_started_at(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def new_upload_id() -> str:
    """A random (version 4) UUID, as Distribution names upload sessions:
    made here from the system's randomness, which is all `uuid.uuid4` does
    (without keeping the `uuid` module, and `platform` it imports, loaded)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


async def new_upload(driver: StorageDriver, name: str, on_commit: CommitHook) -> UploadWriter:
    upload_id = new_upload_id()
    started_at = datetime.now(UTC).replace(microsecond=0)
    await driver.put_content(
        paths.upload_started_at(name, upload_id), format_started_at(started_at).encode()
    )
    file = await driver.writer(paths.upload_data(name, upload_id), append=False)
    writer = UploadWriter(driver, name, upload_id, started_at, file, on_commit)
    writer._hash = ResumableHash(CANONICAL)
    return writer


async def resume_upload(
    driver: StorageDriver, name: str, upload_id: str, on_commit: CommitHook
) -> UploadWriter:
    try:
        raw = await driver.get_content(paths.upload_started_at(name, upload_id))
    except PathNotFound as exc:
        raise BlobUploadUnknown() from exc
    try:
        started_at = parse_started_at(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BlobUploadUnknown("upload session has a corrupt start time") from exc
    file = await driver.writer(paths.upload_data(name, upload_id), append=True)
    return UploadWriter(driver, name, upload_id, started_at, file, on_commit)


class UploadWriter:
    """One upload session (the seed's `BlobWriter`)."""

    def __init__(
        self,
        driver: StorageDriver,
        name: str,
        upload_id: str,
        started_at: datetime,
        file: FileWriter,
        on_commit: CommitHook,
    ) -> None:
        self._driver = driver
        self._name = name
        self._id = upload_id
        self._started_at = started_at
        self._file = file
        self._on_commit = on_commit
        # The running canonical hash; None until needed (restored lazily, so
        # a status request or a cancel never reads hash state).
        self._hash: ResumableHash | None = None
        self._stored_offset = -1
        # True when the running hash continues a state read from storage.
        self._trusts_stored_state = False
        self._done = False  # no more writes: closed, cancelled or committed
        self._file_open = True
        metrics.upload_session_opened()

    @property
    def id(self) -> str:
        return self._id

    @property
    def started_at(self) -> datetime:
        return self._started_at

    @property
    def size(self) -> int:
        return self._file.size

    def tell(self) -> int:
        return self._file.size

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Only the end of what is written is a valid position: uploads append."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.size, os.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset != self.size:
            raise BlobUploadInvalid(
                f"cannot seek to {base + offset}: the upload is at offset {self.size}"
            )
        return self.size

    async def write(self, data: bytes | memoryview) -> int:
        self._check_open()
        hasher = await self._running_hash()
        if len(data) < _INLINE_HASH:
            # Write first: a failed write must leave the hash as it was.
            written = await self._file.write(data)
            hasher.update(data)
            metrics.count_bytes_pushed(written)
            return written
        # Hash a copy, kept only if the write succeeds: a driver write that
        # fails having stored nothing leaves the hash right as it was, with
        # no re-hash of the stored data (which an object store cannot read
        # before commit).
        size = self._file.size
        candidate = hasher.copy()
        hashed, stored = await asyncio.gather(
            asyncio.to_thread(candidate.update, data),
            self._file.write(data),
            return_exceptions=True,
        )
        for outcome in (stored, hashed):
            if isinstance(outcome, BaseException):
                if self._file.size != size:
                    self._hash = None  # re-derived from storage when next needed
                raise outcome
        assert isinstance(stored, int)
        self._hash = candidate
        metrics.count_bytes_pushed(stored)
        return stored

    async def close(self) -> None:
        """Release the session; it stays in storage, resumable anywhere."""
        if self._done:
            return
        self._mark_done()
        try:
            await self._store_hash_state()
        finally:
            self._file_open = False
            await self._file.close()

    async def cancel(self) -> None:
        """Abandon the session and everything it stored (a no-op once committed)."""
        self._mark_done()
        if self._file_open:
            self._file_open = False
            await self._file.cancel()
        await self._remove()

    async def commit(self, provisional: Descriptor | Digest) -> Descriptor:
        """Verify the content against `provisional` (a digest, and a size if a
        descriptor is given) and make it a blob of this repository.

        On a mismatch nothing is linked, the session stays in storage (to be
        resumed or cancelled), and this writer is closed.
        """
        self._check_open()
        self._mark_done()
        if isinstance(provisional, Digest):
            expected: Descriptor = Descriptor(digest=provisional, size=-1)
        else:
            expected = provisional
        self._file_open = False
        await self._file.commit()
        size = self.size
        if expected.size >= 0 and expected.size != size:
            raise BlobInvalidLength(expected.size, size)
        canonical = (await self._running_hash()).digest()
        if canonical != expected.digest and self._trusts_stored_state:
            # A stored state can lie (Distribution names a state after the
            # bytes its own writer hashed, which after a lost state is not
            # the offset): before refusing, hash the stored data afresh.
            canonical = await self._hash_stored(canonical.algorithm)
        if expected.digest.algorithm == canonical.algorithm:
            actual = canonical
        else:
            actual = await self._hash_stored(expected.digest.algorithm)
        if actual != expected.digest:
            raise BlobInvalidDigest(expected.digest, f"content hashes to {actual}")
        media_type = expected.media_type or OCTET_STREAM
        verified = Descriptor(digest=expected.digest, size=size, media_type=media_type)
        descriptor = await self._on_commit(self, canonical, size, verified)
        await self._remove()
        return descriptor

    async def move_into(self, canonical: Digest, store: BlobStore) -> None:
        """Called by the commit hook: make the data the blob `canonical`,
        unless that blob is already stored."""
        dest = paths.blob_data(canonical)
        # The saved states describe data about to leave the session: were the
        # commit to stop after the move, a resumed session refilled with other
        # bytes of the same length must not be vouched for by them.
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(paths.upload_hashstates(self._name, self._id, CANONICAL))
        try:
            await store.stat(canonical)
        except BlobUnknown:
            pass
        else:
            return  # the same content is already stored: keep that one
        if self.size == 0:
            # Drivers may keep no file for an empty upload; write it out.
            await self._driver.put_content(dest, b"")
            return
        await self._driver.move(paths.upload_data(self._name, self._id), dest)

    # -- internals ------------------------------------------------------

    def _mark_done(self) -> None:
        if not self._done:
            self._done = True
            metrics.upload_session_closed()

    def _check_open(self) -> None:
        if self._done:
            raise BlobUploadInvalid("the upload writer is closed")

    async def _running_hash(self) -> ResumableHash:
        if self._hash is None:
            self._hash = await self._restore_hash()
        return self._hash

    async def _restore_hash(self) -> ResumableHash:
        """The hash of the stored data: the state saved at exactly its size
        if there is a usable one, else a re-hash of the data.

        Only a state named after the current size is trusted, as Distribution
        does: Distribution names a state after the bytes its own writer
        hashed, which is not the offset once a state was lost, and continuing
        from such a state would store a wrong one under the real size.
        """
        size = self.size
        hasher = ResumableHash(CANONICAL)
        if size > 0:
            path = paths.upload_hashstate(self._name, self._id, CANONICAL, size)
            try:
                candidate = ResumableHash.unmarshal(await self._driver.get_content(path))
            except PathNotFound:
                pass
            except HashStateInvalid:
                log.info("upload %s: unusable hash state at %d", self._id, size)
            else:
                if candidate.algorithm == CANONICAL and candidate.length == size:
                    hasher = candidate
                    self._trusts_stored_state = True
        if hasher.length < size:
            await self._feed_stored(hasher.update, 0, size)
        return hasher

    async def _hash_stored(self, algorithm: str) -> Digest:
        """Hash the stored data with another algorithm (a provisional digest)."""
        hasher = hashlib.new(algorithm)
        await self._feed_stored(hasher.update, 0, self.size)
        return Digest(algorithm, hasher.hexdigest())

    async def _feed_stored(self, update: Callable[[bytes], object], start: int, end: int) -> None:
        if end <= start:
            return
        reader = await self._driver.reader(paths.upload_data(self._name, self._id), start)
        try:
            remaining = end - start
            while remaining > 0:
                chunk = await reader.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise BlobUploadInvalid("upload data is shorter than its recorded size")
                await asyncio.to_thread(update, chunk)
                remaining -= len(chunk)
        finally:
            await reader.close()

    async def _store_hash_state(self) -> None:
        hasher = self._hash
        if hasher is None or hasher.length != self.size or hasher.length == self._stored_offset:
            return
        if hasher.length == 0:
            return  # nothing hashed yet: a fresh hash is the state
        path = paths.upload_hashstate(self._name, self._id, CANONICAL, hasher.length)
        await self._driver.put_content(path, hasher.marshal())
        self._stored_offset = hasher.length

    async def _remove(self) -> None:
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(paths.upload_dir(self._name, self._id))
