"""The linked blob store and what sits on it: a repository's blobs, upload
sessions that live in storage, mount and delete of links, manifests, tags,
the catalog and the descriptor cache.

Most tests run on both drivers. "Another process" is a fresh `Registry` on the
same storage (a new `FilesystemDriver` on the same root, a cold cache), or a
real child process where the point is two processes at once.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import random
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import Digest
from entrepot.errors import (
    BlobInvalidDigest,
    BlobInvalidLength,
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    TagInvalid,
    TagUnknown,
    Unsupported,
)
from entrepot.hashstate import ResumableHash
from entrepot.storage import paths
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.base import (
    FileInfo,
    FileReader,
    FileWriter,
    PathNotFound,
    StorageDriver,
)
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.registry import Registry, Repository
from entrepot.storage.upload import UploadWriter
from tests.storage.children import Child

KiB = 1024
MiB = 1024 * KiB
V2 = Path(paths.ROOT.lstrip("/"))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# -- fixtures and helpers --


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A filesystem storage root (created by the driver when first needed)."""
    return tmp_path / "registry"


@pytest.fixture(params=["inmemory", "filesystem", "s3"])
def driver(request: pytest.FixtureRequest, root: Path) -> StorageDriver:
    if request.param == "inmemory":
        return InMemoryDriver()
    if request.param == "s3":
        from tests.storage.driver.s3_server import new_driver

        return new_driver()
    return FilesystemDriver(root)


@pytest.fixture
def registry(driver: StorageDriver) -> Registry:
    return Registry(driver, InMemoryBlobDescriptorCache())


def reopen(driver: StorageDriver) -> StorageDriver:
    """The same storage as another process sees it: a new filesystem driver on
    the same root (an in-memory driver can only be shared)."""
    inner = driver.inner if isinstance(driver, CountingDriver) else driver
    if isinstance(inner, FilesystemDriver):
        return FilesystemDriver(inner.root)
    from entrepot.storage.driver.s3 import S3Driver

    if isinstance(inner, S3Driver):
        return S3Driver(inner.options)
    return inner


def cold(driver: StorageDriver, *, cache: bool = True, delete_enabled: bool = True) -> Registry:
    """A registry on the same storage with nothing cached: another process."""
    return Registry(
        reopen(driver),
        InMemoryBlobDescriptorCache() if cache else None,
        delete_enabled=delete_enabled,
    )


def blob_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def upload(repo: Repository, content: bytes, chunk: int = 256 * KiB) -> UploadWriter:
    """A new upload session holding `content` (open: not closed, not committed)."""
    writer = await repo.blobs.create()
    for start in range(0, len(content), chunk):
        await writer.write(content[start : start + chunk])
    return writer


async def push(repo: Repository, content: bytes, algorithm: str = "sha256") -> Descriptor:
    writer = await upload(repo, content)
    return await writer.commit(Digest.of(content, algorithm))


async def blob_data_files(driver: StorageDriver) -> list[str]:
    """Every file of the global blob store."""
    try:
        return [info.path async for info in driver.walk(paths.BLOBS) if not info.is_dir]
    except PathNotFound:
        return []


async def sessions(driver: StorageDriver, name: str) -> list[str]:
    """The upload sessions stored for repository `name`."""
    try:
        return await driver.list(paths.uploads(name))
    except PathNotFound:
        return []


async def exists(driver: StorageDriver, path: str) -> bool:
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


async def read_all(repo: Repository, digest: Digest) -> bytes:
    reader = await repo.blobs.open(digest)
    try:
        return b"".join([chunk async for chunk in reader.chunks(64 * KiB)])
    finally:
        await reader.close()


def manifest_bytes(seed: int, media_type: str = OCI_MANIFEST) -> bytes:
    config = Digest.of(str(seed).encode())
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config),
                "size": len(str(seed)),
            },
            "layers": [],
        },
        separators=(",", ":"),
    ).encode()


class SimulatedFailure(OSError):
    """A storage error injected by `CountingDriver.fault`."""


Fault = Callable[[str, str], bool]


