"""The blob service vocabulary: protocols for stating, reading and writing
content by digest (the seed's `BlobStatter`, `BlobProvider`, `BlobIngester`,
`BlobWriter`, `BlobStore`, `BlobDescriptorService`).

Blobs are content; descriptors are handles. Every service takes and returns
`Descriptor`s, so metadata (small, cacheable) stays apart from content.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest


class CacheUnavailable(Exception):
    """A descriptor cache could not answer (unreachable, slow, refusing).

    Never a `BlobUnknown`: the caller must not take it for "no such blob",
    only fall back to storage. The cache has logged it (rate-limited)."""


class BlobReadStream(Protocol):
    """An async, seekable reader over one blob, which knows its size."""

    @property
    def size(self) -> int: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    async def read(self, size: int = -1) -> bytes: ...

    def chunks(self, chunk_size: int = ..., length: int | None = None) -> AsyncIterator[bytes]:
        """Stream from the current position, `length` bytes at most."""
        ...

    async def close(self) -> None: ...


class BlobStatter(Protocol):
    async def stat(self, digest: Digest) -> Descriptor:
        """The descriptor of the blob; `BlobUnknown` if there is none."""
        ...


class BlobDescriptorService(BlobStatter, Protocol):
    """Descriptors by digest, which can be set and cleared: a cache, or a
    primary store of metadata."""

    async def set(self, digest: Digest, descriptor: Descriptor) -> None: ...

    async def clear(self, digest: Digest) -> None:
        """Forget `digest`; `BlobUnknown` if it was not known."""
        ...


class BlobDescriptorCacheProvider(BlobDescriptorService, Protocol):
    """A global descriptor cache that also hands out repository-scoped ones."""

    def repository_scoped(self, name: str) -> BlobDescriptorService: ...


class BlobProvider(Protocol):
    async def get(self, digest: Digest) -> bytes:
        """The whole blob in memory: for small blobs (manifests, configs)."""
        ...

    async def open(self, digest: Digest) -> BlobReadStream: ...


class BlobServer(Protocol):
    """How a blob can be handed to a client without passing through Python."""

    async def local_path(self, digest: Digest) -> str | None: ...

    async def redirect_url(self, digest: Digest, method: str = "GET") -> str | None: ...


class BlobWriter(Protocol):
    """An upload session: content is written, then committed under a digest."""

    @property
    def id(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...

    async def write(self, data: bytes | memoryview) -> int: ...

    async def commit(self, provisional: Descriptor | Digest) -> Descriptor:
        """Verify and link the content; return its canonical descriptor."""
        ...

    async def cancel(self) -> None: ...

    async def close(self) -> None: ...


class BlobIngester(Protocol):
    async def put(self, media_type: str, content: bytes) -> Descriptor: ...

    async def create(self) -> BlobWriter: ...

    async def resume(self, upload_id: str) -> BlobWriter: ...


class BlobStore(BlobStatter, BlobProvider, BlobIngester, BlobServer, Protocol):
    """Everything a repository can do with its blobs."""

    async def mount(self, source: str, digest: Digest) -> Descriptor: ...

    async def delete(self, digest: Digest) -> None: ...
