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
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support import free_port, stop, wait_ready

REGISTRY_BINARY = Path(os.environ.get("ENTREPOT_REFERENCE_REGISTRY", "/usr/bin/docker-registry"))
# Fixed so that upload URLs (`_state`) stay valid across restarts of a test.
HTTP_SECRET = "entrepot-tests-reference-registry"


class ReferenceRegistry(NamedTuple):
    """A running Distribution: its base URL and its storage root."""

    url: str
    root: Path


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
        port = free_port()
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
            wait_ready(process, url, "the reference registry", lambda: _tail(log))
            yield url
        finally:
            stop(process)


@pytest.fixture
def reference_registry(tmp_path: Path) -> Iterator[ReferenceRegistry]:
    """Distribution 2.8 serving a fresh storage root under `tmp_path`."""
    root = tmp_path / "reference-root"
    with run_reference_registry(root) as url:
        yield ReferenceRegistry(url, root)
