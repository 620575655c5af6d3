"""The HTTP API on the S3 driver: a compact selection of the suite, against a
real `entrepot serve` whose storage is a bucket on a moto server.

Two servers, one bucket each: `s3_registry` as configured by default (blob
GETs answer 307 to a presigned URL, which the tests then fetch), served by
granian; `s3_streaming` with `storage.redirect.disable: true` (blob GETs
stream through entrepot and honour Range), served by uvicorn.

Chunked pushes use chunks of 1 MiB and of 6 MiB: on S3 every part of a
multipart upload but the last must be 5 MiB or more, so the first size
makes every PATCH end on a short part that the next one must absorb, and
the second goes past the driver's 10 MiB part size within a PATCH.

Upload purging is off in these servers' configuration: with it on (the
default) and no debug listener, `entrepot serve` on S3 hangs at start
(`test_serve_on_s3_with_the_default_upload_purging_comes_up`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
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
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    start_upload,
    unique_name,
)
from tests.cli_support import REQUEST_TIMEOUT, Serving, clean_env, free_port, serve
from tests.storage.driver import s3_server

_LINK: Final = re.compile(r'^<(?P<url>[^>]+)>;\s*rel="next"$')


def s3_config(path: Path, port: int, bucket: str, **storage: Any) -> Path:
    config = {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {
            "s3": s3_server.driver_parameters(bucket),
            "delete": {"enabled": True},
            **storage,
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def s3_serve(
    directory: Path, *args: str, server: str = "granian", **storage: Any
) -> Iterator[tuple[Serving, str]]:
    """`entrepot serve` on a new bucket; (the server, the bucket)."""
    bucket = s3_server.new_bucket()
    port = free_port()
    config = s3_config(directory / "config.yml", port, bucket, **storage)
    with serve(config, f"http://127.0.0.1:{port}", *args, server=server) as serving:
        yield serving, bucket


@pytest.fixture(scope="module")
def s3_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serving, str]]:
    with s3_serve(tmp_path_factory.mktemp("s3-redirect")) as running:
        yield running


@pytest.fixture(scope="module")
def s3_streaming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    directory = tmp_path_factory.mktemp("s3-streaming")
    with s3_serve(directory, server="uvicorn", redirect={"disable": True}) as (serving, _):
        yield serving


def _no_traceback(serving: Serving) -> None:
    log = serving.log()
    assert "Traceback" not in log, log[-8000:]


@pytest.fixture
async def client(s3_registry: tuple[Serving, str]) -> AsyncIterator[httpx.AsyncClient]:
    serving, _ = s3_registry
    async with httpx.AsyncClient(
        base_url=serving.url,
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    ) as http:
        yield http
    _no_traceback(serving)


@pytest.fixture
async def streaming(s3_streaming: Serving) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=s3_streaming.url,
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    ) as http:
        yield http
    _no_traceback(s3_streaming)


async def fetch_redirected(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    """GET a blob: a 307 to a presigned S3 URL, fetched without entrepot."""
    redirect = await client.get(url)
    assert redirect.status_code == 307, redirect.text
    location = redirect.headers["Location"]
    assert location.startswith(s3_server.moto_server().endpoint), location
    assert "Signature=" in location or "X-Amz-Signature=" in location, location
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as direct:
        return await direct.get(location, headers=headers)


def multipart_uploads(bucket: str) -> list[dict[str, Any]]:
    listed = s3_server.admin_client().list_multipart_uploads(Bucket=bucket)
    uploads: list[dict[str, Any]] = listed.get("Uploads", [])
    return uploads


def next_link(response: httpx.Response) -> str | None:
    header = response.headers.get("Link")
    if header is None:
        return None
    match = _LINK.match(header)
    assert match is not None, header
    return match.group("url")


# -- pushes -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5000, 12 * MiB + 3], ids=["small", "over-a-part"])
async def test_monolithic_push(client: httpx.AsyncClient, size: int) -> None:
    name = unique_name("s3-mono")
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
    fetched = await fetch_redirected(client, f"/v2/{name}/blobs/{digest}")
    assert fetched.status_code == 200
    assert fetched.content == data


async def test_post_then_put(client: httpx.AsyncClient) -> None:
    name = unique_name("s3-put")
    data = random_bytes(3 * MiB + 1, seed=5)
    location = await start_upload(client, name)
    done = await client.put(join_params(location, digest=sha256(data)), content=data)
    assert done.status_code == 201, done.text
    assert (await fetch_redirected(client, done.headers["Location"])).content == data
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize(
    "sizes",
    [[MiB, MiB, MiB, 12345], [6 * MiB, 6 * MiB, 777]],
    ids=["1MiB-chunks", "6MiB-chunks"],
)
async def test_chunked_push(
    client: httpx.AsyncClient, s3_registry: tuple[Serving, str], sizes: list[int]
) -> None:
    _, bucket = s3_registry
    name = unique_name("s3-chunked")
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
    fetched = await fetch_redirected(client, f"/v2/{name}/blobs/{digest}")
    assert fetched.content == data
    # The session's multipart uploads are completed or aborted: none left to pay for.
    assert not [u for u in multipart_uploads(bucket) if f"/{name}/" in u["Key"]]


async def test_a_wrong_digest_is_refused_and_ends_the_session(client: httpx.AsyncClient) -> None:
    name = unique_name("s3-wrong")
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


async def test_cancel(client: httpx.AsyncClient, s3_registry: tuple[Serving, str]) -> None:
    _, bucket = s3_registry
    name = unique_name("s3-cancel")
    location = await start_upload(client, name)
    patched = await client.patch(
        location, content=random_bytes(MiB, seed=1), headers={"Content-Range": f"0-{MiB - 1}"}
    )
    assert patched.status_code == 202
    assert [u for u in multipart_uploads(bucket) if f"/{name}/" in u["Key"]]
    cancelled = await client.delete(location)
    assert cancelled.status_code == 204, cancelled.text
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(location, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")
    # Nothing left in the bucket for that session, not even unfinished parts.
    assert not [u for u in multipart_uploads(bucket) if f"/{name}/" in u["Key"]]
    listed = s3_server.admin_client().list_objects_v2(Bucket=bucket)
    assert not [
        o
        for o in listed.get("Contents", [])
        if "/_uploads/" in o["Key"] and f"/{name}/" in o["Key"]
    ]


async def test_cross_repository_mount(client: httpx.AsyncClient) -> None:
    source, target = unique_name("s3-from"), unique_name("s3-to")
    data = random_bytes(7000, seed=2)
    digest = await push_blob(client, source, data)
    mounted = await client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert mounted.status_code == 201, mounted.text
    assert (await fetch_redirected(client, f"/v2/{target}/blobs/{digest}")).content == data


async def test_blob_delete(client: httpx.AsyncClient) -> None:
    name = unique_name("s3-blob-delete")
    digest = await push_blob(client, name, b"soon gone")
    assert (await client.head(f"/v2/{name}/blobs/{digest}")).status_code == 200
    assert (await client.delete(f"/v2/{name}/blobs/{digest}")).status_code == 202
    assert_error(await client.head(f"/v2/{name}/blobs/{digest}"), 404)
    assert_error(await client.get(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


# -- manifests, tags, catalog -----------------------------------------------------------


async def test_manifest_put_get_delete(client: httpx.AsyncClient) -> None:
    name = unique_name("s3-manifest")
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
    name = unique_name("s3-tags")
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
    prefix = unique_name("s3-catalog")
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


# -- blob downloads -----------------------------------------------------------------


async def test_blob_get_redirects_to_a_presigned_url(client: httpx.AsyncClient) -> None:
    name = unique_name("s3-redirect")
    data = random_bytes(200_000, seed=4)
    digest = await push_blob(client, name, data)
    redirect = await client.get(f"/v2/{name}/blobs/{digest}")
    assert redirect.status_code == 307
    assert redirect.headers["Docker-Content-Digest"] == digest
    fetched = await fetch_redirected(client, f"/v2/{name}/blobs/{digest}")
    assert fetched.status_code == 200
    assert fetched.content == data
    # The presigned URL honours Range itself (that is how clients resume).
    ranged = await fetch_redirected(client, f"/v2/{name}/blobs/{digest}", Range="bytes=100-199")
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]
    # A blob the repository does not link: no redirect, a 404.
    assert_error(await client.get(f"/v2/{unique_name()}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_redirect_disabled_streams_and_honours_range(streaming: httpx.AsyncClient) -> None:
    name = unique_name("s3-stream")
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


# -- serving on S3 ---------------------------------------------------------------------

STARTS_WITHIN: Final = 10.0  # a start on S3 takes about a second here


def test_serve_on_s3_with_the_default_upload_purging_comes_up(tmp_path: Path) -> None:
    """The default configuration purges uploads. Had the purge thread
    imported the driver (aiobotocore) while granian forks its workers, a
    worker forked during that import would inherit the import lock and hang
    for ever, the instance never answering (nor stopping on SIGTERM)."""
    port = free_port()
    config = s3_config(tmp_path / "config.yml", port, s3_server.new_bucket())
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
        f"entrepot serve on S3 did not answer within {STARTS_WITHIN} s:\n"
        + log_path.read_text(errors="replace")[-4000:]
    )


def test_the_debug_listener_on_s3_stops_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The health check's own S3 driver is closed when the server stops:
    no "Unclosed client session" error in the log."""
    debug_port = free_port()
    with s3_serve(tmp_path, "--debug-addr", f"127.0.0.1:{debug_port}") as (serving, _):
        health = httpx.get(f"http://127.0.0.1:{debug_port}/debug/health", timeout=REQUEST_TIMEOUT)
        assert health.status_code == 200, health.text
        assert httpx.get(f"{serving.url}/v2/", timeout=REQUEST_TIMEOUT).status_code == 200
        capsys.readouterr()
    # `serve` printed the whole log once the server had stopped.
    log = capsys.readouterr().out
    assert "listening on" in log
    errors = [line for line in log.splitlines() if " error " in line or "Unclosed" in line]
    assert not errors, log[-4000:]
