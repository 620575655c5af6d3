"""The metrics: what each recording function counts, the instrumented
storage driver, and the aggregation of several processes' metrics (the
multiprocess directory every worker records into)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from entrepot import metrics
from entrepot.debug import start_debug_server
from entrepot.storage.driver.base import PathNotFound, StorageDriver
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.driver.instrumented import InstrumentedDriver

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def current() -> Samples:
    body, _ = metrics.exposition()
    return parse(body.decode())


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Metrics recorded in this process's memory (no multiprocess directory)."""
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.disable()
    metrics.enable()
    yield
    metrics.disable()


# -- recording ----------------------------------------------------------------


def test_nothing_is_recorded_until_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    metrics.disable()
    assert not metrics.enabled()
    metrics.observe_request("blob", "GET", 200, 0.1, sent=10)
    metrics.observe_storage_call("inmemory", "stat", 0.001)
    metrics.count_bytes_pushed(10)
    metrics.upload_session_opened()
    metrics.upload_session_closed()
    metrics.count_cache_hit()
    metrics.count_cache_miss()
    assert all(not name.startswith("entrepot_") for name, _ in current())


@pytest.mark.usefixtures("in_process")
def test_requests_by_route_method_and_status() -> None:
    metrics.observe_request("manifest", "GET", 200, 0.002)
    metrics.observe_request("manifest", "GET", 200, 0.004)
    metrics.observe_request("manifest", "GET", 404, 0.001)
    metrics.observe_request("upload", "PATCH", 202, 0.5)
    metrics.observe_request("unknown", "BREW", 404, 0.001)
    samples = current()
    requests = "entrepot_http_requests_total"
    assert value(samples, requests, route="manifest", method="GET", status="200") == 2
    assert value(samples, requests, route="manifest", method="GET", status="404") == 1
    assert value(samples, requests, route="upload", method="PATCH", status="202") == 1
    # Made-up methods share one label value: clients cannot grow the series.
    assert value(samples, requests, route="unknown", method="OTHER", status="404") == 1
    duration = "entrepot_http_request_duration_seconds"
    assert value(samples, f"{duration}_count", route="manifest", method="GET") == 3
    assert value(samples, f"{duration}_sum", route="manifest", method="GET") == pytest.approx(0.007)
    assert value(samples, f"{duration}_bucket", route="upload", method="PATCH", le="0.25") == 0
    assert value(samples, f"{duration}_bucket", route="upload", method="PATCH", le="0.5") == 1


@pytest.mark.usefixtures("in_process")
def test_bytes_pulled_are_blob_get_bodies() -> None:
    metrics.observe_request("blob", "GET", 200, 0.01, sent=1000)
    metrics.observe_request("blob", "GET", 206, 0.01, sent=24)
    metrics.observe_request("blob", "HEAD", 200, 0.01, sent=0)
    metrics.observe_request("manifest", "GET", 200, 0.01, sent=500)
    metrics.count_bytes_pulled(1)
    assert value(current(), "entrepot_bytes_pulled_total") == 1025


@pytest.mark.usefixtures("in_process")
def test_bytes_pushed_cache_and_upload_gauge() -> None:
    metrics.count_bytes_pushed(100)
    metrics.count_bytes_pushed(0)
    metrics.count_bytes_pushed(23)
    for _ in range(3):
        metrics.count_cache_hit()
    metrics.count_cache_miss()
    metrics.upload_session_opened()
    metrics.upload_session_opened()
    metrics.upload_session_closed()
    samples = current()
    assert value(samples, "entrepot_bytes_pushed_total") == 123
    assert value(samples, "entrepot_descriptor_cache_hits_total") == 3
    assert value(samples, "entrepot_descriptor_cache_misses_total") == 1
    assert value(samples, "entrepot_upload_sessions_in_flight") == 1


@pytest.mark.usefixtures("in_process")
def test_enable_is_idempotent() -> None:
    metrics.count_cache_hit()
    metrics.enable()
    metrics.count_cache_hit()
    assert value(current(), "entrepot_descriptor_cache_hits_total") == 2


# -- the instrumented driver --------------------------------------------------


def storage_calls(samples: Samples, driver: str) -> dict[str, float]:
    return {
        dict(labels)["method"]: count
        for (name, labels), count in samples.items()
        if name == "entrepot_storage_driver_calls_total" and dict(labels)["driver"] == driver
    }


