"""The little of HTTP the handlers need, over raw ASGI.

A `Request` wraps the ASGI scope and receive channel (headers, query, a
streamed body); a `Response` is a status, headers and either bytes or an
async iterator of chunks, with an optional file to hand to the server for
zero-copy sending. Raw ASGI keeps the per-request overhead small: a manifest
HEAD is a few dictionary lookups on top of the storage calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from entrepot.errors import SizeInvalid

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientDisconnected(Exception):
    """The client went away in the middle of a request body, or of its
    response (the server's `send` raised an OSError, as ASGI 2.4 says)."""


class Request:
    __slots__ = ("_body_done", "_headers", "_query", "_receive", "method", "path", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None
        self._body_done = False

    @property
    def headers(self) -> dict[str, str]:
        """Request headers by lowercased name. A repeated header is joined
        with ", " (RFC 9110, list-valued fields): skopeo and podman send one
        `Accept` header per media type."""
        if self._headers is None:
            headers: dict[str, str] = {}
            repeated: dict[str, list[str]] = {}
            for raw_name, raw_value in self.scope.get("headers", ()):
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                if name in headers:  # joined once at the end: linear in the headers
                    repeated.setdefault(name, [headers[name]]).append(value)
                headers[name] = value
            for name, values in repeated.items():
                headers[name] = ", ".join(values)
            self._headers = headers
        return self._headers

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the first value wins."""
        if self._query is None:
            query: dict[str, str] = {}
            raw = self.scope.get("query_string", b"").decode("latin-1")
            for key, value in parse_qsl(raw, keep_blank_values=True):
                query.setdefault(key, value)
            self._query = query
        return self._query

    @property
    def can_send_files(self) -> bool:
        """Whether the server sends files itself (the ASGI pathsend extension)."""
        return "http.response.pathsend" in (self.scope.get("extensions") or {})

    def content_length(self) -> int | None:
        raw = self.headers.get("content-length")
        if raw is None:
            return None
        if not raw.isdigit():
            raise SizeInvalid(f"invalid Content-Length {raw!r}")
        return int(raw)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as the server hands it over. A chunk is
        not held here once the consumer asks for the next one (so an upload
        holds one chunk being written and one arriving, not three)."""
        while not self._body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._body_done = True
                raise ClientDisconnected()
            body = message.get("body", b"")
            if not message.get("more_body", False):
                self._body_done = True
            del message
            if body:
                yield body
            del body

    async def body(self, limit: int) -> bytes:
        """The whole body, refusing more than `limit` bytes with `BodyTooLarge`."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        parts = bytearray()
        async for chunk in self.stream():
            parts += chunk
            if len(parts) > limit:
                raise BodyTooLarge(limit)
        return bytes(parts)

    async def drain(self, limit: int) -> None:
        """Read and drop up to `limit` bytes of an unread body, so an early
        error response reaches a client still sending (past that, the
        server may close the connection)."""
        dropped = 0
        try:
            async for chunk in self.stream():
                dropped += len(chunk)
                if dropped > limit:
                    return
        except ClientDisconnected:
            return


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    # A local file the server may send itself (ASGI "pathsend"); `body` and
    # `stream` are then ignored, `stream` is the fallback.
    file_path: str | None = None


async def send_response(scope: Scope, send: Send, response: Response, head: bool) -> int:
    """Send `response`; return the number of body bytes sent."""
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    if (
        response.stream is None
        and response.file_path is None
        and not any(name == b"content-length" for name, _ in headers)
    ):
        headers.append((b"content-length", str(len(response.body)).encode()))
    send = _to_client(send)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if head:
        await send({"type": "http.response.body", "body": b""})
        if response.stream is not None:
            await _close_stream(response.stream)
        return 0
    extensions = scope.get("extensions") or {}
    if response.file_path is not None and "http.response.pathsend" in extensions:
        if response.stream is not None:
            await _close_stream(response.stream)
        await send({"type": "http.response.pathsend", "path": response.file_path})
        return int(response.headers.get("Content-Length", "0"))
    if response.stream is None:
        await send({"type": "http.response.body", "body": response.body})
        return len(response.body)
    sent = 0
    try:
        async for chunk in response.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
    finally:
        await _close_stream(response.stream)
    await send({"type": "http.response.body", "body": b""})
    return sent


def _to_client(send: Send) -> Send:
    """`send`, with the OSError a server raises once its client is gone
    (and only that: not a storage error met while streaming) made a
    ClientDisconnected."""

    async def sending(message: Message) -> None:
        try:
            await send(message)
        except OSError as exc:
            raise ClientDisconnected() from exc

    return sending


async def _close_stream(stream: AsyncIterator[bytes]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
