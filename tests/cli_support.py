"""Helpers for the tests of the `entrepot` command: run it with bounded time
and a clean environment, serve with it as a process whose log is kept, and
push or read a blob over HTTP.

Every process runs in a session of its own, so that one that overstays its
time bound is killed together with any worker it spawned (granian serves
from child processes), never left holding a port.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests.support import STOP_TIMEOUT, free_port, stop, wait_ready

__all__ = [
    "COMMAND_TIMEOUT",
    "ENTREPOT",
    "SERVERS",
    "Finished",
    "Serving",
    "blob_file",
    "clean_env",
    "entrepot",
    "free_port",
    "push_blob",
    "serve",
    "sha256",
    "write_config",
]

ENTREPOT: Final = (sys.executable, "-m", "entrepot.cli")
SERVERS: Final = ("granian", "uvicorn", "builtin")

# One command (config check, purge, a refused start) takes well under a
# second; the bound only keeps a hung one from hanging the suite.
COMMAND_TIMEOUT: Final = 15.0
REQUEST_TIMEOUT: Final = 20.0


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_file(root: Path, digest: str) -> Path:
    """Where Distribution's layout keeps the data of blob `digest` under `root`."""
    algorithm, _, encoded = digest.partition(":")
    return root / "docker/registry/v2/blobs" / algorithm / encoded[:2] / encoded / "data"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``REGISTRY_...`` variable (the
    machine's own must not change what a test configures), plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Finished:
    """What a finished command printed, and how long it took."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (
            f"`entrepot {' '.join(self.args)}` exited {self.returncode} after "
            f"{self.seconds:.1f} s\nstdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def entrepot(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    cwd: Path | None = None,
    program: Sequence[str] = ENTREPOT,
) -> Finished:
    """Run `entrepot ARGS` to its end (at most `timeout` seconds, else the
    test fails with what it printed)."""
    argv = tuple(os.fspath(arg) for arg in args)
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [*program, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=clean_env(env),
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        finished = Finished(
            argv,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
        )
    if timed_out:
        pytest.fail(f"still running after {timeout} s, killed:\n{finished.describe()}")
    return finished


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill `process` and what it spawned (its session), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)


@dataclass(frozen=True)
class Serving:
    """A running `entrepot serve`: its process, base URL and log (stdout and
    stderr together)."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, verify: ssl.SSLContext | bool = True) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT, verify=verify)


@contextlib.contextmanager
def serve(
    config: Path | None,
    url: str,
    *args: str,
    server: str | None = "granian",
    env: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
    allow_traceback: bool = False,
) -> Iterator[Serving]:
    """`entrepot serve [CONFIG] --server SERVER ARGS`, ready once `GET
    {url}/v2/` answers 200 (bounded). At the end it is stopped (SIGTERM,
    then SIGKILL), and the test fails if its log shows a traceback."""
    argv = [*ENTREPOT, "serve", *([os.fspath(config)] if config else [])]
    if server is not None:  # None: the default choice (auto)
        argv += ["--server", server]
    with tempfile.TemporaryDirectory(prefix="entrepot-serve-") as scratch:
        log_path = Path(scratch, "serve.log")
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*argv, *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=clean_env(env),
                start_new_session=True,
            )
        serving = Serving(process, url, log_path)
        try:
            wait_ready(process, url, "entrepot serve", serving.log, verify)
            yield serving
        finally:
            _stop(process)
            output = serving.log()
            print(f"--- entrepot serve {config} ({server}) at {url} ---\n{output[-8000:]}")
        if "Traceback" in output and not allow_traceback:
            pytest.fail(f"entrepot serve printed a traceback:\n{output[-8000:]}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop(process)
    # Whatever is left of its session (a worker), even after a clean exit.
    _kill_group(process)


def push_blob(http: httpx.Client, name: str, data: bytes) -> str:
    """Push `data` as a blob of repository `name` in one PUT; its digest."""
    digest = sha256(data)
    started = http.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = http.put(
        started.headers["Location"],
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    return digest
