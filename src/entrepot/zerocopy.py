"""Zero-copy blob GETs under uvicorn: the ASGI pathsend extension answered
with `sendfile(2)` (`entrepot.sendfile`).

uvicorn has no pathsend; `PathsendProtocol` (its httptools protocol, plus
this) offers it on plain TCP connections. Over TLS it is not offered (the
bytes must be encrypted in user space) and the application streams the
file instead. Nothing else writes to the connection while the body goes
out: uvicorn runs one response at a time per connection, and the head is
flushed first.

This reaches into uvicorn's internals (its protocol class and request
cycle), which is why uvicorn is pinned to one minor version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from entrepot.sendfile import PATHSEND, send_file

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Send], Awaitable[None]]


class PathsendProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the pathsend extension (plain TCP)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.transport.get_extra_info("sslcontext") is not None:
            super()._start_asgi_task(cycle, app)
            return
        scope: MutableMapping[str, Any] = cycle.scope  # type: ignore[assignment]
        scope["extensions"] = {**(scope.get("extensions") or {}), PATHSEND: {}}
        super()._start_asgi_task(cycle, _answering_pathsend(app, cycle))  # type: ignore[arg-type]


def _answering_pathsend(app: ASGIApp, cycle: RequestResponseCycle) -> ASGIApp:
    async def wrapped(scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        async def send_or_pathsend(message: Message) -> None:
            if message["type"] == PATHSEND:
                await _pathsend(cycle, message["path"])
            else:
                await send(message)

        await app(scope, receive, send_or_pathsend)

    return wrapped


async def _pathsend(cycle: RequestResponseCycle, path: str) -> None:
    """Send the file at `path` as the body whose head was sent, then end the
    response as uvicorn ends one."""
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError("pathsend outside a started response")
    count = cycle.expected_content_length
    transport = cycle.transport
    sending = count and not cycle.disconnected and cycle.scope["method"] != "HEAD"
    # Fewer bytes sent: the client went away (or stalled), or the file is short.
    if sending and await send_file(transport, path, count) < count:
        cycle.disconnected = True
        transport.close()
    cycle.expected_content_length = 0
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    cycle.on_response()


__all__ = ["PATHSEND", "PathsendProtocol"]
