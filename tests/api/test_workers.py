"""Several worker processes behave as one registry: consecutive requests of
one push land on different workers (state lives in storage), and a delete
seen by one worker is seen by all (no per-process cache answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, _start_server
from tests.api.helpers import random_bytes, sha256
from tests.support import stop

WORKERS = 2
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def workers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("workers")
    root = base / "root"
    root.mkdir()
    srv, stderr_file = _start_server(root, base, ("--workers", str(WORKERS)))
    try:
        yield srv
    finally:
        stop(srv.process)
        stderr_file.close()
    assert "Traceback" not in srv.stderr()


def worker_pids(root_pid: int) -> set[int]:
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_chunked_push_across_workers_then_delete(workers_server: Server) -> None:
    assert len(worker_pids(workers_server.process.pid)) >= WORKERS
    data = random_bytes(40 * CHUNK, seed=7)
    digest = sha256(data)
    name = "workers/chunked"

    # A fresh connection per request, so the kernel spreads them over workers.
    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        with httpx.Client(base_url=workers_server.url, timeout=20) as http:
            return http.request(method, url, **kwargs)  # type: ignore[arg-type]

    started = request("POST", f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    for offset in range(0, len(data), CHUNK):
        chunk = data[offset : offset + CHUNK]
        patched = request(
            "PATCH",
            location,
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert patched.status_code == 202, patched.text
        assert patched.headers["Range"] == f"0-{offset + len(chunk) - 1}"
        location = patched.headers["Location"]
    committed = request("PUT", f"{location}?digest={digest}")
    assert committed.status_code == 201, committed.text
    for _ in range(6):
        assert request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 200
    assert request("DELETE", f"/v2/{name}/blobs/{digest}").status_code == 202
    for _ in range(6):
        assert request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 404
