"""The S3 driver on a real S3 API (moto's server): what the shared suite
cannot show. Uploads resumed by other processes (another `S3Driver` on the
same bucket shares nothing with the first but the bucket), parts under
S3's 5 MiB minimum, listings of more than one page, multipart copies,
presigned URLs, and Distribution's parameters."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from entrepot.storage.driver import s3 as s3_module
from entrepot.storage.driver.base import FileInfo, InvalidPath, PathNotFound
from entrepot.storage.driver.s3 import (
    DEFAULT_CHUNK_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    S3Driver,
    S3Options,
    _ranges,
)
from tests.storage.driver.s3_server import (
    MotoServer,
    admin_client,
    driver_parameters,
    moto_server,
    new_bucket,
    new_driver,
)

MiB = 1024 * 1024


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="session")
def moto() -> MotoServer:
    return moto_server()


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return new_bucket()


@pytest.fixture
async def s3(bucket: str) -> AsyncIterator[S3Driver]:
    driver = new_driver(bucket)
    yield driver
    await driver.aclose()


@asynccontextmanager
async def process(bucket: str, **extra: Any) -> AsyncIterator[S3Driver]:
    """A driver of its own on `bucket`, as another registry process has."""
    driver = new_driver(bucket, **extra)
    try:
        yield driver
    finally:
        await driver.aclose()


def keys_in(bucket: str) -> list[str]:
    listed = admin_client().list_objects_v2(Bucket=bucket)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def uploads_in(bucket: str) -> list[str]:
    listed = admin_client().list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


async def gather_bounded(calls: list[Callable[[], Awaitable[object]]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(run(call) for call in calls))


# -- writers resumed by other processes --


async def test_short_tails_resume_across_processes(bucket: str) -> None:
    """Chunks under 5 MiB, each in another process: the size is exact on
    every reopen and the file whole on commit."""
    chunks = [random_bytes(700 * 1024 + i, seed=i) for i in range(12)]  # ~8.2 MiB
    path = "/repo/_uploads/u1/data"
    written = 0
    for i, chunk in enumerate(chunks):
        async with process(bucket, chunksize=MIN_PART_SIZE) as driver:
            writer = await driver.writer(path, append=i > 0)
            assert writer.size == written
            assert await writer.write(chunk) == len(chunk)
            written += len(chunk)
            assert writer.size == written
            await writer.close()
        # Unfinished: nothing at the key (a stale object was removed), one upload.
        assert keys_in(bucket) == []
        assert uploads_in(bucket) == ["repo/_uploads/u1/data"]
    async with process(bucket, chunksize=MIN_PART_SIZE) as driver:
        writer = await driver.writer(path, append=True)
        assert writer.size == written
        await writer.write(b"end")
        await writer.commit()
        assert writer.size == written + 3
        assert await driver.get_content(path) == b"".join(chunks) + b"end"
        assert (await driver.stat(path)).size == written + 3
    assert uploads_in(bucket) == []
    assert keys_in(bucket) == ["repo/_uploads/u1/data"]


# Sizes around S3's limits, with chunksize at its 5 MiB minimum.
SEEDS = int(os.environ.get("ENTREPOT_S3_MODEL_SEEDS", "6"))
STEP_SIZES = [0, 1, 100 * 1024, 3 * MiB, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 11 * MiB]


class Model:
    """What the driver promises for one path, in a few lines.

    The committed object (what readers see) and the upload in progress
    (what an appending writer resumes) are apart. Every write, truncation
    included, shows on commit, with one exception: the upload cannot take
    more parts after a short one (under 5 MiB), so adding to it completes
    it onto the key, whose object is then removed (its bytes are in the new
    upload): the old object is gone. An appending writer with no upload to
    resume starts from the object, which is removed likewise once its bytes
    are in an upload; `cancel` aborts the upload, and removes the object
    too if the writer started from it.
    """

    def __init__(self) -> None:
        self.committed: bytes | None = None
        self.upload: bytes | None = None
        self.short_tail = False  # the upload's last part is under 5 MiB

    def open(self, append: bool) -> None:
        # The open writer: its content, how much of it is in upload parts,
        # how much in the object it started from (None: none).
        self.base: int | None = None
        self.in_parts = 0
        self.has_upload = True
        if not append:
            self.upload, self.short_tail, self.content = b"", False, b""
        elif self.upload is not None:
            self.content = self.upload
            self.in_parts = len(self.content)
        else:
            self.has_upload = False
            self.content = self.committed or b""
            if self.committed is not None:
                self.base = len(self.committed)
        self.owns_object = self.base is not None

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def buffered(self) -> int:
        return len(self.content) - self.in_parts - (self.base or 0)

    def write(self, data: bytes) -> None:
        self.content += data
        if self.buffered >= MIN_PART_SIZE:
            self.flush(final=False)

    def flush(self, final: bool) -> None:
        if self.short_tail:  # completed onto the key: the file's base now
            self.committed = self.content[: self.in_parts]
            self.base, self.in_parts, self.has_upload = self.in_parts, 0, False
            self.short_tail, self.owns_object = False, True
        if self.base is not None and 0 < self.base < MIN_PART_SIZE:
            self.base = None  # read back into the buffer
        self.has_upload = True
        if self.base is not None:
            if self.base:  # copied into the upload, then removed
                self.in_parts, self.committed, self.owns_object = self.base, None, False
            self.base = None
        if self.buffered >= MIN_PART_SIZE:
            self.in_parts += self.buffered - self.buffered % MIN_PART_SIZE
            self.short_tail = False
        if final and self.buffered:
            self.short_tail = self.buffered < MIN_PART_SIZE
            self.in_parts = len(self.content)
        if self.in_parts and self.owns_object:
            self.committed, self.owns_object = None, False
        self.upload = self.content[: self.in_parts]

    def close(self) -> None:
        if self.buffered:
            self.flush(final=True)

    def commit(self) -> None:
        self.committed, self.upload, self.short_tail = self.content, None, False

    def cancel(self) -> None:
        if self.has_upload:
            self.upload, self.short_tail = None, False
        if self.owns_object:
            self.committed = None


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_random_resumes_match_a_model(bucket: str, seed: int) -> None:
    """Writers of sizes about the part limits, each in another process,
    closed, committed or cancelled: the driver does what `Model` says."""
    rng = random.Random(seed)
    path = "/model/data"
    model = Model()
    history: list[str] = []
    for step in range(10):
        async with process(bucket, chunksize=MIN_PART_SIZE) as driver:
            append = rng.random() < 0.7
            end = rng.choice(["close", "close", "commit", "cancel"])
            writer = await driver.writer(path, append=append)
            model.open(append)
            history.append(f"{step}: {'append' if append else 'truncate'}")
            assert writer.size == model.size, history
            for _ in range(rng.randint(0, 2)):
                data = random_bytes(rng.choice(STEP_SIZES), seed=seed * 100 + step)
                history.append(f"write {len(data)}")
                await writer.write(data)
                model.write(data)
            history.append(end)
            await getattr(writer, end)()
            getattr(model, end)()
            if model.committed is None:
                with pytest.raises(PathNotFound):
                    await driver.get_content(path)
            else:
                assert await driver.get_content(path) == model.committed, history
    async with process(bucket, chunksize=MIN_PART_SIZE) as driver:
        writer = await driver.writer(path, append=True)
        model.open(append=True)
        assert writer.size == model.size, history
        await writer.commit()
        model.commit()
        assert await driver.get_content(path) == model.committed
    assert uploads_in(bucket) == []


async def test_full_parts_resume_without_copies(bucket: str) -> None:
    """A close after whole parts leaves parts of 5 MiB and more: the next
    process goes on with the same upload."""
    first = random_bytes(6 * MiB, seed=1)
    second = random_bytes(5 * MiB + 3, seed=2)
    async with process(bucket, chunksize=5 * MiB) as driver:
        writer = await driver.writer("/data")
        await writer.write(first)  # a 5 MiB part; 1 MiB in the buffer
        await writer.close()  # the 1 MiB goes up as a short last part
    (upload_key,) = uploads_in(bucket)
    async with process(bucket, chunksize=5 * MiB) as driver:
        writer = await driver.writer("/data", append=True)
        assert writer.size == len(first)
        await writer.write(second)
        await writer.commit()
        assert await driver.get_content("/data") == first + second
    assert uploads_in(bucket) == []
    assert upload_key == "data"


async def test_a_closed_write_is_invisible_until_commit(s3: S3Driver, bucket: str) -> None:
    await s3.put_content("/file", b"old content")
    writer = await s3.writer("/file")  # truncating
    await writer.write(b"new")
    await writer.close()
    # The bytes are parts of an upload: S3 shows the old object until commit.
    assert await s3.get_content("/file") == b"old content"
    async with process(bucket) as other:
        writer = await other.writer("/file", append=True)
        assert writer.size == 3
        await writer.write(b" content")
        await writer.commit()
    assert await s3.get_content("/file") == b"new content"
    with pytest.raises(PathNotFound):
        await s3.get_content("/never/committed")


async def test_append_to_a_stored_file(s3: S3Driver, bucket: str) -> None:
    small = random_bytes(1000, seed=3)
    large = random_bytes(6 * MiB, seed=4)
    await s3.put_content("/small", small)
    await s3.put_content("/large", large)
    for path, content in (("/small", small), ("/large", large)):
        async with process(bucket, chunksize=5 * MiB) as driver:
            writer = await driver.writer(path, append=True)
            assert writer.size == len(content)
            await writer.write(b"+tail")
            await writer.close()
            # Its bytes are in the upload now: the object at the key is gone.
            with pytest.raises(PathNotFound):
                await driver.stat(path)
        async with process(bucket, chunksize=5 * MiB) as driver:
            writer = await driver.writer(path, append=True)
            assert writer.size == len(content) + 5
            await writer.commit()
        assert await s3.get_content(path) == content + b"+tail"
    assert uploads_in(bucket) == []


async def test_append_then_commit_in_one_writer(s3: S3Driver) -> None:
    await s3.put_content("/grow", b"abc")
    writer = await s3.writer("/grow", append=True)
    await writer.write(b"def")
    await writer.commit()
    assert await s3.get_content("/grow") == b"abcdef"
    writer = await s3.writer("/grow", append=True)
    await writer.commit()  # nothing appended: the object stays as it is
    assert await s3.get_content("/grow") == b"abcdef"
    writer = await s3.writer("/new", append=True)
    await writer.commit()  # nothing at all: an empty file, as on a file system
    assert await s3.get_content("/new") == b""


async def test_resume_an_upload_left_by_distribution(s3: S3Driver, bucket: str) -> None:
    """Distribution closes a writer by uploading its buffer as a part of any
    size; entrepot resumes such an upload (and Distribution entrepot's)."""
    client = admin_client()
    first, tail = random_bytes(5 * MiB, seed=5), random_bytes(100 * 1024, seed=6)
    upload = client.create_multipart_upload(Bucket=bucket, Key="blob/data")["UploadId"]
    for number, body in enumerate((first, tail), 1):
        client.upload_part(
            Bucket=bucket, Key="blob/data", UploadId=upload, PartNumber=number, Body=body
        )
    writer = await s3.writer("/blob/data", append=True)
    assert writer.size == len(first) + len(tail)
    await writer.write(b"more")
    await writer.close()
    # What Distribution does on resume: the sum of the parts is the size.
    (left,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    parts = client.list_parts(Bucket=bucket, Key="blob/data", UploadId=left["UploadId"])
    assert sum(part["Size"] for part in parts["Parts"]) == len(first) + len(tail) + 4
    writer = await s3.writer("/blob/data", append=True)
    await writer.commit()
    assert await s3.get_content("/blob/data") == first + tail + b"more"


async def test_the_newest_upload_is_resumed(s3: S3Driver, bucket: str) -> None:
    client = admin_client()
    for body in (b"older", b"newest"):  # as another writer (a crash) may leave them
        upload = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        client.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=body)
    writer = await s3.writer("/k", append=True)
    assert writer.size == 6
    await writer.close()


async def test_a_truncating_writer_abandons_uploads_in_progress(s3: S3Driver, bucket: str) -> None:
    writer = await s3.writer("/k")
    await writer.write(b"abandoned")
    await writer.close()
    writer = await s3.writer("/k")
    await writer.write(b"fresh")
    await writer.close()
    assert uploads_in(bucket) == ["k"]
    writer = await s3.writer("/k", append=True)
    assert writer.size == 5
    await writer.commit()
    assert await s3.get_content("/k") == b"fresh"
    assert uploads_in(bucket) == []


async def test_more_than_a_thousand_parts(s3: S3Driver, bucket: str) -> None:
    """ListParts pages hold 1,000 parts: a resume sums them all."""
    client = await s3._s3()
    upload = (await client.create_multipart_upload(Bucket=bucket, Key="many"))["UploadId"]
    count = 1003

    def part(number: int) -> Callable[[], Awaitable[object]]:
        return lambda: client.upload_part(
            Bucket=bucket, Key="many", UploadId=upload, PartNumber=number, Body=b"x" * number
        )

    await gather_bounded([part(number) for number in range(1, count + 1)])
    writer = await s3.writer("/many", append=True)
    assert writer.size == count * (count + 1) // 2
    await writer.cancel()
    assert uploads_in(bucket) == []


async def test_parts_and_uploads_over_many_pages(
    s3: S3Driver, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "LIST_PAGE_SIZE", 3)
    client = await s3._s3()
    # Uploads of other keys under the same prefix come first in the listing.
    for name in ("k/a", "k/b", "k/c", "k/d", "k0"):
        await client.create_multipart_upload(Bucket=bucket, Key=name)
    upload = (await client.create_multipart_upload(Bucket=bucket, Key="k"))["UploadId"]
    for number in range(1, 11):
        await client.upload_part(
            Bucket=bucket, Key="k", UploadId=upload, PartNumber=number, Body=b"y" * number
        )
    s3._client = PagedUploads(client, page=2)  # type: ignore[assignment]
    writer = await s3.writer("/k", append=True)
    assert writer.size == 55
    await writer.close()
    await s3.delete("/k")  # aborts the uploads of "k" and below, spares "k0"
    assert uploads_in(bucket) == ["k0"]


class PagedUploads:
    """A client whose ListMultipartUploads answers in pages, as S3's does
    (moto's answers everything at once)."""

    def __init__(self, client: Any, page: int) -> None:
        self._client = client
        self._page = page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def list_multipart_uploads(self, **kwargs: Any) -> dict[str, Any]:
        key_marker = kwargs.pop("KeyMarker", "")
        id_marker = kwargs.pop("UploadIdMarker", "")
        kwargs.pop("MaxUploads", None)
        everything = await self._client.list_multipart_uploads(**kwargs)
        uploads = everything.get("Uploads", [])
        start = 0
        if key_marker:
            start = next(
                i + 1
                for i, upload in enumerate(uploads)
                if (upload["Key"], upload["UploadId"]) == (key_marker, id_marker)
            )
        page = uploads[start : start + self._page]
        truncated = start + self._page < len(uploads)
        answer: dict[str, Any] = {"Uploads": page, "IsTruncated": truncated}
        if truncated:
            answer["NextKeyMarker"] = page[-1]["Key"]
            answer["NextUploadIdMarker"] = page[-1]["UploadId"]
        return answer


async def test_cancel_aborts_and_removes(s3: S3Driver, bucket: str) -> None:
    writer = await s3.writer("/gone")
    await writer.write(random_bytes(11 * MiB, seed=7))  # a part is uploaded
    await writer.close()
    writer = await s3.writer("/gone", append=True)
    await writer.cancel()
    assert uploads_in(bucket) == []
    assert keys_in(bucket) == []
    await s3.put_content("/base", b"base")
    writer = await s3.writer("/base", append=True)
    await writer.write(b"more")
    await writer.cancel()
    with pytest.raises(PathNotFound):
        await s3.stat("/base")


async def test_write_of_many_chunks_bounds_the_buffer(s3: S3Driver) -> None:
    chunks = [random_bytes(MiB, seed=i) for i in range(23)]
    writer = await s3.writer("/streamed")
    for chunk in chunks:
        await writer.write(chunk)
        assert len(writer._buffer) < DEFAULT_CHUNK_SIZE  # type: ignore[attr-defined]
    await writer.commit()
    assert await s3.get_content("/streamed") == b"".join(chunks)


class FailingParts:
    """A client whose next UploadPart calls fail, as a network error would."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def upload_part(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("simulated")
        return await self._client.upload_part(**kwargs)


@pytest.mark.parametrize("before", [0, 3 * MiB])
async def test_a_failed_write_stores_nothing(bucket: str, before: int) -> None:
    """When none of a write's bytes went up, a failed write is undone: the
    caller can send the same bytes again (the upload layer's hash stays right)."""
    first = random_bytes(before, seed=10)
    second = random_bytes(6 * MiB, seed=11)
    async with process(bucket, chunksize=5 * MiB) as s3:
        writer = await s3.writer("/retried")
        await writer.write(first)
        failing = FailingParts(await s3._s3(), failures=1)
        s3._client = failing  # type: ignore[assignment]
        with pytest.raises(ConnectionError):
            await writer.write(second)
        assert writer.size == before
        assert failing.failures == 0
        await writer.write(second)
        await writer.commit()
        assert await s3.get_content("/retried") == first + second


# -- move --


async def test_move_with_a_multipart_copy(bucket: str) -> None:
    content = random_bytes(11 * MiB + 5, seed=8)
    async with process(
        bucket, multipartcopythresholdsize=MiB, multipartcopychunksize=5 * MiB
    ) as driver:
        await driver.put_content("/uploads/x/data", content)
        await driver.move("/uploads/x/data", "/blobs/ab/abcd/data")
        assert await driver.get_content("/blobs/ab/abcd/data") == content
        with pytest.raises(PathNotFound):
            await driver.stat("/uploads/x/data")
        head = admin_client().head_object(Bucket=bucket, Key="blobs/ab/abcd/data")
        assert head["ETag"].strip('"').endswith("-2")  # two parts of 5.5 MiB
        # Under the threshold: one CopyObject, an object of one part.
        await driver.put_content("/small", b"small")
        await driver.move("/small", "/moved")
        assert await driver.get_content("/moved") == b"small"
        assert "-" not in admin_client().head_object(Bucket=bucket, Key="moved")["ETag"]
    assert uploads_in(bucket) == []


@pytest.mark.parametrize(
    ("size", "piece", "most", "count"),
    [
        (1, 5 * MiB, 10_000, 1),
        (5 * MiB, 5 * MiB, 10_000, 1),
        (11 * MiB + 5, 5 * MiB, 10_000, 2),
        (100 * MiB, 32 * MiB, 10_000, 3),
        (12 * 1024 * MiB, 32 * MiB, 100, 100),  # capped: larger parts
        (12 * 1024 * MiB, 5 * 1024 * MiB, 10_000, 3),  # 5 GiB at most a part
    ],
)
def test_copy_ranges(size: int, piece: int, most: int, count: int) -> None:
    ranges = _ranges(size, piece, most)
    assert len(ranges) == count
    assert ranges[0][0] == 0
    assert ranges[-1][1] == size - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    lengths = [last - first + 1 for first, last in ranges]
    assert all(length <= MAX_PART_SIZE for length in lengths)
    # Parts of a writer's upload come before others: 5 MiB at least.
    assert count == 1 or all(length >= MIN_PART_SIZE for length in lengths)


# -- listings --


async def test_listings_of_more_than_a_thousand_keys(s3: S3Driver) -> None:
    names = [f"/many/f{i:04}" for i in range(1005)] + ["/many/sub/x", "/many/sub/y"]

    def put(path: str) -> Callable[[], Awaitable[None]]:
        return lambda: s3.put_content(path, b"x")

    await gather_bounded([put(path) for path in names])
    listed = await s3.list("/many")
    assert listed == sorted([*names[:1005], "/many/sub"])
    walked = [info.path async for info in s3.walk("/many")]
    assert walked == [*names[:1005], "/many/sub", "/many/sub/x", "/many/sub/y"]
    await s3.delete("/many")  # two DeleteObjects batches
    with pytest.raises(PathNotFound):
        await s3.list("/many")


async def test_list_and_walk_over_small_pages(
    s3: S3Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "LIST_PAGE_SIZE", 2)
    paths = ["/t/a", "/t/a-b/c", "/t/a/b", "/t/a/c/d", "/t/b", "/t/c/d", "/t/c/e", "/t/d"]
    for path in paths:
        await s3.put_content(path, path.encode())
    assert await s3.list("/t") == ["/t/a", "/t/a-b", "/t/b", "/t/c", "/t/d"]
    infos = [info async for info in s3.walk("/t")]
    # A file and a directory may share a name on S3: both are reported.
    assert [(info.path, info.is_dir) for info in infos] == [
        ("/t/a", False),
        ("/t/a", True),
        ("/t/a/b", False),
        ("/t/a/c", True),
        ("/t/a/c/d", False),
        ("/t/a-b", True),
        ("/t/a-b/c", False),
        ("/t/b", False),
        ("/t/c", True),
        ("/t/c/d", False),
        ("/t/c/e", False),
        ("/t/d", False),
    ]
    await s3.delete("/t/c")
    assert await s3.list("/t") == ["/t/a", "/t/a-b", "/t/b", "/t/d"]


async def test_directory_times_come_from_objects_below(s3: S3Driver) -> None:
    await s3.put_content("/d/only/dirs/below/file", b"x")
    file_info = await s3.stat("/d/only/dirs/below/file")
    for path in ("/", "/d", "/d/only", "/d/only/dirs"):
        info = await s3.stat(path)
        assert info == FileInfo(path, 0, file_info.mtime, is_dir=True)
    infos = [info async for info in s3.walk("/")]
    assert all(info.mtime == file_info.mtime for info in infos)


async def test_root_directory(bucket: str) -> None:
    client = admin_client()
    client.put_object(Bucket=bucket, Key="outside/file", Body=b"not ours")
    client.put_object(Bucket=bucket, Key="registry/rootx", Body=b"not ours either")
    async with process(bucket, rootdirectory="/registry/root/") as driver:
        await driver.put_content("/a/b", b"ours")
        assert "registry/root/a/b" in keys_in(bucket)
        assert await driver.list("/") == ["/a"]
        assert [info.path async for info in driver.walk("/")] == ["/a", "/a/b"]
        await driver.delete("/a")
        assert await driver.list("/") == []
    assert sorted(keys_in(bucket)) == ["outside/file", "registry/rootx"]


async def test_delete_aborts_uploads_below(s3: S3Driver, bucket: str) -> None:
    await s3.put_content("/repo/_uploads/u1/startedat", b"now")
    writer = await s3.writer("/repo/_uploads/u1/data")
    await writer.write(b"partial")
    await writer.close()
    writer = await s3.writer("/repo/_uploads/u2/data")  # only an upload, no object
    await writer.close()
    await s3.delete("/repo/_uploads/u2")  # a file being written is a file
    with pytest.raises(PathNotFound):
        await s3.delete("/repo/_uploads/u2")
    await s3.delete("/repo")
    assert uploads_in(bucket) == []
    assert keys_in(bucket) == []


async def test_a_key_too_long_is_an_invalid_path(s3: S3Driver) -> None:
    with pytest.raises(InvalidPath, match="too long"):
        await s3.put_content("/" + "x" * 1025, b"x")


# -- readers --


async def test_reader_streams_from_an_offset(s3: S3Driver) -> None:
    content = random_bytes(3 * MiB + 17, seed=9)
    await s3.put_content("/big", content)
    reader = await s3.reader("/big", MiB + 7)
    offset = MiB + 7
    while True:
        chunk = await reader.read(100_000)
        assert chunk == content[offset : offset + 100_000]
        if not chunk:
            break
        offset += len(chunk)
    assert offset == len(content)
    await reader.close()
    with pytest.raises(ValueError, match="closed"):
        await reader.read()
    reader = await s3.reader("/big", len(content))
    assert await reader.read() == b""
    await reader.close()
    # An abandoned reader lets its connection go.
    reader = await s3.reader("/big")
    assert await reader.read(10) == content[:10]
    await reader.close()


# -- serving --


async def test_redirect_urls_are_presigned(s3: S3Driver) -> None:
    await s3.put_content("/serve/file", b"served")
    get_url = await s3.redirect_url("/serve/file")
    head_url = await s3.redirect_url("/serve/file", "HEAD")
    assert get_url is not None
    assert head_url is not None
    assert "X-Amz-Signature=" in get_url
    assert "X-Amz-Expires=1200" in get_url
    async with httpx.AsyncClient() as http:
        got = await http.get(get_url)
        assert got.status_code == 200
        assert got.content == b"served"
        headed = await http.head(head_url)
        assert headed.status_code == 200
        assert headed.headers["content-length"] == "6"
    assert await s3.redirect_url("/serve/file", "PUT") is None
    assert await s3.local_path("/serve/file") is None


async def test_redirect_endpoint(bucket: str) -> None:
    async with process(bucket, redirectendpoint="https://cdn.example.com") as driver:
        url = await driver.redirect_url("/serve/file")
    assert url is not None
    assert url.startswith(f"https://cdn.example.com/{bucket}/serve/file?")


# -- the client --


def test_a_driver_serves_one_event_loop_after_another(bucket: str) -> None:
    driver = new_driver(bucket)

    async def use(content: bytes) -> bytes:
        await driver.put_content("/loop", content)
        return await driver.get_content("/loop")

    assert asyncio.run(use(b"first")) == b"first"
    assert asyncio.run(use(b"second")) == b"second"


async def test_aclose_then_use_again(s3: S3Driver) -> None:
    await s3.put_content("/x", b"1")
    await s3.aclose()
    await s3.aclose()
    assert await s3.get_content("/x") == b"1"


# -- parameters --


def test_distribution_defaults() -> None:
    options = S3Options.from_parameters({"bucket": "b", "region": "eu-west-1"})
    assert options == S3Options(bucket="b", region="eu-west-1")
    assert options.chunk_size == 10 * MiB
    assert options.multipart_copy_chunk_size == 32 * MiB
    assert options.multipart_copy_threshold_size == 32 * MiB
    assert options.multipart_copy_max_concurrency == 100
    assert options.secure
    assert options.v4_auth
    assert options.storage_class == "STANDARD"


def test_parameters_as_a_config_file_gives_them() -> None:
    options = S3Options.from_parameters(
        {
            "bucket": "b",
            "region": None,
            "regionendpoint": "minio.local:9000",
            "forcepathstyle": "true",
            "secure": "false",
            "chunksize": "5242880",
            "multipartcopythresholdsize": 0,
            "rootdirectory": "/reg/",
            "storageclass": "reduced_redundancy",
            "objectacl": "bucket-owner-full-control",
            "encrypt": True,
            "keyid": "kms-key",
            "v4auth": False,
            "loglevel": False,  # YAML's unquoted `off`
            "accesskey": None,
            "unknown": "ignored",
        }
    )
    assert options.region_endpoint == "http://minio.local:9000"
    assert options.force_path_style
    assert not options.secure
    assert options.chunk_size == MIN_PART_SIZE
    assert options.multipart_copy_threshold_size == 0
    assert options.storage_class == "REDUCED_REDUNDANCY"
    assert options.log_level == "off"
    driver = S3Driver(options)
    assert driver._key("/a/b") == "reg/a/b"
    assert driver._dir_prefix("/") == "reg/"
    assert driver._write_args == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "kms-key",
        "StorageClass": "REDUCED_REDUNDANCY",
        "ACL": "bucket-owner-full-control",
    }
    assert S3Driver(S3Options(bucket="b", storage_class="NONE"))._write_args == {}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"region": "us-east-1"}, "no bucket"),
        ({"bucket": "b"}, "no region"),
        ({"bucket": "b", "region": "r", "chunksize": 5 * MiB - 1}, "chunksize"),
        ({"bucket": "b", "region": "r", "chunksize": "ten"}, "chunksize"),
        ({"bucket": "b", "region": "r", "chunksize": True}, "chunksize"),
        ({"bucket": "b", "region": "r", "multipartcopychunksize": 6 * 1024**3}, "copychunk"),
        ({"bucket": "b", "region": "r", "multipartcopymaxconcurrency": 0}, "concurrency"),
        ({"bucket": "b", "region": "r", "secure": "maybe"}, "secure"),
        ({"bucket": "b", "region": "r", "storageclass": "GLACIER"}, "storageclass"),
        ({"bucket": "b", "region": "r", "objectacl": "everyone"}, "objectacl"),
        ({"bucket": "b", "region": "r", "v4auth": False}, "v4"),
        ({"bucket": "b", "region": "r", "accelerate": True, "forcepathstyle": True}, "accel"),
        ({"bucket": "b", "region": "r", "redirectendpoint": "https://cdn/x"}, "redirect"),
        ({"bucket": "b", "region": "r", "regionendpoint": "ftp://host"}, "regionendpoint"),
        ({"bucket": 42, "region": "r"}, "bucket"),
    ],
)
def test_bad_parameters(params: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        S3Options.from_parameters(params)


def test_test_parameters_are_distributions() -> None:
    # The keys the tests configure are the ones a config.yml would have.
    options = S3Options.from_parameters(driver_parameters("bucket"))
    assert options.force_path_style
    assert options.access_key == "testing"