def test_the_instrumented_driver_is_a_storage_driver(tmp_path: Path) -> None:
    inner = FilesystemDriver(tmp_path)
    driver = InstrumentedDriver(inner)
    assert isinstance(driver, StorageDriver)
    assert driver.name == "filesystem"
    assert driver.inner is inner


@pytest.mark.usefixtures("in_process")
async def test_every_call_is_counted_and_timed() -> None:
    driver = InstrumentedDriver(InMemoryDriver())
    await driver.put_content("/a/small", b"hello")
    assert await driver.get_content("/a/small") == b"hello"
    with pytest.raises(PathNotFound):
        await driver.stat("/a/missing")  # failures are counted too
    assert (await driver.stat("/a/small")).size == 5
    writer = await driver.writer("/a/big")
    assert await writer.write(b"x" * 10) == 10
    assert await writer.write(memoryview(b"y" * 5)) == 5
    assert writer.size == 15
    await writer.commit()
    await writer.close()
    reader = await driver.reader("/a/big", 3)
    chunks = []
    while chunk := await reader.read(4):
        chunks.append(chunk)
    await reader.close()
    assert b"".join(chunks) == b"x" * 7 + b"y" * 5
    assert await driver.list("/a") == ["/a/big", "/a/small"]
    assert [info.path async for info in driver.walk("/")] == ["/a", "/a/big", "/a/small"]
    await driver.move("/a/big", "/b/big")
    await driver.delete("/b")
    assert await driver.local_path("/a/small") is None
    assert await driver.redirect_url("/a/small") is None

    samples = current()
    assert storage_calls(samples, "inmemory") == {
        "put_content": 1,
        "get_content": 1,
        "stat": 2,
        "writer": 1,
        "writer.write": 2,
        "writer.commit": 1,
        "writer.close": 1,
        "reader": 1,
        "reader.read": 4,
        "reader.close": 1,
        "list": 1,
        "walk": 1,
        "move": 1,
        "delete": 1,
        "local_path": 1,
        "redirect_url": 1,
    }
    histogram = "entrepot_storage_driver_call_duration_seconds_count"
    assert value(samples, histogram, driver="inmemory", method="stat") == 2
    assert value(samples, histogram, driver="inmemory", method="reader.read") == 4


@pytest.mark.usefixtures("in_process")
async def test_a_walk_left_early_is_recorded_once() -> None:
    driver = InstrumentedDriver(InMemoryDriver())
    for index in range(3):
        await driver.put_content(f"/d/{index}", b"")
    walk = driver.walk("/")
    async for _ in walk:
        break
    await walk.aclose()  # type: ignore[attr-defined]
    assert storage_calls(current(), "inmemory")["walk"] == 1


async def test_calls_are_traced_at_debug_level_only(caplog: pytest.LogCaptureFixture) -> None:
    driver = InstrumentedDriver(InMemoryDriver())
    logger = "entrepot.storage.driver.instrumented"
    with caplog.at_level(logging.INFO, logger=logger):
        await driver.put_content("/quiet", b"1")
    assert not [r for r in caplog.records if r.name == logger]
    with caplog.at_level(logging.DEBUG, logger=logger):
        await driver.put_content("/traced", b"1")
        with pytest.raises(PathNotFound):
            await driver.get_content("/absent")
    messages = [r.getMessage() for r in caplog.records if r.name == logger]
    assert messages == [
        "storage put_content /traced",
        "storage get_content /absent failed: PathNotFound",
    ]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == logger)
    assert all(hasattr(r, "duration_ms") for r in caplog.records if r.name == logger)


async def test_the_instrumented_driver_works_with_metrics_off() -> None:
    metrics.disable()
    driver = InstrumentedDriver(InMemoryDriver())
    await driver.put_content("/x", b"data")
    assert await driver.get_content("/x") == b"data"


