"""Real clients against `entrepot serve` on the S3 driver (a bucket on a moto
server): skopeo pushes an OCI image and a two-platform index (`--all`) and
pulls them back, podman pulls and pushes; every digest comes back identical.

Blob downloads answer 307 to a presigned URL on the moto server, so the
clients fetch the layers from S3 directly, as they would from Amazon S3.
The helpers (image building, skopeo, OCI layouts) are those of
`tests.clients.support`; podman is driven as in `test_podman.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli_support import free_port, serve
from tests.clients.support import (
    OCI_INDEX,
    OCI_MANIFEST,
    Server,
    Skopeo,
    assert_same_image,
    build_image,
    build_index,
    layout_descriptor,
    layout_manifest,
    read_blob,
    referenced_blobs,
    sha256,
)
from tests.clients.test_podman import Podman
from tests.storage.driver import s3_server

FILES = {
    "etc/hello.txt": b"hello from entrepot on S3\n",
    # Incompressible and over S3's 5 MiB part minimum, so that the layer
    # goes up in several parts of the client's chunks.
    "var/lib/random.bin": os.urandom(6 * 1024 * 1024 + 321),
}


@pytest.fixture(scope="module")
def s3_entrepot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """entrepot on a new bucket of the moto server."""
    directory = tmp_path_factory.mktemp("s3-clients")
    port = free_port()
    config = {
        "version": "0.1",
        "storage": {
            "s3": s3_server.driver_parameters(s3_server.new_bucket()),
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    with serve(path, f"http://127.0.0.1:{port}"):
        yield Server(f"127.0.0.1:{port}", directory)


@pytest.fixture
def podman(client_config: Path, tmp_path: Path) -> Iterator[Podman]:
    run_base = Path(tempfile.mkdtemp(prefix="podman-", dir="/tmp"))
    try:
        yield Podman(tmp_path / "podman", run_base, client_config)
    finally:
        shutil.rmtree(run_base, ignore_errors=True)


def test_skopeo_oci_image_round_trip(s3_entrepot: Server, skopeo: Skopeo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    descriptor = build_image(source, "v1", FILES)
    digest, manifest = layout_manifest(source, "v1")
    assert descriptor["mediaType"] == OCI_MANIFEST

    repo = f"docker://{s3_entrepot.host}/s3/oci"
    assert skopeo.copy(f"oci:{source}:v1", f"{repo}:v1") == digest
    assert skopeo.inspect_raw(f"{repo}:v1") == manifest
    assert skopeo.inspect_raw(f"{repo}@{digest}") == manifest
    inspected = skopeo.inspect(f"{repo}:v1")
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == referenced_blobs(manifest)[1:]
    # Registry to registry: a cross-repository mount on S3.
    assert skopeo.copy(f"{repo}:v1", f"docker://{s3_entrepot.host}/s3/mounted:v1") == digest
    assert skopeo.list_tags(repo) == ["v1"]

    for repository in ("oci", "mounted"):
        dest = tmp_path / f"back-{repository}"
        pulled = skopeo.copy(f"docker://{s3_entrepot.host}/s3/{repository}:v1", f"oci:{dest}:x")
        assert pulled == digest
        assert layout_descriptor(dest, "x")["digest"] == digest
        assert_same_image(source, dest, digest)


def test_skopeo_multi_platform_index_round_trip(
    s3_entrepot: Server, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest, index = build_index(source, "multi")
    children = json.loads(index)["manifests"]

    repo = f"docker://{s3_entrepot.host}/s3/multi"
    assert skopeo.copy(f"oci:{source}:multi", f"{repo}:v1", "--all") == index_digest
    assert skopeo.inspect_raw(f"{repo}:v1") == index
    for child in children:
        assert skopeo.inspect_raw(f"{repo}@{child['digest']}") == read_blob(source, child["digest"])

    dest = tmp_path / "back"
    assert skopeo.copy(f"{repo}:v1", f"oci:{dest}:multi", "--all") == index_digest
    descriptor = layout_descriptor(dest, "multi")
    assert descriptor["digest"] == index_digest
    assert descriptor["mediaType"] == OCI_INDEX
    assert read_blob(dest, index_digest) == index
    for child in children:
        assert_same_image(source, dest, child["digest"])


def test_podman_pull_and_push(
    s3_entrepot: Server, skopeo: Skopeo, podman: Podman, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    build_image(source, "v1", {"etc/motd": b"pushed by podman, stored on S3\n"})
    digest, manifest = layout_manifest(source, "v1")
    assert skopeo.copy(f"oci:{source}:v1", f"docker://{s3_entrepot.host}/s3/podman:v1") == digest

    pulled_ref = f"{s3_entrepot.host}/s3/podman:v1"
    policy = str(podman.policy)
    podman("pull", "--tls-verify=false", "--signature-policy", policy, pulled_ref)
    images = json.loads(podman("images", "--format", "json").text)
    assert [image["Digest"] for image in images] == [digest]

    pushed_ref = f"{s3_entrepot.host}/s3/pushed:v2"
    podman("tag", pulled_ref, pushed_ref)
    digest_file = tmp_path / "pushed.digest"
    podman(
        "push",
        "--tls-verify=false",
        "--signature-policy",
        policy,
        "--digestfile",
        str(digest_file),
        pushed_ref,
    )
    pushed_digest = digest_file.read_text().strip()
    raw = skopeo.inspect_raw(f"docker://{pushed_ref}")
    assert sha256(raw) == pushed_digest
    # Same config and layers: podman pushed back what it pulled.
    assert referenced_blobs(raw) == referenced_blobs(manifest)
    assert skopeo.list_tags(f"docker://{s3_entrepot.host}/s3/pushed") == ["v2"]
