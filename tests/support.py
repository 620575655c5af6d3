"""Starting and stopping the servers the tests run as real processes
(entrepot, the reference registry): one free port, one bounded wait until
`GET /v2/` answers 200, one bounded stop."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from typing import Final

import httpx
import pytest

START_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    what: str,
    log: Callable[[], str],
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Return once `{url}/v2/` answers 200; fail the test (with the tail of
    `log()`) if `process` exits first or START_TIMEOUT passes, stopping it."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    with httpx.Client(timeout=2.0, verify=verify) as probe:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"{what} exited with status {process.returncode} before answering:\n"
                    f"{log()[-4000:]}",
                    pytrace=False,
                )
            try:
                response = probe.get(f"{url}/v2/")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last = f"GET /v2/ answered {response.status_code}"
            time.sleep(0.05)
    stop(process)
    pytest.fail(
        f"{what} did not answer at {url} within {START_TIMEOUT} s ({last}):\n{log()[-4000:]}",
        pytrace=False,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
