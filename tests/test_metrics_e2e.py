"""End to end: `entrepot serve --debug-addr` serves the health check and the
metrics of all its workers on one debug listener; a push and a pull move
the counters."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Server, _start_server
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    dumps,
    image_manifest,
    random_bytes,
    sha256,
)
from tests.support import free_port, stop

DEADLINE = 15.0
HEADS = 12  # blob HEADs, each on a fresh connection: spread over the workers

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Served:
    server: Server
    debug_url: str
    workers: int


@pytest.fixture(
    scope="module",
    params=[("granian", 2), ("uvicorn", 1), ("builtin", 2)],
    ids=["granian-2-workers", "uvicorn-1-worker", "builtin-2-workers"],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    server_name, workers = request.param
    base = tmp_path_factory.mktemp("metrics-e2e")
    root = base / "root"
    root.mkdir()
    debug_port = free_port()
    args = (
        "--server",
        server_name,
        "--workers",
        str(workers),
        "--debug-addr",
        f"127.0.0.1:{debug_port}",
    )
    srv, stderr_file = _start_server(root, base, args)
    try:
        yield Served(srv, f"http://127.0.0.1:{debug_port}", workers)
    finally:
        stop(srv.process)
        stderr_file.close()
    assert "Traceback" not in srv.stderr(), srv.stderr()


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over every label set that includes `labels`."""
    wanted = set(labels.items())
    return sum(
        v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels)
    )


def request(base_url: str, method: str, url: str, **kwargs: object) -> httpx.Response:
    """One request on a fresh connection, so the kernel spreads them over workers."""
    with httpx.Client(base_url=base_url, timeout=DEADLINE) as http:
        return http.request(method, url, **kwargs)  # type: ignore[arg-type]


def test_push_and_pull_move_the_counters(served: Served) -> None:
    url = served.server.url
    name = "metrics/e2e"
    layer = random_bytes(300_000, seed=11)
    config = dumps({"architecture": "amd64", "os": "linux"})

    # Push: the layer in a POST + PATCH + PUT session, the config monolithic.
    started = request(url, "POST", f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202
    patched = request(url, "PATCH", started.headers["Location"], content=layer)
    assert patched.status_code == 202
    committed = request(url, "PUT", patched.headers["Location"], params={"digest": sha256(layer)})
    assert committed.status_code == 201, committed.text
    pushed = request(
        url, "POST", f"/v2/{name}/blobs/uploads/", params={"digest": sha256(config)}, content=config
    )
    assert pushed.status_code == 201, pushed.text
    manifest = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    put = request(
        url,
        "PUT",
        f"/v2/{name}/manifests/v1",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, put.text

    # Pull.
    got = request(url, "GET", f"/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200
    assert got.content == manifest
    blob = request(url, "GET", f"/v2/{name}/blobs/{sha256(layer)}")
    assert blob.status_code == 200
    assert blob.content == layer
    for _ in range(HEADS):
        assert request(url, "HEAD", f"/v2/{name}/blobs/{sha256(config)}").status_code == 200
    assert request(url, "GET", "/v2/").status_code == 200
    assert request(url, "GET", f"/v2/{name}/tags/list").status_code == 200

    # Every worker's requests, counted once each.
    requests = "entrepot_http_requests_total"
    duration = "entrepot_http_request_duration_seconds_count"
    expected = {
        ("blob", "HEAD", "200"): HEADS,
        ("upload", "POST", "202"): 1,
        ("upload", "POST", "201"): 1,
        ("upload", "PATCH", "202"): 1,
        ("upload", "PUT", "201"): 1,
        ("manifest", "PUT", "201"): 1,
        ("manifest", "GET", "200"): 1,
        ("blob", "GET", "200"): 1,
        ("tags", "GET", "200"): 1,
        "blob HEAD durations": HEADS,
        "pushed": len(layer) + len(config),
        "pulled": len(layer),
        "uploads in flight": 0,
    }

    def observed(samples: Samples) -> dict[object, float]:
        seen: dict[object, float] = {}
        for key in expected:
            if isinstance(key, tuple):
                route, method, status = key
                seen[key] = value(samples, requests, route=route, method=method, status=status)
        seen["blob HEAD durations"] = value(samples, duration, route="blob", method="HEAD")
        seen["pushed"] = value(samples, "entrepot_bytes_pushed_total")
        seen["pulled"] = value(samples, "entrepot_bytes_pulled_total")
        seen["uploads in flight"] = value(samples, "entrepot_upload_sessions_in_flight")
        return seen

    # A request is counted once its response is sent, and workers write
    # their metrics every second or so: scrape until all are in.
    deadline = time.monotonic() + DEADLINE
    while True:
        scraped = httpx.get(f"{served.debug_url}/metrics", timeout=DEADLINE)
        assert scraped.status_code == 200
        samples = parse(scraped.text)
        seen = observed(samples)
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert seen == expected
    # The start-up probe asked for /v2/ too.
    assert value(samples, requests, route="base", method="GET", status="200") >= 2

    calls = "entrepot_storage_driver_calls_total"
    assert total(samples, calls, driver="filesystem") > 0
    assert total(samples, calls, driver="filesystem", method="writer.write") >= 1
    assert total(samples, "entrepot_storage_driver_call_duration_seconds_count") > 0
    if served.workers == 1:  # only a single worker caches descriptors in memory
        cache = value(samples, "entrepot_descriptor_cache_hits_total") + value(
            samples, "entrepot_descriptor_cache_misses_total"
        )
        assert cache >= HEADS

    health = httpx.get(f"{served.debug_url}/debug/health", timeout=DEADLINE)
    assert health.status_code == 200
    assert health.json() == {}


def test_the_metrics_directory_is_removed_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    root = tmp_path / "root"
    root.mkdir()
    args = ("--workers", "2", "--debug-addr", f"127.0.0.1:{free_port()}")
    srv, stderr_file = _start_server(root, tmp_path, args)
    try:
        assert [p.name.startswith("entrepot-metrics-") for p in temp.iterdir()] == [True]
    finally:
        stop(srv.process)
        stderr_file.close()
    assert list(temp.iterdir()) == []
    assert "Traceback" not in srv.stderr(), srv.stderr()


def test_a_debug_address_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "entrepot.cli",
                "serve",
                "--root",
                str(tmp_path),
                "--addr",
                f"127.0.0.1:{free_port()}",
                "--debug-addr",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} (http.debug.addr)" in done.stderr
    assert "Traceback" not in done.stderr
