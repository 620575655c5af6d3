"""A `BlobDescriptorCacheProvider` in Redis: the descriptor cache that several
registry processes share.

Keys are Distribution's, so entrepot and Distribution instances on one Redis
read each other's entries:

- ``blobs::<digest>``: a hash (``digest``, ``size``, ``mediatype``), the
  global descriptor: immutable content metadata;
- ``repository::<name>::blobs``: a set of the digests repository ``<name>``
  is known to link (membership: mutable);
- ``repository::<name>::blobs::<digest>``: a hash holding the repository's
  own ``mediatype`` for that digest, which overrides the global one.

A repository-scoped stat answers only when all three agree. entrepot's own
scope for manifest revisions, ``<name>/_manifests``, is no Distribution name
(no component starts with ``_``), so it cannot collide with one.

Where entrepot differs, on purpose:

- Every key has a TTL (default 7 days), so the cache is bounded without an
  ``allkeys-lru`` Redis. A hash's TTL is renewed when it is written again (the
  write asserts its value afresh); a membership set's is only ever set, never
  extended, so no entry outlives its set by more than the TTL, even a stale
  one whose clear was lost.
- A repository-scoped clear removes the membership (``SREM``) and the
  repository hash, as the in-memory cache does. Distribution's clears the
  global hash and keeps the membership, which lets a later fill of the global
  hash from another repository resurrect the deleted link. Membership found
  without its hashes is dropped on sight (self-healing), which closes most
  of that window for deletes made by Distribution instances too.
- A set under a provisional digest (sha512) does not also make the canonical
  digest a member, as Distribution does: a link to one is not a link to the
  other, and each is cleared on its own.

Redis is a cache, never a dependency: when it is down, slow or refusing, every
call raises `CacheUnavailable` (never `BlobUnknown`) within the configured
timeouts, and the caller falls back to storage. After a connection failure
Redis is skipped for a short backoff (1 s, doubling up to 5 s): one call then
probes it while the others keep skipping, so a dead Redis costs one timeout
per backoff, not one per request, and the cache comes back by itself.
Failures are logged here, at most once per `log_interval`, with a count of
the ones left unsaid.

A clear that cannot reach Redis must not leave an entry that answers later.
A clear Redis did not confirm (it failed, was skipped, or its caller was
cancelled) is remembered; until it is replayed (first thing, before any
other command, once Redis answers), nothing in this process reads Redis.
The record is bounded (`max_pending`): past it, the whole cache is marked
for a purge of every descriptor key (``blobs::*``, ``repository::*``)
before it is used again. What this process cannot do is tell other
processes about a clear it could not make while they still reach Redis (a
partition), or remember it across its own restart: such an entry lives at
most one TTL. Keep the TTL short where that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from redis.asyncio import BlockingConnectionPool, Redis, SSLConnection
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from entrepot.blobs import CacheUnavailable
from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, DigestInvalid
from entrepot.storage.cache.memory import check_descriptor

log = logging.getLogger(__name__)

DEFAULT_ADDR: Final = "localhost:6379"
DEFAULT_TTL: Final = timedelta(days=7)
DEFAULT_DIAL_TIMEOUT: Final = timedelta(seconds=1)
DEFAULT_READ_TIMEOUT: Final = timedelta(seconds=1)
DEFAULT_WRITE_TIMEOUT: Final = timedelta(seconds=1)
DEFAULT_POOL_SIZE: Final = 64
DEFAULT_BACKOFF: Final = (1.0, 5.0)
DEFAULT_LOG_INTERVAL: Final = 30.0
DEFAULT_MAX_PENDING: Final = 10_000

# Replayed clears go out in pipelines of this many commands.
_BATCH: Final = 500
# What a purge deletes: every key of the descriptor cache, Distribution's too.
_PURGE_PATTERNS: Final = ("blobs::*", "repository::*")

Seconds = timedelta | float | int

# One repository-scoped fill, atomic: membership, global hash (media type
# only if absent, as Distribution), repository hash. The membership set gets
# a TTL only when it has none (EXPIRE NX, spelled so for Redis before 7).
_SET_SCOPED: Final = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
redis.call('HSET', KEYS[2], 'digest', ARGV[2], 'size', ARGV[3])
redis.call('HSETNX', KEYS[2], 'mediatype', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[3], 'mediatype', ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 1
"""


