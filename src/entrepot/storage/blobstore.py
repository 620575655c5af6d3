"""The global blob store: content by digest, shared by every repository.

No access control here: it is the fast read path under the linked blob
stores, and `put` is only called by them. Stat answers from the blob's `data`
file; opening takes the size from the caller (the seed's `fileReader` without
its extra `Stat`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import CANONICAL, Digest
from entrepot.errors import BlobUnknown
from entrepot.storage import paths
from entrepot.storage.driver.base import FileReader, PathNotFound, StorageDriver

CHUNK_SIZE: Final = 1 << 20


class BlobReader:
    """An async seekable reader over a stored blob of known size.

    The driver reader is opened lazily at the current position and reopened
    after a seek, so a seek costs nothing until the next read.
    """

    def __init__(self, driver: StorageDriver, path: str, size: int) -> None:
        self._driver = driver
        self._path = path
        self._size = size
        self._offset = 0
        self._reader: FileReader | None = None
        self._stale: list[FileReader] = []

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return self._path

    def tell(self) -> int:
        return self._offset

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._offset, 2: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        target = base + offset
        if target < 0:
            raise ValueError("cannot seek before the start of a blob")
        if target != self._offset:
            self._offset = target
            self._drop_reader()
        return target

    async def read(self, size: int = -1) -> bytes:
        remaining = self._size - self._offset
        if remaining <= 0:
            return b""
        want = remaining if size < 0 else min(size, remaining)
        if self._reader is None:
            await self._close_stale()
            try:
                self._reader = await self._driver.reader(self._path, self._offset)
            except PathNotFound as exc:
                raise BlobUnknown() from exc
        parts: list[bytes] = []
        got = 0
        while got < want:
            chunk = await self._reader.read(want - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self._offset += got
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(
        self, chunk_size: int = CHUNK_SIZE, length: int | None = None
    ) -> AsyncIterator[bytes]:
        remaining = self._size - self._offset if length is None else length
        while remaining > 0:
            chunk = await self.read(min(chunk_size, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    async def close(self) -> None:
        self._drop_reader()
        await self._close_stale()

    def _drop_reader(self) -> None:
        # seek() is synchronous: the old reader is closed on the next read.
        if self._reader is not None:
            self._stale.append(self._reader)
            self._reader = None

    async def _close_stale(self) -> None:
        while self._stale:
            await self._stale.pop().close()

    async def __aenter__(self) -> BlobReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class BlobStore:
    """Stat, read and write content by digest, with no access control."""

    def __init__(self, driver: StorageDriver, *, redirect: bool = True) -> None:
        self.driver = driver
        # `storage.redirect.disable`: serve content ourselves even when the
        # driver could hand out a URL.
        self.redirect = redirect

    async def stat(self, digest: Digest) -> Descriptor:
        try:
            info = await self.driver.stat(paths.blob_data(digest))
        except PathNotFound as exc:
            raise BlobUnknown(digest) from exc
        if info.is_dir:
            raise BlobUnknown(digest)
        return Descriptor(digest=digest, size=info.size, media_type=OCTET_STREAM)

    async def get(self, digest: Digest) -> bytes:
        try:
            return await self.driver.get_content(paths.blob_data(digest))
        except PathNotFound as exc:
            raise BlobUnknown(digest) from exc

    def open(self, descriptor: Descriptor) -> BlobReader:
        """A reader over the blob of `descriptor`, trusting its size."""
        return BlobReader(self.driver, paths.blob_data(descriptor.digest), descriptor.size)

    async def put(self, media_type: str, content: bytes) -> Descriptor:
        """Store small content (a manifest) under its canonical digest."""
        digest = Digest.of(content, CANONICAL)
        try:
            existing = await self.stat(digest)
        except BlobUnknown:
            await self.driver.put_content(paths.blob_data(digest), content)
        else:
            if existing.size == len(content):
                return Descriptor(digest=digest, size=len(content), media_type=media_type)
            # A blob of the wrong size under this digest is corrupt: replace it.
            await self.driver.put_content(paths.blob_data(digest), content)
        return Descriptor(digest=digest, size=len(content), media_type=media_type)

    async def local_path(self, digest: Digest) -> str | None:
        try:
            return await self.driver.local_path(paths.blob_data(digest))
        except PathNotFound as exc:
            raise BlobUnknown(digest) from exc

    async def redirect_url(self, digest: Digest, method: str = "GET") -> str | None:
        if not self.redirect:
            return None
        return await self.driver.redirect_url(paths.blob_data(digest), method)

    async def delete(self, digest: Digest) -> None:
        """Remove the content itself (garbage collection only)."""
        try:
            await self.driver.delete(paths.blob_dir(digest))
        except PathNotFound as exc:
            raise BlobUnknown(digest) from exc
