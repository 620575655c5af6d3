"""An in-memory `BlobDescriptorCacheProvider`: bounded LRU maps.

A global map of digest to descriptor, and per repository a bounded set of the
digests that repository is known to hold (Distribution's repository-scoped
cache). A repository-scoped `stat` answers only when both agree, so the
global entry (immutable content metadata) is shared and membership (mutable
links) is per repository, cleared on every delete.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Generic, TypeVar

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown

DEFAULT_SIZE: Final = 10_000

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("an LRU needs a positive size")
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


def check_descriptor(descriptor: Descriptor) -> None:
    """Refuse to cache a descriptor that could not describe real content."""
    if descriptor.size < 0:
        raise ValueError(f"descriptor of {descriptor.digest} has a negative size")
    if not descriptor.media_type:
        raise ValueError(f"descriptor of {descriptor.digest} has no media type")


class InMemoryBlobDescriptorCache:
    """The global cache; hands out repository-scoped views."""

    def __init__(self, size: int = DEFAULT_SIZE, repositories: int = 1_000) -> None:
        self._size = size
        self._descriptors: LRU[Digest, Descriptor] = LRU(size)
        self._repositories: LRU[str, LRU[Digest, bool]] = LRU(repositories)

    async def stat(self, digest: Digest) -> Descriptor:
        descriptor = self._descriptors.get(digest)
        if descriptor is None:
            raise BlobUnknown(digest)
        return descriptor

    async def set(self, digest: Digest, descriptor: Descriptor) -> None:
        check_descriptor(descriptor)
        self._descriptors.put(digest, descriptor)

    async def clear(self, digest: Digest) -> None:
        if self._descriptors.pop(digest) is None:
            raise BlobUnknown(digest)

    def repository_scoped(self, name: str) -> RepositoryScopedInMemoryCache:
        return RepositoryScopedInMemoryCache(self, name)

    def _membership(self, name: str, create: bool) -> LRU[Digest, bool] | None:
        members = self._repositories.get(name)
        if members is None and create:
            members = LRU(self._size)
            self._repositories.put(name, members)
        return members


class RepositoryScopedInMemoryCache:
    """One repository's view: a digest is known only if linked there."""

    def __init__(self, parent: InMemoryBlobDescriptorCache, name: str) -> None:
        self._parent = parent
        self._name = name

    async def stat(self, digest: Digest) -> Descriptor:
        members = self._parent._membership(self._name, create=False)
        if members is None or members.get(digest) is None:
            raise BlobUnknown(digest)
        return await self._parent.stat(digest)

    async def set(self, digest: Digest, descriptor: Descriptor) -> None:
        check_descriptor(descriptor)
        members = self._parent._membership(self._name, create=True)
        assert members is not None
        members.put(digest, True)
        await self._parent.set(digest, descriptor)

    async def clear(self, digest: Digest) -> None:
        members = self._parent._membership(self._name, create=False)
        if members is None or members.pop(digest) is None:
            raise BlobUnknown(digest)
