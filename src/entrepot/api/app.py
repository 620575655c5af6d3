"""The ASGI application: routing, and the one place where errors become
responses.

Routes are matched from the end of the path, because repository names
contain slashes (`/v2/library/ubuntu/manifests/latest`). Handlers are thin:
they parse the request, call the repository, and shape the response.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from entrepot import metrics
from entrepot.api import blobs, catalog, manifests, uploads
from entrepot.api.context import Context
from entrepot.api.errors import envelope, error_body
from entrepot.api.http import (
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    send_response,
)
from entrepot.errors import ReadOnly, RegistryError
from entrepot.logs import ACCESS_LOGGER, request_id
from entrepot.memory import IdleTrim
from entrepot.reference import validate_name

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

API_VERSION: Final = ("Docker-Distribution-API-Version", "registry/2.0")
# How much of a refused body is read before answering (see Request.drain).
_DRAIN_LIMIT: Final = 64 << 20
# Where `_dispatch` leaves the name of the route it matched, for the metrics.
ROUTE_KEY: Final = "entrepot.route"

Handler = Callable[[Context, Request, str, str], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]


def _route(name: str, suffix: str, methods: Mapping[str, Handler]) -> Route:
    return Route(name, re.compile(rf"^/v2/(?P<name>.+?){suffix}$"), methods)


# Order matters: `/blobs/uploads/` must win over `/blobs/<digest>`.
ROUTES: Final = (
    _route("tags", r"/tags/list", {"GET": catalog.tags_list}),
    _route("manifest", r"/manifests/(?P<ref>[^/]+)", manifests.METHODS),
    _route("upload", r"/blobs/uploads/?(?P<ref>)", uploads.START_METHODS),
    _route("upload", r"/blobs/uploads/(?P<ref>[^/]+)", uploads.SESSION_METHODS),
    _route("blob", r"/blobs/(?P<ref>[^/]+)", blobs.METHODS),
    _route("referrers", r"/referrers/(?P<ref>[^/]+)", {"GET": manifests.referrers}),
)


class App:
    """The registry's HTTP API as an ASGI application. `idle`, if given, is
    told when each request starts and finishes (to give memory back when
    the server goes quiet)."""

    def __init__(self, context: Context, idle: IdleTrim | None = None) -> None:
        self.context = context
        self.idle = idle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._close)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        token = request_id.set(request.headers.get("x-request-id") or os.urandom(16).hex())
        status, sent = 0, 0  # stay so when sending the response fails
        if self.idle is not None:
            self.idle.started()
        try:
            status, sent = await self._serve(scope, request, send)
        finally:
            if self.idle is not None:
                self.idle.finished()
            if self.context.access_log:
                _log_access(request, scope, status, sent, started)
            metrics.observe_request(
                scope.get(ROUTE_KEY, "unknown"),
                request.method,
                status,
                time.perf_counter() - started,
                sent,
            )
            request_id.reset(token)

    async def _close(self) -> None:
        if self.idle is not None:
            self.idle.close()
        await self.context.registry.aclose()

    async def _serve(self, scope: Scope, request: Request, send: Send) -> tuple[int, int]:
        head = request.method == "HEAD"
        try:
            response = await self._dispatch(request)
        except RegistryError as exc:
            status, body = error_body(exc)
            response = _json(status, body)
            if status == 416 and hasattr(exc, "size"):
                response.headers["Content-Range"] = f"bytes */{exc.size}"
        except BodyTooLarge as exc:
            await request.drain(_DRAIN_LIMIT)
            response = _json(413, envelope("SIZE_INVALID", str(exc), {"limit": exc.limit}))
        except ClientDisconnected:
            return 499, 0  # nginx's code for "client closed the request"
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            response = _json(500, envelope("UNKNOWN", "internal server error"))
        response.headers.setdefault(*API_VERSION)
        for name, value in self.context.headers.items():
            response.headers.setdefault(name, value)
        try:
            sent = await send_response(scope, send, response, head)
        except ClientDisconnected:  # in the middle of the response
            return 499, 0
        return response.status, sent

    async def _dispatch(self, request: Request) -> Response:
        matched = _match(_local_path(request.path, self.context.prefix))
        if matched is None:
            request.scope[ROUTE_KEY] = "unknown"
            return _json(404, envelope("UNSUPPORTED", f"no route for {request.path}"))
        route, methods, name, ref = matched
        request.scope[ROUTE_KEY] = route
        if self.context.read_only and request.method not in ("GET", "HEAD"):
            raise ReadOnly("the registry is in read-only mode: writes are refused")
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            return _method_not_allowed(tuple(methods))
        if name:
            validate_name(name)
        return await handler(self.context, request, name, ref)


async def _base(ctx: Context, request: Request, name: str, ref: str) -> Response:
    return _json(200, b"{}")


_BASE: Final[Mapping[str, Handler]] = {"GET": _base}
_CATALOG: Final[Mapping[str, Handler]] = {"GET": catalog.catalog}


def _local_path(path: str, prefix: str) -> str | None:
    """`path` without the `http.prefix` the registry is served under."""
    if not prefix:
        return path
    base = prefix.rstrip("/")
    return path[len(base) :] if path.startswith(f"{base}/") else None


def _match(path: str | None) -> tuple[str, Mapping[str, Handler], str, str] | None:
    """The route `path` is for: its name, methods, repository name and ref."""
    if path is None:
        return None
    if path in ("/v2/", "/v2"):
        return "base", _BASE, "", ""
    if path == "/v2/_catalog":
        return "catalog", _CATALOG, "", ""
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is not None:
            ref = match.groupdict().get("ref") or ""
            return route.name, route.methods, match.group("name"), ref
    return None


def _log_access(request: Request, scope: Scope, status: int, sent: int, started: float) -> None:
    client = scope.get("client")
    access_log.info(
        "%s %s %d",
        request.method,
        request.path,
        status,
        extra={
            "bytes": sent,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "remote": f"{client[0]}:{client[1]}" if client else None,
            "user_agent": request.headers.get("user-agent"),
        },
    )


def _json(status: int, body: bytes) -> Response:
    return Response(status, {"Content-Type": "application/json"}, body)


def _method_not_allowed(allowed: tuple[str, ...]) -> Response:
    methods = set(allowed) | ({"HEAD"} if "GET" in allowed else set())
    response = _json(405, envelope("UNSUPPORTED", "the method is not supported here"))
    response.headers["Allow"] = ", ".join(sorted(methods))
    return response


async def _lifespan(receive: Receive, send: Send, close: Callable[[], Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await close()  # network clients of the driver and the cache
            except Exception:
                log.warning("closing the storage driver or the cache failed", exc_info=True)
            await send({"type": "lifespan.shutdown.complete"})
            return
