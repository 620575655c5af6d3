"""A local Azure Blob server for the tests: Azurite's, one per test process.

It starts on first use (the shared driver suite's `azure` builder and the
fixtures of `test_azure.py` both ask for it) on a free loopback port, with
its data in a temporary directory, and stops when the process exits. Each
test gets a container of its own, so tests share the server but nothing
stored.

Azurite is an npm package: `azurite-blob` on the PATH (`npm install -g
azurite`, as scripts/test does), or else installed once into a cache
directory outside the repository with `npm install --prefix`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from azure.storage.blob import BlobServiceClient

from entrepot.storage.driver.azure import AzureDriver
from tests.support import free_port, stop

# Azurite's well-known development account.
ACCOUNT_NAME: Final = "devstoreaccount1"
ACCOUNT_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STARTUP_TIMEOUT: Final = 30.0
INSTALL_TIMEOUT: Final = 600.0
CACHE_DIR: Final = Path(
    os.environ.get("ENTREPOT_AZURITE_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entrepot" / "azurite"
)

_container_numbers = itertools.count()


@dataclass(frozen=True, slots=True)
class AzuriteServer:
    process: subprocess.Popen[bytes]
    service_url: str
    workspace: str
    log_path: str

    def stop(self) -> None:
        stop(self.process)
        shutil.rmtree(self.workspace, ignore_errors=True)
        Path(self.log_path).unlink(missing_ok=True)


def azurite_binary() -> str:
    """`azurite-blob`: on the PATH, or installed into the cache directory."""
    found = shutil.which("azurite-blob")
    if found:
        return found
    cached = CACHE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if cached.exists():
        return str(cached)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the Azure tests need Azurite: install Node.js and npm, then azurite")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(CACHE_DIR), "--no-audit", "--no-fund", "azurite"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        timeout=INSTALL_TIMEOUT,
    )
    return str(cached)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # an unsigned request is refused: the server is up
    except (urllib.error.URLError, OSError):
        return False


def _start() -> AzuriteServer:
    binary = azurite_binary()
    port = free_port()
    service_url = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"
    workspace = tempfile.mkdtemp(prefix="azurite-")
    log = tempfile.NamedTemporaryFile(prefix="azurite-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            workspace,
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = AzuriteServer(process, service_url, workspace, log.name)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _answers(f"{service_url}?comp=list"):
        if process.poll() is not None:
            output = Path(log.name).read_text(encoding="utf-8", errors="replace")
            server.stop()
            raise RuntimeError(f"Azurite exited ({process.returncode}):\n{output}")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"Azurite did not answer in {STARTUP_TIMEOUT}s")
        time.sleep(0.1)
    return server


@cache
def azurite_server() -> AzuriteServer:
    """The process's Azurite, started on first use."""
    server = _start()
    atexit.register(server.stop)
    return server


@cache
def admin_client() -> BlobServiceClient:
    """A plain (blocking) client on the server, to set up and inspect
    containers from outside the driver."""
    return BlobServiceClient(
        azurite_server().service_url,
        credential={"account_name": ACCOUNT_NAME, "account_key": ACCOUNT_KEY},
    )


def new_container() -> str:
    """A new, empty container."""
    name = f"test-{os.getpid()}-{next(_container_numbers)}"
    admin_client().create_container(name)
    return name


def driver_parameters(container: str, **extra: Any) -> dict[str, Any]:
    """Distribution's `storage.azure` keys for a driver on `container`."""
    return {
        "accountname": ACCOUNT_NAME,
        "accountkey": ACCOUNT_KEY,
        "container": container,
        "serviceurl": azurite_server().service_url,
        **extra,
    }


def new_driver(container: str | None = None, **extra: Any) -> AzureDriver:
    """An Azure driver on a new container (or `container`), from Distribution's keys."""
    return AzureDriver.from_parameters(driver_parameters(container or new_container(), **extra))
