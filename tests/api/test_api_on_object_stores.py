"""The HTTP API on the object stores: a compact selection of the suite,
against a real `entrepot serve` whose storage is an S3 bucket (on a moto
server) or an Azure container (on Azurite). Every test runs on both stores,
but for the few about one store's own mechanics.

Per store, two servers, each on a bucket or container of its own:
`registry` as configured by default (blob GETs answer 307 to a URL signed
for the store, presigned on S3, SAS on Azure, which the tests then fetch
from the store directly), served by granian; `streaming` with
`storage.redirect.disable: true` (blob GETs stream through entrepot and
honour Range), served by uvicorn. They are module-scoped: the S3 servers
serve the S3 tests, then stop before the Azure ones start.

Chunked pushes use chunks of 1 MiB and of 6 MiB. On S3 every part of a
multipart upload but the last must be 5 MiB or more, so the first size
makes every PATCH end on a short part that the next one must absorb, and
the second goes past the driver's 10 MiB part size within a PATCH. On
Azure a writer appends blocks of at most 4 MiB and a shorter one at the
end of each PATCH, so the first size makes one block a PATCH and the
second two.

Besides `storage.delete` (and `storage.redirect` for `streaming`), the
servers run the default configuration, upload purging included: it is on,
its first run comes a random part of an hour after the start, and it
removes only sessions a week old, so it takes nothing from these tests.
That such a server comes up at all is tested on each store
(`test_serve_with_the_default_upload_purging_comes_up`): on S3 it once hung
at start. What a purge does to a store is tested with `entrepot
purge-uploads` on a server's configuration.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import yaml

from tests.api.helpers import (
    OCI_MANIFEST,
    MiB,
    assert_error,
    check_api_version,
    join_params,
    next_link,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    start_upload,
    unique_name,
)
from tests.api.test_referrers import SBOM, SIGNATURE, push_artifact, referrers
from tests.cli_support import REQUEST_TIMEOUT, Serving, clean_env, entrepot, free_port, serve
from tests.storage.driver.object_stores import (
    AZURE,
    OBJECT_STORES,
    ObjectStore,
    only_on,
    repository_prefix,
    uploads_prefix,
)

# How long a blob GET's redirect URL is valid, on both stores.
REDIRECT_EXPIRY: Final = timedelta(minutes=20)


@dataclass(frozen=True, slots=True)
class Served:
    """A running `entrepot serve` on `place`, a bucket or container of `store`."""

    serving: Serving
    store: ObjectStore
    place: str
    config: Path


def write_config(path: Path, port: int, store: ObjectStore, place: str, **storage: Any) -> Path:
    config = {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {
            **store.storage(place),
            "delete": {"enabled": True},
            **storage,
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def serve_on(
    store: ObjectStore, directory: Path, *args: str, server: str = "granian", **storage: Any
) -> Iterator[Served]:
    """`entrepot serve` on a new bucket or container of `store`."""
    place = store.new_place()
    port = free_port()
    config = write_config(directory / "config.yml", port, store, place, **storage)
    with serve(config, f"http://127.0.0.1:{port}", *args, server=server) as serving:
        yield Served(serving, store, place, config)


@pytest.fixture(scope="module", params=OBJECT_STORES, ids=lambda store: store.name)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    chosen: ObjectStore = request.param
    return chosen


@pytest.fixture(scope="module")
def registry(store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_on(store, tmp_path_factory.mktemp(f"{store.name}-redirect")) as served:
        yield served


@pytest.fixture(scope="module")
def registry_streaming(
    store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp(f"{store.name}-streaming")
    with serve_on(store, directory, server="uvicorn", redirect={"disable": True}) as served:
        yield served


@contextlib.asynccontextmanager
async def client_of(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `served`; its log must hold no traceback afterwards."""
    async with httpx.AsyncClient(
        base_url=served.serving.url,
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    ) as http:
        yield http
    log = served.serving.log()
    assert "Traceback" not in log, log[-8000:]


