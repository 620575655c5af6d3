"""The base endpoint, routing, repository names and the error envelope."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import (
    API_VERSION,
    OCI_CODES,
    assert_error,
    error_of,
    sha256,
    unique_name,
)

DIGEST = sha256(b"anything")


async def test_base_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == API_VERSION
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    head = await client.head("/v2/")
    assert head.status_code == 200
    assert head.headers["Docker-Distribution-API-Version"] == API_VERSION
    assert head.content == b""


async def test_base_endpoint_without_trailing_slash(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2")
    assert response.status_code == 200


async def test_api_version_header_on_errors(client: httpx.AsyncClient) -> None:
    name = unique_name()
    for response in (
        await client.get(f"/v2/{name}/manifests/latest"),
        await client.head(f"/v2/{name}/blobs/{DIGEST}"),
        await client.get("/v2/Upper/tags/list"),
        await client.get("/nowhere"),
        await client.post("/v2/"),
    ):
        assert response.status_code >= 400
        assert response.headers["Docker-Distribution-API-Version"] == API_VERSION


@pytest.mark.parametrize(
    "path", ["/", "/v1/", "/v3/", "/v2/foo", "/v2/foo/bar/baz", "/v2/foo/blobs", "/v2/_catalogue"]
)
async def test_unknown_route_is_404_json(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert_error(response, 404)


async def test_unknown_route_uses_an_oci_error_code(client: httpx.AsyncClient) -> None:
    # The distribution spec: the code of a JSON 4xx body MUST be one of its codes.
    response = await client.get("/v2/foo/bar/baz")
    assert response.status_code == 404
    assert error_of(response)["code"] in OCI_CODES


WRONG_METHODS = [
    ("POST", "/v2/"),
    ("DELETE", "/v2/"),
    ("POST", "/v2/_catalog"),
    ("PUT", "/v2/wrong/tags/list"),
    ("POST", "/v2/wrong/manifests/latest"),
    ("PATCH", "/v2/wrong/manifests/latest"),
    ("POST", f"/v2/wrong/blobs/{DIGEST}"),
    ("PUT", f"/v2/wrong/blobs/{DIGEST}"),
    ("GET", "/v2/wrong/blobs/uploads/"),
    ("PUT", "/v2/wrong/blobs/uploads/"),
    ("POST", "/v2/wrong/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("DELETE", f"/v2/wrong/referrers/{DIGEST}"),
]


@pytest.mark.parametrize(("method", "path"), WRONG_METHODS)
async def test_wrong_method_is_405(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert_error(response, 405, "UNSUPPORTED")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v2/", {"GET", "HEAD"}),
        ("POST", "/v2/wrong/manifests/latest", {"GET", "HEAD", "PUT", "DELETE"}),
        ("GET", "/v2/wrong/blobs/uploads/", {"POST"}),
    ],
)
async def test_405_lists_allowed_methods(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    # RFC 9110 15.5.6: a 405 response MUST carry an Allow header.
    response = await client.request(method, path)
    assert response.status_code == 405
    assert "allow" in response.headers, response.headers
    listed = {m.strip().upper() for m in response.headers["allow"].split(",")}
    assert allowed <= listed


INVALID_NAMES = ["Foo/Bar", "UPPER", "a//b", "-a", "a-", "a..b", "a/-b", "a" * 256]


def _endpoints(name: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("DELETE", f"/v2/{name}/manifests/{DIGEST}"),
        ("GET", f"/v2/{name}/blobs/{DIGEST}"),
        ("HEAD", f"/v2/{name}/blobs/{DIGEST}"),
        ("DELETE", f"/v2/{name}/blobs/{DIGEST}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("PATCH", f"/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
        ("GET", f"/v2/{name}/referrers/{DIGEST}"),
    ]


@pytest.mark.parametrize("name", INVALID_NAMES)
async def test_invalid_repository_name_is_400(client: httpx.AsyncClient, name: str) -> None:
    for method, path in _endpoints(name):
        response = await client.request(method, path)
        assert_error(response, 400, None if method == "HEAD" else "NAME_INVALID")


async def test_longest_valid_name_is_accepted(client: httpx.AsyncClient) -> None:
    name = "a" * 255
    response = await client.get(f"/v2/{name}/tags/list")
    assert_error(response, 404, "NAME_UNKNOWN")
    nested = "/".join(["abcdefg"] * 32)[:255].rstrip("/")
    response = await client.get(f"/v2/{nested}/tags/list")
    assert_error(response, 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "with+plus"])
async def test_invalid_tag_is_a_client_error(client: httpx.AsyncClient, tag: str) -> None:
    name = unique_name()
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, f"/v2/{name}/manifests/{tag}", content=b"{}")
        assert 400 <= response.status_code < 500, (method, response.status_code)
        error_of(response)


async def test_invalid_tag_uses_an_oci_error_code(client: httpx.AsyncClient) -> None:
    # TAG_INVALID is Distribution's, not one of the distribution spec's codes.
    response = await client.get(f"/v2/{unique_name()}/manifests/.hidden")
    assert 400 <= response.status_code < 500
    assert error_of(response)["code"] in OCI_CODES
