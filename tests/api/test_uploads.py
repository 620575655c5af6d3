"""Blob uploads: monolithic (end-4b, end-4a + end-6), chunked (end-5),
status (end-13), cancel, errors, and a client that goes away mid-chunk."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.helpers import (
    EMPTY_SHA256,
    MiB,
    assert_error,
    join_params,
    random_bytes,
    sha256,
    start_upload,
    unique_name,
)

UUID_LIKE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def assert_session_headers(response: httpx.Response, name: str, end: int) -> str:
    """A 202/204 of an upload session: Location, Range, Docker-Upload-UUID."""
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{name}/blobs/uploads/"), location
    upload_id = location.rsplit("/", 1)[1].split("?", 1)[0]
    assert response.headers["Docker-Upload-UUID"] == upload_id
    # A random (version 4, RFC 4122 variant) UUID, as Distribution's.
    parsed = uuid.UUID(upload_id)
    assert (str(parsed), parsed.version, parsed.variant) == (upload_id, 4, uuid.RFC_4122)
    assert response.headers["Range"] == f"0-{end}"
    return location


async def status(client: httpx.AsyncClient, location: str) -> httpx.Response:
    return await client.get(location)


# -- monolithic ---------------------------------------------------------------------


async def test_monolithic_post(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(5000, seed=1)
    digest = sha256(data)
    response = await client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    pulled = await client.get(response.headers["Location"])
    assert pulled.content == data


async def test_monolithic_post_with_wrong_digest(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = b"the real content"
    claimed = sha256(b"something else")
    response = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": claimed}, content=data
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert_error(await client.head(f"/v2/{name}/blobs/{claimed}"), 404)
    assert_error(await client.head(f"/v2/{name}/blobs/{sha256(data)}"), 404)


@pytest.mark.parametrize("digest", ["sha256:zzz", "md5:abc", "nocolon", ""])
async def test_monolithic_post_with_malformed_digest(
    client: httpx.AsyncClient, digest: str
) -> None:
    name = unique_name()
    response = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=b"x"
    )
    assert_error(response, 400, "DIGEST_INVALID")


async def test_post_then_put(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(70_000, seed=2)
    started = await client.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    assert started.status_code == 202
    location = assert_session_headers(started, name, 0)
    assert started.content == b""

    done = await client.put(
        join_params(location, digest=sha256(data)),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    assert done.headers["Location"] == f"/v2/{name}/blobs/{sha256(data)}"
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    assert (await client.get(done.headers["Location"])).content == data
    # the session is over
    assert_error(await status(client, location), 404, "BLOB_UPLOAD_UNKNOWN")
    again = await client.put(join_params(location, digest=sha256(data)), content=data)
    assert_error(again, 404, "BLOB_UPLOAD_UNKNOWN")
    patch = await client.patch(location, content=b"more")
    assert_error(patch, 404, "BLOB_UPLOAD_UNKNOWN")


async def test_upload_ids_are_unique(client: httpx.AsyncClient) -> None:
    name = unique_name()
    locations = {await start_upload(client, name) for _ in range(5)}
    assert len(locations) == 5


# -- chunked ---------------------------------------------------------------------------


async def test_chunked_upload(client: httpx.AsyncClient) -> None:
    name = unique_name()
    sizes = [MiB + 7, 100, 2 * MiB, 1, 4096]
    data = random_bytes(sum(sizes), seed=3)
    location = await start_upload(client, name)
    offset = 0
    for size in sizes:
        chunk = data[offset : offset + size]
        response = await client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + size - 1}",
            },
        )
        assert response.status_code == 202, response.text
        offset += size
        location = assert_session_headers(response, name, offset - 1)
        assert response.content == b""

    current = await status(client, location)
    assert current.status_code == 204
    assert_session_headers(current, name, len(data) - 1)
    assert current.content == b""

    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    pulled = await client.get(f"/v2/{name}/blobs/{sha256(data)}")
    assert sha256(pulled.content) == sha256(data)


async def test_patch_without_content_range_streams(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(3 * MiB + 333, seed=4)

    async def body(part: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(part), 64 * 1024 + 1):
            yield part[i : i + 64 * 1024 + 1]

    location = await start_upload(client, name)
    first = await client.patch(location, content=body(data[: 2 * MiB]))
    assert first.status_code == 202, first.text
    location = assert_session_headers(first, name, 2 * MiB - 1)
    second = await client.patch(location, content=body(data[2 * MiB :]))
    assert second.status_code == 202
    location = assert_session_headers(second, name, len(data) - 1)
    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201, done.text
    assert (await client.get(f"/v2/{name}/blobs/{sha256(data)}")).content == data


async def test_patch_out_of_order_is_416(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(300, seed=5)
    location = await start_upload(client, name)

    # the first chunk must start at 0
    early = await client.patch(location, content=data[5:10], headers={"Content-Range": "5-9"})
    assert_error(early, 416, "BLOB_UPLOAD_INVALID")

    first = await client.patch(location, content=data[:100], headers={"Content-Range": "0-99"})
    assert first.status_code == 202
    for start in (0, 50, 99, 101, 200):
        response = await client.patch(
            location,
            content=data[start : start + 100],
            headers={"Content-Range": f"{start}-{start + 99}"},
        )
        assert_error(response, 416, "BLOB_UPLOAD_INVALID")

    # the session is intact and goes on from where it stood
    current = await status(client, location)
    assert current.status_code == 204
    assert_session_headers(current, name, 99)
    rest = await client.patch(location, content=data[100:], headers={"Content-Range": "100-299"})
    assert rest.status_code == 202
    assert_session_headers(rest, name, 299)
    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201


async def test_upload_status(client: httpx.AsyncClient) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    fresh = await status(client, location)
    assert fresh.status_code == 204
    assert_session_headers(fresh, name, 0)
    await client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-9"})
    after = await status(client, location)
    assert after.status_code == 204
    assert_session_headers(after, name, 9)
    head = await client.head(location)
    assert head.status_code == 204
    assert head.headers["Range"] == "0-9"


async def test_put_with_a_final_chunk(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(1000, seed=6)
    location = await start_upload(client, name)
    first = await client.patch(location, content=data[:600], headers={"Content-Range": "0-599"})
    assert first.status_code == 202
    done = await client.put(
        join_params(first.headers["Location"], digest=sha256(data)),
        content=data[600:],
        headers={"Content-Range": "600-999", "Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    assert (await client.get(f"/v2/{name}/blobs/{sha256(data)}")).content == data


async def test_put_with_a_final_chunk_without_content_range(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(1000, seed=7)
    location = await start_upload(client, name)
    await client.patch(location, content=data[:10])
    done = await client.put(join_params(location, digest=sha256(data)), content=data[10:])
    assert done.status_code == 201, done.text
    assert (await client.get(f"/v2/{name}/blobs/{sha256(data)}")).content == data


async def test_put_final_chunk_out_of_order_is_416(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(100, seed=8)
    location = await start_upload(client, name)
    await client.patch(location, content=data[:50], headers={"Content-Range": "0-49"})
    response = await client.put(
        join_params(location, digest=sha256(data)),
        content=data[60:],
        headers={"Content-Range": "60-99"},
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert_session_headers(await status(client, location), name, 49)


async def test_put_without_digest_is_400(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = b"0123456789"
    location = await start_upload(client, name)
    await client.patch(location, content=data, headers={"Content-Range": "0-9"})
    response = await client.put(location)
    assert_error(response, 400, "DIGEST_INVALID")
    # the session is still there and can be completed
    assert_session_headers(await status(client, location), name, 9)
    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201


@pytest.mark.parametrize("digest", ["sha256:zzz", "md5:abc", "nocolon"])
async def test_put_with_malformed_digest_is_400(client: httpx.AsyncClient, digest: str) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    response = await client.put(join_params(location, digest=digest), content=b"abc")
    assert_error(response, 400, "DIGEST_INVALID")


async def test_put_with_wrong_digest_cancels_the_session(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(2000, seed=9)
    location = await start_upload(client, name)
    await client.patch(location, content=data[:1000], headers={"Content-Range": "0-999"})
    wrong = sha256(b"not the content")
    response = await client.put(join_params(location, digest=wrong), content=data[1000:])
    assert_error(response, 400, "DIGEST_INVALID")
    assert_error(await status(client, location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.head(f"/v2/{name}/blobs/{wrong}"), 404)
    assert_error(await client.head(f"/v2/{name}/blobs/{sha256(data)}"), 404)


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    await client.patch(location, content=b"abc", headers={"Content-Range": "0-2"})
    response = await client.delete(location)
    assert response.status_code == 204
    assert_error(await client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await status(client, location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(location, content=b"d"), 404, "BLOB_UPLOAD_UNKNOWN")
    done = await client.put(join_params(location, digest=sha256(b"abc")))
    assert_error(done, 404, "BLOB_UPLOAD_UNKNOWN")


UNKNOWN_IDS = [
    "00000000-0000-0000-0000-000000000000",
    "ABCDEF00-0000-0000-0000-000000000000",
    "not-a-uuid",
    "_uploads",
    "%2e%2e",
    "data",
]


@pytest.mark.parametrize("upload_id", UNKNOWN_IDS)
async def test_unknown_upload_is_404(client: httpx.AsyncClient, upload_id: str) -> None:
    name = unique_name()
    await start_upload(client, name)  # the repository exists and has a session
    location = f"/v2/{name}/blobs/uploads/{upload_id}"
    for response in (
        await client.get(location),
        await client.patch(location, content=b"abc"),
        await client.put(join_params(location, digest=sha256(b"abc")), content=b"abc"),
        await client.delete(location),
    ):
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


async def test_session_of_another_repository_is_404(client: httpx.AsyncClient) -> None:
    name, other = unique_name(), unique_name()
    location = await start_upload(client, name)
    upload_id = location.rsplit("/", 1)[1]
    elsewhere = f"/v2/{other}/blobs/uploads/{upload_id}"
    assert_error(await client.get(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(elsewhere, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert (await status(client, location)).status_code == 204


async def test_zero_length_blob_through_a_session(client: httpx.AsyncClient) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    done = await client.put(join_params(location, digest=EMPTY_SHA256))
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == EMPTY_SHA256
    get = await client.get(f"/v2/{name}/blobs/{EMPTY_SHA256}")
    assert get.status_code == 200
    assert get.content == b""


async def test_empty_patch_keeps_the_offset(client: httpx.AsyncClient) -> None:
    name = unique_name()
    location = await start_upload(client, name)
    await client.patch(location, content=b"abc", headers={"Content-Range": "0-2"})
    response = await client.patch(location, content=b"")
    assert response.status_code == 202
    assert_session_headers(response, name, 2)


async def test_concurrent_uploads(client: httpx.AsyncClient) -> None:
    """Docker pushes up to five layers at once."""
    name = unique_name()
    blobs = [random_bytes(MiB + i, seed=100 + i) for i in range(6)]

    async def chunked(data: bytes) -> int:
        location = await start_upload(client, name)
        half = len(data) // 2
        first = await client.patch(
            location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"}
        )
        assert first.status_code == 202
        done = await client.put(
            join_params(first.headers["Location"], digest=sha256(data)), content=data[half:]
        )
        return done.status_code

    async def monolithic(data: bytes) -> int:
        response = await client.post(
            f"/v2/{name}/blobs/uploads/", params={"digest": sha256(data)}, content=data
        )
        return response.status_code

    statuses = await asyncio.gather(
        *(chunked(b) if i % 2 else monolithic(b) for i, b in enumerate(blobs))
    )
    assert statuses == [201] * len(blobs)
    for data in blobs:
        response = await client.get(f"/v2/{name}/blobs/{sha256(data)}")
        assert response.content == data


# -- a client that goes away ---------------------------------------------------------


async def _patch_and_disconnect(server: Server, location: str, data: bytes, declared: int) -> None:
    """Send PATCH headers declaring `declared` bytes, then `data`, then close."""
    url = urlsplit(server.url)
    assert url.hostname is not None
    assert url.port is not None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(url.hostname, url.port), timeout=5
    )
    head = (
        f"PATCH {location} HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {declared}\r\n"
        "\r\n"
    )
    writer.write(head.encode())
    for i in range(0, len(data), 256 * 1024):
        writer.write(data[i : i + 256 * 1024])
        await asyncio.wait_for(writer.drain(), timeout=10)
    writer.close()
    await asyncio.wait_for(writer.wait_closed(), timeout=10)
    del reader


async def _settled_offset(client: httpx.AsyncClient, location: str, within: float) -> int:
    """The session's offset once it has stopped moving."""
    deadline = time.monotonic() + within
    last: str | None = None
    while True:
        response = await client.get(location)
        assert response.status_code == 204, response.text
        current = response.headers["Range"]
        if current == last:
            return int(current.split("-", 1)[1]) + 1
        last = current
        assert time.monotonic() < deadline, f"upload offset still moving: {current}"
        await asyncio.sleep(0.2)


async def test_disconnect_mid_patch_leaves_a_resumable_session(
    client: httpx.AsyncClient, server: Server
) -> None:
    name = unique_name()
    data = random_bytes(10 * MiB, seed=11)
    location = await start_upload(client, name)

    await _patch_and_disconnect(server, location, data[: 3 * MiB], declared=len(data))
    offset = await _settled_offset(client, location, within=10)
    assert 0 < offset <= 3 * MiB, offset

    resumed = await client.patch(
        location,
        content=data[offset:],
        headers={"Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert resumed.status_code == 202, resumed.text
    assert_session_headers(resumed, name, len(data) - 1)
    done = await client.put(join_params(location, digest=sha256(data)))
    assert done.status_code == 201, done.text
    pulled = await client.get(f"/v2/{name}/blobs/{sha256(data)}")
    assert sha256(pulled.content) == sha256(data)