# -- keys (Distribution's) --


def descriptor_key(digest: Digest) -> str:
    return f"blobs::{digest}"


def membership_key(scope: str) -> str:
    return f"repository::{scope}::blobs"


def repository_descriptor_key(scope: str, digest: Digest) -> str:
    return f"repository::{scope}::blobs::{digest}"


# -- settings --


class RedisTLSSettingsLike(Protocol):
    @property
    def enabled(self) -> bool: ...

    @property
    def certificate(self) -> str | None: ...

    @property
    def key(self) -> str | None: ...

    @property
    def rootcas(self) -> Sequence[str]: ...


class RedisSettingsLike(Protocol):
    """What `from_settings` reads: the shape of `entrepot.config.RedisSettings`."""

    @property
    def addresses(self) -> Sequence[str]: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def db(self) -> int: ...

    @property
    def dialtimeout(self) -> timedelta | None: ...

    @property
    def readtimeout(self) -> timedelta | None: ...

    @property
    def writetimeout(self) -> timedelta | None: ...

    @property
    def max_active(self) -> int | None: ...

    @property
    def max_idle(self) -> int | None: ...

    @property
    def idle_timeout(self) -> timedelta | None: ...

    @property
    def tls(self) -> RedisTLSSettingsLike: ...


def _seconds(value: Seconds | None, default: timedelta) -> float:
    """Seconds of a duration; none or zero means the default (as in Go)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value or 0)
    if seconds == 0:
        return default.total_seconds()
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; the port defaults to 6379)."""
    host, sep, port = addr.rpartition(":")
    if not sep or host.endswith(":") or (":" in host and not host.startswith("[")):
        host, port = addr, "6379"  # no port, or a bare IPv6 address
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a Redis address (host:port): {addr!r}")
    return host, int(port)


def _ca_data(rootcas: Sequence[str]) -> str | None:
    """The PEM text of every CA file, for one TLS context that trusts them all."""
    if not rootcas:
        return None
    return "\n".join(Path(path).read_text(encoding="ascii") for path in rootcas)


# -- the reporter and the breaker --


