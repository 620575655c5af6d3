"""Interoperability through real clients: what skopeo pushed to entrepot is
served by the reference registry (CNCF Distribution 2.8) from the same
storage root, and the other way round, with identical digests.

Each test pushes an OCI image, a Docker schema 2 image and a two-platform
index (so tag links, revision links, layer links and index children all
cross over), stops the first registry, starts the other one on the same
root and pulls everything back into fresh OCI layouts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clients.support import (
    Server,
    Skopeo,
    assert_same_image,
    build_image,
    build_index,
    layout_descriptor,
    layout_manifest,
    read_blob,
    referenced_blobs,
    run_entrepot,
    sha256,
)
from tests.reference_registry import run_reference_registry

pytestmark = pytest.mark.reference

Serve = Callable[[Path], contextlib.AbstractContextManager[Server]]


@contextlib.contextmanager
def _reference(root: Path) -> Iterator[Server]:
    with run_reference_registry(root) as url:
        yield Server(url.removeprefix("http://"), root)


def _push_all(skopeo: Skopeo, host: str, source: Path) -> dict[str, str]:
    """Push the three kinds of image; return the digest of each by name."""
    return {
        "oci": skopeo.copy(f"oci:{source}:v1", f"docker://{host}/interop/oci:v1"),
        "docker": skopeo.copy(
            f"oci:{source}:v1", f"docker://{host}/interop/docker:v1", "--format", "v2s2"
        ),
        "multi": skopeo.copy(f"oci:{source}:multi", f"docker://{host}/interop/multi:v1", "--all"),
    }


def _pull_and_check(
    skopeo: Skopeo, host: str, source: Path, pushed: dict[str, str], tmp_path: Path
) -> None:
    oci_digest, _ = layout_manifest(source, "v1")
    multi_digest, _ = layout_manifest(source, "multi")
    assert pushed["oci"] == oci_digest
    assert pushed["multi"] == multi_digest

    for name in ("oci", "docker", "multi"):
        assert skopeo.list_tags(f"docker://{host}/interop/{name}") == ["v1"]
        raw = skopeo.inspect_raw(f"docker://{host}/interop/{name}:v1")
        assert sha256(raw) == pushed[name], name

    dest = tmp_path / "back-oci"
    assert skopeo.copy(f"docker://{host}/interop/oci:v1", f"oci:{dest}:v1") == oci_digest
    assert_same_image(source, dest, oci_digest)

    dest = tmp_path / "back-docker"
    docker_digest = skopeo.copy(
        f"docker://{host}/interop/docker:v1", f"oci:{dest}:v1", "--preserve-digests"
    )
    assert docker_digest == pushed["docker"]
    assert layout_descriptor(dest, "v1")["digest"] == docker_digest
    for blob in referenced_blobs(read_blob(dest, docker_digest)):
        assert read_blob(dest, blob) == read_blob(source, blob)

    dest = tmp_path / "back-multi"
    pulled = skopeo.copy(f"docker://{host}/interop/multi:v1", f"oci:{dest}:multi", "--all")
    assert pulled == multi_digest
    assert read_blob(dest, multi_digest) == read_blob(source, multi_digest)
    for child in ("multi-linux-amd64", "multi-linux-arm64"):
        assert_same_image(source, dest, layout_descriptor(source, child)["digest"])


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    build_image(
        source,
        "v1",
        {"etc/interop.txt": b"shared storage root\n", "var/lib/blob": b"\x00\x01" * 4096},
    )
    build_index(source, "multi")
    return source


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        pytest.param(run_entrepot, _reference, id="entrepot-then-distribution"),
        pytest.param(_reference, run_entrepot, id="distribution-then-entrepot"),
    ],
)
def test_shared_root_through_skopeo(
    writer: Serve, reader: Serve, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = _source(tmp_path)
    root = tmp_path / "shared-root"
    with writer(root) as server:
        pushed = _push_all(skopeo, server.host, source)
    with reader(root) as server:
        _pull_and_check(skopeo, server.host, source, pushed, tmp_path)
