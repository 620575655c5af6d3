"""skopeo against entrepot: push images built offline with umoci, pull them
back into fresh OCI layouts, and check that digests and blobs survive the
round trip byte for byte.

Flags: skopeo runs with `--insecure-policy` and a registries.conf of the
test's own (no search registries); `--dest-tls-verify=false` /
`--src-tls-verify=false` / `--tls-verify=false` because entrepot serves
plain HTTP (skopeo first tries HTTPS, which the server logs as "Invalid
HTTP request received", then falls back to HTTP). A Docker schema 2 image
is pulled back into an OCI layout with `--preserve-digests`, which keeps
the Docker manifest as it is instead of converting it to OCI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.clients.support import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
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

FILES = {
    "etc/hello.txt": b"hello from entrepot\n",
    "usr/share/data/numbers.bin": bytes(range(256)) * 64,
    "bin/tool": b"#!/bin/sh\necho tool\n",
}
# Incompressible, so that the layer spans several of the server's 1 MiB
# writes and the client's chunks.
BIG_FILE = {"var/lib/random.bin": os.urandom(3 * 1024 * 1024 + 123)}


def test_oci_image_round_trip(entrepot: Server, skopeo: Skopeo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    descriptor = build_image(source, "v1", {**FILES, **BIG_FILE})
    digest, manifest = layout_manifest(source, "v1")
    assert descriptor["mediaType"] == OCI_MANIFEST

    repo = f"docker://{entrepot.host}/test/oci"
    pushed = skopeo.copy(f"oci:{source}:v1", f"{repo}:v1")
    assert pushed == digest

    # What the registry serves is the manifest as pushed, byte for byte.
    raw = skopeo.inspect_raw(f"{repo}:v1")
    assert raw == manifest
    assert skopeo.inspect_raw(f"{repo}@{digest}") == manifest
    inspected = skopeo.inspect(f"{repo}:v1")
    assert inspected["Digest"] == digest
    assert inspected["Architecture"] == "amd64"
    assert inspected["Os"] == "linux"
    assert inspected["Layers"] == referenced_blobs(manifest)[1:]
    config = skopeo.inspect(f"{repo}:v1", "--config")
    assert config["architecture"] == "amd64"

    # A registry-to-registry copy: a second tag in the same repository, and
    # the same image in another repository (skopeo tries a cross-repository
    # mount for each blob).
    assert skopeo.copy(f"{repo}:v1", f"{repo}:v2") == digest
    assert skopeo.copy(f"{repo}:v1", f"docker://{entrepot.host}/test/mounted:v1") == digest
    assert skopeo.list_tags(repo) == ["v1", "v2"]
    assert skopeo.list_tags(f"docker://{entrepot.host}/test/mounted") == ["v1"]

    for tag, repository in (("v1", "oci"), ("v2", "oci"), ("v1", "mounted")):
        dest = tmp_path / f"back-{repository}-{tag}"
        pulled = skopeo.copy(f"docker://{entrepot.host}/test/{repository}:{tag}", f"oci:{dest}:x")
        assert pulled == digest
        assert layout_descriptor(dest, "x")["digest"] == digest
        assert_same_image(source, dest, digest)

    # skopeo delete resolves the tag and deletes the manifest by digest;
    # the other repository, which shares the blobs, is untouched.
    skopeo("delete", "--tls-verify=false", f"docker://{entrepot.host}/test/mounted:v1")
    gone = skopeo.run(
        "inspect", "--raw", "--tls-verify=false", f"docker://{entrepot.host}/test/mounted:v1"
    )
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr
    assert skopeo.inspect_raw(f"{repo}:v1") == manifest
    dest = tmp_path / "after-delete"
    assert skopeo.copy(f"{repo}:v1", f"oci:{dest}:x") == digest
    assert_same_image(source, dest, digest)


def test_docker_schema2_round_trip(entrepot: Server, skopeo: Skopeo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    build_image(source, "v1", FILES, architecture="arm64")
    oci_digest, _ = layout_manifest(source, "v1")

    repo = f"docker://{entrepot.host}/test/docker"
    pushed = skopeo.copy(f"oci:{source}:v1", f"{repo}:v1", "--format", "v2s2")
    assert pushed != oci_digest  # converted from OCI to Docker schema 2

    raw = skopeo.inspect_raw(f"{repo}:v1")
    assert sha256(raw) == pushed
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    inspected = skopeo.inspect(f"{repo}:v1")
    assert inspected["Digest"] == pushed
    assert inspected["Architecture"] == "arm64"
    assert skopeo.list_tags(repo) == ["v1"]

    dest = tmp_path / "back"
    pulled = skopeo.copy(f"{repo}:v1", f"oci:{dest}:v1", "--preserve-digests")
    assert pulled == pushed
    descriptor = layout_descriptor(dest, "v1")
    assert descriptor["digest"] == pushed
    assert descriptor["mediaType"] == DOCKER_MANIFEST
    assert read_blob(dest, pushed) == raw
    # The config and the layers are the source's blobs, unchanged.
    for blob in referenced_blobs(raw):
        assert read_blob(dest, blob) == read_blob(source, blob)


def test_multi_platform_index_round_trip(entrepot: Server, skopeo: Skopeo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    index_digest, index = build_index(source, "multi")
    children = json.loads(index)["manifests"]
    assert [child["platform"]["architecture"] for child in children] == ["amd64", "arm64"]

    repo = f"docker://{entrepot.host}/test/multi"
    pushed = skopeo.copy(f"oci:{source}:multi", f"{repo}:v1", "--all")
    assert pushed == index_digest

    assert skopeo.inspect_raw(f"{repo}:v1") == index
    for child in children:
        assert skopeo.inspect_raw(f"{repo}@{child['digest']}") == read_blob(source, child["digest"])
        # skopeo picks the platform's child when it inspects the index.
        config = skopeo.inspect(
            f"{repo}:v1", "--config", "--override-arch", child["platform"]["architecture"]
        )
        assert config["architecture"] == child["platform"]["architecture"]

    dest = tmp_path / "back"
    pulled = skopeo.copy(f"{repo}:v1", f"oci:{dest}:multi", "--all")
    assert pulled == index_digest
    descriptor = layout_descriptor(dest, "multi")
    assert descriptor["digest"] == index_digest
    assert descriptor["mediaType"] == OCI_INDEX
    assert read_blob(dest, index_digest) == index
    for child in children:
        assert_same_image(source, dest, child["digest"])


def test_docker_manifest_list_round_trip(entrepot: Server, skopeo: Skopeo, tmp_path: Path) -> None:
    """The two-platform image converted to a Docker manifest list of Docker
    schema 2 manifests on push, pulled back unchanged into a `dir:`
    directory (an OCI layout cannot hold a Docker list unconverted)."""
    source = tmp_path / "source"
    build_index(source, "multi")

    repo = f"docker://{entrepot.host}/test/list"
    pushed = skopeo.copy(f"oci:{source}:multi", f"{repo}:v1", "--all", "--format", "v2s2")
    raw = skopeo.inspect_raw(f"{repo}:v1")
    assert sha256(raw) == pushed
    listed = json.loads(raw)
    assert listed["mediaType"] == DOCKER_MANIFEST_LIST
    children = listed["manifests"]
    assert [child["platform"]["architecture"] for child in children] == ["amd64", "arm64"]
    child_manifests = {}
    for child in children:
        assert child["mediaType"] == DOCKER_MANIFEST
        child_raw = skopeo.inspect_raw(f"{repo}@{child['digest']}")
        assert sha256(child_raw) == child["digest"]
        assert len(child_raw) == child["size"]
        child_manifests[child["digest"]] = child_raw

    dest = tmp_path / "back"
    pulled = skopeo.copy(f"{repo}:v1", f"dir:{dest}", "--all", "--preserve-digests")
    assert pulled == pushed
    assert (dest / "manifest.json").read_bytes() == raw
    for child_digest, child_raw in child_manifests.items():
        hex_digest = child_digest.removeprefix("sha256:")
        assert (dest / f"{hex_digest}.manifest.json").read_bytes() == child_raw
        for blob in referenced_blobs(child_raw):
            # Layers are the source's own; configs were converted to Docker's.
            data = (dest / blob.removeprefix("sha256:")).read_bytes()
            assert sha256(data) == blob
