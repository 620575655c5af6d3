"""The debug listener (`http.debug.addr`): `/debug/health` and the
Prometheus metrics.

It runs in the main process, in a daemon thread with an event loop of its
own, started before the HTTP server takes the main thread: one listener
however many worker processes serve the API, collecting the metrics of all
of them from the multiprocess directory (see `entrepot.metrics`).

Health is Distribution's storage driver check: a `stat` of the root `/` (a
`PathNotFound` means the backend answered, so it passes), bounded by a
timeout. With `health.storagedriver.enabled` it runs every `interval`, and
the registry is unhealthy after `threshold` consecutive failures (healthy
again after one success); otherwise it runs on each request to the health
endpoint. Healthy is `200 {}`; unhealthy is `503` with the failing check and
its error, `{"storagedriver_filesystem": "..."}`, as Distribution answers.

The HTTP side is deliberately small: GET and HEAD of two paths, one request
per connection, an answer and a close (what health probes and Prometheus
scrapers need).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol
from urllib.parse import urlsplit

from entrepot import metrics
from entrepot.storage.driver.base import PathNotFound, StorageDriver, close_driver

log = logging.getLogger(__name__)

HEALTH_PATH: Final = "/debug/health"
DEFAULT_METRICS_PATH: Final = "/metrics"
DEFAULT_CHECK_TIMEOUT: Final = 5.0
# A client gets this long to send its request head, and at most this much.
_HEAD_TIMEOUT: Final = 10.0
_HEAD_LIMIT: Final = 64 << 10
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class StorageHealthSettings(Protocol):
    """What the check reads of `health.storagedriver` (the config's section
    has this shape)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def interval(self) -> timedelta: ...

    @property
    def threshold(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """`health.storagedriver` settings, Distribution's defaults."""

    enabled: bool = False
    interval: timedelta = timedelta(seconds=10)
    threshold: int = 1


class StorageHealthCheck:
    """The storage driver check and its threshold (Distribution's
    `thresholdUpdater`): failing once `threshold` checks in a row failed."""

    def __init__(self, driver: StorageDriver, threshold: int = 1, timeout: float = 5.0) -> None:
        self.name = f"storagedriver_{driver.name}"
        self.driver = driver
        self.threshold = max(threshold, 1)
        self.timeout = timeout
        self.failures = 0  # consecutive, capped at the threshold
        self.error: str | None = None

    async def probe(self) -> str | None:
        """Ask the driver once: None when it answered, else what went wrong."""
        try:
            await asyncio.wait_for(self.driver.stat("/"), self.timeout)
        except PathNotFound:
            return None  # the backend answered; the root is just not there yet
        except TimeoutError:
            error = f"storage driver did not answer within {self.timeout:g}s"
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        else:
            return None
        log.error("storage driver health check: %s", error)
        return error

    def update(self, error: str | None) -> None:
        if error is None:
            self.failures = 0
        elif self.failures < self.threshold:
            self.failures += 1
        self.error = error

    async def check(self) -> None:
        self.update(await self.probe())

    def status(self) -> dict[str, str]:
        """The failing checks by name: empty when healthy."""
        if self.failures >= self.threshold and self.error is not None:
            return {self.name: self.error}
        return {}


class DebugServer:
    """The debug listener, running in a thread of its own; `stop()` ends it."""

    def __init__(
        self,
        host: str,
        port: int,
        driver: StorageDriver,
        health: StorageHealthSettings,
        metrics_path: str | None,
        check_timeout: float,
        multiprocess_dir: str | None,
    ) -> None:
        if metrics_path is not None and (
            not metrics_path.startswith("/") or metrics_path == HEALTH_PATH
        ):
            raise ValueError(f"invalid metrics path {metrics_path!r}")
        self.host = host
        self.port = port
        self.metrics_path = metrics_path
        self.periodic = health.enabled
        self.interval = max(health.interval.total_seconds(), 0.001)
        self.health = StorageHealthCheck(
            driver, health.threshold if health.enabled else 1, check_timeout
        )
        self._multiprocess_dir = multiprocess_dir or os.environ.get(metrics.MULTIPROC_ENV)
        self._thread = threading.Thread(target=self._run, name="entrepot-debug", daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        host = self.host or "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        """Listen, or raise why it cannot (the address is taken, ...)."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        log.info("debug server listening on %s", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and end the thread (a no-op when already stopped)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # never leave start() waiting
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                log.exception("debug server stopped on an error")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self._handle(reader, writer)
            finally:
                handlers.discard(task)

        server = await asyncio.start_server(handle, self.host or None, self.port, limit=_HEAD_LIMIT)
        self.port = server.sockets[0].getsockname()[1]
        poller = asyncio.create_task(self._poll()) if self.periodic else None
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            tasks = [*handlers, *([poller] if poller is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            # The driver's network client (S3) lives on this thread's loop.
            with contextlib.suppress(Exception):
                await close_driver(self.health.driver)

    async def _poll(self) -> None:
        while True:
            await self.health.check()
            await asyncio.sleep(self.interval)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            method, status, headers, body = await self._respond(head)
            lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
            headers["Content-Length"] = str(len(body))
            headers["Connection"] = "close"
            lines.extend(f"{name}: {value}" for name, value in headers.items())
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("debug server: error serving a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[str, int, dict[str, str], bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "GET", 400, _text(), b"400 bad request\n"
        method, target = parts[0], parts[1]
        path = urlsplit(target).path
        if path not in (HEALTH_PATH, self.metrics_path):
            return method, 404, _text(), b"404 page not found\n"
        if method not in ("GET", "HEAD"):
            return method, 405, {**_text(), "Allow": "GET, HEAD"}, b"405 method not allowed\n"
        if path == HEALTH_PATH:
            failing = await self._health_status()
            body = json.dumps(failing).encode()
            content_type = "application/json; charset=utf-8"
            return method, 503 if failing else 200, {"Content-Type": content_type}, body
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        body, content_type = await asyncio.to_thread(
            metrics.exposition, accept, self._multiprocess_dir
        )
        return method, 200, {"Content-Type": content_type}, body

    async def _health_status(self) -> dict[str, str]:
        if self.periodic:
            return self.health.status()
        error = await self.health.probe()
        return {self.health.name: error} if error is not None else {}


def _text() -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=utf-8"}


def start_debug_server(
    host: str,
    port: int,
    driver: StorageDriver,
    health_settings: StorageHealthSettings | None = None,
    metrics_path: str | None = DEFAULT_METRICS_PATH,
    *,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    multiprocess_dir: str | None = None,
) -> DebugServer:
    """Start the debug listener on `host:port` (port 0: any free port, read
    back from `.port`) in a daemon thread, and return once it listens.

    `driver` is checked for health (give it a driver of its own: it is used
    from the listener's thread). `metrics_path` None serves no metrics. The
    metrics are read from `multiprocess_dir`, by default the directory
    `PROMETHEUS_MULTIPROC_DIR` names when the listener starts, else they are
    this process's own.
    """
    server = DebugServer(
        host,
        port,
        driver,
        health_settings if health_settings is not None else StorageHealth(),
        metrics_path,
        check_timeout,
        multiprocess_dir,
    )
    server.start()
    return server