class CountingDriver:
    """Wraps a driver and records every call made to it, as (method, path).

    Calls on the writers it hands out are recorded too, as `writer.<method>`.
    When `fault(method, path)` is true the call raises `SimulatedFailure`
    instead of reaching the driver: a storage error, or a crash at that point.
    """

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self.calls: builtins.list[tuple[str, str]] = []
        self.fault: Fault | None = None

    def record(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        if self.fault is not None and self.fault(method, path):
            raise SimulatedFailure(f"simulated failure of {method} {path}")

    def reset(self) -> builtins.list[tuple[str, str]]:
        calls, self.calls = self.calls, []
        return calls

    @property
    def name(self) -> str:
        return self.inner.name

    async def get_content(self, path: str) -> bytes:
        self.record("get_content", path)
        return await self.inner.get_content(path)

    async def put_content(self, path: str, content: bytes) -> None:
        self.record("put_content", path)
        await self.inner.put_content(path, content)

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        self.record("reader", path)
        return await self.inner.reader(path, offset)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        self.record("writer", path)
        return _RecordingWriter(self, path, await self.inner.writer(path, append))

    async def stat(self, path: str) -> FileInfo:
        self.record("stat", path)
        return await self.inner.stat(path)

    async def list(self, path: str) -> builtins.list[str]:
        self.record("list", path)
        return await self.inner.list(path)

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        for path in paths:
            self.record("list_many", path)
        return await self.inner.list_many(paths)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        self.record("walk", path)
        return self.inner.walk(path)

    async def move(self, source: str, dest: str) -> None:
        self.record("move", dest)
        await self.inner.move(source, dest)

    async def delete(self, path: str) -> None:
        self.record("delete", path)
        await self.inner.delete(path)

    async def local_path(self, path: str) -> str | None:
        self.record("local_path", path)
        return await self.inner.local_path(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self.record("redirect_url", path)
        return await self.inner.redirect_url(path, method)


class _RecordingWriter:
    def __init__(self, owner: CountingDriver, path: str, inner: FileWriter) -> None:
        self._owner = owner
        self._path = path
        self._inner = inner

    @property
    def size(self) -> int:
        return self._inner.size

    async def write(self, data: bytes | memoryview) -> int:
        self._owner.record("writer.write", self._path)
        return await self._inner.write(data)

    async def commit(self) -> None:
        self._owner.record("writer.commit", self._path)
        await self._inner.commit()

    async def cancel(self) -> None:
        self._owner.record("writer.cancel", self._path)
        await self._inner.cancel()

    async def close(self) -> None:
        self._owner.record("writer.close", self._path)
        await self._inner.close()


def test_counting_driver_is_a_driver() -> None:
    assert isinstance(CountingDriver(InMemoryDriver()), StorageDriver)


# -- provisional to canonical --


@pytest.mark.parametrize("provisional", ["digest", "descriptor"])
async def test_commit_under_sha512_answers_with_the_canonical_descriptor(
    driver: StorageDriver, provisional: str
) -> None:
    content = blob_bytes(3 * MiB + 17, seed=1)
    sha256, sha512 = Digest.of(content), Digest.of(content, "sha512")
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    repo = registry.repository("foo/bar")

    writer = await upload(repo, content)
    committed = await writer.commit(
        sha512 if provisional == "digest" else Descriptor(digest=sha512, size=len(content))
    )

    canonical = Descriptor(digest=sha256, size=len(content), media_type=OCTET_STREAM)
    assert committed == canonical
    # Warm (the commit filled the cache), without a cache, with a cold cache.
    for blobs in (
        repo.blobs,
        cold(driver, cache=False).repository("foo/bar").blobs,
        cold(driver).repository("foo/bar").blobs,
    ):
        for digest in (sha512, sha256, sha512):
            assert await blobs.stat(digest) == canonical
        assert await blobs.get(sha512) == content
        assert await blobs.get(sha256) == content

    # Both links name the canonical digest; the content is stored once, under it.
    expected_link = f"sha256:{sha256.hex}".encode()
    assert await driver.get_content(paths.layer_link("foo/bar", sha512)) == expected_link
    assert await driver.get_content(paths.layer_link("foo/bar", sha256)) == expected_link
    assert await blob_data_files(driver) == [paths.blob_data(sha256)]
    assert await sessions(driver, "foo/bar") == []


async def test_provisional_digest_layout_on_disk(root: Path) -> None:
    content = blob_bytes(MiB + 1, seed=2)
    sha256, sha512 = Digest.of(content), Digest.of(content, "sha512")
    repo = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("foo/bar")
    await push(repo, content, "sha512")

    v2 = root / V2
    layers = v2 / "repositories/foo/bar/_layers"
    # "sha256:<hex>", no newline: what Distribution writes and reads.
    link = b"sha256:" + sha256.hex.encode()
    assert (layers / "sha512" / sha512.hex / "link").read_bytes() == link
    assert (layers / "sha256" / sha256.hex / "link").read_bytes() == link
    data = v2 / "blobs/sha256" / sha256.hex[:2] / sha256.hex / "data"
    assert data.read_bytes() == content
    assert [p for p in (v2 / "blobs").rglob("*") if p.is_file()] == [data]
    assert list((v2 / "repositories/foo/bar/_uploads").iterdir()) == []

    # Another process, cold cache, on the same root.
    other = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("foo/bar")
    assert (await other.blobs.stat(sha512)).digest == sha256
    assert (await other.blobs.stat(sha256)).size == len(content)
    assert await read_all(other, sha512) == content


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_empty_blob_commits(driver: StorageDriver, algorithm: str) -> None:
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    repo = registry.repository("empty")
    writer = await repo.blobs.create()
    committed = await writer.commit(Descriptor(digest=Digest.of(b"", algorithm), size=0))
    assert committed.digest == Digest.of(b"")
    assert committed.size == 0
    for blobs in (repo.blobs, cold(driver).repository("empty").blobs):
        assert await blobs.stat(Digest.of(b"", algorithm)) == committed
        assert await blobs.get(Digest.of(b"")) == b""


# -- failed commits --


async def assert_nothing_linked(driver: StorageDriver, name: str, digests: list[Digest]) -> None:
    for blobs in (
        Registry(driver, InMemoryBlobDescriptorCache()).repository(name).blobs,
        cold(driver, cache=False).repository(name).blobs,
    ):
        for digest in digests:
            with pytest.raises(BlobUnknown):
                await blobs.stat(digest)
    assert not await exists(driver, paths.layers(name))
    assert await blob_data_files(driver) == []


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("then", ["commit", "cancel"])
async def test_commit_under_a_wrong_digest_links_nothing(
    driver: StorageDriver, algorithm: str, then: str
) -> None:
    content = blob_bytes(MiB + 3, seed=3)
    wrong = Digest.of(content + b"!", algorithm)
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    repo = registry.repository("foo/bar")
    writer = await upload(repo, content)

    with pytest.raises(BlobInvalidDigest) as refused:
        await writer.commit(wrong)
    assert refused.value.digest == wrong

    with pytest.raises(BlobUnknown):
        await repo.blobs.stat(wrong)
    await assert_nothing_linked(
        driver, "foo/bar", [wrong, Digest.of(content), Digest.of(content, "sha512")]
    )
    assert not await exists(driver, paths.blob_dir(wrong))
    with pytest.raises(BlobUploadInvalid):
        await writer.write(b"more")

    # The session is still there, in full, for any process.
    resumed = await cold(driver).repository("foo/bar").blobs.resume(writer.id)
    assert resumed.tell() == len(content)
    if then == "commit":
        committed = await resumed.commit(Digest.of(content, algorithm))
        assert committed.digest == Digest.of(content)
        assert await repo.blobs.get(Digest.of(content, algorithm)) == content
    else:
        await resumed.cancel()
        assert not await exists(driver, paths.upload_dir("foo/bar", writer.id))
        with pytest.raises(BlobUploadUnknown):
            await repo.blobs.resume(writer.id)
        await assert_nothing_linked(driver, "foo/bar", [Digest.of(content)])


@pytest.mark.parametrize("delta", [-1, 1, -(MiB + 3)])
async def test_commit_with_a_wrong_size_links_nothing(driver: StorageDriver, delta: int) -> None:
    content = blob_bytes(MiB + 3, seed=4)
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    repo = registry.repository("foo/bar")
    writer = await upload(repo, content)

    with pytest.raises(BlobInvalidLength) as refused:
        await writer.commit(Descriptor(digest=Digest.of(content), size=len(content) + delta))
    assert (refused.value.expected, refused.value.actual) == (len(content) + delta, len(content))
    await assert_nothing_linked(driver, "foo/bar", [Digest.of(content)])

    resumed = await repo.blobs.resume(writer.id)
    assert resumed.tell() == len(content)
    committed = await resumed.commit(Descriptor(digest=Digest.of(content), size=len(content)))
    assert committed.size == len(content)
    assert await cold(driver).repository("foo/bar").blobs.get(Digest.of(content)) == content


async def test_wrong_size_then_cancel(driver: StorageDriver) -> None:
    content = blob_bytes(10 * KiB, seed=5)
    repo = Registry(driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await upload(repo, content)
    with pytest.raises(BlobInvalidLength):
        await writer.commit(Descriptor(digest=Digest.of(content), size=1))
    resumed = await repo.blobs.resume(writer.id)
    await resumed.cancel()
    assert not await exists(driver, paths.upload_dir("foo/bar", writer.id))
    await assert_nothing_linked(driver, "foo/bar", [Digest.of(content)])


# -- concurrent commits of the same content --


@pytest.mark.parametrize("names", [("one", "two"), ("same", "same")])
async def test_concurrent_commits_of_the_same_content(root: Path, names: tuple[str, str]) -> None:
    content = blob_bytes(4 * MiB + 1, seed=6)
    # Two registries: two server processes in one event loop.
    registries = [Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()) for _ in names]
    writers = [
        await upload(r.repository(n), content) for r, n in zip(registries, names, strict=True)
    ]

    committed = await asyncio.gather(
        *(w.commit(Digest.of(content, "sha512")) for w in writers), return_exceptions=True
    )

    expected = Descriptor(digest=Digest.of(content), size=len(content))
    assert committed == [expected, expected]
    driver = FilesystemDriver(root)
    assert await blob_data_files(driver) == [paths.blob_data(Digest.of(content))]
    for name in names:
        repo = cold(driver).repository(name)
        assert await repo.blobs.stat(Digest.of(content, "sha512")) == expected
        assert await read_all(repo, Digest.of(content)) == content
        assert await sessions(driver, name) == []


_COMMITTER = """
import asyncio, random, sys

from entrepot.digest import Digest
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry


async def main(root, name, rounds, size):
    blobs = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository(name).blobs
    for n in range(rounds):
        content = random.Random(n).randbytes(size)
        writer = await blobs.create()
        await writer.write(content)
        await writer.close()
        print("ready", flush=True)
        assert sys.stdin.readline() == "go\\n"
        writer = await blobs.resume(writer.id)
        committed = await writer.commit(Digest.of(content, "sha512"))
        print("committed", committed.digest, committed.size, flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


@pytest.mark.timeout(120)
async def test_concurrent_commits_in_two_processes(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "committer.py"
    script.write_text(_COMMITTER)
    rounds, size = 4, 3 * MiB + 5
    names = ("left", "right")
    with (
        Child(script, str(root), names[0], str(rounds), str(size), stderr=tmp_path / "l.err") as a,
        Child(script, str(root), names[1], str(rounds), str(size), stderr=tmp_path / "r.err") as b,
    ):
        for n in range(rounds):
            content = random.Random(n).randbytes(size)
            digest = Digest.of(content)
            for child in (a, b):
                child.expect("ready", timeout=60)
            for child in (a, b):  # as close together as two writes to pipes go
                child.send("go")
            for child in (a, b):
                assert child.expect("committed", timeout=60) == f"committed {digest} {size}"

            driver = FilesystemDriver(root)
            assert paths.blob_data(digest) in await blob_data_files(driver)
            for name in names:
                repo = cold(driver).repository(name)
                assert await repo.blobs.stat(Digest.of(content, "sha512")) == Descriptor(
                    digest=digest, size=size
                )
                assert await repo.blobs.get(digest) == content
        a.finish(timeout=30)
        b.finish(timeout=30)
    assert len(await blob_data_files(FilesystemDriver(root))) == rounds


# -- resume, by any process, from the stored hash state --


async def test_hash_state_is_stored_on_close(driver: StorageDriver) -> None:
    part = blob_bytes(3 * MiB + 5, seed=7)
    repo = Registry(driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await upload(repo, part)
    await writer.close()

    state_path = paths.upload_hashstate("foo/bar", writer.id, "sha256", len(part))
    assert state_path.endswith(f"/_uploads/{writer.id}/hashstates/sha256/{len(part)}")
    state = await driver.get_content(state_path)
    expected = ResumableHash("sha256")
    expected.update(part)
    # Go's crypto/sha256 MarshalBinary format: 108 bytes, magic "sha\x03".
    assert state == expected.marshal()
    assert len(state) == 108
    assert state.startswith(b"sha\x03")
    assert await driver.list(paths.upload_hashstates("foo/bar", writer.id, "sha256")) == [
        state_path
    ]
    started_at = await driver.get_content(paths.upload_started_at("foo/bar", writer.id))
    assert started_at.decode().endswith("Z")


async def test_resume_across_processes_continues_the_stored_hash(root: Path) -> None:
    content = blob_bytes(5 * MiB + 11, seed=8)
    cuts = (3 * MiB + 5, 4 * MiB + 7)
    parts = (content[: cuts[0]], content[cuts[0] : cuts[1]], content[cuts[1] :])

    # Process A starts the upload.
    a = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await upload(a, parts[0])
    upload_id = writer.id
    await writer.close()
    v2 = root / V2
    hashstates = v2 / f"repositories/foo/bar/_uploads/{upload_id}/hashstates/sha256"
    assert [p.name for p in hashstates.iterdir()] == [str(cuts[0])]

    # Process B continues it, process C commits it; neither reads back what
    # an earlier process wrote: they continue its hash.
    b_driver = CountingDriver(FilesystemDriver(root))
    b = Registry(b_driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await b.blobs.resume(upload_id)
    assert writer.tell() == cuts[0]
    await writer.write(parts[1])
    await writer.close()
    assert sorted(int(p.name) for p in hashstates.iterdir()) == list(cuts)

    c_driver = CountingDriver(FilesystemDriver(root))
    c = Registry(c_driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await c.blobs.resume(upload_id)
    assert writer.tell() == cuts[1]
    await writer.write(parts[2])
    committed = await writer.commit(Digest.of(content))

    assert committed == Descriptor(digest=Digest.of(content), size=len(content))
    data = paths.upload_data("foo/bar", upload_id)
    assert ("reader", data) not in b_driver.calls + c_driver.calls
    assert not (v2 / f"repositories/foo/bar/_uploads/{upload_id}").exists()
    assert await read_all(cold(FilesystemDriver(root)).repository("foo/bar"), committed.digest) == (
        content
    )


def _state_of(data: bytes, algorithm: str = "sha256") -> bytes:
    hasher = ResumableHash(algorithm)
    hasher.update(data)
    return hasher.marshal()


# How a stored state can be unusable, given the bytes it should describe.
_BAD_STATES: dict[str, Callable[[bytes], bytes | None]] = {
    "deleted": lambda part: None,
    "garbage": lambda part: random.Random(0).randbytes(108),
    "empty": lambda part: b"",
    "truncated": lambda part: _state_of(part)[:-1],
    "sha512-state": lambda part: _state_of(part, "sha512"),
    "wrong-length": lambda part: _state_of(part[:-1]),
}


@pytest.mark.parametrize("damage", sorted(_BAD_STATES))
@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_resume_with_an_unusable_hash_state_rehashes(
    root: Path, damage: str, algorithm: str
) -> None:
    content = blob_bytes(2 * MiB + 3, seed=9)
    part, rest = content[: MiB + 1], content[MiB + 1 :]
    a = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await upload(a, part)
    await writer.close()
    state_file = root / V2 / f"repositories/foo/bar/_uploads/{writer.id}/hashstates/sha256"
    state_file /= str(len(part))
    replacement = _BAD_STATES[damage](part)
    if replacement is None:
        state_file.unlink()
    else:
        state_file.write_bytes(replacement)

    b_driver = CountingDriver(FilesystemDriver(root))
    b = Registry(b_driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await b.blobs.resume(writer.id)
    await writer.write(rest)
    committed = await writer.commit(Digest.of(content, algorithm))

    assert committed == Descriptor(digest=Digest.of(content), size=len(content))
    # The stored data was hashed again, from the start.
    assert ("reader", paths.upload_data("foo/bar", writer.id)) in b_driver.calls
    assert await read_all(cold(b_driver).repository("foo/bar"), Digest.of(content)) == content


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_a_state_of_other_bytes_does_not_refuse_the_right_digest(
    root: Path, algorithm: str
) -> None:
    """A valid state of different bytes of the same length (a state that
    lies) must not make the writer refuse content that matches its digest:
    it hashes the stored data again before refusing."""
    content = blob_bytes(2 * MiB + 3, seed=10)
    part, rest = content[: MiB + 1], content[MiB + 1 :]
    a = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await upload(a, part)
    await writer.close()
    state_file = root / V2 / f"repositories/foo/bar/_uploads/{writer.id}/hashstates/sha256"
    state_file /= str(len(part))
    state_file.write_bytes(_state_of(blob_bytes(len(part), seed=11)))

    b_driver = CountingDriver(FilesystemDriver(root))
    b = Registry(b_driver, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await b.blobs.resume(writer.id)
    await writer.write(rest)
    committed = await writer.commit(Digest.of(content, algorithm))

    assert committed == Descriptor(digest=Digest.of(content), size=len(content))
    assert ("reader", paths.upload_data("foo/bar", writer.id)) in b_driver.calls
    assert await cold(b_driver).repository("foo/bar").blobs.get(committed.digest) == content


async def test_a_stale_hash_state_never_vouches_for_other_content(driver: StorageDriver) -> None:
    """A commit that fails after moving the data into the global store
    leaves its session behind: `startedat` and the hash state of the moved
    data, but no data. Once the orphaned blob is collected, nothing may let
    that stale state accept other bytes under the old digest.

    The session is resumed (offset 0), filled with different bytes of the
    same length, and left without a close (a crash: no new state is
    stored); resumed again it is committed under the first content's digest.
    That must be refused: otherwise the store holds a blob whose content
    does not match its digest.
    """
    first = blob_bytes(MiB + 1, seed=12)
    other = blob_bytes(len(first), seed=13)
    counting = CountingDriver(driver)
    registry = Registry(counting, InMemoryBlobDescriptorCache())
    repo = registry.repository("foo/bar")

    writer = await upload(repo, first)
    await writer.close()  # stores the state of `first` at len(first)
    writer = await repo.blobs.resume(writer.id)
    # The commit moves the data, then fails to write the link.
    counting.fault = lambda method, path: method == "put_content" and "/_layers/" in path
    with pytest.raises(SimulatedFailure):
        await writer.commit(Digest.of(first))
    counting.fault = None
    await registry.blob_store.delete(Digest.of(first))  # garbage collection of the orphan

    try:
        writer = await repo.blobs.resume(writer.id)
    except BlobUploadUnknown:
        return  # a session whose data is gone is over: also a right answer
    assert writer.tell() == 0
    await writer.write(other)
    # A crash before close: the hash state write fails, nothing new is stored.
    counting.fault = lambda method, path: method == "put_content" and "/hashstates/" in path
    with pytest.raises(SimulatedFailure):
        await writer.close()
    counting.fault = None

    writer = await repo.blobs.resume(writer.id)
    assert writer.tell() == len(other)
    with pytest.raises(BlobInvalidDigest):
        await writer.commit(Digest.of(first))
    with pytest.raises(BlobUnknown):
        await cold(driver).repository("foo/bar").blobs.stat(Digest.of(first))


@pytest.mark.parametrize("size", [16 * KiB, 256 * KiB], ids=["small", "large"])
async def test_a_failed_write_can_be_retried(driver: StorageDriver, size: int) -> None:
    """A write the driver refuses leaves nothing written and nothing hashed:
    the same writer can send the chunk again and commit."""
    chunks = [blob_bytes(size, seed) for seed in range(3)]
    counting = CountingDriver(driver)
    repo = Registry(counting, InMemoryBlobDescriptorCache()).repository("foo/bar")
    writer = await repo.blobs.create()
    await writer.write(chunks[0])

    failures = iter([True])
    counting.fault = lambda method, path: method == "writer.write" and next(failures, False)
    with pytest.raises(SimulatedFailure):
        await writer.write(chunks[1])
    assert writer.tell() == size
    await writer.write(chunks[1])
    await writer.write(chunks[2])

    content = b"".join(chunks)
    committed = await writer.commit(Digest.of(content))
    assert committed.digest == Digest.of(content)
    assert await repo.blobs.get(committed.digest) == content


# -- the writer's contract: seek, tell, closed writers, unknown sessions --


async def test_tell_and_seek(registry: Registry) -> None:
    writer = await registry.repository("foo/bar").blobs.create()
    assert writer.tell() == 0
    assert writer.seek(0, os.SEEK_END) == 0
    assert writer.seek(0) == 0
    written = 0
    for seed, size in enumerate((1, 100 * KiB, 3, 70 * KiB)):
        written += await writer.write(blob_bytes(size, seed))
        assert writer.tell() == written
    assert writer.seek(0, os.SEEK_END) == written
    assert writer.seek(0, os.SEEK_CUR) == written
    assert writer.seek(written, os.SEEK_SET) == written
    for offset, whence in ((0, os.SEEK_SET), (written - 1, os.SEEK_SET), (written + 1, 0)):
        with pytest.raises(BlobUploadInvalid):
            writer.seek(offset, whence)
    for offset, whence in ((-1, os.SEEK_END), (1, os.SEEK_END), (-5, os.SEEK_CUR)):
        with pytest.raises(BlobUploadInvalid):
            writer.seek(offset, whence)
    assert writer.tell() == written
    await writer.write(b"x")
    assert writer.tell() == written + 1
    await writer.cancel()


@pytest.mark.parametrize("end", ["close", "commit", "cancel", "failed-commit"])
async def test_a_finished_writer_refuses_writes(registry: Registry, end: str) -> None:
    content = b"some content"
    writer = await upload(registry.repository("foo/bar"), content)
    if end == "close":
        await writer.close()
    elif end == "commit":
        await writer.commit(Digest.of(content))
    elif end == "cancel":
        await writer.cancel()
    else:
        with pytest.raises(BlobInvalidDigest):
            await writer.commit(Digest.of(b"other"))
    with pytest.raises(BlobUploadInvalid):
        await writer.write(b"more")
    with pytest.raises(BlobUploadInvalid):
        await writer.commit(Digest.of(content))


@pytest.mark.parametrize(
    "upload_id",
    [
        "../x",
        "abc",
        "",
        "0" * 36,
        "6F9619FF-8B86-D011-B42D-00CF4FC964FF",  # a UUID, but not as sessions are named
        "6f9619ff-8b86-d011-b42d-00cf4fc964ff",  # well formed, never started
        "6f9619ff-8b86-d011-b42d-00cf4fc964ff/../x",
        "6f9619ff-8b86-d011-b42d-00cf4fc964ff\n",
    ],
)
async def test_resume_of_an_unknown_or_malformed_session(
    registry: Registry, upload_id: str
) -> None:
    with pytest.raises(BlobUploadUnknown):
        await registry.repository("foo/bar").blobs.resume(upload_id)


async def test_sessions_belong_to_their_repository(registry: Registry) -> None:
    writer = await upload(registry.repository("foo/bar"), b"abc")
    await writer.close()
    with pytest.raises(BlobUploadUnknown):
        await registry.repository("foo/baz").blobs.resume(writer.id)
    with pytest.raises(BlobUploadUnknown):
        await registry.repository("foo").blobs.resume(writer.id)


async def test_resume_after_commit_or_cancel(registry: Registry) -> None:
    repo = registry.repository("foo/bar")
    committed = await upload(repo, b"abc")
    await committed.commit(Digest.of(b"abc"))
    cancelled = await upload(repo, b"def")
    await cancelled.cancel()
    for writer in (committed, cancelled):
        with pytest.raises(BlobUploadUnknown):
            await repo.blobs.resume(writer.id)


@pytest.mark.parametrize("state", ["open", "closed", "resumed"])
async def test_cancel_removes_the_whole_session(
    driver: StorageDriver, registry: Registry, state: str
) -> None:
    repo = registry.repository("foo/bar")
    writer = await upload(repo, blob_bytes(MiB, seed=14))
    upload_dir = paths.upload_dir("foo/bar", writer.id)
    if state != "open":
        await writer.close()
        assert await exists(driver, paths.upload_hashstates("foo/bar", writer.id, "sha256"))
    if state == "resumed":
        writer = await cold(driver).repository("foo/bar").blobs.resume(writer.id)
        await writer.write(b"tail")
    assert await exists(driver, upload_dir)

    await writer.cancel()

    assert not await exists(driver, upload_dir)
    if isinstance(driver, FilesystemDriver):
        assert not (Path(driver.root) / upload_dir.lstrip("/")).exists()
    with pytest.raises(BlobUploadUnknown):
        await repo.blobs.resume(writer.id)
    await writer.cancel()  # again: nothing left to do
    assert await blob_data_files(driver) == []


async def test_started_at_survives_resume(registry: Registry) -> None:
    repo = registry.repository("foo/bar")
    writer = await upload(repo, b"abc")
    await writer.close()
    resumed = await repo.blobs.resume(writer.id)
    assert resumed.id == writer.id
    assert resumed.started_at == writer.started_at
    assert resumed.started_at.tzinfo is not None


# -- cross-repository mount --


async def test_mount_links_a_blob_of_another_repository(registry: Registry) -> None:
    content = blob_bytes(MiB + 9, seed=15)
    source = registry.repository("source/repo")
    pushed = await push(source, content, "sha512")
    target = registry.repository("target")

    with pytest.raises(BlobUnknown):
        await target.blobs.stat(pushed.digest)
    mounted = await target.blobs.mount("source/repo", pushed.digest)

    assert mounted == pushed
    for repo in (target, cold(registry.driver).repository("target")):
        assert await repo.blobs.stat(pushed.digest) == pushed
        assert await read_all(repo, pushed.digest) == content
    assert await blob_data_files(registry.driver) == [paths.blob_data(pushed.digest)]


async def test_mount_by_provisional_digest(registry: Registry) -> None:
    content = blob_bytes(10 * KiB, seed=16)
    await push(registry.repository("source"), content, "sha512")
    mounted = await registry.repository("target").blobs.mount(
        "source", Digest.of(content, "sha512")
    )
    assert mounted.digest == Digest.of(content)
    target = cold(registry.driver).repository("target")
    assert await target.blobs.get(Digest.of(content, "sha512")) == content
    assert await target.blobs.get(Digest.of(content)) == content


async def test_mount_from_a_repository_without_the_blob(registry: Registry) -> None:
    content = blob_bytes(10 * KiB, seed=17)
    await push(registry.repository("holder"), content)
    await push(registry.repository("empty-handed"), b"something else")
    for source in ("empty-handed", "never/created"):
        with pytest.raises(BlobUnknown):
            await registry.repository("target").blobs.mount(source, Digest.of(content))
    with pytest.raises(BlobUnknown):
        await cold(registry.driver).repository("target").blobs.stat(Digest.of(content))
    assert not await exists(registry.driver, paths.layers("target"))


@pytest.mark.parametrize("source", ["", "UPPER", "../etc", "a//b", "-lead", "x" * 256])
async def test_mount_from_an_invalid_name(registry: Registry, source: str) -> None:
    with pytest.raises(NameInvalid):
        await registry.repository("target").blobs.mount(source, Digest.of(b"x"))


# -- delete of a link --


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_delete_removes_only_this_repositorys_link(
    driver: StorageDriver, algorithm: str
) -> None:
    content = blob_bytes(MiB + 21, seed=18)
    digest = Digest.of(content, algorithm)
    registry = Registry(driver, InMemoryBlobDescriptorCache())
    doomed, keeper = registry.repository("doomed"), registry.repository("keeper")
    pushed = await push(doomed, content, algorithm)
    await keeper.blobs.mount("doomed", digest)
    # Warm both caches: the deleting registry's and another one's.
    assert await doomed.blobs.stat(digest) == pushed

    await doomed.blobs.delete(digest)

    # Gone from the repository: for this warm registry (no stale cache entry)
    # and for a cold one.
    for blobs in (doomed.blobs, cold(driver).repository("doomed").blobs):
        with pytest.raises(BlobUnknown):
            await blobs.stat(digest)
        with pytest.raises(BlobUnknown):
            await blobs.get(digest)
        with pytest.raises(BlobUnknown):
            await blobs.open(digest)
    assert not await exists(driver, paths.layer_link("doomed", digest))
    # Still in the other repository and in the global store.
    for blobs in (keeper.blobs, cold(driver).repository("keeper").blobs):
        assert await blobs.stat(digest) == pushed
        assert await blobs.get(digest) == content
    assert await registry.blob_store.stat(pushed.digest) == pushed
    assert await blob_data_files(driver) == [paths.blob_data(pushed.digest)]
    # Deleting again: unknown.
    with pytest.raises(BlobUnknown):
        await doomed.blobs.delete(digest)


async def test_delete_is_seen_through_a_shared_cache(driver: StorageDriver) -> None:
    """Two registries (processes) sharing one descriptor cache, as they would
    share Redis: a delete by one is seen at once by the other."""
    cache = InMemoryBlobDescriptorCache()
    one, two = Registry(driver, cache), Registry(reopen(driver), cache)
    pushed = await push(one.repository("foo/bar"), b"shared")
    assert await two.repository("foo/bar").blobs.stat(pushed.digest) == pushed
    await one.repository("foo/bar").blobs.delete(pushed.digest)
    with pytest.raises(BlobUnknown):
        await two.repository("foo/bar").blobs.stat(pushed.digest)


async def test_delete_then_push_again(registry: Registry) -> None:
    repo = registry.repository("foo/bar")
    pushed = await push(repo, b"again")
    await repo.blobs.delete(pushed.digest)
    assert await push(repo, b"again") == pushed
    assert await repo.blobs.get(pushed.digest) == b"again"


async def test_delete_of_an_unknown_blob(registry: Registry) -> None:
    repo = registry.repository("foo/bar")
    with pytest.raises(BlobUnknown):
        await repo.blobs.delete(Digest.of(b"never pushed"))
    pushed = await push(registry.repository("elsewhere"), b"elsewhere")
    with pytest.raises(BlobUnknown):
        await repo.blobs.delete(pushed.digest)
    assert await registry.repository("elsewhere").blobs.get(pushed.digest) == b"elsewhere"


async def test_delete_when_disabled(driver: StorageDriver) -> None:
    registry = Registry(driver, InMemoryBlobDescriptorCache(), delete_enabled=False)
    repo = registry.repository("foo/bar")
    pushed = await push(repo, b"kept")
    with pytest.raises(Unsupported):
        await repo.blobs.delete(pushed.digest)
    with pytest.raises(Unsupported):
        await repo.blobs.delete(Digest.of(b"unknown"))
    assert await repo.blobs.get(pushed.digest) == b"kept"
    assert await exists(driver, paths.layer_link("foo/bar", pushed.digest))


# -- manifests and tags --


async def test_manifest_put_and_get(driver: StorageDriver, registry: Registry) -> None:
    content = manifest_bytes(1)
    repo = registry.repository("library/ubuntu")
    descriptor = await repo.manifests.put(content, OCI_MANIFEST)

    assert descriptor == Descriptor(
        digest=Digest.of(content), size=len(content), media_type=OCI_MANIFEST
    )
    for manifests in (repo.manifests, cold(driver).repository("library/ubuntu").manifests):
        stored = await manifests.get(descriptor.digest)
        assert (stored.digest, stored.media_type, stored.content) == (
            descriptor.digest,
            OCI_MANIFEST,
            content,
        )
        assert await manifests.exists(descriptor.digest)
        stat = await manifests.stat(descriptor.digest)
        assert (stat.digest, stat.size) == (descriptor.digest, len(content))
    link = paths.revision_link("library/ubuntu", descriptor.digest)
    assert link.endswith(f"/_manifests/revisions/sha256/{descriptor.digest.hex}/link")
    assert await driver.get_content(link) == str(descriptor.digest).encode()
    assert await blob_data_files(driver) == [paths.blob_data(descriptor.digest)]


async def test_a_manifest_is_not_a_layer(driver: StorageDriver, registry: Registry) -> None:
    """Revision links and layer links are separate sets: a manifest of the
    repository is not one of its blobs, warm cache or cold."""
    repo = registry.repository("foo")
    pushed = await repo.manifests.put(manifest_bytes(9), OCI_MANIFEST)
    assert await repo.manifests.exists(pushed.digest)
    for blobs in (repo.blobs, cold(driver).repository("foo").blobs):
        with pytest.raises(BlobUnknown):
            await blobs.stat(pushed.digest)
        with pytest.raises(BlobUnknown):
            await blobs.get(pushed.digest)


async def test_a_layer_is_not_a_manifest(driver: StorageDriver, registry: Registry) -> None:
    repo = registry.repository("foo")
    pushed = await push(repo, b'{"not": "a manifest of this repository"}')
    assert await repo.blobs.stat(pushed.digest) == pushed
    for manifests in (repo.manifests, cold(driver).repository("foo").manifests):
        assert not await manifests.exists(pushed.digest)
        with pytest.raises(ManifestUnknown):
            await manifests.get(pushed.digest)


async def test_manifest_put_is_idempotent_and_per_repository(registry: Registry) -> None:
    content = manifest_bytes(2, "application/vnd.docker.distribution.manifest.v2+json")
    first = await registry.repository("a").manifests.put(content, "x/ignored-by-get")
    second = await registry.repository("b").manifests.put(content, "x/ignored-by-get")
    assert first.digest == second.digest == Digest.of(content)
    stored = await registry.repository("b").manifests.get(first.digest)
    assert stored.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(await blob_data_files(registry.driver)) == 1


async def test_manifest_unknown(registry: Registry) -> None:
    content = manifest_bytes(3)
    pushed = await registry.repository("a").manifests.put(content, OCI_MANIFEST)
    b = registry.repository("b")
    assert not await b.manifests.exists(pushed.digest)
    with pytest.raises(ManifestUnknown):
        await b.manifests.get(pushed.digest)
    with pytest.raises(ManifestUnknown):
        await b.manifests.stat(pushed.digest)
    with pytest.raises(ManifestUnknown):
        await b.manifests.delete(pushed.digest)


async def test_manifest_delete(driver: StorageDriver, registry: Registry) -> None:
    repo = registry.repository("a")
    pushed = await repo.manifests.put(manifest_bytes(4), OCI_MANIFEST)
    await repo.manifests.delete(pushed.digest)
    for manifests in (repo.manifests, cold(driver).repository("a").manifests):
        with pytest.raises(ManifestUnknown):
            await manifests.get(pushed.digest)


async def test_tags(driver: StorageDriver, registry: Registry) -> None:
    repo = registry.repository("library/ubuntu")
    one = await repo.manifests.put(manifest_bytes(5), OCI_MANIFEST)
    two = await repo.manifests.put(manifest_bytes(6), OCI_MANIFEST)

    await repo.tags.tag("latest", one.digest)
    await repo.tags.tag("22.04", one.digest)
    await repo.tags.tag("24.04", two.digest)

    for tags in (repo.tags, cold(driver).repository("library/ubuntu").tags):
        assert await tags.get("latest") == one.digest
        assert await tags.all() == ["22.04", "24.04", "latest"]
        assert await tags.lookup(one.digest) == ["22.04", "latest"]
        assert await tags.lookup(two.digest) == ["24.04"]
    current = paths.tag_current_link("library/ubuntu", "latest")
    assert current.endswith("/_manifests/tags/latest/current/link")
    assert await driver.get_content(current) == str(one.digest).encode()
    index = paths.tag_index_link("library/ubuntu", "latest", one.digest)
    assert index.endswith(f"/_manifests/tags/latest/index/sha256/{one.digest.hex}/link")
    assert await driver.get_content(index) == str(one.digest).encode()

    # Re-tag: the current link moves, the index keeps both.
    await repo.tags.tag("latest", two.digest)
    assert await repo.tags.get("latest") == two.digest
    assert await exists(driver, index)
    assert await exists(driver, paths.tag_index_link("library/ubuntu", "latest", two.digest))
    assert await repo.tags.lookup(one.digest) == ["22.04"]
    assert await repo.tags.lookup(two.digest) == ["24.04", "latest"]

    await repo.tags.untag("latest")
    assert not await exists(driver, paths.tag_dir("library/ubuntu", "latest"))
    with pytest.raises(TagUnknown):
        await repo.tags.get("latest")
    with pytest.raises(TagUnknown):
        await repo.tags.untag("latest")
    assert await repo.tags.all() == ["22.04", "24.04"]
    assert await repo.tags.lookup(two.digest) == ["24.04"]
    # The manifests stay.
    assert (await repo.manifests.get(one.digest)).content == manifest_bytes(5)


async def test_tags_of_a_repository_without_tags(registry: Registry) -> None:
    never = registry.repository("never/created")
    with pytest.raises(NameUnknown):
        await never.tags.all()
    assert await never.tags.lookup(Digest.of(b"x")) == []
    with pytest.raises(TagUnknown):
        await never.tags.get("latest")
    with pytest.raises(TagUnknown):
        await never.tags.untag("latest")
    # A repository that exists (it has a manifest) has a list of tags, empty.
    untagged = registry.repository("untagged")
    pushed = await untagged.manifests.put(manifest_bytes(7), OCI_MANIFEST)
    assert await untagged.tags.all() == []
    await untagged.tags.tag("only", pushed.digest)
    assert await untagged.tags.all() == ["only"]
    await untagged.tags.untag("only")
    assert await untagged.tags.all() == []
    assert await cold(registry.driver).repository("untagged").tags.all() == []


@pytest.mark.parametrize("tag", ["", ".hidden", "-dash", "a" * 129, "a/b", "a:b"])
async def test_invalid_tags(registry: Registry, tag: str) -> None:
    repo = registry.repository("foo")
    with pytest.raises(TagInvalid):
        await repo.tags.tag(tag, Digest.of(b"x"))
    with pytest.raises(TagInvalid):
        await repo.tags.get(tag)
    with pytest.raises(TagInvalid):
        await repo.tags.untag(tag)


# -- the catalog --

CATALOG = ["a", "a/b", "a-b", "b/c/d", "library/ubuntu", "z"]


async def make_repositories(registry: Registry, names: list[str]) -> None:
    for seed, name in enumerate(names):
        await registry.repository(name).manifests.put(manifest_bytes(seed), OCI_MANIFEST)


async def test_catalog_order(registry: Registry) -> None:
    # Created out of order; listed component by component.
    await make_repositories(registry, ["z", "library/ubuntu", "a-b", "b/c/d", "a/b", "a"])
    assert await registry.repositories() == CATALOG
    assert await cold(registry.driver).repositories() == CATALOG
    assert [name async for name in registry.walk_repositories()] == CATALOG


async def test_catalog_order_with_separators(registry: Registry) -> None:
    names = ["a", "a/b", "a-b", "a.b", "a__b", "a_b", "ab", "b"]
    await make_repositories(registry, list(reversed(names)))
    # Distribution compares paths with "/" sorting before every character.
    assert await registry.repositories() == sorted(names, key=lambda n: n.replace("/", "\0"))
    assert await registry.repositories() == names


@pytest.mark.parametrize("n", range(1, len(CATALOG) + 2))
async def test_catalog_pages(registry: Registry, n: int) -> None:
    await make_repositories(registry, CATALOG)
    pages: list[list[str]] = []
    last: str | None = None
    while True:
        page = await registry.repositories(n, last)
        assert len(page) <= n
        pages.append(page)
        if len(page) < n:
            break
        last = page[-1]
    assert [name for page in pages for name in page] == CATALOG
    assert all(len(page) == n for page in pages[:-1])
    assert len(pages) == len(CATALOG) // n + 1


@pytest.mark.parametrize("last", [None, *CATALOG])
async def test_catalog_after_each_repository(registry: Registry, last: str | None) -> None:
    await make_repositories(registry, CATALOG)
    start = 0 if last is None else CATALOG.index(last) + 1
    assert await registry.repositories(last=last) == CATALOG[start:]
    for n in range(1, 4):
        assert await registry.repositories(n, last) == CATALOG[start : start + n]


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ("0", CATALOG),
        ("a/a", ["a/b", "a-b", "b/c/d", "library/ubuntu", "z"]),
        ("a/b/c", ["a-b", "b/c/d", "library/ubuntu", "z"]),
        ("a/c", ["a-b", "b/c/d", "library/ubuntu", "z"]),
        ("a-a", ["a-b", "b/c/d", "library/ubuntu", "z"]),
        ("b", ["b/c/d", "library/ubuntu", "z"]),
        ("b/c", ["b/c/d", "library/ubuntu", "z"]),
        ("b/c/d/e", ["library/ubuntu", "z"]),
        ("library", ["library/ubuntu", "z"]),
        ("m", ["z"]),
        ("zz", []),
    ],
)
async def test_catalog_after_an_absent_repository(
    registry: Registry, last: str, expected: list[str]
) -> None:
    await make_repositories(registry, CATALOG)
    assert await registry.repositories(last=last) == expected
    assert await registry.repositories(1, last) == expected[:1]


async def test_catalog_edges(registry: Registry) -> None:
    assert await registry.repositories() == []
    await make_repositories(registry, CATALOG)
    assert await registry.repositories(0) == []
    assert await registry.repositories(-1) == []
    assert await registry.repositories(100) == CATALOG


async def test_catalog_lists_only_repositories_with_manifests(registry: Registry) -> None:
    await make_repositories(registry, ["a/b", "library/ubuntu"])
    # An upload in progress, in a new repository and in a parent of one.
    for name in ("uploading", "a", "library"):
        writer = await upload(registry.repository(name), b"partial")
        await writer.close()
    # Layers but no manifest.
    await push(registry.repository("layers/only"), b"layer")
    open_writer = await upload(registry.repository("still/open"), b"partial")

    assert await registry.repositories() == ["a/b", "library/ubuntu"]
    assert await registry.repositories(1, "a/b") == ["library/ubuntu"]
    assert await registry.repositories(last="a") == ["a/b", "library/ubuntu"]
    await open_writer.cancel()


# -- the descriptor cache --


def descriptor_of(seed: int) -> Descriptor:
    data = str(seed).encode()
    return Descriptor(digest=Digest.of(data), size=len(data))


async def test_cache_lru_is_bounded() -> None:
    cache = InMemoryBlobDescriptorCache(size=3)
    descriptors = [descriptor_of(i) for i in range(5)]
    for d in descriptors[:3]:
        await cache.set(d.digest, d)
    assert await cache.stat(descriptors[0].digest) == descriptors[0]  # now most recent
    await cache.set(descriptors[3].digest, descriptors[3])  # evicts 1, the least recent
    await cache.set(descriptors[4].digest, descriptors[4])  # evicts 2
    for i in (1, 2):
        with pytest.raises(BlobUnknown):
            await cache.stat(descriptors[i].digest)
    for i in (0, 3, 4):
        assert await cache.stat(descriptors[i].digest) == descriptors[i]

    scoped = cache.repository_scoped("foo")
    for d in descriptors:
        await scoped.set(d.digest, d)
    for d in descriptors[:2]:
        with pytest.raises(BlobUnknown):
            await scoped.stat(d.digest)
    for d in descriptors[2:]:
        assert await scoped.stat(d.digest) == d


async def test_cache_bounds_the_number_of_repositories() -> None:
    cache = InMemoryBlobDescriptorCache(size=10, repositories=2)
    d = descriptor_of(0)
    for name in ("r0", "r1", "r2"):
        await cache.repository_scoped(name).set(d.digest, d)
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("r0").stat(d.digest)
    for name in ("r1", "r2"):
        assert await cache.repository_scoped(name).stat(d.digest) == d


async def test_cache_is_repository_scoped() -> None:
    cache = InMemoryBlobDescriptorCache()
    d = descriptor_of(1)
    await cache.repository_scoped("a").set(d.digest, d)
    assert await cache.repository_scoped("a").stat(d.digest) == d
    assert await cache.stat(d.digest) == d  # the global entry
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("b").stat(d.digest)
    await cache.repository_scoped("a").clear(d.digest)
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("a").stat(d.digest)
    with pytest.raises(BlobUnknown):
        await cache.repository_scoped("a").clear(d.digest)


async def test_cache_refuses_impossible_descriptors() -> None:
    cache = InMemoryBlobDescriptorCache()
    digest = Digest.of(b"x")
    for bad in (Descriptor(digest=digest, size=-1), Descriptor(digest, 1, media_type="")):
        with pytest.raises(ValueError, match=r"negative size|no media type"):
            await cache.set(digest, bad)
        with pytest.raises(ValueError, match=r"negative size|no media type"):
            await cache.repository_scoped("a").set(digest, bad)


async def test_driver_calls_of_a_blob_stat(driver: StorageDriver) -> None:
    content = blob_bytes(100 * KiB, seed=19)
    writer_registry = Registry(driver, InMemoryBlobDescriptorCache())
    pushed = await push(writer_registry.repository("a"), content, "sha512")
    await writer_registry.repository("b").blobs.mount("a", pushed.digest)
    sha512 = Digest.of(content, "sha512")

    counting = CountingDriver(reopen(driver))
    registry = Registry(counting, InMemoryBlobDescriptorCache())
    a, b, c = (registry.repository(name) for name in ("a", "b", "c"))
    link, data = paths.layer_link("a", pushed.digest), paths.blob_data(pushed.digest)

    # Cold: the link, then the data's size.
    assert await a.blobs.stat(pushed.digest) == pushed
    assert counting.reset() == [("get_content", link), ("stat", data)]
    # Warm: nothing at all.
    for _ in range(3):
        assert await a.blobs.stat(pushed.digest) == pushed
    assert counting.reset() == []
    # Another repository holding it: its link only, the descriptor is known.
    assert await b.blobs.stat(pushed.digest) == pushed
    assert counting.reset() == [("get_content", paths.layer_link("b", pushed.digest))]
    # A repository without it: one link read, the global entry answers nothing.
    with pytest.raises(BlobUnknown):
        await c.blobs.stat(pushed.digest)
    assert counting.reset() == [("get_content", paths.layer_link("c", pushed.digest))]
    with pytest.raises(BlobUnknown):
        await c.blobs.stat(pushed.digest)
    assert len(counting.reset()) == 1  # absence is not cached
    # The provisional digest: its own link, then the canonical descriptor is known.
    assert await a.blobs.stat(sha512) == pushed
    assert counting.reset() == [("get_content", paths.layer_link("a", sha512))]
    assert await a.blobs.stat(sha512) == pushed
    assert counting.reset() == []
    # Opening a warm blob costs nothing until the first read; a read, one reader.
    reader = await a.blobs.open(pushed.digest)
    assert counting.reset() == []
    assert await reader.read(10) == content[:10]
    await reader.close()
    assert counting.reset() == [("reader", data)]
    assert await a.blobs.get(pushed.digest) == content
    assert counting.reset() == [("get_content", data)]


async def test_driver_calls_with_an_evicting_cache(driver: StorageDriver) -> None:
    counting = CountingDriver(driver)
    registry = Registry(counting, InMemoryBlobDescriptorCache(size=3))
    repo = registry.repository("foo/bar")
    pushed = [await push(repo, blob_bytes(KiB, seed)) for seed in range(4)]
    counting.reset()
    for descriptor in pushed[1:]:  # the last three are cached
        assert await repo.blobs.stat(descriptor.digest) == descriptor
    assert counting.reset() == []
    assert await repo.blobs.stat(pushed[0].digest) == pushed[0]  # evicted: storage again
    assert len(counting.reset()) == 2
    assert await repo.blobs.stat(pushed[1].digest) == pushed[1]  # evicted by pushed[0]
    assert len(counting.reset()) == 2


async def test_driver_calls_of_a_manifest_by_tag(driver: StorageDriver) -> None:
    content = manifest_bytes(8)
    pushed = await Registry(driver).repository("foo").manifests.put(content, OCI_MANIFEST)
    await Registry(driver).repository("foo").tags.tag("latest", pushed.digest)

    counting = CountingDriver(reopen(driver))
    repo = Registry(counting, InMemoryBlobDescriptorCache()).repository("foo")
    digest = await repo.tags.get("latest")
    assert counting.reset() == [("get_content", paths.tag_current_link("foo", "latest"))]
    assert (await repo.manifests.get(digest)).content == content
    assert len(counting.reset()) == 3  # link, stat, content: cold
    assert (await repo.manifests.get(digest)).content == content
    assert counting.reset() == [("get_content", paths.blob_data(digest))]
