"""The seed's cached statter: a `BlobDescriptorService` in front of a slower
`BlobStatter` (link checks in storage), filled on every miss."""

from __future__ import annotations

import logging

from entrepot import metrics
from entrepot.blobs import BlobDescriptorService, BlobStatter, CacheUnavailable
from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown

log = logging.getLogger(__name__)


class CacheStats:
    """Hit and miss counters, read by the metrics layer."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


class CachedBlobStatter:
    """Stat from the cache, else from the backend (and remember the answer)."""

    def __init__(
        self,
        cache: BlobDescriptorService,
        backend: BlobStatter,
        stats: CacheStats | None = None,
    ) -> None:
        self._cache = cache
        self._backend = backend
        self.stats = stats or CacheStats()

    async def stat(self, digest: Digest) -> Descriptor:
        try:
            descriptor = await self._cache.stat(digest)
        except (BlobUnknown, CacheUnavailable):
            pass
        except Exception:  # a broken cache must not fail the request
            log.warning("descriptor cache stat failed for %s", digest, exc_info=True)
        else:
            self.stats.hits += 1
            metrics.count_cache_hit()
            return descriptor
        self.stats.misses += 1
        metrics.count_cache_miss()
        descriptor = await self._backend.stat(digest)
        try:
            await self._cache.set(digest, descriptor)
        except CacheUnavailable:
            pass
        except Exception:
            log.warning("descriptor cache set failed for %s", digest, exc_info=True)
        return descriptor

    async def set(self, digest: Digest, descriptor: Descriptor) -> None:
        try:
            await self._cache.set(digest, descriptor)
        except CacheUnavailable:
            pass
        except Exception:
            log.warning("descriptor cache set failed for %s", digest, exc_info=True)

    async def clear(self, digest: Digest) -> None:
        try:
            await self._cache.clear(digest)
        except (BlobUnknown, CacheUnavailable):
            pass
        except Exception:
            log.warning("descriptor cache clear failed for %s", digest, exc_info=True)