@pytest.fixture
async def client(registry: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(registry) as http:
        yield http


@pytest.fixture
async def streaming(registry_streaming: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(registry_streaming) as http:
        yield http


async def fetch_redirected(
    client: httpx.AsyncClient, registry: Served, url: str, **headers: str
) -> httpx.Response:
    """GET a blob: a 307 to a URL signed for the store, fetched without entrepot."""
    redirect = await client.get(url)
    assert redirect.status_code == 307, redirect.text
    location = redirect.headers["Location"]
    registry.store.check_redirect(registry.place, location)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as direct:
        return await direct.get(location, headers=headers)


# -- pushes -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5000, 12 * MiB + 3], ids=["small", "over-a-part"])
async def test_monolithic_push(client: httpx.AsyncClient, registry: Served, size: int) -> None:
    name = unique_name("mono")
    data = random_bytes(size, seed=size)
    digest = sha256(data)
    pushed = await client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert pushed.headers["Docker-Content-Digest"] == digest
    head = await client.head(f"/v2/{name}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(size)
    assert head.headers["Docker-Content-Digest"] == digest
    fetched = await fetch_redirected(client, registry, f"/v2/{name}/blobs/{digest}")
    assert fetched.status_code == 200
    assert fetched.content == data


async def test_post_then_put(client: httpx.AsyncClient, registry: Served) -> None:
    name = unique_name("put")
    data = random_bytes(3 * MiB + 1, seed=5)
    location = await start_upload(client, name)
    done = await client.put(join_params(location, digest=sha256(data)), content=data)
    assert done.status_code == 201, done.text
    assert (await fetch_redirected(client, registry, done.headers["Location"])).content == data
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize(
    "sizes",
    [[MiB, MiB, MiB, 12345], [6 * MiB, 6 * MiB, 777]],
    ids=["1MiB-chunks", "6MiB-chunks"],
)
async def test_chunked_push(client: httpx.AsyncClient, registry: Served, sizes: list[int]) -> None:
    store, place = registry.store, registry.place
    name = unique_name("chunked")
    data = random_bytes(sum(sizes), seed=len(sizes))
    location = await start_upload(client, name)
    offset = 0
    for size in sizes:
        patched = await client.patch(
            location,
            content=data[offset : offset + size],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + size - 1}",
            },
        )
        assert patched.status_code == 202, patched.text
        offset += size
        assert patched.headers["Range"] == f"0-{offset - 1}"
        location = patched.headers["Location"]
        status = await client.get(location)
        assert status.status_code == 204, status.text
        assert status.headers["Range"] == f"0-{offset - 1}"
        assert status.headers["Docker-Upload-UUID"] == patched.headers["Docker-Upload-UUID"]

    # Out of order: refused, and the upload stands where it was.
    stale = await client.patch(location, content=b"x", headers={"Content-Range": "0-0"})
    assert_error(stale, 416)
    assert (await client.get(location)).headers["Range"] == f"0-{len(data) - 1}"

    digest = sha256(data)
    done = await client.put(join_params(location, digest=digest))
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    fetched = await fetch_redirected(client, registry, f"/v2/{name}/blobs/{digest}")
    assert fetched.content == data
    # The session's writes are finished (on S3, its multipart uploads
    # completed or aborted: none left to pay for), and the session is gone.
    assert not store.writes_in_progress(place, repository_prefix(name))
    assert not store.names(place, uploads_prefix(name))


@only_on(AZURE)
async def test_patches_go_up_in_append_blocks_of_4MiB(
    client: httpx.AsyncClient, registry: Served
) -> None:
    """On Azure an upload's data is an append blob that each PATCH extends by
    blocks of 4 MiB (the API's largest), and a shorter one at its end."""
    name = unique_name("blocks")
    sizes_and_blocks = [(6 * MiB, 2), (MiB, 1), (9 * MiB + 5, 3), (4 * MiB, 1)]
    data = random_bytes(sum(size for size, _ in sizes_and_blocks), seed=44)
    location = await start_upload(client, name)
    offset = blocks = 0
    for size, added in sizes_and_blocks:
        patched = await client.patch(
            location,
            content=data[offset : offset + size],
            headers={"Content-Range": f"{offset}-{offset + size - 1}"},
        )
        assert patched.status_code == 202, patched.text
        location = patched.headers["Location"]
        offset += size
        blocks += added
        [session_data] = AZURE.writes_in_progress(registry.place, uploads_prefix(name))
        assert session_data.endswith("/data"), session_data
        assert AZURE.append_blob(registry.place, session_data) == (offset, blocks)
    digest = sha256(data)
    done = await client.put(join_params(location, digest=digest))
    assert done.status_code == 201, done.text
    assert (await fetch_redirected(client, registry, f"/v2/{name}/blobs/{digest}")).content == data


async def test_a_wrong_digest_is_refused_and_ends_the_session(client: httpx.AsyncClient) -> None:
    name = unique_name("wrong")
    data = random_bytes(MiB + 10, seed=8)
    location = await start_upload(client, name)
    patched = await client.patch(
        location, content=data[:MiB], headers={"Content-Range": f"0-{MiB - 1}"}
    )
    assert patched.status_code == 202
    wrong = sha256(b"something else")
    refused = await client.put(
        join_params(patched.headers["Location"], digest=wrong), content=data[MiB:]
    )
    assert_error(refused, 400, "DIGEST_INVALID")
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.head(f"/v2/{name}/blobs/{sha256(data)}"), 404)


