"""Tag listing (end-8a, end-8b) and its pagination with `n`, `last` and `Link`."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.helpers import (
    OCI_CODES,
    OCI_MANIFEST,
    assert_error,
    error_of,
    next_link,
    push_image,
    push_manifest,
    unique_name,
)

TAGS = ["1.0", "1.1", "alpha", "beta", "latest", "v1", "v2"]  # sorted


@pytest.fixture(scope="module")
def tagged_repo(server: Server) -> str:
    """A repository of the module's server with exactly TAGS (made once)."""
    return unique_name("tags")


@pytest.fixture
async def repo(client: httpx.AsyncClient, tagged_repo: str) -> str:
    listed = await client.get(f"/v2/{tagged_repo}/tags/list")
    if listed.status_code == 404:
        image = await push_image(client, tagged_repo)
        for tag in reversed(TAGS):
            await push_manifest(client, tagged_repo, tag, image.content, OCI_MANIFEST)
    return tagged_repo


async def test_list_all_tags(client: httpx.AsyncClient, repo: str) -> None:
    response = await client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"name": repo, "tags": TAGS}
    assert "Link" not in response.headers


@pytest.mark.parametrize("last", [None, *TAGS])
async def test_every_page_boundary(client: httpx.AsyncClient, repo: str, last: str | None) -> None:
    after = TAGS if last is None else TAGS[TAGS.index(last) + 1 :]
    for n in range(len(TAGS) + 2):
        params = {"n": str(n)} if last is None else {"n": str(n), "last": last}
        response = await client.get(f"/v2/{repo}/tags/list", params=params)
        assert response.status_code == 200
        assert response.json() == {"name": repo, "tags": after[:n]}, (last, n)
        link = next_link(response)
        if n > 0 and len(after) > n:
            assert link == f"/v2/{repo}/tags/list?last={after[n - 1]}&n={n}", (last, n)
        else:
            assert link is None, (last, n, link)


@pytest.mark.parametrize("n", range(1, len(TAGS) + 2))
async def test_following_links_collects_every_tag_once(
    client: httpx.AsyncClient, repo: str, n: int
) -> None:
    url: str | None = f"/v2/{repo}/tags/list?n={n}"
    collected: list[str] = []
    pages = 0
    while url is not None:
        pages += 1
        assert pages <= len(TAGS) + 1, "pagination does not end"
        response = await client.get(url)
        assert response.status_code == 200
        page = response.json()["tags"]
        assert len(page) <= n
        collected += page
        url = next_link(response)
        if url is not None:
            assert len(page) == n
    assert collected == TAGS
    assert pages == max(1, -(-len(TAGS) // n))


async def test_n_zero_is_an_empty_list_without_link(client: httpx.AsyncClient, repo: str) -> None:
    response = await client.get(f"/v2/{repo}/tags/list", params={"n": "0"})
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


async def test_n_larger_than_the_count(client: httpx.AsyncClient, repo: str) -> None:
    response = await client.get(f"/v2/{repo}/tags/list", params={"n": "1000"})
    assert response.json()["tags"] == TAGS
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    ("last", "expected"),
    [("zzz", []), ("v2", []), ("0", TAGS), ("b", TAGS[3:]), ("latest", ["v1", "v2"])],
)
async def test_last_without_n(
    client: httpx.AsyncClient, repo: str, last: str, expected: list[str]
) -> None:
    response = await client.get(f"/v2/{repo}/tags/list", params={"last": last})
    assert response.status_code == 200
    assert response.json()["tags"] == expected
    assert "Link" not in response.headers


async def test_last_beyond_the_end_with_n(client: httpx.AsyncClient, repo: str) -> None:
    response = await client.get(f"/v2/{repo}/tags/list", params={"n": "2", "last": "zzz"})
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", " 1", "0x10", "+1"])
async def test_invalid_n_is_400(client: httpx.AsyncClient, repo: str, n: str) -> None:
    response = await client.get(f"/v2/{repo}/tags/list", params={"n": n})
    assert_error(response, 400)


async def test_invalid_n_uses_an_oci_error_code(client: httpx.AsyncClient, repo: str) -> None:
    # PAGINATION_NUMBER_INVALID is Distribution's, not one of the spec's codes.
    response = await client.get(f"/v2/{repo}/tags/list", params={"n": "-1"})
    assert response.status_code == 400
    assert error_of(response)["code"] in OCI_CODES


async def test_tags_of_an_unknown_repository(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v2/{unique_name()}/tags/list")
    assert_error(response, 404, "NAME_UNKNOWN")


async def test_tags_are_in_case_insensitive_lexical_order(client: httpx.AsyncClient) -> None:
    # end-8a: "the tags MUST be in lexical order (i.e. case-insensitive
    # alphanumeric order)".
    name = unique_name()
    image = await push_image(client, name)
    for tag in ("b", "C", "a", "D"):
        await push_manifest(client, name, tag, image.content, OCI_MANIFEST)
    response = await client.get(f"/v2/{name}/tags/list")
    assert response.json()["tags"] == ["a", "b", "C", "D"]
    page = await client.get(f"/v2/{name}/tags/list", params={"n": "2", "last": "b"})
    assert page.json()["tags"] == ["C", "D"]


async def test_tags_of_a_repository_without_tags_is_an_empty_list(
    client: httpx.AsyncClient,
) -> None:
    # end-8a: "Assuming a repository is found, this request MUST return a
    # 200 OK"; the list "MAY be empty". A manifest pushed by digest only makes
    # a repository (the catalog lists it) that has no tag.
    name = unique_name()
    image = await push_image(client, name)  # by digest
    assert (await client.get(f"/v2/{name}/manifests/{image.digest}")).status_code == 200
    response = await client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 200, response.text
    assert response.json() == {"name": name, "tags": []}
