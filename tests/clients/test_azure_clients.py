"""Real clients against `entrepot serve` on the Azure driver (a container on
Azurite): skopeo pushes an OCI image and a two-platform index (`--all`) and
pulls them back with identical digests. Blob downloads answer 307 to a SAS
URL on Azurite, so the clients fetch layers from the blob service directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli_support import free_port, serve
from tests.clients.support import (
    OCI_INDEX,
    Server,
    Skopeo,
    assert_same_image,
    build_image,
    build_index,
    layout_descriptor,
    layout_manifest,
    read_blob,
)
from tests.storage.driver import azurite_server

FILES = {
    "etc/hello.txt": b"hello from entrepot on Azure\n",
    # Over the driver's 4 MiB block: the layer goes up in several blocks.
    "var/lib/random.bin": os.urandom(5 * 1024 * 1024 + 123),
}


@pytest.fixture(scope="module")
def azure_entrepot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("azure-clients")
    port = free_port()
    config = {
        "version": "0.1",
        "storage": {
            "azure": azurite_server.driver_parameters(azurite_server.new_container()),
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    with serve(path, f"http://127.0.0.1:{port}"):
        yield Server(f"127.0.0.1:{port}", directory)


def test_skopeo_oci_image_round_trip(
    azure_entrepot: Server, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    build_image(source, "v1", FILES)
    digest, manifest = layout_manifest(source, "v1")
    repo = f"docker://{azure_entrepot.host}/azure/oci"
    assert skopeo.copy(f"oci:{source}:v1", f"{repo}:v1") == digest
    assert skopeo.inspect_raw(f"{repo}:v1") == manifest
    dest = tmp_path / "back"
    assert skopeo.copy(f"{repo}:v1", f"oci:{dest}:x") == digest
    assert layout_descriptor(dest, "x")["digest"] == digest
    assert_same_image(source, dest, digest)


def test_skopeo_multi_platform_index_round_trip(
    azure_entrepot: Server, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest, index = build_index(source, "multi")
    children = json.loads(index)["manifests"]
    repo = f"docker://{azure_entrepot.host}/azure/multi"
    assert skopeo.copy(f"oci:{source}:multi", f"{repo}:v1", "--all") == index_digest
    dest = tmp_path / "back"
    assert skopeo.copy(f"{repo}:v1", f"oci:{dest}:multi", "--all") == index_digest
    descriptor = layout_descriptor(dest, "multi")
    assert descriptor["mediaType"] == OCI_INDEX
    assert read_blob(dest, index_digest) == index
    for child in children:
        assert_same_image(source, dest, child["digest"])
