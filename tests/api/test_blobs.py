"""Blob reads and deletes (end-2, end-10), ranges, cross-repository mounts
(end-11), malformed digests and a sha512 push."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import (
    EMPTY_SHA256,
    OCI_CODES,
    MiB,
    assert_error,
    error_of,
    join_params,
    push_blob,
    random_bytes,
    sha256,
    sha512,
    start_upload,
    unique_name,
)


async def test_get_and_head_blob(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(1000, seed=1)
    digest = await push_blob(client, name, data)

    head = await client.head(f"/v2/{name}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "1000"
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.content == b""

    get = await client.get(f"/v2/{name}/blobs/{digest}")
    assert get.status_code == 200
    assert get.headers["Content-Length"] == "1000"
    assert get.headers["Docker-Content-Digest"] == digest
    assert get.content == data


async def test_get_large_blob_streams_whole(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(3 * MiB + 17, seed=2)
    digest = await push_blob(client, name, data)
    response = await client.get(f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert sha256(response.content) == digest


RANGE_DATA = b"0123456789"


@pytest.mark.parametrize(
    ("header", "content", "content_range"),
    [
        ("bytes=0-0", b"0", "bytes 0-0/10"),
        ("bytes=1-", b"123456789", "bytes 1-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=2-5", b"2345", "bytes 2-5/10"),
        ("bytes=9-9", b"9", "bytes 9-9/10"),
        ("bytes=5-100", b"56789", "bytes 5-9/10"),
        ("bytes=-100", RANGE_DATA, "bytes 0-9/10"),
    ],
)
async def test_range_request(
    client: httpx.AsyncClient, header: str, content: bytes, content_range: str
) -> None:
    name = unique_name()
    digest = await push_blob(client, name, RANGE_DATA)
    response = await client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == content
    assert response.headers["Content-Range"] == content_range
    assert response.headers["Content-Length"] == str(len(content))


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=100-200", "bytes=-0"])
async def test_unsatisfiable_range_is_416(client: httpx.AsyncClient, header: str) -> None:
    name = unique_name()
    digest = await push_blob(client, name, RANGE_DATA)
    response = await client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10"
    assert error_of(response)["code"] in OCI_CODES


@pytest.mark.parametrize("header", ["bytes=0-1,3-4", "bytes=0-1, 5-", "items=0-1", "bytes=x-y"])
async def test_multiple_or_unknown_ranges_get_the_whole_blob(
    client: httpx.AsyncClient, header: str
) -> None:
    name = unique_name()
    digest = await push_blob(client, name, RANGE_DATA)
    response = await client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == RANGE_DATA
    assert "Content-Range" not in response.headers


async def test_zero_length_blob(client: httpx.AsyncClient) -> None:
    name = unique_name()
    digest = await push_blob(client, name, b"")
    assert digest == EMPTY_SHA256
    head = await client.head(f"/v2/{name}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "0"
    assert head.headers["Docker-Content-Digest"] == EMPTY_SHA256
    get = await client.get(f"/v2/{name}/blobs/{digest}")
    assert get.status_code == 200
    assert get.headers["Content-Length"] == "0"
    assert get.content == b""


@pytest.mark.parametrize("header", ["bytes=0-0", "bytes=0-", "bytes=-3"])
async def test_any_range_of_an_empty_blob_is_416(client: httpx.AsyncClient, header: str) -> None:
    # RFC 9110 14.1.2: a suffix range of a zero-length representation is
    # unsatisfiable, as is every first-pos.
    name = unique_name()
    digest = await push_blob(client, name, b"")
    response = await client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 416, (response.status_code, response.headers)
    assert response.headers["Content-Range"] == "bytes */0"


async def test_delete_blob(client: httpx.AsyncClient) -> None:
    name = unique_name()
    digest = await push_blob(client, name, random_bytes(100, seed=3))
    response = await client.delete(f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 202
    assert_error(await client.get(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.head(f"/v2/{name}/blobs/{digest}"), 404)
    assert_error(await client.delete(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_blob_pushed_again_after_delete(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(100, seed=4)
    digest = await push_blob(client, name, data)
    assert (await client.delete(f"/v2/{name}/blobs/{digest}")).status_code == 202
    assert_error(await client.head(f"/v2/{name}/blobs/{digest}"), 404)
    await push_blob(client, name, data)
    response = await client.get(f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data


async def test_unknown_blob_is_404(client: httpx.AsyncClient) -> None:
    name = unique_name()
    await push_blob(client, name, b"something else")
    digest = sha256(b"never pushed")
    assert_error(await client.get(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.head(f"/v2/{name}/blobs/{digest}"), 404)
    assert_error(await client.delete(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # ... and in a repository that does not exist at all
    other = unique_name()
    assert_error(await client.get(f"/v2/{other}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_blob_of_another_repository_is_404(client: httpx.AsyncClient) -> None:
    first, second = unique_name(), unique_name()
    digest = await push_blob(client, first, random_bytes(64, seed=5))
    assert_error(await client.get(f"/v2/{second}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.head(f"/v2/{second}/blobs/{digest}"), 404)
    assert_error(await client.delete(f"/v2/{second}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert (await client.head(f"/v2/{first}/blobs/{digest}")).status_code == 200


async def test_delete_in_one_repository_keeps_the_other(client: httpx.AsyncClient) -> None:
    first, second = unique_name(), unique_name()
    data = random_bytes(64, seed=6)
    digest = await push_blob(client, first, data)
    await push_blob(client, second, data)
    assert (await client.delete(f"/v2/{first}/blobs/{digest}")).status_code == 202
    assert_error(await client.head(f"/v2/{first}/blobs/{digest}"), 404)
    response = await client.get(f"/v2/{second}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data


# -- cross-repository mount ---------------------------------------------------------


async def test_mount_from_a_repository_that_has_the_blob(client: httpx.AsyncClient) -> None:
    source, target = unique_name(), unique_name()
    data = random_bytes(500, seed=7)
    digest = await push_blob(client, source, data)
    response = await client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    pulled = await client.get(response.headers["Location"])
    assert pulled.status_code == 200
    assert pulled.content == data
    # the mount is a link of its own: deleting it leaves the source alone
    assert (await client.delete(f"/v2/{target}/blobs/{digest}")).status_code == 202
    assert (await client.head(f"/v2/{source}/blobs/{digest}")).status_code == 200


async def _assert_session(client: httpx.AsyncClient, response: httpx.Response, name: str) -> None:
    """`response` opened a usable upload session in `name`."""
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{name}/blobs/uploads/")
    assert response.headers["Docker-Upload-UUID"] == location.rsplit("/", 1)[1]
    data = random_bytes(10, seed=8)
    done = await client.put(join_params(location, digest=sha256(data)), content=data)
    assert done.status_code == 201


@pytest.mark.parametrize(
    "params",
    [
        {"from": "SOURCE"},  # the source repository lacks the blob
        {"from": "Not/Valid"},
        {"from": "a//b"},
        {},  # no from at all
    ],
)
async def test_mount_falls_back_to_an_upload_session(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    source, target = unique_name(), unique_name()
    await push_blob(client, source, b"source has something")
    query = {"mount": sha256(b"not in the source")}
    query.update({k: source if v == "SOURCE" else v for k, v in params.items()})
    response = await client.post(f"/v2/{target}/blobs/uploads/", params=query)
    await _assert_session(client, response, target)


@pytest.mark.parametrize("mount", ["sha256:zzz", "md5:abc", "nocolon", ""])
async def test_mount_of_a_malformed_digest_falls_back(
    client: httpx.AsyncClient, mount: str
) -> None:
    source, target = unique_name(), unique_name()
    await push_blob(client, source, b"source has something")
    response = await client.post(
        f"/v2/{target}/blobs/uploads/", params={"mount": mount, "from": source}
    )
    await _assert_session(client, response, target)


# -- malformed digests ----------------------------------------------------------------

MALFORMED_DIGESTS = [
    "sha256:zzz",
    "md5:abc",
    "nocolon",
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha512:" + "a" * 64,
    "sha256:",
    ":" + "a" * 64,
]


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS)
async def test_malformed_digest_in_blob_path_is_400(client: httpx.AsyncClient, digest: str) -> None:
    name = unique_name()
    for method in ("GET", "HEAD", "DELETE"):
        response = await client.request(method, f"/v2/{name}/blobs/{digest}")
        assert_error(response, 400, None if method == "HEAD" else "DIGEST_INVALID")


# -- sha512 ---------------------------------------------------------------------------


async def test_sha512_monolithic_push(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(2 * MiB + 3, seed=9)
    response = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": sha512(data)}, content=data
    )
    assert response.status_code == 201, response.text
    # the canonical digest MAY differ from the one pushed by (end-11 wording)
    assert response.headers["Docker-Content-Digest"] in (sha512(data), sha256(data))
    pulled = await client.get(response.headers["Location"])
    assert pulled.status_code == 200
    assert pulled.content == data
    for digest in (sha512(data), sha256(data)):
        head = await client.head(f"/v2/{name}/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        assert head.headers["Docker-Content-Digest"] in (sha512(data), sha256(data))
        get = await client.get(f"/v2/{name}/blobs/{digest}")
        assert get.content == data


async def test_sha512_chunked_push(client: httpx.AsyncClient) -> None:
    name = unique_name()
    data = random_bytes(300_000, seed=10)
    location = await start_upload(client, name)
    response = await client.patch(
        location,
        content=data[:100_000],
        headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202
    done = await client.put(
        join_params(response.headers["Location"], digest=sha512(data)),
        content=data[100_000:],
        headers={"Content-Range": f"100000-{len(data) - 1}"},
    )
    assert done.status_code == 201, done.text
    pulled = await client.get(f"/v2/{name}/blobs/{sha512(data)}")
    assert pulled.content == data


async def test_sha512_wrong_digest_is_400(client: httpx.AsyncClient) -> None:
    name = unique_name()
    response = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": sha512(b"other")}, content=b"data"
    )
    assert_error(response, 400, "DIGEST_INVALID")
