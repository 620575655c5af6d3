"""Helpers for the real-client tests: run entrepot as a subprocess, run the
client programs (skopeo, podman, umoci) with bounded time, build images
offline in OCI layouts, and read those layouts back.

Everything here works without network: images are built from a few files
with umoci, never pulled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support import free_port, stop, wait_ready

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
REF_NAME: Final = "org.opencontainers.image.ref.name"

# One client command (a copy of a tiny image) takes well under a second
# here; the bound only keeps a hung client from hanging the suite.
CLIENT_TIMEOUT: Final = 60.0

# The programs these tests drive; the test command installs their Debian
# packages (skopeo, podman, umoci).
PROGRAMS: Final = {"skopeo": "skopeo", "podman": "podman", "umoci": "umoci"}


def require(program: str) -> str:
    """The path of `program`, or a failure naming the package to install."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed: `apt-get install -y {PROGRAMS.get(program, program)}` "
            "(the test command installs it)",
            pytrace=False,
        )
    return path


@dataclass(frozen=True)
class Result:
    """What a finished command printed: stdout as bytes (manifests are
    compared byte for byte), stderr as text."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = CLIENT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Result:
    """Run a command with a time bound; on failure (when `check`), fail the
    test with the command line and everything it printed."""
    argv = [os.fspath(arg) for arg in args]
    require(argv[0])
    full_env = None if env is None else {**os.environ, **env}
    try:
        completed = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"timed out after {timeout} s: {' '.join(argv)}\n"
            f"stdout:\n{_text(exc.stdout)}\nstderr:\n{_text(exc.stderr)}",
            pytrace=False,
        )
    result = Result(
        completed.returncode, completed.stdout, completed.stderr.decode(errors="replace")
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"exit status {result.returncode}: {' '.join(argv)}\n"
            f"stdout:\n{_text(result.stdout)[-6000:]}\nstderr:\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- entrepot as a subprocess ------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running registry: `host` is "127.0.0.1:PORT" (what clients take),
    `url` is "http://127.0.0.1:PORT"."""

    host: str
    root: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextlib.contextmanager
