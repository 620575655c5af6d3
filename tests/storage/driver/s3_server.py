"""A local S3 server for the tests: moto's, one per test process.

It starts on first use (the shared driver suite's `s3` builder and the
`moto` fixture of `test_s3.py` both ask for it) on a free loopback port,
and stops when the process exits. Each test gets a bucket of its own, so
tests share the server but nothing stored. Moto enforces S3's 5 MiB
minimum part size on completion, as S3 does.
"""

from __future__ import annotations

import atexit
import itertools
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import botocore.session
from botocore.config import Config

from entrepot.storage.driver.s3 import S3Driver
from tests.support import free_port, stop

ACCESS_KEY: Final = "testing"
SECRET_KEY: Final = "testing"
REGION: Final = "us-east-1"
STARTUP_TIMEOUT: Final = 30.0

_bucket_numbers = itertools.count()


@dataclass(frozen=True, slots=True)
class MotoServer:
    process: subprocess.Popen[bytes]
    endpoint: str
    log_path: str

    def stop(self) -> None:
        stop(self.process)
        os.unlink(self.log_path)


def _start() -> MotoServer:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    server = MotoServer(process, endpoint, log.name)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            output = open(log.name, encoding="utf-8", errors="replace").read()  # noqa: SIM115
            server.stop()
            raise RuntimeError(f"the moto server exited ({process.returncode}):\n{output}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return server
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"the moto server did not answer in {STARTUP_TIMEOUT}s"
                ) from None
            time.sleep(0.1)


@cache
def moto_server() -> MotoServer:
    """The process's moto server, started on first use."""
    server = _start()
    atexit.register(server.stop)
    return server


@cache
def admin_client() -> Any:
    """A plain (blocking) botocore client on the server, to set up and
    inspect buckets from outside the driver."""
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=moto_server().endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def new_bucket() -> str:
    """A new, empty bucket."""
    name = f"test-{os.getpid()}-{next(_bucket_numbers)}"
    admin_client().create_bucket(Bucket=name)
    return name


def driver_parameters(bucket: str, **extra: Any) -> dict[str, Any]:
    """Distribution's `storage.s3` keys for a driver on `bucket`."""
    return {
        "bucket": bucket,
        "region": REGION,
        "regionendpoint": moto_server().endpoint,
        "forcepathstyle": True,
        "accesskey": ACCESS_KEY,
        "secretkey": SECRET_KEY,
        "secure": False,
        **extra,
    }


def new_driver(bucket: str | None = None, **extra: Any) -> S3Driver:
    """An S3 driver on a new bucket (or `bucket`), from Distribution's keys."""
    return S3Driver.from_parameters(driver_parameters(bucket or new_bucket(), **extra))
