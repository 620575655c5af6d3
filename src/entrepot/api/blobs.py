"""Blob endpoints: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.

A full GET of a blob on a local filesystem is handed to the server as a
path (zero copy where the server supports it); a driver that can presign
answers with a redirect; everything else streams from the blob reader.
Single byte ranges are honoured (206, and 416 when unsatisfiable).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final

from entrepot.api.context import Context
from entrepot.api.http import Request, Response
from entrepot.digest import Digest
from entrepot.errors import RangeInvalid
from entrepot.storage.blobstore import BlobReader

_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a `Range` header asks for, or None for all.

    Several ranges, or a syntax we do not know, mean the whole blob (RFC
    9110 lets a server ignore Range); a range outside the blob is a 416.
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if size == 0:
        raise RangeInvalid(size)
    if first == "":
        length = int(last)
        if length == 0:
            raise RangeInvalid(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeInvalid(size)
    return start, end


async def get_blob(ctx: Context, request: Request, name: str, ref: str) -> Response:
    digest = Digest.parse(ref)
    repo = ctx.registry.repository(name)
    desc = await repo.blobs.stat(digest)
    headers = {
        "Docker-Content-Digest": str(desc.digest),
        "ETag": f'"{desc.digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Type": "application/octet-stream",
    }
    if request.method == "HEAD":
        headers["Content-Length"] = str(desc.size)
        return Response(200, headers)
    redirect = await repo.blobs.redirect_url(desc.digest)
    if redirect is not None:
        return Response(307, {"Location": redirect, "Docker-Content-Digest": str(desc.digest)})
    wanted = parse_range(request.headers.get("range", ""), desc.size)
    reader = await repo.blobs.open(desc.digest)
    if wanted is None:
        headers["Content-Length"] = str(desc.size)
        file_path = await repo.blobs.local_path(desc.digest) if request.can_send_files else None
        return Response(200, headers, stream=_stream(reader, desc.size), file_path=file_path)
    start, end = wanted
    reader.seek(start)
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{desc.size}"
    return Response(206, headers, stream=_stream(reader, end - start + 1))


async def _stream(reader: BlobReader, length: int) -> AsyncIterator[bytes]:
    try:
        async for chunk in reader.chunks(length=length):
            yield chunk
    finally:
        await reader.close()


async def delete_blob(ctx: Context, request: Request, name: str, ref: str) -> Response:
    digest = Digest.parse(ref)
    await ctx.registry.repository(name).blobs.delete(digest)
    return Response(202, {"Content-Length": "0"})


METHODS: Final = {"GET": get_blob, "HEAD": get_blob, "DELETE": delete_blob}
