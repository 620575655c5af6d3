"""The debug listener: `/debug/health` (the storage driver check, on request
or periodic with a threshold, as Distribution) and the metrics endpoint."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from entrepot import metrics
from entrepot.debug import (
    HEALTH_PATH,
    DebugServer,
    StorageHealth,
    StorageHealthCheck,
    start_debug_server,
)
from entrepot.storage.driver.base import FileInfo, StorageDriver
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.instrumented import InstrumentedDriver

DEADLINE = 10.0


class FailingDriver(InstrumentedDriver):
    """A filesystem driver whose `stat` fails (or hangs) on demand, and
    counts the calls."""

    def __init__(self, root: Path) -> None:
        super().__init__(FilesystemDriver(root))
        self.failing = False
        self.hanging = False
        self.stats = 0

    async def stat(self, path: str) -> FileInfo:
        self.stats += 1
        if self.hanging:
            await asyncio.sleep(60)
        if self.failing:
            raise OSError("the disk is on fire")
        return await super().stat(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def failing(root: Path) -> FailingDriver:
    return FailingDriver(root)


@pytest.fixture
def start() -> Iterator[Callable[..., DebugServer]]:
    """Start debug servers on free ports; all are stopped after the test."""
    started: list[DebugServer] = []

    def run(driver: StorageDriver, **kwargs: object) -> DebugServer:
        server = start_debug_server("127.0.0.1", 0, driver, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def get(server: DebugServer, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=DEADLINE, **kwargs)  # type: ignore[arg-type]


def wait_for_status(server: DebugServer, status: int) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE
    while True:
        response = get(server, HEALTH_PATH)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


# -- health -------------------------------------------------------------------


def test_healthy_storage(start: Callable[..., DebugServer], root: Path) -> None:
    server = start(FilesystemDriver(root))
    response = get(server, HEALTH_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {}


def test_a_missing_root_is_healthy(start: Callable[..., DebugServer], tmp_path: Path) -> None:
    # As Distribution: "not found" means the backend answered.
    server = start(FilesystemDriver(tmp_path / "not-yet"))
    assert get(server, HEALTH_PATH).status_code == 200


def test_checked_on_each_request_when_not_periodic(
    start: Callable[..., DebugServer], failing: FailingDriver
) -> None:
    server = start(failing)
    assert get(server, HEALTH_PATH).status_code == 200
    failing.failing = True
    response = get(server, HEALTH_PATH)
    assert response.status_code == 503
    assert response.json() == {"storagedriver_filesystem": "the disk is on fire"}
    failing.failing = False
    assert get(server, HEALTH_PATH).status_code == 200
    assert failing.stats == 3


def test_a_storage_that_does_not_answer_is_unhealthy(
    start: Callable[..., DebugServer], failing: FailingDriver
) -> None:
    failing.hanging = True
    server = start(failing, check_timeout=0.2)
    started = time.monotonic()
    response = get(server, HEALTH_PATH)
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert "did not answer within 0.2s" in response.json()["storagedriver_filesystem"]


def test_periodic_checks_turn_unhealthy_after_the_threshold(
    start: Callable[..., DebugServer], failing: FailingDriver
) -> None:
    settings = StorageHealth(enabled=True, interval=timedelta(milliseconds=20), threshold=3)
    server = start(failing, health_settings=settings)
    assert wait_for_status(server, 200).status_code == 200
    failing.failing = True
    before = failing.stats
    response = wait_for_status(server, 503)
    assert response.status_code == 503
    assert response.json() == {"storagedriver_filesystem": "the disk is on fire"}
    assert failing.stats - before >= 3  # not before three failures in a row
    failing.failing = False
    assert wait_for_status(server, 200).json() == {}


def test_periodic_checks_do_not_check_on_request(
    start: Callable[..., DebugServer], failing: FailingDriver
) -> None:
    settings = StorageHealth(enabled=True, interval=timedelta(hours=1), threshold=1)
    server = start(failing, health_settings=settings)
    for _ in range(5):
        assert get(server, HEALTH_PATH).status_code == 200
    assert failing.stats == 1  # the first check, at start


def test_the_threshold_counts_consecutive_failures(failing: FailingDriver) -> None:
    check = StorageHealthCheck(failing, threshold=3)
    check.update("boom")
    check.update("boom")
    assert check.status() == {}
    check.update(None)  # a success starts the count again
    check.update("boom")
    check.update("boom")
    assert check.status() == {}
    check.update("bang")
    assert check.status() == {"storagedriver_filesystem": "bang"}
    check.update("bang")
    check.update(None)
    assert check.status() == {}
    assert StorageHealthCheck(failing, threshold=0).threshold == 1


# -- metrics ------------------------------------------------------------------


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.disable()
    metrics.enable()
    yield
    metrics.disable()


@pytest.mark.usefixtures("in_process")
def test_metrics_are_served(start: Callable[..., DebugServer], root: Path) -> None:
    metrics.observe_request("tags", "GET", 200, 0.003)
    server = start(FilesystemDriver(root))
    response = get(server, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert (
        'entrepot_http_requests_total{method="GET",route="tags",status="200"} 1.0' in response.text
    )


@pytest.mark.usefixtures("in_process")
def test_openmetrics_on_request(start: Callable[..., DebugServer], root: Path) -> None:
    server = start(FilesystemDriver(root))
    response = get(
        server, "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_the_metrics_path_is_configurable(start: Callable[..., DebugServer], root: Path) -> None:
    server = start(FilesystemDriver(root), metrics_path="/prometheus")
    assert get(server, "/prometheus").status_code == 200
    assert get(server, "/metrics").status_code == 404
    quiet = start(FilesystemDriver(root), metrics_path=None)
    assert get(quiet, "/metrics").status_code == 404
    assert get(quiet, HEALTH_PATH).status_code == 200


def test_bad_metrics_paths_are_refused(root: Path) -> None:
    for path in ("metrics", HEALTH_PATH):
        with pytest.raises(ValueError, match="invalid metrics path"):
            start_debug_server("127.0.0.1", 0, FilesystemDriver(root), metrics_path=path)


# -- HTTP ---------------------------------------------------------------------


def test_head_unknown_paths_and_methods(start: Callable[..., DebugServer], root: Path) -> None:
    server = start(FilesystemDriver(root))
    head = httpx.head(f"{server.url}{HEALTH_PATH}", timeout=DEADLINE)
    assert head.status_code == 200
    assert head.headers["content-length"] == "2"
    assert head.content == b""
    assert get(server, "/debug/nothing").status_code == 404
    assert get(server, f"{HEALTH_PATH}?verbose=1").status_code == 200
    posted = httpx.post(f"{server.url}/metrics", timeout=DEADLINE)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"


def test_a_malformed_request_gets_400(start: Callable[..., DebugServer], root: Path) -> None:
    server = start(FilesystemDriver(root))
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_a_client_that_says_nothing_does_not_block_others(
    start: Callable[..., DebugServer], root: Path
) -> None:
    server = start(FilesystemDriver(root))
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as idle:
        idle.sendall(b"GET /debug/hea")
        assert get(server, HEALTH_PATH).status_code == 200


def test_stop_closes_the_listener(root: Path) -> None:
    server = start_debug_server("127.0.0.1", 0, FilesystemDriver(root))
    assert get(server, HEALTH_PATH).status_code == 200
    server.stop()
    server.stop()  # a second time is harmless
    with pytest.raises(httpx.ConnectError):
        get(server, HEALTH_PATH)
    # The port is free again.
    again = start_debug_server("127.0.0.1", server.port, FilesystemDriver(root))
    again.stop()


def test_an_address_in_use_is_an_error(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            start_debug_server("127.0.0.1", port, FilesystemDriver(root))
