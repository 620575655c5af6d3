"""Listing endpoints: `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, both
paginated with `n` and `last` and a `Link` header to the next page."""

from __future__ import annotations

import json
from urllib.parse import quote

from entrepot.api.context import Context
from entrepot.api.http import Request, Response
from entrepot.errors import PaginationNumberInvalid


def _page_size(request: Request, maximum: int | None) -> int | None:
    raw = request.query.get("n")
    if raw is None or raw == "":
        return maximum
    if not raw.isdigit():
        raise PaginationNumberInvalid(f"n must be a non-negative integer, not {raw!r}")
    n = int(raw)
    return n if maximum is None else min(n, maximum)


def _tag_order(tag: str) -> tuple[str, str]:
    return tag.lower(), tag


def _link(path: str, last: str, n: int) -> str:
    return f'<{path}?last={quote(last, safe="")}&n={n}>; rel="next"'


async def tags_list(ctx: Context, request: Request, name: str, ref: str) -> Response:
    repo = ctx.registry.repository(name)
    # The spec's order: lexical, case-insensitive (ties broken by case).
    tags = sorted(await repo.tags.all(), key=_tag_order)
    last = request.query.get("last")
    if last:
        tags = [tag for tag in tags if _tag_order(tag) > _tag_order(last)]
    n = _page_size(request, None)
    headers = {"Content-Type": "application/json"}
    if n is not None:
        if len(tags) > n and n > 0:
            headers["Link"] = _link(ctx.url(f"/v2/{name}/tags/list"), tags[n - 1], n)
        tags = tags[:n]
    body = json.dumps({"name": name, "tags": tags}).encode()
    return Response(200, headers, body)


async def catalog(ctx: Context, request: Request, name: str, ref: str) -> Response:
    n = _page_size(request, ctx.catalog_max_entries)
    assert n is not None
    last = request.query.get("last") or None
    names = await ctx.registry.repositories(n + 1, last) if n > 0 else []
    headers = {"Content-Type": "application/json"}
    if len(names) > n:
        names = names[:n]
        headers["Link"] = _link(ctx.url("/v2/_catalog"), names[-1], n)
    return Response(200, headers, json.dumps({"repositories": names}).encode())
