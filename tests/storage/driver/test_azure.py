"""The Azure driver on a real Blob API (Azurite's): what the shared suite
cannot show. Uploads resumed by other processes (another `AzureDriver` on
the same container shares nothing with the first but the container), append
blocks of 4 MiB at most, listings of more than one page, moves by copy, SAS
URLs, and Distribution's parameters."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, UserDelegationKey
from azure.storage.blob.aio import BlobClient, BlobServiceClient

from entrepot.storage.driver import azure as azure_module
from entrepot.storage.driver.azure import (
    APPEND_BLOCK_SIZE,
    AzureDriver,
    AzureOptions,
)
from entrepot.storage.driver.base import (
    FileInfo,
    InvalidPath,
    PathNotFound,
    StorageDriverError,
)
from tests.storage.driver.azurite_server import (
    ACCOUNT_KEY,
    ACCOUNT_NAME,
    AzuriteServer,
    admin_client,
    azurite_server,
    driver_parameters,
    new_container,
    new_driver,
)

MiB = 1024 * 1024


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="session")
def azurite() -> AzuriteServer:
    return azurite_server()


@pytest.fixture
def container(azurite: AzuriteServer) -> str:
    return new_container()


@pytest.fixture
async def az(container: str) -> AsyncIterator[AzureDriver]:
    driver = new_driver(container)
    yield driver
    await driver.aclose()


@asynccontextmanager
async def process(container: str, **extra: Any) -> AsyncIterator[AzureDriver]:
    """A driver of its own on `container`, as another registry process has."""
    driver = new_driver(container, **extra)
    try:
        yield driver
    finally:
        await driver.aclose()


def blob_names(container: str) -> list[str]:
    return [blob.name for blob in admin_client().get_container_client(container).list_blobs()]


def properties(container: str, name: str) -> BlobProperties:
    return admin_client().get_blob_client(container, name).get_blob_properties()


def content(container: str, name: str) -> bytes:
    return admin_client().get_blob_client(container, name).download_blob().readall()


async def gather_bounded(calls: list[Callable[[], Awaitable[object]]], limit: int = 32) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(run(call) for call in calls))


# -- writers resumed by other processes --


async def test_uploads_resume_across_processes(container: str) -> None:
    """Chunks of every size about the 4 MiB block, each in another process:
    the size is exact on every reopen, what was written readable at once
    (append blobs grow in place), and the file whole on commit."""
    sizes = [1, 700 * 1024, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 3, 0, 12345]
    chunks = [random_bytes(size, seed=i) for i, size in enumerate(sizes)]
    path = "/repo/_uploads/u1/data"
    written = b""
    for i, chunk in enumerate(chunks):
        async with process(container) as driver:
            writer = await driver.writer(path, append=i > 0)
            assert writer.size == len(written)
            assert await writer.write(chunk) == len(chunk)
            written += chunk
            assert writer.size == len(written)
            await writer.close()
            # Unfinished, yet all there: the blob is the file.
            assert await driver.get_content(path) == written
        assert properties(container, "repo/_uploads/u1/data").blob_type == "AppendBlob"
    async with process(container) as driver:
        writer = await driver.writer(path, append=True)
        assert writer.size == len(written)
        await writer.write(b"end")
        await writer.commit()
        assert writer.size == len(written) + 3
        assert await driver.get_content(path) == written + b"end"
        assert (await driver.stat(path)).size == len(written) + 3
    assert blob_names(container) == ["repo/_uploads/u1/data"]


async def test_writes_go_up_in_blocks_of_4_mib(az: AzureDriver, container: str) -> None:
    # One write of over two blocks: sent as 4 + 4 MiB, the rest on commit.
    big = random_bytes(9 * MiB + 5, seed=1)
    writer = await az.writer("/big")
    await writer.write(big)
    assert properties(container, "big").size == 8 * MiB  # two full blocks sent
    await writer.commit()
    blob = properties(container, "big")
    assert blob.append_blob_committed_block_count == 3
    assert content(container, "big") == big
    # Small writes collect into full blocks: memory stays under a block.
    writer = await az.writer("/small-writes")
    pieces = [random_bytes(64 * 1024, seed=i) for i in range(160)]  # 10 MiB
    for piece in pieces:
        await writer.write(piece)
        assert len(writer._buffer) < APPEND_BLOCK_SIZE  # type: ignore[attr-defined]
    await writer.commit()
    assert properties(container, "small-writes").append_blob_committed_block_count == 3
    assert await az.get_content("/small-writes") == b"".join(pieces)


async def test_truncating_writer_replaces_the_file_at_once(az: AzureDriver, container: str) -> None:
    await az.put_content("/file", b"old content")
    assert properties(container, "file").blob_type == "BlockBlob"
    writer = await az.writer("/file")
    # Made at once, so another process would resume this file, not the old.
    assert await az.get_content("/file") == b""
    await writer.write(b"new")
    await writer.close()
    assert await az.get_content("/file") == b"new"
    assert properties(container, "file").blob_type == "AppendBlob"
    await az.put_content("/file", b"replaced whole")  # a block blob again
    assert properties(container, "file").blob_type == "BlockBlob"
    assert await az.get_content("/file") == b"replaced whole"


async def test_appending_to_a_block_blob(container: str) -> None:
    """A file from put_content is a block blob, which takes no appends: its
    bytes start a new append blob when the writer first sends some."""
    async with process(container) as driver:
        await driver.put_content("/data", b"from put_content;")
    async with process(container) as driver:
        writer = await driver.writer("/data", append=True)
        assert writer.size == 17
        await writer.close()  # nothing written: the block blob stays
        assert properties(container, "data").blob_type == "BlockBlob"
        writer = await driver.writer("/data", append=True)
        await writer.write(b" appended")
        assert writer.size == 26
        await writer.close()
        assert properties(container, "data").blob_type == "AppendBlob"
    async with process(container) as driver:
        writer = await driver.writer("/data", append=True)
        assert writer.size == 26
        await writer.write(b"!")
        await writer.commit()
        assert await driver.get_content("/data") == b"from put_content; appended!"


async def test_a_block_blob_replaced_under_its_writer(az: AzureDriver) -> None:
    await az.put_content("/data", b"first")
    writer = await az.writer("/data", append=True)
    await writer.write(b" and more")
    await az.put_content("/data", b"replacement")
    with pytest.raises(StorageDriverError, match="another writer"):
        await writer.close()
    assert await az.get_content("/data") == b"replacement"


class StrictTypes:
    """A blob client that will not change a blob's type in place, as
    Distribution says Azure would not: the old blob must be deleted first."""

    def __init__(self, blob: BlobClient, refusals: list[str]) -> None:
        self._blob = blob
        self._refusals = refusals

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blob, name)

    async def _refuse_other_than(self, kind: str, operation: str) -> None:
        try:
            existing = await self._blob.get_blob_properties()
        except ResourceNotFoundError:
            return
        if existing.blob_type != kind:
            self._refusals.append(operation)
            error = ResourceExistsError(message="The blob type is invalid for this operation.")
            error.error_code = "InvalidBlobType"  # type: ignore[attr-defined]
            raise error

    async def upload_blob(self, data: bytes, **kwargs: Any) -> Any:
        await self._refuse_other_than("BlockBlob", "upload_blob")
        return await self._blob.upload_blob(data, **kwargs)

    async def create_append_blob(self, **kwargs: Any) -> Any:
        await self._refuse_other_than("AppendBlob", "create_append_blob")
        return await self._blob.create_append_blob(**kwargs)

    async def start_copy_from_url(self, url: str, **kwargs: Any) -> Any:
        await self._refuse_other_than("AppendBlob", "start_copy_from_url")
        return await self._blob.start_copy_from_url(url, **kwargs)


async def test_blobs_change_type_on_a_strict_service(
    az: AzureDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusals: list[str] = []
    blob_of = az._blob
    monkeypatch.setattr(az, "_blob", lambda key: StrictTypes(blob_of(key), refusals))
    await az.put_content("/file", b"block")
    writer = await az.writer("/file")  # an append blob replaces the block blob
    await writer.write(b"appended")
    await writer.commit()
    assert await az.get_content("/file") == b"appended"
    await az.put_content("/file", b"block again")  # and the other way round
    assert await az.get_content("/file") == b"block again"
    writer = await az.writer("/file", append=True)  # a block blob as the base
    await writer.write(b", continued")
    await writer.commit()
    assert await az.get_content("/file") == b"block again, continued"
    await az.put_content("/dest", b"block")
    await az.move("/file", "/dest")  # an append blob copied over a block blob
    assert await az.get_content("/dest") == b"block again, continued"
    assert refusals == [
        "create_append_blob",
        "upload_blob",
        "create_append_blob",
        "start_copy_from_url",
    ]


async def test_writers_do_not_interleave(az: AzureDriver) -> None:
    """Blocks go at the offset their writer expects: a writer that another
    has overtaken fails rather than mixing its bytes in."""
    first = await az.writer("/shared")
    await first.write(b"abc")
    await first.close()
    one = await az.writer("/shared", append=True)
    two = await az.writer("/shared", append=True)
    await two.write(b"from two")
    await two.close()
    await one.write(b"from one")
    with pytest.raises(StorageDriverError, match="another writer"):
        await one.close()
    assert await az.get_content("/shared") == b"abcfrom two"


class FlakyAppends:
    """A blob client whose appends go wrong as a network would: `fail`
    appends raise before sending; `lose` appends go through and then are
    sent again (as the client retries when the answer is lost), which the
    service refuses as out of place."""

    def __init__(self, blob: BlobClient, fail: int = 0, lose: int = 0) -> None:
        self._blob = blob
        self.fail = fail
        self.lose = lose

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blob, name)

    async def append_block(self, data: bytes, **kwargs: Any) -> Any:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("simulated")
        if self.lose:
            self.lose -= 1
            await self._blob.append_block(data, **kwargs)
        return await self._blob.append_block(data, **kwargs)


def flaky(
    driver: AzureDriver, monkeypatch: pytest.MonkeyPatch, fail: int = 0, lose: int = 0
) -> FlakyAppends:
    blob_of = driver._blob
    flakes = FlakyAppends(blob_of("flaky"), fail=fail, lose=lose)

    def patched(key: str) -> Any:
        flakes._blob = blob_of(key)
        return flakes

    monkeypatch.setattr(driver, "_blob", patched)
    return flakes


@pytest.mark.parametrize("before", [0, 3 * MiB])
async def test_a_failed_write_stores_nothing(
    az: AzureDriver, monkeypatch: pytest.MonkeyPatch, before: int
) -> None:
    """When none of a write's bytes went up, a failed write is undone: the
    caller can send the same bytes again (the upload layer's hash stays right)."""
    first = random_bytes(before, seed=10)
    second = random_bytes(6 * MiB, seed=11)
    writer = await az.writer("/retried")
    await writer.write(first)
    flakes = flaky(az, monkeypatch, fail=1)
    with pytest.raises(ConnectionError):
        await writer.write(second)
    assert writer.size == before
    assert flakes.fail == 0
    await writer.write(second)
    await writer.commit()
    assert await az.get_content("/retried") == first + second


async def test_an_append_retried_after_a_lost_answer(
    az: AzureDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service refuses the second try of a block that went through: the
    writer finds its bytes at the end of the blob and goes on."""
    data = random_bytes(9 * MiB, seed=12)
    flakes = flaky(az, monkeypatch, lose=2)
    writer = await az.writer("/lost")
    await writer.write(data)
    await writer.commit()
    assert flakes.lose == 0
    assert writer.size == len(data)
    assert await az.get_content("/lost") == data


# -- listings --


async def test_listings_of_more_than_one_page(az: AzureDriver) -> None:
    """Azurite, as Azure, gives 5,000 names a page."""
    names = [f"/many/f{i:04}" for i in range(5003)] + ["/many/sub/x"]

    def put(path: str) -> Callable[[], Awaitable[None]]:
        return lambda: az.put_content(path, b"x")

    await gather_bounded([put(path) for path in names])
    assert await az.list("/many") == sorted([*names[:5003], "/many/sub"])
    walked = [info.path async for info in az.walk("/many")]
    assert walked == [*names[:5003], "/many/sub", "/many/sub/x"]


async def test_list_walk_and_delete_over_small_pages(
    az: AzureDriver, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_module, "LIST_PAGE_SIZE", 2)
    paths = ["/t/a", "/t/a-b/c", "/t/a/b", "/t/a/c/d", "/t/b", "/t/c/d", "/t/c/e", "/t/d"]
    for path in paths:
        await az.put_content(path, path.encode())
    assert await az.list("/t") == ["/t/a", "/t/a-b", "/t/b", "/t/c", "/t/d"]
    infos = [info async for info in az.walk("/t")]
    # A file and a directory may share a name in Azure: both are reported.
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
    await az.delete("/t/a")  # the file and the tree under its name
    assert await az.list("/t") == ["/t/a-b", "/t/b", "/t/c", "/t/d"]
    await az.delete("/t")
    assert blob_names(container) == []


async def test_directory_times_come_from_blobs_below(az: AzureDriver) -> None:
    await az.put_content("/d/only/dirs/below/file", b"x")
    file_info = await az.stat("/d/only/dirs/below/file")
    for path in ("/", "/d", "/d/only", "/d/only/dirs"):
        assert await az.stat(path) == FileInfo(path, 0, file_info.mtime, is_dir=True)
    infos = [info async for info in az.walk("/")]
    assert all(info.mtime == file_info.mtime for info in infos)


async def test_root_directory(container: str) -> None:
    client = admin_client().get_container_client(container)
    client.upload_blob("outside/file", b"not ours")
    client.upload_blob("registry/rootx", b"not ours either")
    async with process(container, rootdirectory="/registry/root/") as driver:
        await driver.put_content("/a/b", b"ours")
        writer = await driver.writer("/a/c")
        await writer.write(b"written")
        await writer.commit()
        assert "registry/root/a/b" in blob_names(container)
        assert await driver.list("/") == ["/a"]
        assert [info.path async for info in driver.walk("/")] == ["/a", "/a/b", "/a/c"]
        await driver.move("/a/c", "/a/d")
        assert "registry/root/a/d" in blob_names(container)
        await driver.delete("/a")
        assert await driver.list("/") == []
    assert sorted(blob_names(container)) == ["outside/file", "registry/rootx"]


async def test_names_azure_cannot_hold_are_refused(az: AzureDriver) -> None:
    for path in ("/back\\slash", "/a/\ufffe", "/c1/\x85", "/" + "x" * 1025, "/a" * 255):
        with pytest.raises(InvalidPath):
            await az.put_content(path, b"x")
    await az.put_content("/" + "x" * 1024, b"fits")
    await az.put_content("/a" * 254, b"fits")


# -- move --


async def test_move_is_a_server_side_copy(az: AzureDriver, container: str) -> None:
    data = random_bytes(5 * MiB + 3, seed=8)
    writer = await az.writer("/uploads/x/data")
    await writer.write(data)
    await writer.commit()
    await az.put_content("/blobs/ab/abcd/data", b"an older block blob")
    await az.move("/uploads/x/data", "/blobs/ab/abcd/data")
    assert await az.get_content("/blobs/ab/abcd/data") == data
    with pytest.raises(PathNotFound):
        await az.stat("/uploads/x/data")
    moved = properties(container, "blobs/ab/abcd/data")
    assert moved.copy.status == "success"
    assert moved.copy.source is not None
    assert "/uploads/x/data" in moved.copy.source
    assert blob_names(container) == ["blobs/ab/abcd/data"]


class PendingCopy:
    """A destination blob whose copy stays pending `polls` times."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.aborted: list[str] = []

    async def get_blob_properties(self) -> BlobProperties:
        blob = BlobProperties()
        blob.copy.id = "copy-1"
        blob.copy.status = "pending" if self.polls else "success"
        self.polls = max(0, self.polls - 1)
        return blob

    async def abort_copy(self, copy_id: str) -> None:
        self.aborted.append(copy_id)


@pytest.mark.parametrize(
    ("max_retries", "polls", "aborted"),
    [(5, 0, False), (5, 4, False), (5, 5, True), (0, 0, True), (-1, 0, True)],
)
async def test_a_pending_copy_is_polled_then_aborted(
    max_retries: int, polls: int, aborted: bool
) -> None:
    driver = AzureDriver.from_parameters(
        {
            "accountname": "a",
            "accountkey": ACCOUNT_KEY,
            "container": "c",
            "max_retries": max_retries,
            "retry_delay": "1ms",
        }
    )
    blob = PendingCopy(polls)
    if aborted:
        with pytest.raises(StorageDriverError, match="aborted"):
            await driver._wait_for_copy("/d", blob, "pending", "copy-1")  # type: ignore[arg-type]
        assert blob.aborted == ["copy-1"]
    else:
        await driver._wait_for_copy("/d", blob, "pending", "copy-1")  # type: ignore[arg-type]
        assert blob.aborted == []
    with pytest.raises(StorageDriverError, match="failed"):
        await driver._wait_for_copy("/d", blob, "failed", "copy-1")  # type: ignore[arg-type]


# -- readers --


async def test_reader_streams_from_an_offset(az: AzureDriver) -> None:
    data = random_bytes(9 * MiB + 17, seed=9)
    await az.put_content("/big", data)
    reader = await az.reader("/big", MiB + 7)
    offset = MiB + 7
    while True:
        chunk = await reader.read(1_000_000)
        assert chunk == data[offset : offset + 1_000_000]
        if not chunk:
            break
        offset += len(chunk)
    assert offset == len(data)
    await reader.close()
    with pytest.raises(ValueError, match="closed"):
        await reader.read()
    reader = await az.reader("/big", len(data))
    assert await reader.read() == b""
    await reader.close()
    # An abandoned reader lets its connection go; the driver goes on.
    for _ in range(3):
        reader = await az.reader("/big")
        assert await reader.read(10) == data[:10]
        await reader.close()
    assert await az.get_content("/big") == data


# -- serving --


async def test_redirect_urls_are_read_only_sas_urls(az: AzureDriver, container: str) -> None:
    await az.put_content("/serve/file", b"served")
    url = await az.redirect_url("/serve/file")
    head_url = await az.redirect_url("/serve/file", "HEAD")
    assert url is not None
    assert head_url is not None
    assert url.startswith(f"{azurite_server().service_url}/{container}/serve/file?")
    query = parse_qs(urlsplit(url).query)
    assert query["sp"] == ["r"]
    assert "sig" in query
    expiry = datetime.strptime(query["se"][0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=19) < expiry - datetime.now(UTC) <= timedelta(minutes=20)
    async with httpx.AsyncClient() as http:
        got = await http.get(url)
        assert got.status_code == 200
        assert got.content == b"served"
        headed = await http.head(head_url)
        assert headed.status_code == 200
        assert headed.headers["content-length"] == "6"
        refused = await http.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
        assert refused.status_code == 403
    assert await az.get_content("/serve/file") == b"served"
    assert await az.redirect_url("/serve/file", "PUT") is None
    assert await az.local_path("/serve/file") is None


async def test_redirects_with_azure_ad_use_a_user_delegation_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[datetime, datetime]] = []

    async def get_user_delegation_key(
        self: BlobServiceClient, start: datetime, expiry: datetime, **kwargs: Any
    ) -> UserDelegationKey:
        asked.append((start, expiry))
        key = UserDelegationKey()  # type: ignore[no-untyped-call]
        key.signed_oid, key.signed_tid = "object-id", "tenant-id"
        key.signed_start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-11-05"
        key.value = "c2VjcmV0"
        return key

    monkeypatch.setattr(BlobServiceClient, "get_user_delegation_key", get_user_delegation_key)
    credentials = {"type": "client_secret", "clientid": "c", "tenantid": "t", "secret": "s"}
    driver = AzureDriver.from_parameters(
        {"accountname": "acct", "container": "images", "credentials": credentials}
    )
    first = await driver.redirect_url("/a/file")
    second = await driver.redirect_url("/a/file", "HEAD")
    await driver.aclose()
    assert len(asked) == 1  # kept for the next URLs
    start, expiry = asked[0]
    assert expiry - start == timedelta(hours=48)
    for url in (first, second):
        assert url is not None
        assert url.startswith("https://acct.blob.core.windows.net/images/a/file?")
        query = parse_qs(urlsplit(url).query)
        assert query["skoid"] == ["object-id"]
        assert query["spr"] == ["https"]
        assert query["sp"] == ["r"]


async def test_a_connection_string(container: str) -> None:
    service_url = azurite_server().service_url
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint={service_url};"
    )
    driver = AzureDriver.from_parameters(
        {"connectionstring": connection_string, "container": container}
    )
    try:
        await driver.put_content("/file", b"by connection string")
        assert await driver.get_content("/file") == b"by connection string"
        url = await driver.redirect_url("/file")
        assert url is not None
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).content == b"by connection string"
    finally:
        await driver.aclose()


