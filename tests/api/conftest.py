"""Fixtures of the HTTP API suite.

`server` runs a real `entrepot serve` process (one per test module: tests
share it by using repository names of their own), `client` talks to it.
`asgi_client` runs the application in process on a filesystem driver wrapped
by a `CountingDriver`, so tests can count the storage calls of a request.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from entrepot.api import App, Context
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.base import FileInfo, FileReader, FileWriter, StorageDriver
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry
from tests.api.helpers import check_api_version
from tests.support import free_port, stop, wait_ready

REQUEST_TIMEOUT = 20.0


# -- the real server ----------------------------------------------------------


@dataclass
class Server:
    """A running `entrepot serve` subprocess."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    stderr_path: Path
    _stderr_seen: int = field(default=0)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def check_stderr(self) -> None:
        """Fail if the server wrote a traceback since the last check."""
        text = self.stderr()
        new, self._stderr_seen = text[self._stderr_seen :], len(text)
        if "Traceback" in new:
            pytest.fail(f"the server wrote a traceback:\n{new}", pytrace=False)


def _start_server(
    root: Path, log_dir: Path, extra_args: tuple[str, ...] = ()
) -> tuple[Server, IO[bytes]]:
    port = free_port()
    stderr_path = log_dir / "server.stderr"
    stderr_file = stderr_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrepot.cli",
            "serve",
            "--root",
            str(root),
            "--addr",
            f"127.0.0.1:{port}",
            *extra_args,
        ],
        stdout=stderr_file,
        stderr=stderr_file,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Server(f"http://127.0.0.1:{port}", root, process, stderr_path)
    try:
        wait_ready(process, server.url, "entrepot serve", server.stderr)
    except BaseException:
        stderr_file.close()
        raise
    return server, stderr_file


@pytest.fixture(scope="module", params=["granian", "uvicorn", "builtin"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real `entrepot serve` on a fresh storage root, for one test module;
    every test runs on both servers entrepot can be served by."""
    base = tmp_path_factory.mktemp("server")
    root = base / "root"
    root.mkdir()
    srv, stderr_file = _start_server(root, base, ("--server", request.param))
    try:
        yield srv
    finally:
        stop(srv.process)
        stderr_file.close()
    text = srv.stderr()
    if "Traceback" in text:
        pytest.fail(f"the server wrote a traceback:\n{text}", pytrace=False)


@pytest.fixture(autouse=True)
def _server_stderr_is_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the server: no traceback in its stderr."""
    srv: Server | None = None
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
    yield
    if srv is not None:
        srv.check_stderr()  # what the server writes later is caught at its teardown


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real server; every response is checked for
    `Docker-Distribution-API-Version`."""
    async with httpx.AsyncClient(
        base_url=server.url,
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    ) as http:
        yield http


# -- the in-process application -----------------------------------------------


class CountingDriver:
    """A `StorageDriver` that forwards to another and counts each call by
    method name (readers and writers it hands out are not counted)."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def _count(self, method: str, path: str) -> None:
        self.calls[method] += 1
        self.log.append((method, path))

    @property
    def name(self) -> str:
        return self.inner.name

    async def get_content(self, path: str) -> bytes:
        self._count("get_content", path)
        return await self.inner.get_content(path)

    async def put_content(self, path: str, content: bytes) -> None:
        self._count("put_content", path)
        await self.inner.put_content(path, content)

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        self._count("reader", path)
        return await self.inner.reader(path, offset)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        self._count("writer", path)
        return await self.inner.writer(path, append)

    async def stat(self, path: str) -> FileInfo:
        self._count("stat", path)
        return await self.inner.stat(path)

    async def list(self, path: str) -> list[str]:
        self._count("list", path)
        return await self.inner.list(path)

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        for path in paths:
            self._count("list_many", path)
        return await self.inner.list_many(paths)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        self._count("walk", path)
        return self.inner.walk(path)

    async def move(self, source: str, dest: str) -> None:
        self._count("move", source)
        await self.inner.move(source, dest)

    async def delete(self, path: str) -> None:
        self._count("delete", path)
        await self.inner.delete(path)

    async def local_path(self, path: str) -> str | None:
        self._count("local_path", path)
        return await self.inner.local_path(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self._count("redirect_url", path)
        return await self.inner.redirect_url(path, method)


@dataclass
class InProcess:
    """An application in process: its client, counting driver and registry."""

    client: httpx.AsyncClient
    driver: CountingDriver
    registry: Registry


def _in_process(root: Path, *, delete_enabled: bool = True) -> InProcess:
    driver = CountingDriver(FilesystemDriver(root))
    registry = Registry(driver, InMemoryBlobDescriptorCache(), delete_enabled=delete_enabled)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=App(Context(registry))),
        base_url="http://entrepot.test",
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    )
    return InProcess(client, driver, registry)


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def counting_driver(storage_root: Path) -> CountingDriver:
    """The counting driver under `asgi_client` (the same for the whole test)."""
    return CountingDriver(FilesystemDriver(storage_root))


@pytest.fixture
async def asgi_client(counting_driver: CountingDriver) -> AsyncIterator[httpx.AsyncClient]:
    """The application in process, on `counting_driver`, with a memory cache."""
    registry = Registry(counting_driver, InMemoryBlobDescriptorCache())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=App(Context(registry))),
        base_url="http://entrepot.test",
        timeout=REQUEST_TIMEOUT,
        event_hooks={"response": [check_api_version]},
    ) as http:
        yield http


@pytest.fixture
async def make_app(storage_root: Path) -> AsyncIterator[Callable[..., InProcess]]:
    """Build more in-process applications on the same storage root (a cold
    cache, or different settings); they are closed at the end of the test."""
    made: list[InProcess] = []

    def make(*, delete_enabled: bool = True) -> InProcess:
        app = _in_process(storage_root, delete_enabled=delete_enabled)
        made.append(app)
        return app

    yield make
    for app in made:
        await app.client.aclose()