async def test_cancel(client: httpx.AsyncClient, registry: Served) -> None:
    store, place = registry.store, registry.place
    name = unique_name("cancel")
    location = await start_upload(client, name)
    patched = await client.patch(
        location, content=random_bytes(MiB, seed=1), headers={"Content-Range": f"0-{MiB - 1}"}
    )
    assert patched.status_code == 202
    # The bytes are being written: an S3 multipart upload, an Azure append blob.
    assert store.writes_in_progress(place, repository_prefix(name))
    cancelled = await client.delete(location)
    assert cancelled.status_code == 204, cancelled.text
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(location, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    # Nothing left in the store for that session, not even unfinished parts.
    assert not store.writes_in_progress(place, repository_prefix(name))
    assert not store.names(place, uploads_prefix(name))


async def test_cross_repository_mount(client: httpx.AsyncClient, registry: Served) -> None:
    source, target = unique_name("from"), unique_name("to")
    data = random_bytes(7000, seed=2)
    digest = await push_blob(client, source, data)
    mounted = await client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert mounted.status_code == 201, mounted.text
    fetched = await fetch_redirected(client, registry, f"/v2/{target}/blobs/{digest}")
    assert fetched.content == data


async def test_blob_delete(client: httpx.AsyncClient) -> None:
    name = unique_name("blob-delete")
    digest = await push_blob(client, name, b"soon gone")
    assert (await client.head(f"/v2/{name}/blobs/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/{name}/blobs/{digest}")).status_code == 202
    assert_error(await client.head(f"/v2/{name}/blobs/{digest}"), 404)
    assert_error(await client.get(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


# -- manifests, tags, catalog -----------------------------------------------------------


async def test_manifest_put_get_delete(client: httpx.AsyncClient) -> None:
    name = unique_name("manifest")
    image = await push_image(client, name, "v1", layers=2)
    other = await push_image(client, name, "v2")
    for reference in ("v1", image.digest):
        url = f"/v2/{name}/manifests/{reference}"
        got = await client.get(url, headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, got.text
        assert got.content == image.content
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == image.digest
        head = await client.head(url, headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(image.content))

    deleted = await client.delete(f"/v2/{name}/manifests/{image.digest}")
    assert deleted.status_code == 202, deleted.text
    for reference in ("v1", image.digest):
        url = f"/v2/{name}/manifests/{reference}"
        assert_error(await client.get(url), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.delete(f"/v2/{name}/manifests/{image.digest}"), 404)
    tags = await client.get(f"/v2/{name}/tags/list")
    assert tags.status_code == 200
    assert tags.json()["tags"] == ["v2"]
    got = await client.get(f"/v2/{name}/manifests/v2", headers={"Accept": OCI_MANIFEST})
    assert got.content == other.content
    # The layers stay (only the manifest went).
    for layer in image.layers:
        assert (await client.head(f"/v2/{name}/blobs/{sha256(layer)}")).status_code == 200


async def test_tags_list_pagination(client: httpx.AsyncClient) -> None:
    name = unique_name("tags")
    tags = ["1.0", "1.1", "alpha", "beta", "latest"]
    image = await push_image(client, name, tags[0])
    for tag in tags[1:]:
        await push_manifest(client, name, tag, image.content, OCI_MANIFEST)
    whole = await client.get(f"/v2/{name}/tags/list")
    assert whole.json() == {"name": name, "tags": tags}
    assert "Link" not in whole.headers
    url: str | None = f"/v2/{name}/tags/list?n=2"
    pages: list[list[str]] = []
    while url is not None:
        assert len(pages) < 5, "pagination does not end"
        page = await client.get(url)
        assert page.status_code == 200
        pages.append(page.json()["tags"])
        url = next_link(page)
    assert pages == [tags[0:2], tags[2:4], tags[4:]]
    after = await client.get(f"/v2/{name}/tags/list", params={"n": "2", "last": "alpha"})
    assert after.json()["tags"] == ["beta", "latest"]


async def test_catalog(client: httpx.AsyncClient) -> None:
    prefix = unique_name("catalog")
    names = [f"{prefix}/a", f"{prefix}/a/deep", f"{prefix}/b", f"{prefix}-c"]
    for name in names:
        await push_image(client, name, "latest")
    everything = (await client.get("/v2/_catalog")).json()["repositories"]
    mine = [repo for repo in everything if repo.startswith(prefix)]
    assert mine == sorted(names, key=lambda n: n.split("/"))
    # One per page, from just before the first of ours.
    url: str | None = f"/v2/_catalog?n=1&last={prefix}"
    seen: list[str] = []
    while url is not None and len(seen) < len(names):
        page = await client.get(url)
        assert page.status_code == 200
        listed = page.json()["repositories"]
        assert len(listed) == 1
        seen += listed
        url = next_link(page)
    assert seen == mine


async def test_referrers_listed_and_forgotten(client: httpx.AsyncClient) -> None:
    name = unique_name("referrers")
    subject = await push_image(client, name, "v1")
    sbom, _ = await push_artifact(client, name, subject, SBOM)
    signature, _ = await push_artifact(client, name, subject, SIGNATURE)
    listed = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert sorted(m["digest"] for m in listed) == sorted([sha256(sbom), sha256(signature)])
    filtered = await referrers(client, name, subject.digest, artifactType=SBOM)
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sha256(sbom)]
    assert (await client.delete(f"/v2/{name}/manifests/{sha256(sbom)}")).status_code == 202
    listed = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert [m["digest"] for m in listed] == [sha256(signature)]


# -- blob downloads -----------------------------------------------------------------


async def test_blob_get_redirects_to_a_signed_url(
    client: httpx.AsyncClient, registry: Served
) -> None:
    name = unique_name("redirect")
    data = random_bytes(200_000, seed=4)
    digest = await push_blob(client, name, data)
    asked = datetime.now(UTC)
    redirect = await client.get(f"/v2/{name}/blobs/{digest}")
    assert redirect.status_code == 307
    assert redirect.headers["Docker-Content-Digest"] == digest
    location = redirect.headers["Location"]
    registry.store.check_redirect(registry.place, location)
    # Valid for 20 minutes from the request (to the second the URL states).
    expiry = registry.store.redirect_expiry(location)
    slack = timedelta(seconds=5)
    assert asked + REDIRECT_EXPIRY - slack <= expiry <= datetime.now(UTC) + REDIRECT_EXPIRY, expiry
    fetched = await fetch_redirected(client, registry, f"/v2/{name}/blobs/{digest}")
    assert fetched.status_code == 200
    assert fetched.content == data
    # The signed URL honours Range itself (that is how clients resume).
    ranged = await fetch_redirected(
        client, registry, f"/v2/{name}/blobs/{digest}", Range="bytes=100-199"
    )
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]
    # A blob the repository does not link: no redirect, a 404.
    assert_error(await client.get(f"/v2/{unique_name()}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


@only_on(AZURE)
async def test_the_sas_url_only_reads(client: httpx.AsyncClient, registry: Served) -> None:
    """The SAS URL of a redirect grants reading that blob, nothing else:
    whoever holds it can neither replace nor delete the blob."""
    name = unique_name("sas")
    data = random_bytes(1000, seed=9)
    digest = await push_blob(client, name, data)
    redirect = await client.get(f"/v2/{name}/blobs/{digest}")
    assert redirect.status_code == 307, redirect.text
    location = redirect.headers["Location"]
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as direct:
        replaced = await direct.put(
            location, content=b"forged", headers={"x-ms-blob-type": "BlockBlob"}
        )
        assert replaced.status_code == 403, replaced.text
        deleted = await direct.delete(location)
        assert deleted.status_code == 403, deleted.text
        head = await direct.head(location)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        assert (await direct.get(location)).content == data


async def test_redirect_disabled_streams_and_honours_range(streaming: httpx.AsyncClient) -> None:
    name = unique_name("stream")
    data = random_bytes(3 * MiB + 17, seed=6)
    digest = await push_blob(streaming, name, data)
    url = f"/v2/{name}/blobs/{digest}"
    whole = await streaming.get(url)
    assert whole.status_code == 200
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.headers["Docker-Content-Digest"] == digest
    assert whole.content == data

    ranged = await streaming.get(url, headers={"Range": "bytes=1000-2099999"})
    assert ranged.status_code == 206, ranged.text
    assert ranged.headers["Content-Range"] == f"bytes 1000-2099999/{len(data)}"
    assert ranged.content == data[1000:2100000]
    suffix = await streaming.get(url, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206
    assert suffix.content == data[-10:]
    open_ended = await streaming.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
    assert open_ended.content == data[-5:]
    assert_error(await streaming.get(url, headers={"Range": f"bytes={len(data)}-"}), 416)


# -- serving ---------------------------------------------------------------------------

STARTS_WITHIN: Final = 10.0  # a start on either store takes about a second here


def test_serve_with_the_default_upload_purging_comes_up(store: ObjectStore, tmp_path: Path) -> None:
    """The default configuration purges uploads. Had the purge thread
    imported the driver (aiobotocore, or Azure's client) while granian forks
    its workers, a worker forked during that import would inherit the import
    lock and hang for ever, the instance never answering (nor stopping on
    SIGTERM): that happened on S3."""
    port = free_port()
    config = write_config(tmp_path / "config.yml", port, store, store.new_place())
    assert "maintenance" not in yaml.safe_load(config.read_text())["storage"]  # purging on
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "entrepot.cli", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        answered = False
        deadline = time.monotonic() + STARTS_WITHIN
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                answered = httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200
            if answered:
                break
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    assert answered, (
        f"entrepot serve on {store.name} did not answer within {STARTS_WITHIN} s:\n"
        + log_path.read_text(errors="replace")[-4000:]
    )


def test_the_debug_listener_stops_cleanly(
    store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The health check's own driver is closed when the server stops: no
    "Unclosed client session" error in the log (both drivers are on aiohttp)."""
    debug_port = free_port()
    with serve_on(store, tmp_path, "--debug-addr", f"127.0.0.1:{debug_port}") as served:
        health = httpx.get(f"http://127.0.0.1:{debug_port}/debug/health", timeout=REQUEST_TIMEOUT)
        assert health.status_code == 200, health.text
        assert httpx.get(f"{served.serving.url}/v2/", timeout=REQUEST_TIMEOUT).status_code == 200
        capsys.readouterr()
    # `serve` printed the whole log once the server had stopped.
    log = capsys.readouterr().out
    assert "listening on" in log
    errors = [line for line in log.splitlines() if " error " in line or "Unclosed" in line]
    assert not errors, log[-4000:]


def test_purge_uploads_removes_an_abandoned_session(registry: Served) -> None:
    """`entrepot purge-uploads` on the server's configuration removes the
    sessions older than the age given (here 0: all), bytes and all: no S3
    multipart upload left to pay for, no Azure append blob."""
    store, place = registry.store, registry.place
    name = unique_name("purged")
    with registry.serving.client() as http:
        started = http.post(f"/v2/{name}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        patched = http.patch(
            location, content=random_bytes(MiB, seed=3), headers={"Content-Range": f"0-{MiB - 1}"}
        )
        assert patched.status_code == 202, patched.text
        assert store.writes_in_progress(place, repository_prefix(name))

        purged = entrepot("purge-uploads", registry.config, "--age", "0")
        assert purged.returncode == 0, purged.describe()
        session = f"/{uploads_prefix(name)}{started.headers['Docker-Upload-UUID']}"
        assert session in purged.stdout.splitlines(), purged.describe()
        assert_error(http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not store.writes_in_progress(place, repository_prefix(name))
    assert not store.names(place, uploads_prefix(name))


def test_purge_uploads_closes_its_driver(registry: Served) -> None:
    """Like the server's debug listener, the command closes the driver's
    network client before it exits: no "Unclosed client session" error."""
    finished = entrepot("purge-uploads", registry.config, "--dry-run")
    assert finished.returncode == 0, finished.describe()
    errors = [
        line for line in finished.stderr.splitlines() if " error " in line or "Unclosed" in line
    ]
    assert not errors, finished.describe()