# -- several processes --------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    import prometheus_client  # imported before the variable is set: still multiprocess
    import os
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from entrepot import metrics
    metrics.enable()
    role = sys.argv[2]
    if role == "stays":
        for _ in range(3):
            metrics.observe_request("blob", "GET", 200, 0.01, sent=100)
        metrics.count_bytes_pushed(1000)
        metrics.observe_storage_call("filesystem", "stat", 0.001)
        metrics.upload_session_opened()
        metrics.upload_session_opened()
        metrics.count_cache_hit()
        print("ready", flush=True)  # not flushed yet: the flusher thread will
        sys.stdin.readline()
    else:
        for _ in range(2):
            metrics.observe_request("blob", "GET", 200, 0.02, sent=50)
        metrics.count_bytes_pushed(500)
        metrics.observe_storage_call("filesystem", "stat", 0.001)
        metrics.upload_session_opened()
        metrics.upload_session_closed()
        metrics.count_cache_miss()
        # not flushed: written at exit
    """
)


def _child(directory: Path, role: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_the_metrics_of_several_processes_are_merged(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    stays = _child(directory, "stays")
    try:
        assert stays.stdout is not None
        assert stays.stdout.readline().strip() == "ready"
        leaves = _child(directory, "leaves")
        assert leaves.wait(30) == 0

        debug = start_debug_server(
            "127.0.0.1", 0, InMemoryDriver(), multiprocess_dir=str(directory)
        )
        try:
            # The child that stays writes its metrics within FLUSH_INTERVAL (the
            # one that left wrote them at exit); a scrape may come in the middle
            # of a write.
            requests = "entrepot_http_requests_total"
            duration = "entrepot_http_request_duration_seconds_count"
            calls = "entrepot_storage_driver_calls_total"
            expected = {
                "requests": 5,
                "durations": 5,
                "pulled": 400,
                "pushed": 1500,
                "stat calls": 2,
                "cache hits": 1,
                "cache misses": 1,
                # Live processes only: 2 open in one, 1 opened and closed in the other.
                "uploads in flight": 2,
            }
            deadline = time.monotonic() + 10 * metrics.FLUSH_INTERVAL
            while True:
                scraped = httpx.get(f"{debug.url}/metrics", timeout=10)
                assert scraped.status_code == 200
                samples = parse(scraped.text)
                seen = {
                    "requests": value(samples, requests, route="blob", method="GET", status="200"),
                    "durations": value(samples, duration, route="blob", method="GET"),
                    "pulled": value(samples, "entrepot_bytes_pulled_total"),
                    "pushed": value(samples, "entrepot_bytes_pushed_total"),
                    "stat calls": value(samples, calls, driver="filesystem", method="stat"),
                    "cache hits": value(samples, "entrepot_descriptor_cache_hits_total"),
                    "cache misses": value(samples, "entrepot_descriptor_cache_misses_total"),
                    "uploads in flight": value(samples, "entrepot_upload_sessions_in_flight"),
                }
                if seen == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert seen == expected

            assert stays.stdin is not None
            stays.stdin.write("done\n")
            stays.stdin.flush()
            assert stays.wait(30) == 0
            samples = parse(httpx.get(f"{debug.url}/metrics", timeout=10).text)
            # Gone processes' counters still count; their sessions are not in
            # flight (with no live process left, the gauge has no sample).
            assert value(samples, requests, route="blob", method="GET", status="200") == 5
            assert not value(samples, "entrepot_upload_sessions_in_flight")
            assert not list(directory.glob("gauge_live*"))
        finally:
            debug.stop()
    finally:
        if stays.poll() is None:
            stays.kill()
            stays.wait()


def test_the_multiprocess_directory_is_fresh_and_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "stale"
    stale.mkdir()
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(stale))
    # Left by a server that is gone, and by one still running.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    orphan = tmp_path / f"entrepot-metrics-{int(gone.stdout)}-x1y2"
    orphan.mkdir()
    (orphan / "counter_1.db").write_bytes(b"")
    running = tmp_path / f"entrepot-metrics-{os.getpid()}-z3w4"
    running.mkdir()
    handle = metrics.setup_multiprocess_dir()
    try:
        assert not orphan.exists()
        assert running.exists()
        assert Path(handle.path).parent == tmp_path
        assert handle.path != str(stale)
        assert os.environ[metrics.MULTIPROC_ENV] == handle.path
        assert os.listdir(handle.path) == []
    finally:
        handle.cleanup()
    assert not os.path.exists(handle.path)
    assert metrics.MULTIPROC_ENV not in os.environ
    handle.cleanup()  # a second time is harmless
