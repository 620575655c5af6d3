"""The Redis descriptor cache, against a real `redis-server` on a free loopback
port (Debian's `redis-server`; no persistence, in a temporary directory).

The provider contract runs on the in-memory cache and the Redis one alike.
Then what only Redis has: Distribution's key layout (entries written by
either are read by both), a TTL on every key, several registry processes
sharing one Redis and one storage root, and a Redis that dies, hangs
(SIGSTOP) or comes back: stats keep working from storage within the
timeouts, failures are logged once per interval, a lost clear never answers
later, and the cache is used again once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from entrepot.blobs import BlobDescriptorCacheProvider, CacheUnavailable
from entrepot.config import RedisSettings
from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, ManifestUnknown
from entrepot.storage.cache.cachedstatter import CachedBlobStatter
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.cache.redis import (
    RedisBlobDescriptorCache,
    descriptor_key,
    membership_key,
    repository_descriptor_key,
    split_addr,
)
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry, Repository
from tests.support import free_port

REDIS_SERVER = shutil.which("redis-server")
LOGGER = "entrepot.storage.cache.redis"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TIMEOUT = 0.2  # every Redis timeout of the caches under test, in seconds
BACKOFF = (0.2, 0.4)


# -- a real Redis --


class RedisServer:
    """One `redis-server` process that can be stopped, frozen and restarted
    on the same port."""

    def __init__(self, directory: Path) -> None:
        assert REDIS_SERVER is not None
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        assert self.proc is None
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self.directory),
            "logfile": str(self.directory / "redis.log"),
        }
        argv = [REDIS_SERVER]
        for name, value in options.items():
            argv += [f"--{name}", value]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING:\n{log}")
            time.sleep(0.02)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def freeze(self) -> None:
        """Hang the server: connections are accepted, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        # The test command installs it: never pass by skipping.
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def inspect(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client, to look at the keys the caches write."""
    client = aioredis.Redis(port=redis_server.port, decode_responses=True, socket_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()


CacheFactory = Callable[..., RedisBlobDescriptorCache]


@pytest.fixture
async def make_cache(redis_server: RedisServer) -> AsyncIterator[CacheFactory]:
    """Caches on the server, with short timeouts and backoff; all closed at the end."""
    caches: list[RedisBlobDescriptorCache] = []

    def make(**options: Any) -> RedisBlobDescriptorCache:
        settings: dict[str, Any] = {
            "dialtimeout": TIMEOUT,
            "readtimeout": TIMEOUT,
            "writetimeout": TIMEOUT,
            "backoff": BACKOFF,
            **options,
        }
        cache = RedisBlobDescriptorCache(redis_server.addr, **settings)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.close()


@pytest.fixture(params=["inmemory", "redis"])
def provider(request: pytest.FixtureRequest) -> BlobDescriptorCacheProvider:
    if request.param == "inmemory":
        return InMemoryBlobDescriptorCache()
    make: CacheFactory = request.getfixturevalue("make_cache")
    return make()


# -- helpers --


def descriptor_of(seed: int, media_type: str = OCTET_STREAM) -> Descriptor:
    data = f"blob {seed}".encode()
    return Descriptor(digest=Digest.of(data), size=len(data), media_type=media_type)


async def push(repo: Repository, content: bytes) -> Descriptor:
    writer = await repo.blobs.create()
    await writer.write(content)
    return await writer.commit(Digest.of(content))


def manifest(seed: int) -> bytes:
    return (
        b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
        b'"digest":"' + str(Digest.of(str(seed).encode())).encode() + b'","size":1},'
        b'"layers":[]}'
    )


class CountingStatter:
    """A backend that knows some descriptors and counts its stats."""

    def __init__(self, *descriptors: Descriptor) -> None:
        self.known = {d.digest: d for d in descriptors}
        self.calls = 0

    async def stat(self, digest: Digest) -> Descriptor:
        self.calls += 1
        try:
            return self.known[digest]
        except KeyError:
            raise BlobUnknown(digest) from None


async def timed(call: Awaitable[Any]) -> float:
    start = time.monotonic()
    await call
    return time.monotonic() - start


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def wait_for_backoff() -> None:
    await asyncio.sleep(BACKOFF[1] + 0.05)


# -- the provider contract (in memory and in Redis) --


async def test_an_unknown_digest_is_a_miss(provider: BlobDescriptorCacheProvider) -> None:
    digest = descriptor_of(0).digest
    with pytest.raises(BlobUnknown):
        await provider.stat(digest)
    with pytest.raises(BlobUnknown):
        await provider.repository_scoped("foo/bar").stat(digest)


async def test_set_then_stat(provider: BlobDescriptorCacheProvider) -> None:
    one, two = descriptor_of(1), descriptor_of(2, LAYER)
    await provider.set(one.digest, one)
    assert await provider.stat(one.digest) == one

    scoped = provider.repository_scoped("foo/bar")
    await scoped.set(two.digest, two)
    assert await scoped.stat(two.digest) == two
    assert await provider.stat(two.digest) == two  # the global entry
    with pytest.raises(BlobUnknown):
        await scoped.stat(one.digest)  # known globally, not linked here


async def test_membership_is_per_repository(provider: BlobDescriptorCacheProvider) -> None:
    d = descriptor_of(3)
    await provider.repository_scoped("a").set(d.digest, d)
    assert await provider.repository_scoped("a").stat(d.digest) == d
    for other in ("b", "a/b", "a/_manifests", "b/a"):
        with pytest.raises(BlobUnknown):
            await provider.repository_scoped(other).stat(d.digest)


async def test_clear_forgets(provider: BlobDescriptorCacheProvider) -> None:
    d = descriptor_of(4)
    a, b = provider.repository_scoped("a"), provider.repository_scoped("b")
    await a.set(d.digest, d)
    await b.set(d.digest, d)

    await a.clear(d.digest)
    with pytest.raises(BlobUnknown):
        await a.stat(d.digest)
    assert await b.stat(d.digest) == d  # other repositories keep their links
    assert await provider.stat(d.digest) == d  # and the content is still described

    await provider.clear(d.digest)
    with pytest.raises(BlobUnknown):
        await provider.stat(d.digest)
    with pytest.raises(BlobUnknown):
        await b.stat(d.digest)  # no descriptor, no answer


async def test_clear_of_an_unknown_digest(provider: BlobDescriptorCacheProvider) -> None:
    d = descriptor_of(5)
    with pytest.raises(BlobUnknown):
        await provider.clear(d.digest)
    with pytest.raises(BlobUnknown):
        await provider.repository_scoped("a").clear(d.digest)
    await provider.set(d.digest, d)
    with pytest.raises(BlobUnknown):
        await provider.repository_scoped("a").clear(d.digest)  # known, not linked here
    await provider.repository_scoped("a").set(d.digest, d)
    await provider.repository_scoped("a").clear(d.digest)
    with pytest.raises(BlobUnknown):
        await provider.repository_scoped("a").clear(d.digest)


async def test_a_provisional_digest_answers_with_the_canonical_descriptor(
    provider: BlobDescriptorCacheProvider,
) -> None:
    content = b"provisional"
    canonical = Descriptor(digest=Digest.of(content), size=len(content), media_type=LAYER)
    provisional = Digest.of(content, "sha512")
    scoped = provider.repository_scoped("a")
    await scoped.set(provisional, canonical)
    assert await scoped.stat(provisional) == canonical
    with pytest.raises(BlobUnknown):
        await scoped.stat(canonical.digest)  # a link to one is not a link to the other


async def test_impossible_descriptors_are_refused(provider: BlobDescriptorCacheProvider) -> None:
    digest = Digest.of(b"x")
    for bad in (Descriptor(digest=digest, size=-1), Descriptor(digest, 1, media_type="")):
        with pytest.raises(ValueError, match=r"negative size|no media type"):
            await provider.set(digest, bad)
        with pytest.raises(ValueError, match=r"negative size|no media type"):
            await provider.repository_scoped("a").set(digest, bad)


# -- Distribution's layout, TTLs --


async def test_keys_are_distributions(make_cache: CacheFactory, inspect: aioredis.Redis) -> None:
    cache = make_cache()
    d = descriptor_of(6, LAYER)
    await cache.repository_scoped("library/ubuntu").set(d.digest, d)

    assert await inspect.hgetall(descriptor_key(d.digest)) == {
        "digest": str(d.digest),
        "size": str(d.size),
        "mediatype": LAYER,
    }
    assert descriptor_key(d.digest) == f"blobs::{d.digest}"
    members = membership_key("library/ubuntu")
    assert members == "repository::library/ubuntu::blobs"
    assert await inspect.smembers(members) == {str(d.digest)}
    own = repository_descriptor_key("library/ubuntu", d.digest)
    assert own == f"repository::library/ubuntu::blobs::{d.digest}"
    assert await inspect.hgetall(own) == {"mediatype": LAYER}
    assert sorted(await inspect.keys("*")) == sorted([descriptor_key(d.digest), members, own])


async def test_every_key_has_a_ttl(make_cache: CacheFactory, inspect: aioredis.Redis) -> None:
    cache = make_cache(ttl=timedelta(hours=1))
    one, two, three = descriptor_of(7), descriptor_of(8), descriptor_of(9)
    await cache.set(one.digest, one)
    await cache.repository_scoped("a").set(two.digest, two)
    keys = await inspect.keys("*")
    assert len(keys) == 4
    for key in keys:
        assert 3500 < await inspect.ttl(key) <= 3600, key

    # A membership set's TTL is never extended (a stale member cannot ride
    # along with fresh ones); a hash's is renewed when it is written again.
    members = membership_key("a")
    await inspect.expire(members, 50)
    await inspect.expire(descriptor_key(two.digest), 50)
    await cache.repository_scoped("a").set(three.digest, three)
    await cache.repository_scoped("a").set(two.digest, two)
    assert 0 < await inspect.ttl(members) <= 50
    assert await inspect.ttl(descriptor_key(two.digest)) > 3500
    # A set without a TTL (written by Distribution) gets one.
    await inspect.persist(members)
    await cache.repository_scoped("a").set(three.digest, three)
    assert 3500 < await inspect.ttl(members) <= 3600


async def test_entries_written_by_distribution_are_read(
    make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    """Distribution writes no TTL and may override the media type per repository."""
    d = descriptor_of(10)
    await inspect.hset(
        descriptor_key(d.digest),
        mapping={"digest": str(d.digest), "size": d.size, "mediatype": OCTET_STREAM},
    )
    await inspect.sadd(membership_key("a"), str(d.digest))
    await inspect.hset(repository_descriptor_key("a", d.digest), "mediatype", LAYER)
    cache = make_cache()
    assert await cache.stat(d.digest) == d
    assert await cache.repository_scoped("a").stat(d.digest) == Descriptor(
        digest=d.digest, size=d.size, media_type=LAYER
    )


async def test_a_delete_by_distribution_does_not_come_back(
    make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    """Distribution's scoped clear deletes the global hash and keeps the
    membership; a later fill of the global hash (through another repository)
    must not make the deleted link answer again."""
    cache = make_cache()
    d = descriptor_of(11)
    await cache.repository_scoped("a").set(d.digest, d)
    await cache.repository_scoped("b").set(d.digest, d)
    await inspect.hdel(descriptor_key(d.digest), "digest", "size", "mediatype")

    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("a").stat(d.digest)
    assert not await inspect.sismember(membership_key("a"), str(d.digest))  # healed
    await cache.repository_scoped("b").set(d.digest, d)
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("a").stat(d.digest)


async def test_a_delete_by_entrepot_is_seen_by_distribution(
    make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    cache = make_cache()
    d = descriptor_of(12)
    await cache.repository_scoped("a").set(d.digest, d)
    await cache.repository_scoped("a").clear(d.digest)
    # What Distribution's scoped stat asks first.
    assert not await inspect.sismember(membership_key("a"), str(d.digest))
    assert not await inspect.exists(repository_descriptor_key("a", d.digest))


async def test_corrupt_entries_are_misses(
    make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    cache = make_cache()
    d = descriptor_of(13)
    other = descriptor_of(14)
    corrupt: list[dict[Any, Any]] = [
        {"digest": "sha256:nothex", "size": "1", "mediatype": OCTET_STREAM},
        {"digest": str(d.digest), "size": "-1", "mediatype": OCTET_STREAM},
        {"digest": str(d.digest), "size": "many", "mediatype": OCTET_STREAM},
        {"digest": str(other.digest), "size": "1", "mediatype": OCTET_STREAM},
        {"digest": str(d.digest), "length": "1", "mediatype": OCTET_STREAM},  # before 2.1
    ]
    for fields in corrupt:
        await inspect.delete(descriptor_key(d.digest))
        await inspect.hset(descriptor_key(d.digest), mapping=fields)
        with pytest.raises(BlobUnknown):
            await cache.stat(d.digest)


async def test_settings(redis_server: RedisServer) -> None:
    settings = RedisSettings.parse(
        {
            "addr": redis_server.addr,
            "db": 3,
            "dialtimeout": "200ms",
            "readtimeout": "200ms",
            "writetimeout": "200ms",
            "pool": {"maxidle": 2, "maxactive": 4, "idletimeout": "300s"},
        }
    )
    cache = RedisBlobDescriptorCache.from_settings(settings, ttl=timedelta(minutes=5))
    try:
        d = descriptor_of(15)
        await cache.repository_scoped("a").set(d.digest, d)
        assert await cache.repository_scoped("a").stat(d.digest) == d
        assert cache.ttl == 300
    finally:
        await cache.close()
    client = aioredis.Redis(port=redis_server.port, db=3, decode_responses=True)
    try:
        assert await client.exists(descriptor_key(d.digest))
    finally:
        await client.aclose()

    two = RedisSettings.parse({"addrs": ["127.0.0.1:1", "127.0.0.1:2"]})
    with pytest.raises(ValueError, match="one address"):
        RedisBlobDescriptorCache.from_settings(two)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("localhost:6379", ("localhost", 6379)),
        ("redis", ("redis", 6379)),
        ("10.0.0.1:7000", ("10.0.0.1", 7000)),
        ("[::1]:6380", ("::1", 6380)),
        ("::1", ("::1", 6379)),
    ],
)
def test_split_addr(addr: str, expected: tuple[str, int]) -> None:
    assert split_addr(addr) == expected


@pytest.mark.parametrize("addr", ["", ":6379", "host:port", "host:0", "host:70000"])
def test_split_addr_refuses(addr: str) -> None:
    with pytest.raises(ValueError, match="not a Redis address"):
        split_addr(addr)


def test_durations_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive duration"):
        RedisBlobDescriptorCache("127.0.0.1:1", readtimeout=-1)
    # Zero means the default, as in Distribution's Go.
    assert RedisBlobDescriptorCache("127.0.0.1:1", ttl=0).ttl == 7 * 24 * 3600


# -- registries sharing one Redis and one storage root --


async def test_a_registry_on_redis(
    tmp_path: Path, make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    registry = Registry(FilesystemDriver(tmp_path / "registry"), make_cache())
    repo = registry.repository("foo/bar")
    pushed = await push(repo, b"layer on redis")
    assert await repo.blobs.stat(pushed.digest) == pushed
    assert await repo.blobs.get(pushed.digest) == b"layer on redis"
    assert await inspect.sismember(membership_key("foo/bar"), str(pushed.digest))
    revision = await repo.manifests.put(manifest(1), OCI_MANIFEST)
    assert await repo.manifests.stat(revision.digest) == revision
    assert await inspect.sismember(membership_key("foo/bar/_manifests"), str(revision.digest))
    with pytest.raises(BlobUnknown):
        await repo.blobs.stat(revision.digest)  # a manifest is not a layer, cached or not


async def test_two_processes_see_each_others_deletes_at_once(
    tmp_path: Path, make_cache: CacheFactory
) -> None:
    root = tmp_path / "registry"
    one = Registry(FilesystemDriver(root), make_cache())
    two = Registry(FilesystemDriver(root), make_cache())
    a1, a2 = one.repository("team/app"), two.repository("team/app")

    pushed = await push(a1, b"shared layer")
    await push(one.repository("team/base"), b"shared layer")
    assert await a2.blobs.stat(pushed.digest) == pushed  # warm for both
    await a1.blobs.delete(pushed.digest)
    with pytest.raises(BlobUnknown):
        await a2.blobs.stat(pushed.digest)
    assert await two.repository("team/base").blobs.stat(pushed.digest) == pushed

    await a1.blobs.mount("team/base", pushed.digest)  # linked again
    assert await a2.blobs.stat(pushed.digest) == pushed
    await a2.blobs.delete(pushed.digest)
    with pytest.raises(BlobUnknown):
        await a1.blobs.stat(pushed.digest)

    first = await a1.manifests.put(manifest(2), OCI_MANIFEST)
    second = await a1.manifests.put(manifest(3), OCI_MANIFEST)
    await a1.tags.tag("latest", first.digest)
    assert await a2.tags.get("latest") == first.digest
    assert await a2.manifests.stat(first.digest) == first
    await a1.tags.tag("latest", second.digest)  # re-tag
    assert await a2.tags.get("latest") == second.digest
    await a1.manifests.delete(first.digest)
    with pytest.raises(ManifestUnknown):
        await a2.manifests.stat(first.digest)
    assert await a1.manifests.put(manifest(2), OCI_MANIFEST) == first  # pushed again
    assert (await a2.manifests.get(first.digest)).content == manifest(2)


# -- a Redis that goes away --


async def test_a_dead_redis_falls_back_to_storage_and_recovers(
    tmp_path: Path,
    redis_server: RedisServer,
    make_cache: CacheFactory,
    inspect: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    registry = Registry(FilesystemDriver(tmp_path / "registry"), make_cache(log_interval=60))
    repo = registry.repository("foo")
    pushed = [await push(repo, f"layer {i}".encode()) for i in range(3)]

    redis_server.stop()
    for _ in range(10):
        for d in pushed:
            assert await timed(repo.blobs.stat(d.digest)) < 1.0
            assert await repo.blobs.stat(d.digest) == d
    assert len(warnings_of(caplog)) == 1
    another = await push(repo, b"pushed while redis is down")
    assert await repo.blobs.stat(another.digest) == another

    redis_server.start()  # same port, empty
    await wait_for_backoff()
    assert await repo.blobs.stat(pushed[0].digest) == pushed[0]
    assert await inspect.sismember(membership_key("foo"), str(pushed[0].digest))
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert len(warnings_of(caplog)) == 1


async def test_the_cache_is_used_again_after_an_outage(
    redis_server: RedisServer, make_cache: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    d = descriptor_of(20)
    backend = CountingStatter(d)
    statter = CachedBlobStatter(make_cache(log_interval=60).repository_scoped("r"), backend)
    assert await statter.stat(d.digest) == d
    assert await statter.stat(d.digest) == d
    assert (statter.stats.hits, backend.calls) == (1, 1)

    redis_server.stop()
    for _ in range(10):
        assert await timed(statter.stat(d.digest)) < 1.0
    assert (statter.stats.hits, backend.calls) == (1, 11)
    assert len(warnings_of(caplog)) == 1

    redis_server.start()
    await wait_for_backoff()
    assert await statter.stat(d.digest) == d  # a miss: the new server is empty
    assert await statter.stat(d.digest) == d  # and a hit
    assert (statter.stats.hits, backend.calls) == (2, 12)


async def test_a_hanging_redis_costs_one_timeout_per_backoff(
    redis_server: RedisServer, make_cache: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(log_interval=60)
    scoped = cache.repository_scoped("r")
    d = descriptor_of(21)
    await scoped.set(d.digest, d)

    redis_server.freeze()
    try:
        first = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await scoped.stat(d.digest)
        assert TIMEOUT * 0.9 < time.monotonic() - first < 1.0
        assert not cache.available
        for _ in range(20):  # skipped while backing off: no wait at all
            start = time.monotonic()
            with pytest.raises(CacheUnavailable):
                await scoped.stat(d.digest)
            assert time.monotonic() - start < TIMEOUT / 2
        # Concurrent calls while one probes: one waits, the others skip.
        await wait_for_backoff()
        results = await asyncio.gather(
            *(scoped.stat(d.digest) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, CacheUnavailable) for r in results)
        assert len(warnings_of(caplog)) == 1
    finally:
        redis_server.thaw()
    await wait_for_backoff()
    assert await scoped.stat(d.digest) == d
    assert cache.available


async def test_errors_are_logged_once_per_interval(
    redis_server: RedisServer, make_cache: CacheFactory, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    cache = make_cache(log_interval=30, backoff=(1.0, 1.0), clock=lambda: now[0])
    d = descriptor_of(22)
    redis_server.stop()
    for second in range(0, 95):  # a failure each second (backoff 1 s) for 95 s
        now[0] = float(second)
        with pytest.raises(CacheUnavailable):
            await cache.stat(d.digest)
    messages = [r.getMessage() for r in warnings_of(caplog)]
    assert len(messages) == 4  # at 0, 30, 60 and 90 s
    assert "more failures since the last report" in messages[1]


# -- clears that Redis did not confirm --


async def test_a_clear_redis_missed_is_replayed_before_anything_else(
    redis_server: RedisServer, make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    cache = make_cache()
    d, kept = descriptor_of(30), descriptor_of(31)
    scoped = cache.repository_scoped("r")
    await scoped.set(d.digest, d)
    await scoped.set(kept.digest, kept)
    await cache.set(kept.digest, kept)

    redis_server.freeze()
    try:
        with pytest.raises(CacheUnavailable):
            await scoped.stat(kept.digest)  # times out: Redis is skipped for a while
        with pytest.raises(CacheUnavailable):
            await scoped.clear(d.digest)
        with pytest.raises(CacheUnavailable):
            await cache.clear(kept.digest)
    finally:
        redis_server.thaw()
    # The stale entries are still in Redis...
    assert await inspect.sismember(membership_key("r"), str(d.digest))
    assert await inspect.exists(descriptor_key(kept.digest))
    # ...but they never answer: the clears go first.
    await wait_for_backoff()
    with pytest.raises(BlobUnknown):
        await scoped.stat(d.digest)
    assert not await inspect.sismember(membership_key("r"), str(d.digest))
    assert not await inspect.exists(repository_descriptor_key("r", d.digest))
    assert not await inspect.exists(descriptor_key(kept.digest))
    with pytest.raises(BlobUnknown):
        await cache.stat(kept.digest)


async def test_a_cancelled_clear_is_replayed(
    redis_server: RedisServer, make_cache: CacheFactory, inspect: aioredis.Redis
) -> None:
    # Cancelled by the test, not timed out: longer timeouts than the other
    # tests', so that a loaded machine's pause after the thaw is no outage.
    patient = {name: 2.0 for name in ("dialtimeout", "readtimeout", "writetimeout")}
    cache = make_cache(**patient)
    d = descriptor_of(32)
    await cache.repository_scoped("r").set(d.digest, d)
    redis_server.freeze()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cache.repository_scoped("r").clear(d.digest), 0.05)
    finally:
        redis_server.thaw()
    # The cancelled clear may or may not have reached Redis: say it did not.
    await asyncio.sleep(0.05)
    await inspect.sadd(membership_key("r"), str(d.digest))
    await inspect.hset(repository_descriptor_key("r", d.digest), "mediatype", OCTET_STREAM)
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("r").stat(d.digest)
    assert not await inspect.sismember(membership_key("r"), str(d.digest))


async def test_too_many_missed_clears_purge_the_cache(
    redis_server: RedisServer,
    make_cache: CacheFactory,
    inspect: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = make_cache(max_pending=2)
    scoped = cache.repository_scoped("r")
    descriptors = [descriptor_of(40 + i) for i in range(3)]
    for d in descriptors:
        await scoped.set(d.digest, d)
    await inspect.set("unrelated", "kept")

    redis_server.freeze()
    try:
        with pytest.raises(CacheUnavailable):
            await scoped.stat(descriptors[0].digest)
        for d in descriptors:
            with pytest.raises(CacheUnavailable):
                await scoped.clear(d.digest)
    finally:
        redis_server.thaw()
    await wait_for_backoff()
    with pytest.raises(BlobUnknown):
        await scoped.stat(descriptors[0].digest)
    assert await inspect.keys("*") == ["unrelated"]
    assert any("purged" in r.getMessage() for r in caplog.records)
    await scoped.set(descriptors[0].digest, descriptors[0])  # in use again
    assert await scoped.stat(descriptors[0].digest) == descriptors[0]


async def test_a_delete_while_redis_hangs_is_not_answered_later(
    tmp_path: Path, redis_server: RedisServer, make_cache: CacheFactory
) -> None:
    registry = Registry(FilesystemDriver(tmp_path / "registry"), make_cache())
    repo = registry.repository("foo")
    pushed = await push(repo, b"deleted during the outage")
    assert await repo.blobs.stat(pushed.digest) == pushed

    redis_server.freeze()
    try:
        await repo.blobs.delete(pushed.digest)
        with pytest.raises(BlobUnknown):
            await repo.blobs.stat(pushed.digest)
    finally:
        redis_server.thaw()
    await wait_for_backoff()
    with pytest.raises(BlobUnknown):
        await repo.blobs.stat(pushed.digest)
    # Once replayed, other processes do not see it either.
    other = Registry(FilesystemDriver(tmp_path / "registry"), make_cache())
    with pytest.raises(BlobUnknown):
        await other.repository("foo").blobs.stat(pushed.digest)