def run_entrepot(root: Path) -> Iterator[Server]:
    """`python -m entrepot.cli serve` on a free loopback port over `root`.

    Waits (bounded) for `GET /v2/` to answer 200; at the end terminates it
    (then kills it) and fails the test if its output shows a traceback.
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="entrepot-server-") as scratch:
        log = Path(scratch, "entrepot.log")
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "entrepot.cli",
                    "serve",
                    "--root",
                    str(root),
                    "--addr",
                    host,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(
                process, f"http://{host}", "entrepot", lambda: log.read_text(errors="replace")
            )
            yield Server(host, root)
        finally:
            stop(process)
            output = log.read_text(errors="replace")
            # Captured: pytest shows it with a failing test.
            print(f"--- entrepot on {host} over {root} ---\n{output[-8000:]}")
        if "Traceback" in output:
            pytest.fail(f"entrepot printed a traceback:\n{output[-8000:]}", pytrace=False)


# --- skopeo -------------------------------------------------------------------


@dataclass(frozen=True)
class Skopeo:
    """skopeo with the test's own registries.conf, an accept-anything policy
    and TLS verification off toward the loopback registries (plain HTTP)."""

    registries_conf: Path
    scratch: Path

    def __call__(self, *args: str | os.PathLike[str]) -> Result:
        return self.run(*args, check=True)

    def run(self, *args: str | os.PathLike[str], check: bool = False) -> Result:
        """skopeo with these settings; unlike a call, does not fail the test
        on a non-zero exit unless `check`."""
        return run(
            ["skopeo", "--insecure-policy", "--registries-conf", self.registries_conf, *args],
            check=check,
        )

    def copy(self, source: str, dest: str, *flags: str) -> str:
        """`skopeo copy` and the digest of the manifest it wrote (--digestfile)."""
        digest_file = self.scratch / f"digest-{uuid.uuid4().hex}"
        self(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--digestfile",
            digest_file,
            *flags,
            source,
            dest,
        )
        return digest_file.read_text().strip()

    def inspect_raw(self, ref: str) -> bytes:
        """The manifest bytes exactly as the registry serves them."""
        return self("inspect", "--raw", "--tls-verify=false", ref).stdout

    def inspect(self, ref: str, *flags: str) -> dict[str, Any]:
        result = self("inspect", "--tls-verify=false", *flags, ref)
        inspected: dict[str, Any] = json.loads(result.text)
        return inspected

    def list_tags(self, ref: str) -> list[str]:
        result = self("list-tags", "--tls-verify=false", ref)
        tags: list[str] = json.loads(result.text)["Tags"]
        return tags


# --- podman -------------------------------------------------------------------
# (the flags are explained in test_podman.py's docstring)


class Podman:
    def __init__(self, base: Path, run_base: Path, config: Path) -> None:
        self.base = base
        self.run_base = run_base
        self.policy = config / "policy.json"
        self.env = {"CONTAINERS_REGISTRIES_CONF": str(config / "registries.conf")}

    def __call__(self, *args: str) -> Result:
        return run(
            [
                "podman",
                "--root",
                self.base / "root",
                "--runroot",
                self.run_base / "run",
                "--tmpdir",
                self.run_base / "tmp",
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                *args,
            ],
            env=self.env,
        )


# --- OCI layouts --------------------------------------------------------------


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return layout / "blobs" / algorithm / encoded


def read_blob(layout: Path, digest: str) -> bytes:
    data = blob_path(layout, digest).read_bytes()
    assert sha256(data) == digest, f"blob {digest} in {layout} does not hash to its name"
    return data


def layout_index(layout: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((layout / "index.json").read_text())
    return index


def layout_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    """The descriptor that `index.json` of `layout` holds for `tag`."""
    found = [
        entry
        for entry in layout_index(layout)["manifests"]
        if (entry.get("annotations") or {}).get(REF_NAME) == tag
    ]
    assert len(found) == 1, f"{len(found)} entries for {tag!r} in {layout}/index.json"
    descriptor: dict[str, Any] = found[0]
    return descriptor


def layout_manifest(layout: Path, tag: str) -> tuple[str, bytes]:
    """(digest, bytes) of the manifest tagged `tag` in `layout`."""
    digest: str = layout_descriptor(layout, tag)["digest"]
    return digest, read_blob(layout, digest)


def referenced_blobs(manifest: bytes) -> list[str]:
    """Digests of the config and layers of an image manifest."""
    obj = json.loads(manifest)
    return [obj["config"]["digest"], *(layer["digest"] for layer in obj["layers"])]


def assert_same_image(source: Path, dest: Path, digest: str) -> None:
    """The image manifest `digest` and every blob it references are in
    both layouts, byte for byte."""
    manifest = read_blob(source, digest)
    assert read_blob(dest, digest) == manifest
    for blob in referenced_blobs(manifest):
        assert read_blob(dest, blob) == read_blob(source, blob), blob


def build_image(
    layout: Path,
    tag: str,
    files: Mapping[str, bytes],
    *,
    architecture: str = "amd64",
    os_name: str = "linux",
) -> dict[str, Any]:
    """Build a one-layer image from `files` (paths relative to the root
    file system) with umoci, tagged `tag` in the OCI layout `layout`
    (created if needed); return its descriptor from `index.json`."""
    if not (layout / "index.json").exists():
        run(["umoci", "init", "--layout", layout])
    image = f"{layout}:{tag}"
    run(["umoci", "new", "--image", image])
    with tempfile.TemporaryDirectory(prefix="umoci-bundle-") as scratch:
        bundle = Path(scratch, "bundle")
        run(["umoci", "unpack", "--rootless", "--image", image, bundle])
        rootfs = bundle / "rootfs"
        for relative, content in files.items():
            path = rootfs / relative.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        run(["umoci", "repack", "--image", image, bundle])
    run(
        [
            "umoci",
            "config",
            "--image",
            image,
            "--architecture",
            architecture,
            "--os",
            os_name,
            "--config.cmd",
            "/bin/true",
        ]
    )
    run(["umoci", "gc", "--layout", layout])
    return layout_descriptor(layout, tag)


def build_index(
    layout: Path,
    tag: str,
    platforms: Sequence[tuple[str, str]] = (("amd64", "linux"), ("arm64", "linux")),
) -> tuple[str, bytes]:
    """A multi-platform image in `layout`: one image per (architecture, os),
    each with its own content, and an OCI image index over them with
    platform fields, written as a blob and tagged `tag` in `index.json`.
    Return (digest, bytes) of the index."""
    children = []
    for architecture, os_name in platforms:
        descriptor = build_image(
            layout,
            f"{tag}-{os_name}-{architecture}",
            {
                "etc/platform": f"{os_name}/{architecture}\n".encode(),
                "usr/share/hello.txt": f"hello from {architecture}\n".encode(),
            },
            architecture=architecture,
            os_name=os_name,
        )
        children.append(
            {
                "mediaType": descriptor["mediaType"],
                "digest": descriptor["digest"],
                "size": descriptor["size"],
                "platform": {"architecture": architecture, "os": os_name},
            }
        )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    content = json.dumps(index, indent=2).encode()
    digest = sha256(content)
    blob_path(layout, digest).write_bytes(content)
    top = layout_index(layout)
    top["manifests"].append(
        {
            "mediaType": OCI_INDEX,
            "digest": digest,
            "size": len(content),
            "annotations": {REF_NAME: tag},
        }
    )
    (layout / "index.json").write_text(json.dumps(top))
    return digest, content
