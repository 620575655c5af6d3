"""Fixtures for the real-client tests: a running entrepot on a fresh root,
skopeo and podman with the test's own configuration, and a scratch
directory for OCI layouts. The helpers themselves are in
`tests.clients.support`."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.support import Podman, Server, Skopeo, run_entrepot

# No unqualified-name search: every reference in these tests names its
# registry (127.0.0.1:PORT), and nothing may reach out to another one.
REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


@pytest.fixture(scope="session")
def client_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding `registries.conf` and `policy.json` for the
    clients, so that the machine's own configuration does not matter."""
    directory = tmp_path_factory.mktemp("client-config")
    (directory / "registries.conf").write_text(REGISTRIES_CONF)
    (directory / "policy.json").write_text(json.dumps(POLICY))
    return directory


@pytest.fixture
def skopeo(client_config: Path, tmp_path: Path) -> Skopeo:
    scratch = tmp_path / "skopeo"
    scratch.mkdir()
    return Skopeo(client_config / "registries.conf", scratch)


@pytest.fixture
def entrepot(tmp_path: Path) -> Iterator[Server]:
    """entrepot serving a fresh storage root under `tmp_path`."""
    with run_entrepot(tmp_path / "entrepot-root") as server:
        yield server


@pytest.fixture
def podman(client_config: Path, tmp_path: Path) -> Iterator[Podman]:
    run_base = Path(tempfile.mkdtemp(prefix="podman-", dir="/tmp"))
    try:
        yield Podman(tmp_path / "podman", run_base, client_config)
    finally:
        shutil.rmtree(run_base, ignore_errors=True)
