"""The catalog (`GET /v2/_catalog`), paginated. This module has a server of
its own: only the repositories made here exist on it."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.helpers import (
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    image_manifest,
    next_link,
    push_blob,
    push_manifest,
)

# Nested names, and names that sort differently by string and by component
# ('-' and '.' sort before '/'; Distribution's order is by path component).
REPOSITORIES = [
    "alpha",
    "alpha/one",
    "alpha/one/deep",
    "alpha/two",
    "alpha-beta",
    "alpha.gamma",
    "alpha_delta",
    "beta",
    "beta/x",
    "c0",
    "c0/c1/c2/c3",
    "library/alpine",
    "library/ubuntu",
    "z9/last",
    "zeta",
]
IN_ORDER = sorted(REPOSITORIES, key=lambda name: name.split("/"))


@pytest.fixture(scope="module")
def made() -> dict[str, bool]:
    return {}


@pytest.fixture
async def catalog(client: httpx.AsyncClient, server: Server, made: dict[str, bool]) -> list[str]:
    """Push one manifest into each of REPOSITORIES (once per module)."""
    if server.url not in made:
        content = image_manifest(descriptor(OCI_CONFIG, EMPTY_JSON), [])
        for name in REPOSITORIES:
            await push_blob(client, name, EMPTY_JSON)
            await push_manifest(client, name, "latest", content, OCI_MANIFEST)
        # blobs and uploads alone do not make a repository
        await push_blob(client, "only/blobs", EMPTY_JSON)
        await client.post("/v2/only-upload/blobs/uploads/")
        made[server.url] = True
    return IN_ORDER


async def test_catalog_lists_every_repository_in_order(
    client: httpx.AsyncClient, catalog: list[str]
) -> None:
    response = await client.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"repositories": catalog}
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", [1, 4, 5, 14, 15, 16])
async def test_following_links_collects_every_repository_once(
    client: httpx.AsyncClient, catalog: list[str], n: int
) -> None:
    url: str | None = f"/v2/_catalog?n={n}"
    collected: list[str] = []
    pages = 0
    while url is not None:
        pages += 1
        assert pages <= len(catalog) + 1, "pagination does not end"
        assert url.startswith("/v2/_catalog?")
        response = await client.get(url)
        assert response.status_code == 200
        page = response.json()["repositories"]
        assert len(page) <= n
        collected += page
        url = next_link(response)
        if url is not None:
            assert len(page) == n
            assert httpx.URL(url).params["n"] == str(n)
            assert httpx.URL(url).params["last"] == page[-1]
    assert collected == catalog
    assert pages == max(1, -(-len(catalog) // n))


@pytest.mark.parametrize("index", range(-1, len(IN_ORDER)))
async def test_every_catalog_page_boundary(
    client: httpx.AsyncClient, catalog: list[str], index: int
) -> None:
    params = {"n": "4"}
    if index >= 0:
        params["last"] = catalog[index]
    response = await client.get("/v2/_catalog", params=params)
    after = catalog[index + 1 :]
    assert response.json()["repositories"] == after[:4]
    assert (next_link(response) is not None) == (len(after) > 4)


async def test_catalog_n_zero(client: httpx.AsyncClient, catalog: list[str]) -> None:
    response = await client.get("/v2/_catalog", params={"n": "0"})
    assert response.status_code == 200
    assert response.json()["repositories"] == []
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    ("last", "expected_index"),
    [("zzz", len(IN_ORDER)), ("0", 0), ("alpha/one/a", 2), ("b", 7), ("alpha/p", 3)],
)
async def test_catalog_last_that_is_not_a_repository(
    client: httpx.AsyncClient, catalog: list[str], last: str, expected_index: int
) -> None:
    response = await client.get("/v2/_catalog", params={"last": last, "n": "100"})
    assert response.json()["repositories"] == catalog[expected_index:]
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", ["-1", "abc"])
async def test_catalog_invalid_n_is_400(
    client: httpx.AsyncClient, catalog: list[str], n: str
) -> None:
    assert_error(await client.get("/v2/_catalog", params={"n": n}), 400)
