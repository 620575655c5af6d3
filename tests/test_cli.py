"""The `entrepot` command as an operator uses it (issue 4, "How it is shown").

`entrepot serve` runs Distribution's own example configurations (adapted
only in paths and ports) and is checked over HTTP and on disk;
``REGISTRY_...`` variables move where it listens and stores; every kind of
invalid file stops it at once with one line naming the key; unknown keys and
unsupported sections start it with warnings; `config check` masks secrets;
`purge-uploads` removes an old session and keeps a recent one; read-only
mode refuses writes; SIGTERM during an upload lets the upload finish within
`http.draintimeout`. Everything runs `python -m entrepot.cli` as a process.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import yaml

from entrepot import __version__, cli
from entrepot.config import load_config
from entrepot.digest import Digest
from entrepot.storage import paths
from entrepot.storage.driver.base import PathNotFound
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry
from entrepot.storage.upload import format_started_at
from tests.api.helpers import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, image_manifest
from tests.cli_support import (
    SERVERS,
    blob_file,
    entrepot,
    free_port,
    push_blob,
    serve,
    sha256,
    write_config,
)

# configuration.md, "Example: Development configuration", as written there
# but for the storage root and the ports.
DEVELOPMENT_EXAMPLE: Final = """\
version: 0.1
log:
  level: debug
storage:
    filesystem:
        rootdirectory: {root}
http:
    addr: localhost:{port}
    secret: asecretforlocaldevelopment
    debug:
        addr: localhost:{debug_port}
"""

# Distribution's cmd/registry/config-example.yml as Debian's docker-registry
# package installs it (/etc/docker/registry/config.yml: deletes enabled, an
# htpasswd section), but for the storage root and the port.
CONFIG_EXAMPLE: Final = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: :{port}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

# The smallest configuration serving a filesystem root on a loopback port.
MINIMAL: Final = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: {root}
{storage}http:
  addr: 127.0.0.1:{port}
{http}"""

# A refused start must not wait for anything: it reads a file and exits.
REFUSAL_SECONDS: Final = 5.0


def minimal(
    tmp_path: Path, *, storage: str = "", http: str = "", extra: str = ""
) -> tuple[Path, Path, str]:
    """A MINIMAL config.yml in `tmp_path`, with more keys of `storage` and
    `http` and more sections (`extra`): its path, the storage root and the
    server's base URL."""
    root, port = tmp_path / "root", free_port()
    text = MINIMAL.format(root=root, port=port, storage=storage, http=http) + extra
    return write_config(tmp_path / "config.yml", text), root, f"http://127.0.0.1:{port}"


