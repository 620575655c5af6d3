"""Run the reference registry, CNCF Distribution 2.8 (`docker-registry`), in tests.

Interoperability tests write with one implementation and read with the other
on a shared storage root. `run_reference_registry(root)` starts Distribution
on `root` with a minimal config and yields its base URL; `reference_registry`
is the same as a pytest fixture on a temporary root. The test command
installs the Debian package, so its absence is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

REGISTRY_BINARY = Path(os.environ.get("ENTREPOT_REFERENCE_REGISTRY", "/usr/bin/docker-registry"))
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# Fixed so that upload URLs (`_state`) stay valid across restarts of a test.
HTTP_SECRET = "entrepot-tests-reference-registry"


class ReferenceRegistry(NamedTuple):
    """A running Distribution: its base URL and its storage root."""

    url: str
    root: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(root: Path, port: int) -> str:
    # A JSON string is a valid YAML scalar: safe quoting for any path.
    return f"""\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {json.dumps(str(root))}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {HTTP_SECRET}
"""


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def run_reference_registry(root: Path) -> Iterator[str]:
    """Serve `root` with Distribution 2.8 and yield "http://127.0.0.1:<port>"."""
    if not REGISTRY_BINARY.is_file() or not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(
            f"the reference registry {REGISTRY_BINARY} is not installed: "
            "run `apt-get install -y docker-registry` (the test command does)",
            pytrace=False,
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference-registry-") as scratch:
        port = _free_port()
        config = Path(scratch, "config.yml")
        config.write_text(_config(root, port))
        log = Path(scratch, "registry.log")
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(REGISTRY_BINARY), "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(process, url, log)
            yield url
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"the reference registry exited with status {process.returncode}:\n"
                    + _tail(log),
                    pytrace=False,
                )
            try:
                response = client.get(f"{url}/v2/")
            except httpx.TransportError as exc:
                last_error = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_error = f"GET /v2/ answered {response.status_code}"
            time.sleep(0.05)
    pytest.fail(
        f"the reference registry did not answer within {START_TIMEOUT} s ({last_error}):\n"
        + _tail(log),
        pytrace=False,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def reference_registry(tmp_path: Path) -> Iterator[ReferenceRegistry]:
    """Distribution 2.8 serving a fresh storage root under `tmp_path`."""
    root = tmp_path / "reference-root"
    with run_reference_registry(root) as url:
        yield ReferenceRegistry(url, root)