class _Reporter:
    """Logs a failure at most once per interval, with how many were left unsaid."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last = -math.inf
        self._unsaid = 0

    def failure(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self._interval:
            self._unsaid += 1
            return
        suffix = f" ({self._unsaid} more failures since the last report)" if self._unsaid else ""
        log.warning(message + suffix, *args)
        self._last = now
        self._unsaid = 0

    def skipped(self) -> None:
        self._unsaid += 1


# -- the cache --


class RedisBlobDescriptorCache:
    """The global descriptor cache in Redis; hands out repository-scoped views.

    `addr` is ``host:port``; the timeouts are durations (`timedelta` or
    seconds); `max_active` bounds the connection pool (callers wait for a
    free connection, within the timeouts); `idle_timeout` makes a connection
    idle that long check itself with a PING before use. redis-py has no
    maximum of idle connections: `max_idle` is accepted for Distribution's
    configuration and not applied. `ttl` is the lifetime of every key.
    """

    def __init__(
        self,
        addr: str = DEFAULT_ADDR,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        dialtimeout: Seconds | None = None,
        readtimeout: Seconds | None = None,
        writetimeout: Seconds | None = None,
        max_active: int | None = None,
        max_idle: int | None = None,
        idle_timeout: Seconds | None = None,
        tls: bool = False,
        tls_certificate: str | None = None,
        tls_key: str | None = None,
        tls_rootcas: Sequence[str] = (),
        ttl: Seconds = DEFAULT_TTL,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        log_interval: float = DEFAULT_LOG_INTERVAL,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        host, port = split_addr(addr)
        self.addr = addr
        ttl_seconds = _seconds(ttl, DEFAULT_TTL)
        self.ttl = max(1, math.ceil(ttl_seconds))
        dial = _seconds(dialtimeout, DEFAULT_DIAL_TIMEOUT)
        read = _seconds(readtimeout, DEFAULT_READ_TIMEOUT)
        write = _seconds(writetimeout, DEFAULT_WRITE_TIMEOUT)
        # redis-py has one socket timeout for reads and writes.
        io = max(read, write)
        # A whole round trip: a free connection, a connect, a write, a read.
        self._call_timeout = dial + read + write + io
        if backoff[0] <= 0 or backoff[1] < backoff[0]:
            raise ValueError("backoff is (first, most) with 0 < first <= most")
        if max_pending <= 0:
            raise ValueError("max_pending must be positive")
        self._backoff = backoff
        self._max_pending = max_pending
        self._clock = clock
        self._report = _Reporter(log_interval, clock)
        self.max_idle = max_idle  # not applied: see the class docstring

        connection_class: type[AbstractConnection] = Connection
        extra: dict[str, Any] = {}
        if tls or tls_certificate or tls_rootcas:
            connection_class = SSLConnection
            extra = {
                "ssl_certfile": tls_certificate,
                "ssl_keyfile": tls_key,
                "ssl_ca_data": _ca_data(tls_rootcas),
            }
        idle = _seconds(idle_timeout, timedelta(0)) if idle_timeout else 0.0
        health = max(1, round(idle)) if idle else 0
        pool = BlockingConnectionPool(
            max_connections=max_active or DEFAULT_POOL_SIZE,
            timeout=dial + read,
            connection_class=connection_class,
            host=host,
            port=port,
            db=db,
            username=username,
            password=password,
            socket_connect_timeout=dial,
            socket_timeout=io,
            # No retries: a failed call falls back to storage at once, and
            # the breaker decides when to try Redis again.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=health,
            decode_responses=True,
            client_name="entrepot",
            **extra,
        )
        self._client: Redis = Redis(connection_pool=pool)

        # Breaker: Redis is skipped until `_down_until`; one call probes it then.
        self._down_until: float | None = None
        self._failures = 0
        self._probing = False
        # Clears Redis has not confirmed: (scope or None for the global
        # descriptor, digest) -> the generation they were recorded at.
        self._pending: dict[tuple[str | None, Digest], int] = {}
        self._purge_at: int | None = None  # generation at which a purge was needed
        self._generation = 0

    @classmethod
    def from_settings(
        cls,
        settings: RedisSettingsLike,
        *,
        ttl: Seconds = DEFAULT_TTL,
        **options: Any,
    ) -> RedisBlobDescriptorCache:
        """Built from the ``redis`` section of the configuration."""
        addresses = list(settings.addresses)
        if len(addresses) != 1:
            raise ValueError(
                "the Redis descriptor cache takes one address (no cluster or sentinel); "
                f"got {addresses!r}"
            )
        return cls(
            addresses[0],
            username=settings.username,
            password=settings.password,
            db=settings.db,
            dialtimeout=settings.dialtimeout,
            readtimeout=settings.readtimeout,
            writetimeout=settings.writetimeout,
            max_active=settings.max_active,
            max_idle=settings.max_idle,
            idle_timeout=settings.idle_timeout,
            tls=settings.tls.enabled,
            tls_certificate=settings.tls.certificate,
            tls_key=settings.tls.key,
            tls_rootcas=tuple(settings.tls.rootcas),
            ttl=ttl,
            **options,
        )

    # -- the global descriptor --

    async def stat(self, digest: Digest) -> Descriptor:
        async def op(pipe: Any) -> list[Any]:
            pipe.hmget(descriptor_key(digest), "digest", "size", "mediatype")
            return list(await self._execute(pipe))

        (fields,) = await self._run(op)
        descriptor = _descriptor(digest, fields, None)
        if descriptor is None:
            raise BlobUnknown(digest)
        return descriptor

    async def set(self, digest: Digest, descriptor: Descriptor) -> None:
        """Describe `digest`; as Distribution, a media type already there stays
        (repository-scoped entries carry their own)."""
        _check(digest, descriptor)
        key = descriptor_key(digest)

        async def op(pipe: Any) -> list[Any]:
            pipe.hset(key, mapping={"digest": str(descriptor.digest), "size": descriptor.size})
            pipe.hsetnx(key, "mediatype", descriptor.media_type)
            pipe.expire(key, self.ttl)
            return list(await self._execute(pipe))

        await self._run(op, transaction=True)

    async def clear(self, digest: Digest) -> None:
        async def op(pipe: Any) -> list[Any]:
            pipe.delete(descriptor_key(digest))
            return list(await self._execute(pipe))

        (deleted,) = await self._clearing(None, digest, op)
        if not deleted:
            raise BlobUnknown(digest)

    def repository_scoped(self, name: str) -> RepositoryScopedRedisCache:
        if not name or "::" in name:
            raise ValueError(f"not a repository scope: {name!r}")
        return RepositoryScopedRedisCache(self, name)

    # -- life --

    async def ping(self) -> None:
        """Raise `CacheUnavailable` unless Redis answers (for health checks)."""

        async def op(pipe: Any) -> list[Any]:
            pipe.ping()
            return list(await self._execute(pipe))

        await self._run(op)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def available(self) -> bool:
        """False while Redis is being skipped after a failure."""
        return self._down_until is None

    # -- internals --

    async def _execute(self, pipe: Any) -> list[Any]:
        async with asyncio.timeout(self._call_timeout):
            return list(await pipe.execute())

    async def _run(
        self, op: Callable[[Any], Awaitable[list[Any]]], *, transaction: bool = False
    ) -> list[Any]:
        """Run `op` on a fresh pipeline, through the breaker, after replaying
        any clear Redis has not confirmed."""
        probe = False
        if self._down_until is not None:
            if self._clock() < self._down_until or self._probing:
                self._report.skipped()
                raise CacheUnavailable(f"redis at {self.addr} is unavailable")
            self._probing = probe = True
        try:
            if self._pending or self._purge_at is not None:
                await self._replay()
            async with self._client.pipeline(transaction=transaction) as pipe:
                result = await op(pipe)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # OSError covers TimeoutError, so the outer timeouts too.
            self._trip(exc)
            raise CacheUnavailable(f"redis at {self.addr} is unavailable: {exc!r}") from exc
        except RedisError as exc:
            self._report.failure("redis descriptor cache at %s failed: %r", self.addr, exc)
            raise CacheUnavailable(f"redis at {self.addr} failed: {exc!r}") from exc
        finally:
            if probe:
                self._probing = False
        if self._down_until is not None:
            log.info(
                "redis descriptor cache at %s answers again after %d failures",
                self.addr,
                self._failures,
            )
            self._down_until = None
            self._failures = 0
        return result

    def _trip(self, exc: BaseException) -> None:
        if self._down_until is not None and self._clock() < self._down_until:
            self._report.skipped()  # a call that was already on its way
            return
        first, most = self._backoff
        wait = min(most, first * 2 ** min(self._failures, 16))
        self._failures += 1
        self._down_until = self._clock() + wait
        self._report.failure(
            "redis descriptor cache at %s is unavailable (%r); falling back to storage, "
            "next try in %.1f s",
            self.addr,
            exc,
            wait,
        )

    async def _clearing(
        self,
        scope: str | None,
        digest: Digest,
        op: Callable[[Any], Awaitable[list[Any]]],
        *,
        transaction: bool = False,
    ) -> list[Any]:
        """Run a clear; if Redis did not confirm it (failure, skip, or the
        caller cancelled), remember it for replay."""
        try:
            return await self._run(op, transaction=transaction)
        except BaseException:
            self._record(scope, digest)
            raise

    def _record(self, scope: str | None, digest: Digest) -> None:
        """Remember a clear Redis did not confirm: this process replays it
        before anything else it asks Redis, and trusts nothing until then."""
        self._generation += 1
        if self._purge_at is not None:
            self._purge_at = self._generation  # the purge covers it
            return
        self._pending[(scope, digest)] = self._generation
        if len(self._pending) > self._max_pending:
            log.error(
                "redis descriptor cache at %s: more than %d clears could not be made; "
                "every descriptor key will be purged before the cache is used again",
                self.addr,
                self._max_pending,
            )
            self._pending.clear()
            self._purge_at = self._generation

    async def _replay(self) -> None:
        if self._purge_at is not None:
            purge_at = self._purge_at
            await self._purge()
            if self._purge_at == purge_at:
                self._purge_at = None
        entries = list(self._pending.items())
        for start in range(0, len(entries), _BATCH):
            batch = entries[start : start + _BATCH]
            async with self._client.pipeline(transaction=False) as pipe:
                for (scope, digest), _ in batch:
                    if scope is None:
                        pipe.delete(descriptor_key(digest))
                    else:
                        pipe.srem(membership_key(scope), str(digest))
                        pipe.delete(repository_descriptor_key(scope, digest))
                await self._execute(pipe)
            for key, generation in batch:
                if self._pending.get(key) == generation:
                    del self._pending[key]
        if entries:
            log.info("redis descriptor cache at %s: %d clears replayed", self.addr, len(entries))

    async def _purge(self) -> None:
        deleted = 0
        for pattern in _PURGE_PATTERNS:
            cursor = 0
            while True:
                async with asyncio.timeout(self._call_timeout):
                    cursor, keys = await self._client.scan(cursor, match=pattern, count=1000)
                if keys:
                    async with asyncio.timeout(self._call_timeout):
                        deleted += await self._client.unlink(*keys)
                if not cursor:
                    break
        log.warning("redis descriptor cache at %s: purged %d keys", self.addr, deleted)


class RepositoryScopedRedisCache:
    """One repository's view: a digest is known only if linked there."""

    def __init__(self, parent: RedisBlobDescriptorCache, name: str) -> None:
        self._parent = parent
        self._name = name
        self._members = membership_key(name)

    async def stat(self, digest: Digest) -> Descriptor:
        member = str(digest)
        own = repository_descriptor_key(self._name, digest)

        async def op(pipe: Any) -> list[Any]:
            pipe.sismember(self._members, member)
            pipe.hmget(descriptor_key(digest), "digest", "size", "mediatype")
            pipe.hget(own, "mediatype")
            return list(await self._parent._execute(pipe))

        parent = self._parent
        is_member, fields, media_type = await parent._run(op, transaction=True)
        if not is_member:
            raise BlobUnknown(digest)
        # As Distribution: no repository hash, no answer.
        descriptor = _descriptor(digest, fields, media_type) if media_type else None
        if descriptor is None:
            # A membership without its descriptors: expired, evicted, or
            # cleared by a Distribution instance (which keeps the membership).
            # Drop it, so that a later fill of the global descriptor through
            # another repository cannot make it answer again.
            async def heal(pipe: Any) -> list[Any]:
                pipe.srem(self._members, member)
                return list(await parent._execute(pipe))

            with contextlib.suppress(CacheUnavailable):
                await parent._run(heal)
            raise BlobUnknown(digest)
        return descriptor

    async def set(self, digest: Digest, descriptor: Descriptor) -> None:
        _check(digest, descriptor)
        parent = self._parent
        keys = (
            self._members,
            descriptor_key(digest),
            repository_descriptor_key(self._name, digest),
        )
        args = (
            str(digest),
            str(descriptor.digest),
            descriptor.size,
            descriptor.media_type,
            parent.ttl,
        )

        async def op(pipe: Any) -> list[Any]:
            pipe.eval(_SET_SCOPED, len(keys), *keys, *args)
            return list(await parent._execute(pipe))

        await parent._run(op)

    async def clear(self, digest: Digest) -> None:
        parent = self._parent

        async def op(pipe: Any) -> list[Any]:
            pipe.srem(self._members, str(digest))
            pipe.delete(repository_descriptor_key(self._name, digest))
            return list(await parent._execute(pipe))

        removed, _ = await parent._clearing(self._name, digest, op, transaction=True)
        if not removed:
            raise BlobUnknown(digest)


def _check(digest: Digest, descriptor: Descriptor) -> None:
    check_descriptor(descriptor)
    if digest != descriptor.digest and digest.algorithm == descriptor.digest.algorithm:
        raise ValueError(f"descriptor of {descriptor.digest} cannot describe {digest}")


def _descriptor(digest: Digest, fields: list[Any], media_type: str | None) -> Descriptor | None:
    """The descriptor of a ``blobs::`` hash (its media type overridden by the
    repository's), or None where the entry is missing or makes no sense."""
    if not isinstance(fields, list) or len(fields) != 3:
        return None
    canonical, size, global_type = fields
    if canonical is None or size is None:
        return None
    try:
        parsed = Digest.parse(canonical)
        length = int(size)
    except (DigestInvalid, ValueError):
        return None
    if length < 0 or (parsed.algorithm == digest.algorithm and parsed != digest):
        return None
    chosen = media_type if media_type is not None else global_type
    if not chosen:
        return None
    return Descriptor(digest=parsed, size=length, media_type=chosen)