def api_error(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def push_image(http: httpx.Client, name: str, tag: str) -> tuple[str, bytes]:
    """A one-layer OCI image pushed as `name:tag`: the manifest's digest and bytes."""
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = b"not really a tarball, but a blob all the same"
    push_blob(http, name, config)
    push_blob(http, name, layer)
    manifest = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    response = http.put(
        f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return sha256(manifest), manifest


# --- (a) Distribution's example configuration ---------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_serves_the_development_example_of_the_docs(tmp_path: Path, server: str) -> None:
    root, port, debug_port = tmp_path / "registry", free_port(), free_port()
    config = write_config(
        tmp_path / "config.yml",
        DEVELOPMENT_EXAMPLE.format(root=root, port=port, debug_port=debug_port),
    )
    data = b"a blob through the documented configuration\n" * 100

    with serve(config, f"http://127.0.0.1:{port}", server=server) as running:
        with running.client() as http:
            digest = push_blob(http, "dev/example", data)
            pulled = http.get(f"/v2/dev/example/blobs/{digest}")
        health = httpx.get(f"http://127.0.0.1:{debug_port}/debug/health", timeout=10)
        metrics = httpx.get(f"http://127.0.0.1:{debug_port}/metrics", timeout=10)
        log = running.log()

    assert pulled.status_code == 200
    assert pulled.content == data
    assert blob_file(root, digest).read_bytes() == data
    # Where it listens and where it stores, in one line.
    assert re.search(rf"listening on (localhost|127\.0\.0\.1):{port} \(http, {server}\)", log), log
    assert f"storage filesystem under {root}," in log
    assert f"configuration {config}" in log
    # The debug server of the example: health, and no metrics (prometheus is off).
    assert health.status_code == 200
    assert health.json() == {}
    assert metrics.status_code == 404
    assert f"debug server listening on http://localhost:{debug_port}" in log


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    ("addr", "host"),
    [(":{port}", "127.0.0.1"), ("'[::1]:{port}'", "[::1]")],
    ids=["all-interfaces", "ipv6-loopback"],
)
def test_serves_on_each_form_of_http_addr(
    tmp_path: Path, server: str, addr: str, host: str
) -> None:
    """Go's forms of HOST:PORT: an empty host (every interface) and an IPv6
    literal in brackets."""
    root, port = tmp_path / "root", free_port()
    text = MINIMAL.format(root=root, port=port, storage="", http="").replace(
        f"127.0.0.1:{port}", addr.format(port=port)
    )
    config = write_config(tmp_path / "config.yml", text)
    with serve(config, f"http://{host}:{port}", server=server) as running, running.client() as http:
        assert http.get("/v2/").status_code == 200


# --- (b) environment overrides ------------------------------------------------


def test_environment_overrides_where_it_listens_stores_and_deletes(tmp_path: Path) -> None:
    file_root, file_port = tmp_path / "file-root", free_port()
    env_root, env_port = tmp_path / "env-root", free_port()
    config = write_config(
        tmp_path / "config.yml", CONFIG_EXAMPLE.format(root=file_root, port=file_port)
    )
    env = {
        "REGISTRY_HTTP_ADDR": f"127.0.0.1:{env_port}",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(env_root),
        "REGISTRY_STORAGE_DELETE_ENABLED": "false",
    }
    # The file alone enables deletes; with the variables they are off.
    from_file = yaml.safe_load(entrepot("config", "check", config).stdout)
    assert from_file["storage"]["delete"]["enabled"] is True
    effective = yaml.safe_load(entrepot("config", "check", config, env=env).stdout)
    assert effective["http"]["addr"] == f"127.0.0.1:{env_port}"
    assert effective["storage"]["filesystem"]["rootdirectory"] == str(env_root)
    assert effective["storage"]["delete"]["enabled"] is False

    data = b"stored where the environment says\n"
    with serve(config, f"http://127.0.0.1:{env_port}", env=env) as running:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{file_port}/v2/", timeout=2.0)
        with running.client() as http:
            digest = push_blob(http, "env/override", data)
            manifest_digest, manifest = push_image(http, "env/override", "v1")
            deleted = http.delete(f"/v2/env/override/manifests/{manifest_digest}")
            kept = http.get(f"/v2/env/override/manifests/{manifest_digest}")
            headers = http.get("/v2/").headers
        log = running.log()

    assert blob_file(env_root, digest).read_bytes() == data
    assert not file_root.exists()
    assert deleted.status_code == 405
    assert api_error(deleted) == "UNSUPPORTED"
    assert kept.status_code == 200
    assert kept.content == manifest
    assert headers["X-Content-Type-Options"] == "nosniff"  # the rest of the file holds
    assert (
        f"listening on 127.0.0.1:{env_port} (http, granian), storage filesystem under {env_root},"
        in log
    )
    assert "not supported yet: auth" in log


# --- (c) invalid files --------------------------------------------------------

FILESYSTEM: Final = "storage:\n  filesystem:\n    rootdirectory: /tmp/entrepot-never-used\n"

# (id, file, what the one line must contain). Every message must also name
# the file it comes from.
INVALID: Final = [
    (
        "bad-yaml",
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: [unclosed\n",
        ["invalid YAML", "line 5"],
    ),
    ("missing-version", FILESYSTEM, ["version: required"]),
    ("empty-file", "", ["version: required"]),
    ("wrong-version", f"version: 0.2\n{FILESYSTEM}", ["version:", '"0.2"']),
    (
        "wrong-type",
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: 3\n",
        ["storage.filesystem.rootdirectory:", "expected a string, got 3", "line 4"],
    ),
    (
        "bad-duration",
        f"version: 0.1\n{FILESYSTEM}http:\n  draintimeout: soon\n",
        ["http.draintimeout:", "'soon'", "line 6"],
    ),
    (
        "bad-log-level",
        f"version: 0.1\n{FILESYSTEM}log:\n  level: verbose\n",
        ["log.level:", "'verbose'", "line 6"],
    ),
    (
        "two-drivers",
        f"version: 0.1\n{FILESYSTEM}  inmemory:\n",
        ["storage:", "exactly one storage driver", "filesystem, inmemory"],
    ),
    (
        "no-driver",
        "version: 0.1\nstorage:\n  delete:\n    enabled: true\n",
        ["storage:", "no storage driver"],
    ),
    (
        "gcs-driver",
        "version: 0.1\nstorage:\n  gcs:\n    bucket: bucketname\n    keyfile: /path/to/keyfile\n",
        ["storage.gcs:", "not supported yet"],
    ),
    (
        "layerinfo-against-blobdescriptor",
        f"version: 0.1\n{FILESYSTEM}  cache:\n    layerinfo: redis\n    blobdescriptor: inmemory\n",
        ["storage.cache.layerinfo", "storage.cache.blobdescriptor"],
    ),
    (
        "addr-not-text",
        f"version: 0.1\n{FILESYSTEM}http:\n  addr: 5000\n",
        ["http.addr:", "expected a string, got 5000", "line 6"],
    ),
    (
        "addr-without-port",
        f"version: 0.1\n{FILESYSTEM}http:\n  addr: nonsense\n",
        ["http.addr:", "'nonsense'"],
    ),
    (
        "addr-port-not-a-number",
        f"version: 0.1\n{FILESYSTEM}http:\n  addr: 127.0.0.1:five\n",
        ["http.addr:", "'127.0.0.1:five'"],
    ),
    (
        "addr-port-out-of-range",
        f"version: 0.1\n{FILESYSTEM}http:\n  addr: 127.0.0.1:99999\n",
        ["http.addr:", "'127.0.0.1:99999'"],
    ),
]


def assert_one_line_refusal(stderr: str, fragments: list[str], origin: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("entrepot: invalid configuration: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert origin in line, f"the file {origin} is not named in {line!r}"


@pytest.mark.parametrize(
    ("text", "fragments"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_serve_refuses_an_invalid_file_in_one_line(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    config = write_config(tmp_path / "config.yml", text)
    finished = entrepot("serve", config)
    assert finished.returncode == 2, finished.describe()
    assert finished.seconds < REFUSAL_SECONDS
    assert finished.stdout == ""
    assert_one_line_refusal(finished.stderr, fragments, str(config))


@pytest.mark.parametrize(
    ("text", "fragments"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_config_check_refuses_what_serve_refuses(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    config = write_config(tmp_path / "config.yml", text)
    finished = entrepot("config", "check", config)
    assert finished.returncode == 2, finished.describe()
    assert finished.stdout == ""
    assert_one_line_refusal(finished.stderr, fragments, str(config))


def test_serve_refuses_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config.yml"
    finished = entrepot("serve", missing)
    assert finished.returncode == 2, finished.describe()
    assert_one_line_refusal(finished.stderr, ["cannot read", "No such file"], str(missing))


def test_serve_refuses_a_bad_override_naming_the_variable(tmp_path: Path) -> None:
    config, _, _ = minimal(tmp_path)
    finished = entrepot("serve", config, env={"REGISTRY_HTTP_DRAINTIMEOUT": "soon"})
    assert finished.returncode == 2, finished.describe()
    assert finished.seconds < REFUSAL_SECONDS
    assert_one_line_refusal(
        finished.stderr, ["http.draintimeout:", "'soon'"], "REGISTRY_HTTP_DRAINTIMEOUT"
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port: int = sock.getsockname()[1]
        yield port


@pytest.mark.parametrize("server", SERVERS)
def test_serve_on_a_busy_port_says_so(tmp_path: Path, busy_port: int, server: str) -> None:
    finished = entrepot(
        "serve", "--root", tmp_path, "--addr", f"127.0.0.1:{busy_port}", "--server", server
    )
    assert finished.returncode != 0, finished.describe()
    assert finished.seconds < REFUSAL_SECONDS
    assert "Traceback" not in finished.stderr, finished.describe()
    assert "address already in use" in finished.stderr.lower(), finished.describe()
    assert str(busy_port) in finished.stderr


# --- (d) what entrepot does not know ------------------------------------------


def test_unknown_keys_and_unsupported_sections_start_with_warnings(tmp_path: Path) -> None:
    extra = """\
log:
  levl: debug
frobnicate: true
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
notifications:
  endpoints:
    - name: alistener
      url: https://my.listener.com/event
      timeout: 1s
"""
    config, _, url = minimal(tmp_path, extra=extra)
    with serve(config, url) as running, running.client() as http:
        assert http.get("/v2/").status_code == 200
        log = running.log()

    warnings = [line for line in log.splitlines() if " warning " in line]
    expected = [
        "unknown key log.levl, ignored; did you mean level?",
        "unknown key frobnicate, ignored",
        "not supported yet: auth",
        "not supported yet: notifications",
    ]
    for message in expected:
        found = [line for line in warnings if message in line]
        assert len(found) == 1, f"no warning {message!r} in:\n{log}"
        assert f"({config}, line" in found[0]


# --- (e) config check ---------------------------------------------------------


def test_config_check_prints_the_settings_with_secrets_masked(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.yml",
        """\
version: 0.1
storage:
  s3:
    accesskey: AKIAFILEACCESSKEY
    secretkey: file-secret-key-do-not-print
    region: us-west-1
    bucket: bucketname
http:
  addr: 127.0.0.1:5000
  secret: asecretforlocaldevelopment
notifications:
  endpoints: []
""",
    )
    env = {"REGISTRY_STORAGE_S3_SECRETKEY": "env-secret-key-do-not-print"}
    finished = entrepot("config", "check", config, env=env)

    assert finished.returncode == 0, finished.describe()
    settings: dict[str, Any] = yaml.safe_load(finished.stdout)
    assert settings["http"]["secret"] == "********"
    assert settings["storage"]["s3"]["secretkey"] == "********"
    assert settings["storage"]["s3"]["accesskey"] == "********"
    assert settings["storage"]["s3"]["region"] == "us-west-1"
    assert settings["storage"]["s3"]["bucket"] == "bucketname"
    assert settings["http"]["addr"] == "127.0.0.1:5000"
    assert "filesystem" not in settings["storage"]
    for secret in (
        "AKIAFILEACCESSKEY",
        "file-secret-key-do-not-print",
        "env-secret-key-do-not-print",
        "asecretforlocaldevelopment",
    ):
        assert secret not in finished.stdout + finished.stderr
    assert f"warning: not supported yet: notifications ({config}, line" in finished.stderr


def test_config_check_without_a_file_shows_the_embedded_default() -> None:
    finished = entrepot("config", "check")
    assert finished.returncode == 0, finished.describe()
    settings = yaml.safe_load(finished.stdout)
    assert settings["storage"]["filesystem"]["rootdirectory"] == "./data"
    assert settings["http"]["addr"] == "0.0.0.0:5000"


# --- (f) purge-uploads --------------------------------------------------------


async def _sessions(root: Path) -> tuple[str, str]:
    """An upload session started nine days ago and one started now, in
    repository purge/test under `root`: their ids."""
    driver = FilesystemDriver(root)
    blobs = Registry(driver).repository("purge/test").blobs
    ids = []
    for content in (b"abandoned long ago", b"still being written"):
        upload = await blobs.create()
        await upload.write(content)
        await upload.close()
        ids.append(upload.id)
    old, recent = ids
    moment = datetime.now(UTC) - timedelta(days=9)
    await driver.put_content(
        paths.upload_started_at("purge/test", old), format_started_at(moment).encode()
    )
    return old, recent


def test_purge_uploads_removes_an_old_session_and_keeps_a_recent_one(tmp_path: Path) -> None:
    config, root, _ = minimal(tmp_path)
    old, recent = asyncio.run(_sessions(root))
    uploads = root / "docker/registry/v2/repositories/purge/test/_uploads"

    dry = entrepot("purge-uploads", config, "--dry-run")
    assert dry.returncode == 0, dry.describe()
    assert dry.stdout.split() == [paths.upload_dir("purge/test", old)]
    assert sorted(path.name for path in uploads.iterdir()) == sorted([old, recent])

    younger = entrepot("purge-uploads", config, "--age", str(24 * 30), "--dry-run")
    assert younger.returncode == 0, younger.describe()
    assert younger.stdout == ""

    purged = entrepot("purge-uploads", config)
    assert purged.returncode == 0, purged.describe()
    assert purged.stdout.split() == [paths.upload_dir("purge/test", old)]
    assert [path.name for path in uploads.iterdir()] == [recent]

    again = entrepot("purge-uploads", config)
    assert (again.returncode, again.stdout) == (0, "")


# --- (g) read-only ------------------------------------------------------------


async def _stored_blob(root: Path, name: str, data: bytes) -> str:
    upload = await Registry(FilesystemDriver(root)).repository(name).blobs.create()
    await upload.write(data)
    return str((await upload.commit(Digest.of(data))).digest)


def test_read_only_serves_reads_and_refuses_writes(tmp_path: Path) -> None:
    config, root, url = minimal(
        tmp_path, storage="  maintenance:\n    readonly:\n      enabled: true\n"
    )
    data = b"served while the registry is read-only\n"
    digest = asyncio.run(_stored_blob(root, "read/only", data))
    uploads = root / "docker/registry/v2/repositories/read/only/_uploads"
    assert list(uploads.iterdir()) == []

    with serve(config, url) as running, running.client() as http:
        pulled = http.get(f"/v2/read/only/blobs/{digest}")
        head = http.head(f"/v2/read/only/blobs/{digest}")
        writes = [
            http.post("/v2/read/only/blobs/uploads/"),
            http.put("/v2/read/only/manifests/v1", content=b"{}"),
            http.delete(f"/v2/read/only/blobs/{digest}"),
        ]

    assert pulled.status_code == 200
    assert pulled.content == data
    assert head.status_code == 200
    for response in writes:
        assert response.status_code == 405, (response.request.method, response.text)
        assert api_error(response) == "UNSUPPORTED"
    assert list(uploads.iterdir()) == []  # no session was started
    assert blob_file(root, digest).read_bytes() == data


# --- (h) SIGTERM during an upload ---------------------------------------------

DRAIN: Final = 10.0


async def _committed(root: Path, name: str, digest: str) -> tuple[bytes, list[str]]:
    """The blob `digest` of `name` read back through the storage, and the
    upload sessions left in the repository."""
    driver = FilesystemDriver(root)
    data = await Registry(driver).repository(name).blobs.get(Digest.parse(digest))
    try:
        sessions = await driver.list(paths.uploads(name))
    except PathNotFound:  # no _uploads directory: no session left
        sessions = []
    return data, sessions


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_during_an_upload_lets_it_finish(tmp_path: Path, server: str) -> None:
    config, root, url = minimal(tmp_path, http="  draintimeout: 10s\n")
    data = bytes(range(256)) * (4 * 4096)  # 4 MiB
    digest = sha256(data)
    chunks = 8
    size = len(data) // chunks
    signalled: list[float] = []

    with serve(config, url, server=server) as running, running.client() as http:

        def body() -> Iterator[bytes]:
            for index in range(chunks):
                yield data[index * size : (index + 1) * size]
                if index == 0:
                    time.sleep(0.5)  # the server is reading this request by now
                    running.process.send_signal(signal.SIGTERM)
                    signalled.append(time.monotonic())
                time.sleep(0.25)

        started = http.post("/v2/drain/test/blobs/uploads/")
        assert started.status_code == 202
        done = http.put(
            started.headers["Location"],
            params={"digest": digest},
            content=body(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        finished_at = time.monotonic()
        try:
            returncode: int | None = running.process.wait(DRAIN)
        except subprocess.TimeoutExpired:
            returncode = None
        exited_at = time.monotonic()

    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert finished_at - signalled[0] > 1.0, "the upload did go on after the signal"
    # It exits by itself once the upload is done, well within the drain timeout.
    assert exited_at - signalled[0] < DRAIN
    # granian exits 0; uvicorn re-raises SIGTERM once drained (exit by the
    # signal, as a service manager expects).
    assert returncode in (0, -signal.SIGTERM), returncode
    stored, sessions = asyncio.run(_committed(root, "drain/test", digest))
    assert stored == data
    assert sessions == []


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_cuts_off_a_stalled_upload_at_the_drain_timeout(
    tmp_path: Path, server: str
) -> None:
    """A client that stops sending mid-body does not hold the server up past
    `http.draintimeout`; nothing of its upload becomes a blob."""
    config, root, url = minimal(tmp_path, http="  draintimeout: 2s\n")
    with serve(config, url, server=server) as running, running.client() as http:
        started = http.post("/v2/drain/stalled/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as stalled:
            stalled.sendall(
                f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n"
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + b"x" * 4096
            )
            time.sleep(0.5)  # the server is reading the body by now
            running.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            try:
                returncode: int | None = running.process.wait(DRAIN)
            except subprocess.TimeoutExpired:
                returncode = None
            exited_after = time.monotonic() - signalled
        log = running.log()

    assert returncode is not None, "still running long after the drain timeout"
    assert 1.5 < exited_after < 2.0 + 4.0, exited_after
    if server == "granian":
        assert "requests still running after http.draintimeout" in log
    assert "Traceback" not in log
    blobs = root / "docker/registry/v2/blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    """With one worker (the default) the registry is a single process: no
    supervisor beside the worker, so an idle registry costs one interpreter."""
    config, _root, url = minimal(tmp_path)
    with serve(config, url) as running, running.client() as http:
        assert http.get("/v2/").status_code == 200
        children = Path(f"/proc/{running.process.pid}/task")
        assert children.is_dir()
        kids = [
            int(pid)
            for task in children.iterdir()
            for pid in (task / "children").read_text().split()
        ]
    assert kids == []


def test_workers_of_the_builtin_server_are_forked_and_stop_together(tmp_path: Path) -> None:
    """`--workers 2` on entrepot's own server: two processes forked from
    the one that listens, each answering; SIGTERM ends them all."""
    config, _root, url = minimal(tmp_path)
    with serve(config, url, "--workers", "2", server="builtin") as running:
        parent = running.process.pid
        kids = _children(parent)
        assert len(kids) == 2, kids
        for _ in range(20):  # fresh connections: the kernel hands them to either
            with running.client() as http:
                assert http.get("/v2/").status_code == 200
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(DRAIN) == 0
    # Each worker was waited for by the parent before it exited.
    assert [pid for pid in kids if Path(f"/proc/{pid}").exists()] == []


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


# --- (i) reading the command --------------------------------------------------


def test_version() -> None:
    finished = entrepot("--version")
    assert (finished.returncode, finished.stdout) == (0, f"entrepot {__version__}\n")


def test_the_installed_script_runs() -> None:
    script = Path(sys.executable).with_name("entrepot")
    assert script.exists(), f"no console script at {script}: pip install -e ."
    finished = entrepot("--version", program=[str(script)])
    assert (finished.returncode, finished.stdout) == (0, f"entrepot {__version__}\n")


def test_help_lists_the_commands() -> None:
    finished = entrepot("--help")
    assert finished.returncode == 0
    for command in ("serve", "config", "purge-uploads"):
        assert command in finished.stdout


def test_serve_help_reads_well() -> None:
    finished = entrepot("serve", "--help")
    assert finished.returncode == 0, finished.describe()
    text = finished.stdout
    assert text.startswith("usage: entrepot serve")
    for said in ("--root", "--addr", "--workers", "--server", "granian", "uvicorn"):
        assert said in text, said
    # What it does without a file, and that the environment overrides it.
    for said in ("./data", "port 5000", "REGISTRY_"):
        assert said in " ".join(text.split()), said


@pytest.mark.parametrize(
    "args",
    [["config", "check", "--help"], ["purge-uploads", "--help"]],
    ids=["config-check", "purge-uploads"],
)
def test_other_help(args: list[str]) -> None:
    finished = entrepot(*args)
    assert finished.returncode == 0, finished.describe()
    assert finished.stdout.startswith(f"usage: entrepot {' '.join(args[:-1])}")


def test_no_command_is_a_usage_error() -> None:
    finished = entrepot()
    assert finished.returncode == 2
    assert finished.stderr.startswith("usage: entrepot")


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    finished = entrepot(
        "serve",
        "--root",
        tmp_path,
        "--addr",
        f"127.0.0.1:{free_port()}",
        "--workers",
        "0",
        timeout=REFUSAL_SECONDS,
    )
    assert finished.returncode == 2, finished.describe()
    assert "--workers" in finished.stderr


def test_the_app_is_built_out_of_the_garbage_collectors_sight(tmp_path: Path) -> None:
    """What `serve` builds lives as long as the process: frozen, so that full
    collections during requests do not walk it."""
    script = (
        "import gc; from entrepot.cli import _app; from entrepot.config import embedded_default; "
        f"import os; os.chdir({str(tmp_path)!r}); "
        "_app(embedded_default(), 1); print(gc.get_freeze_count())"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert int(finished.stdout.split()[-1]) > 10_000


def test_serving_leaves_out_modules_it_has_no_use_for(tmp_path: Path) -> None:
    """Every module imported stays in memory for the process's life (its
    code is most of an idle server's size): those only needed for a
    mistyped configuration key or exact fractions are not loaded to serve,
    nor, on entrepot's own server (the default), uvicorn and what it needs,
    nor modules wanted for one call (a UUID, a temporary file, a delete)."""
    unused = (
        *("difflib", "fractions", "decimal", "pydantic", "uvicorn", "click", "email"),
        *("uuid", "platform", "tempfile", "shutil", "random", "glob", "ctypes.util"),
    )
    script = (
        "import sys; from entrepot.cli import _app; from entrepot.config import embedded_default; "
        "import entrepot.httpserver, uvloop; "
        f"import os; os.chdir({str(tmp_path)!r}); _app(embedded_default(), 1); "
        f"print(' '.join(m for m in {unused!r} if m in sys.modules))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == ""


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("fe80::1%lo", True),  # a zone: kept as given, for bind
        ("localhost", False),
        ("registry.example", False),
        ("1.2.3", False),
    ],
)
def test_ip_literals_are_bound_as_given_and_names_resolved(host: str, literal: bool) -> None:
    assert cli._is_ip_literal(host) is literal


def test_a_minimum_tls_below_1_2_is_said_not_honoured_by_the_builtin_server(
    tmp_path: Path,
) -> None:
    """OpenSSL's default security level refuses TLS 1.0 and 1.1 whatever
    the minimum says: the builtin server says so at start."""
    config = write_config(
        tmp_path / "config.yml",
        "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: 127.0.0.1:5000\n"
        "  tls:\n    certificate: /cert.pem\n    key: /key.pem\n    minimumtls: tls1.0\n",
    )
    settings = load_config(str(config), {}).settings
    said = cli._not_honoured(settings, "builtin")
    assert any("minimumtls tls1.0" in problem for problem in said), said
    assert not any("minimumtls" in problem for problem in cli._not_honoured(settings, "granian"))