# -- the client --


def test_a_driver_serves_one_event_loop_after_another(container: str) -> None:
    driver = new_driver(container)

    async def use(data: bytes) -> bytes:
        await driver.put_content("/loop", data)
        got = await driver.get_content("/loop")
        await driver.aclose()
        return got

    assert asyncio.run(use(b"first")) == b"first"
    assert asyncio.run(use(b"second")) == b"second"


async def test_aclose_then_use_again(az: AzureDriver) -> None:
    await az.put_content("/x", b"1")
    await az.aclose()
    await az.aclose()
    assert await az.get_content("/x") == b"1"


# -- parameters --


def test_distribution_defaults() -> None:
    options = AzureOptions.from_parameters(
        {"accountname": "acct", "accountkey": "a2V5", "container": "images"}
    )
    assert options.service_url == "https://acct.blob.core.windows.net"
    assert options.max_retries == 5
    assert options.retry_delay == timedelta(milliseconds=100)
    assert options.root_directory == ""
    assert options.signing_key == "a2V5"
    assert "a2V5" not in repr(options)


def test_parameters_as_a_config_file_gives_them() -> None:
    options = AzureOptions.from_parameters(
        {
            "accountname": "acct",
            "accountkey": "a2V5",
            "container": "images",
            "realm": "core.chinacloudapi.cn",
            "rootdirectory": "/reg/",
            "max_retries": "-1",
            "retry_delay": "250ms",
            "credentials": {"type": "shared_key"},
            "unknown": "ignored",
        }
    )
    assert options.service_url == "https://acct.blob.core.chinacloudapi.cn"
    assert options.max_retries == -1
    assert options.retry_delay == timedelta(milliseconds=250)
    driver = AzureDriver(options)
    assert driver._key("/a/b") == "reg/a/b"
    assert driver._dir_prefix("/") == "reg/"
    # Distribution 3's names for the copy polling.
    options = AzureOptions.from_parameters(
        {
            "accountname": "acct",
            "credentials": {"type": "default_credentials"},
            "container": "images",
            "serviceurl": "http://127.0.0.1:10000/acct/",
            "copy_status_poll_max_retry": 7,
            "copy_status_poll_delay": "1s",
        }
    )
    assert options.service_url == "http://127.0.0.1:10000/acct"
    assert (options.max_retries, options.retry_delay) == (7, timedelta(seconds=1))
    assert options.signing_key is None


