"""Upload endpoints: `POST /v2/<name>/blobs/uploads/` (a session, a
monolithic push with `?digest=`, or a cross-repository mount), and on a
session `PATCH` (a chunk), `PUT` (commit, with an optional last chunk),
`GET` (status) and `DELETE` (cancel).

Bodies stream straight into the upload writer, gathered into writes of about
`WRITE_SIZE` (entrepot's own server hands them over that large already). A
client that goes away mid-body leaves the session in storage at the offset
it reached, to be resumed or cancelled.
"""

from __future__ import annotations

import re
from typing import Final

from entrepot.api.context import Context
from entrepot.api.http import ClientDisconnected, Request, Response
from entrepot.digest import Digest
from entrepot.errors import (
    BlobInvalidDigest,
    BlobInvalidLength,
    BlobUnknown,
    BlobUploadOutOfOrder,
    DigestInvalid,
    NameInvalid,
    SizeInvalid,
)
from entrepot.reference import is_valid_name
from entrepot.storage.upload import UploadWriter

# Large enough that the thread hops of each write (hash and store) cost
# little, small enough that the bytes held per upload stay few (two
# writes' worth: one being stored, one arriving).
WRITE_SIZE: Final = 256 << 10
_CONTENT_RANGE: Final = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def _session_headers(ctx: Context, name: str, writer: UploadWriter) -> dict[str, str]:
    # Docker expects `Range: 0-<end>` on every 202, and "0-0" for an empty one.
    end = max(writer.size - 1, 0)
    return {
        "Location": ctx.url(f"/v2/{name}/blobs/uploads/{writer.id}"),
        "Range": f"0-{end}",
        "Docker-Upload-UUID": writer.id,
        "Content-Length": "0",
    }


def _blob_created(ctx: Context, name: str, digest: Digest) -> Response:
    return Response(
        201,
        {
            "Location": ctx.url(f"/v2/{name}/blobs/{digest}"),
            "Docker-Content-Digest": str(digest),
            "Content-Length": "0",
        },
    )


async def _write_body(request: Request, writer: UploadWriter) -> int:
    """Stream the request body into `writer`, in writes of about WRITE_SIZE."""
    pending = bytearray()
    written = 0
    try:
        async for chunk in request.stream():
            full: bytes | memoryview
            if pending or len(chunk) < WRITE_SIZE:
                pending += chunk
                del chunk
                if len(pending) < WRITE_SIZE:
                    continue
                # Hand the buffer over as a view (no copy); start a new one.
                full, pending = memoryview(pending), bytearray()
            else:
                full = chunk  # large enough as it is
                del chunk
            written += await writer.write(full)
            del full  # neither is held while the next chunk arrives
    except ClientDisconnected:
        # Keep every byte that arrived: the session resumes from there.
        if pending:
            await writer.write(memoryview(pending))
        raise
    if pending:
        written += await writer.write(memoryview(pending))
    return written


def _check_content_range(request: Request, writer: UploadWriter) -> None:
    """A chunk must start where the upload stands (else 416)."""
    header = request.headers.get("content-range")
    if header is None:
        return
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise SizeInvalid(f"invalid Content-Range {header!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise SizeInvalid(f"invalid Content-Range {header!r}")
    if start != writer.size:
        raise BlobUploadOutOfOrder(start, writer.size)
    length = request.content_length()
    if length is not None and length != end - start + 1:
        raise SizeInvalid(f"Content-Length {length} does not match Content-Range {header!r}")


def _digest_param(request: Request) -> Digest:
    raw = request.query.get("digest")
    if raw is None:
        raise DigestInvalid("", "the digest query parameter is required")
    return Digest.parse(raw)


async def start_upload(ctx: Context, request: Request, name: str, ref: str) -> Response:
    repo = ctx.registry.repository(name)
    mount, source = request.query.get("mount"), request.query.get("from")
    if mount is not None and source is not None:
        try:
            digest = Digest.parse(mount)
            if not is_valid_name(source):
                raise NameInvalid(source)
            descriptor = await repo.blobs.mount(source, digest)
        except (BlobUnknown, DigestInvalid, NameInvalid):
            pass  # not mountable: fall back to a plain upload session
        else:
            return _blob_created(ctx, name, descriptor.digest)
    if "digest" in request.query:
        digest = _digest_param(request)
        writer = await repo.blobs.create()
        return await _finish(ctx, name, request, writer, digest)
    writer = await repo.blobs.create()
    await writer.close()
    return Response(202, _session_headers(ctx, name, writer))


async def patch_upload(ctx: Context, request: Request, name: str, ref: str) -> Response:
    writer = await ctx.registry.repository(name).blobs.resume(ref)
    try:
        _check_content_range(request, writer)
        await _write_body(request, writer)
    finally:
        # Also on a disconnect: what arrived stays, with its hash state.
        await writer.close()
    return Response(202, _session_headers(ctx, name, writer))


async def put_upload(ctx: Context, request: Request, name: str, ref: str) -> Response:
    digest = _digest_param(request)
    writer = await ctx.registry.repository(name).blobs.resume(ref)
    try:
        _check_content_range(request, writer)
    except BaseException:
        await writer.close()
        raise
    return await _finish(ctx, name, request, writer, digest)


async def _finish(
    ctx: Context, name: str, request: Request, writer: UploadWriter, digest: Digest
) -> Response:
    """Write the (last) body and commit under `digest`. A digest or length
    that does not match cancels the session, as Distribution does."""
    try:
        await _write_body(request, writer)
    except BaseException:
        await writer.close()
        raise
    try:
        descriptor = await writer.commit(digest)
    except (BlobInvalidDigest, BlobInvalidLength):
        await writer.cancel()
        raise
    return _blob_created(ctx, name, descriptor.digest)


async def upload_status(ctx: Context, request: Request, name: str, ref: str) -> Response:
    writer = await ctx.registry.repository(name).blobs.resume(ref)
    await writer.close()
    headers = _session_headers(ctx, name, writer)
    return Response(204, headers)


async def cancel_upload(ctx: Context, request: Request, name: str, ref: str) -> Response:
    writer = await ctx.registry.repository(name).blobs.resume(ref)
    await writer.cancel()
    return Response(204, {"Content-Length": "0"})


START_METHODS: Final = {"POST": start_upload}
SESSION_METHODS: Final = {
    "PATCH": patch_upload,
    "PUT": put_upload,
    "GET": upload_status,
    "DELETE": cancel_upload,
}
