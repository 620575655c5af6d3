"""Real clients against `entrepot serve` on the object stores, an S3 bucket
(on a moto server) and an Azure container (on Azurite): skopeo pushes an
OCI image and a two-platform index (`--all`) and pulls them back, podman
pulls and pushes; every digest comes back identical, on each store.

Blob downloads answer 307 to a URL signed for the store (presigned on S3,
SAS on Azure), so the clients fetch the layers from the store directly, as
they would from Amazon S3 or Azure. One server per store, module-scoped.
The helpers (image building, skopeo, OCI layouts) are those of
`tests.clients.support`, podman included.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
import yaml

from tests.cli_support import Serving, free_port, serve
from tests.clients.support import (
    OCI_INDEX,
    OCI_MANIFEST,
    Podman,
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
from tests.storage.driver.object_stores import OBJECT_STORES, ObjectStore

MiB: Final = 1024 * 1024
# An incompressible file, so that its layer goes up in several pieces: on
# S3 over the 5 MiB minimum of a multipart upload's part, on Azure over the
# driver's 4 MiB append block.
LARGE_FILES: Final = {
    "s3": os.urandom(6 * MiB + 321),
    "azure": os.urandom(5 * MiB + 123),
}


def files(store: ObjectStore) -> dict[str, bytes]:
    return {
        "etc/hello.txt": f"hello from entrepot on {store.name}\n".encode(),
        "var/lib/random.bin": LARGE_FILES[store.name],
    }


@dataclass(frozen=True, slots=True)
class Registry:
    """entrepot serving on a bucket or container: `host` ("127.0.0.1:PORT")
    is what the clients take."""

    host: str
    serving: Serving

    def blob_gets(self, repository: str) -> list[int]:
        """The statuses of the blob GETs of `repository` so far (access log)."""
        line = re.compile(
            rf"entrepot\.access: GET /v2/{re.escape(repository)}/blobs/sha256:[0-9a-f]{{64}} "
            r"(?P<status>\d{3}) "
        )
        return [int(found["status"]) for found in line.finditer(self.serving.log())]


@pytest.fixture(scope="module", params=OBJECT_STORES, ids=lambda store: store.name)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    chosen: ObjectStore = request.param
    return chosen


@pytest.fixture(scope="module")
def registry(store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """entrepot on a new bucket or container of the store."""
    directory = tmp_path_factory.mktemp(f"{store.name}-clients")
    port = free_port()
    config = {
        "version": "0.1",
        "storage": {**store.storage(store.new_place()), "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    with serve(path, f"http://127.0.0.1:{port}") as serving:
        yield Registry(f"127.0.0.1:{port}", serving)


def test_skopeo_oci_image_round_trip(
    store: ObjectStore, registry: Registry, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    descriptor = build_image(source, "v1", files(store))
    digest, manifest = layout_manifest(source, "v1")
    assert descriptor["mediaType"] == OCI_MANIFEST

    repo = f"docker://{registry.host}/{store.name}/oci"
    assert skopeo.copy(f"oci:{source}:v1", f"{repo}:v1") == digest
    assert skopeo.inspect_raw(f"{repo}:v1") == manifest
    assert skopeo.inspect_raw(f"{repo}@{digest}") == manifest
    inspected = skopeo.inspect(f"{repo}:v1")
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == referenced_blobs(manifest)[1:]
    # Registry to registry: a cross-repository mount on the store.
    mounted = f"docker://{registry.host}/{store.name}/mounted:v1"
    assert skopeo.copy(f"{repo}:v1", mounted) == digest
    assert skopeo.list_tags(repo) == ["v1"]

    for repository in ("oci", "mounted"):
        dest = tmp_path / f"back-{repository}"
        pulled = skopeo.copy(
            f"docker://{registry.host}/{store.name}/{repository}:v1", f"oci:{dest}:x"
        )
        assert pulled == digest
        assert layout_descriptor(dest, "x")["digest"] == digest
        assert_same_image(source, dest, digest)
        # The layers and config came from the store, never through entrepot.
        fetched = registry.blob_gets(f"{store.name}/{repository}")
        assert fetched, registry.serving.log()[-4000:]
        assert set(fetched) == {307}, fetched


def test_skopeo_multi_platform_index_round_trip(
    store: ObjectStore, registry: Registry, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest, index = build_index(source, "multi")
    children = json.loads(index)["manifests"]

    repo = f"docker://{registry.host}/{store.name}/multi"
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
    store: ObjectStore, registry: Registry, skopeo: Skopeo, podman: Podman, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    build_image(source, "v1", {"etc/motd": f"pushed by podman, stored on {store.name}\n".encode()})
    digest, manifest = layout_manifest(source, "v1")
    pulled_ref = f"{registry.host}/{store.name}/podman:v1"
    assert skopeo.copy(f"oci:{source}:v1", f"docker://{pulled_ref}") == digest

    policy = str(podman.policy)
    podman("pull", "--tls-verify=false", "--signature-policy", policy, pulled_ref)
    images = json.loads(podman("images", "--format", "json").text)
    assert [image["Digest"] for image in images] == [digest]

    pushed_ref = f"{registry.host}/{store.name}/pushed:v2"
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
    assert skopeo.list_tags(f"docker://{registry.host}/{store.name}/pushed") == ["v2"]