def test_the_config_model() -> None:
    # The config's Azure section, dumped with its defaults (None where unset).
    from entrepot.config import AzureSettings

    settings = AzureSettings(accountname="acct", accountkey="a2V5", container="images")
    driver = AzureDriver.from_parameters(settings.as_dict())
    assert driver.name == "azure"
    assert driver.options.retry_delay == timedelta(milliseconds=100)
    assert driver.options.credentials is None


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"container": "c", "accountkey": "k"}, "no accountname"),
        ({"accountname": "a", "accountkey": "k"}, "no container"),
        ({"accountname": "a", "container": "c"}, "accountkey, credentials or connection"),
        ({"accountname": "a", "container": "c", "credentials": {"type": "shared_key"}}, "key"),
        ({"accountname": "a", "container": "c", "credentials": {"type": "magic"}}, "type"),
        (
            {"accountname": "a", "container": "c", "credentials": {"type": "client_secret"}},
            "clientid",
        ),
        ({"accountname": "a", "container": "c", "accountkey": "k", "max_retries": -2}, "max_"),
        ({"accountname": "a", "container": "c", "accountkey": "k", "max_retries": "x"}, "max_"),
        ({"accountname": "a", "container": "c", "accountkey": "k", "retry_delay": "1y"}, "delay"),
        ({"accountname": "a", "container": "c", "accountkey": "k", "serviceurl": "ftp://x"}, "url"),
        ({"accountname": 42, "container": "c", "accountkey": "k"}, "accountname"),
    ],
)
def test_bad_parameters(params: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AzureOptions.from_parameters(params)


def test_test_parameters_are_distributions() -> None:
    # The keys the tests configure are the ones a config.yml would have.
    options = AzureOptions.from_parameters(driver_parameters("images"))
    assert options.account_name == ACCOUNT_NAME
    assert options.service_url == azurite_server().service_url
