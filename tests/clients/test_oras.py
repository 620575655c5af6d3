"""ORAS (the `oras` Python SDK) against entrepot: artifacts, artifact types,
and the referrers API.

The SDK's `OrasClient(insecure=True)` speaks plain HTTP. Its `push()` has
no artifactType parameter (oras 0.2: files, manifest_config,
manifest_annotations, subject), so artifacts with an `artifactType` are
assembled with the SDK's lower-level calls (`upload_blob`,
`upload_manifest`), and a referrer without one is pushed with `push(...,
subject=..., manifest_config="path:mediatype")`: the referrers API then
reports its config's media type as its artifact type. The SDK retries a
500 or a transport error with sleeps that add up to minutes, hence the
per-test timeout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import oras.client
import oras.oci
import pytest

from tests.clients.support import OCI_INDEX, OCI_MANIFEST, Server, sha256

pytestmark = pytest.mark.timeout(90)

EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": sha256(b"{}"),
    "size": 2,
}
SBOM_TYPE = "application/vnd.example.sbom"
SIGNATURE_TYPE = "application/vnd.example.signature"
ATTESTATION_TYPE = "application/vnd.example.attestation.config.v1+json"
TITLE = "org.opencontainers.image.title"


def _client() -> Any:
    return oras.client.OrasClient(insecure=True)


def _upload_file(client: Any, container: Any, path: Path, media_type: str) -> dict[str, Any]:
    layer: dict[str, Any] = oras.oci.NewLayer(str(path), media_type=media_type)
    layer["annotations"] = {TITLE: path.name}
    response = client.upload_blob(str(path), container, layer)
    assert response.status_code in (200, 201), response.text
    return layer


def _push_artifact(
    client: Any,
    tmp_path: Path,
    target: str,
    artifact_type: str,
    files: dict[str, tuple[str, bytes]],
    subject: dict[str, Any] | None = None,
) -> tuple[str, bytes]:
    """An OCI image manifest with `artifactType`, the empty config and one
    layer per file, pushed with the SDK's lower-level calls; return the
    digest the registry answered and the manifest bytes it serves."""
    container = client.get_container(target)
    empty = tmp_path / "empty-config.json"
    empty.write_bytes(b"{}")
    response = client.upload_blob(str(empty), container, dict(EMPTY_CONFIG))
    assert response.status_code in (200, 201), response.text
    layers = []
    for name, (media_type, content) in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        layers.append(_upload_file(client, container, path, media_type))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": dict(EMPTY_CONFIG),
        "layers": layers,
        "annotations": {"org.example.kind": artifact_type},
    }
    if subject is not None:
        manifest["subject"] = subject
    response = client.upload_manifest(manifest, container)
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    if subject is not None:
        assert response.headers.get("OCI-Subject") == subject["digest"]
    served = _get_manifest(client, target)
    assert sha256(served) == digest
    return digest, served


def _get_manifest(client: Any, target: str) -> bytes:
    container = client.get_container(target)
    response = client.do_request(
        f"{client.prefix}://{container.manifest_url()}",
        "GET",
        headers={"Accept": OCI_MANIFEST},
    )
    assert response.status_code == 200, response.text
    content: bytes = response.content
    return content


def test_oras_push_pull_files(entrepot: Server, tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    upload.mkdir()
    readme = upload / "readme.md"
    readme.write_bytes(b"# an artifact\n\npushed with oras\n")
    data = upload / "data.bin"
    data.write_bytes(bytes(range(256)) * 300)
    tree = upload / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a\n")
    (tree / "sub" / "b.txt").write_bytes(b"b\n")

    client = _client()
    target = f"{entrepot.host}/test/artifact:v1"
    response = client.push(
        target=target,
        files=[f"{readme}:text/markdown", str(data), str(tree)],
        manifest_annotations={"org.example.note": "round trip"},
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201
    digest = response.headers["Docker-Content-Digest"]

    manifest = client.get_manifest(target)
    assert manifest["annotations"]["org.example.note"] == "round trip"
    assert [layer["annotations"][TITLE] for layer in manifest["layers"]] == [
        "readme.md",
        "data.bin",
        "tree",
    ]
    assert manifest["layers"][0]["mediaType"] == "text/markdown"
    assert sha256(_get_manifest(client, target)) == digest
    assert client.get_tags(f"{entrepot.host}/test/artifact") == ["v1"]

    out = tmp_path / "pulled"
    pulled = client.pull(target=target, outdir=str(out))
    assert sorted(Path(path).name for path in pulled) == ["data.bin", "readme.md", "tree"]
    assert (out / "readme.md").read_bytes() == readme.read_bytes()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert (out / "tree" / "a.txt").read_bytes() == b"a\n"
    assert (out / "tree" / "sub" / "b.txt").read_bytes() == b"b\n"

    # Pulled by digest: the same artifact.
    by_digest = tmp_path / "by-digest"
    client.pull(target=f"{entrepot.host}/test/artifact@{digest}", outdir=str(by_digest))
    assert (by_digest / "data.bin").read_bytes() == data.read_bytes()


def _referrers(server: Server, name: str, digest: str, **params: str) -> httpx.Response:
    response = httpx.get(f"{server.url}/v2/{name}/referrers/{digest}", params=params, timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    return response


def test_oras_artifact_type_and_referrers(entrepot: Server, tmp_path: Path) -> None:
    client = _client()
    name = "test/sbom"
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": "example"}).encode()
    target = f"{entrepot.host}/{name}:v1"
    digest, served = _push_artifact(
        client, tmp_path, target, SBOM_TYPE, {"sbom.spdx.json": ("application/spdx+json", sbom)}
    )
    assert json.loads(served)["artifactType"] == SBOM_TYPE

    out = tmp_path / "pulled"
    pulled = client.pull(target=target, outdir=str(out))
    assert [Path(path).name for path in pulled] == ["sbom.spdx.json"]
    assert (out / "sbom.spdx.json").read_bytes() == sbom

    # Nothing refers to it yet.
    empty = _referrers(entrepot, name, digest).json()
    assert empty == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}

    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(served)}
    # A signature-like artifact with artifactType and subject.
    signature_digest, signature = _push_artifact(
        client,
        tmp_path,
        f"{entrepot.host}/{name}:sig",
        SIGNATURE_TYPE,
        {"signature.sig": ("application/vnd.example.signature.v1", b"signed: " + digest.encode())},
        subject=subject,
    )
    # An attestation pushed with the SDK's own push(subject=...): no
    # artifactType, so the config's media type stands for it.
    config = tmp_path / "attestation-config.json"
    config.write_bytes(b'{"predicate": "example"}')
    statement = tmp_path / "statement.json"
    statement.write_bytes(b'{"_type": "https://in-toto.io/Statement/v1"}')
    response = client.push(
        target=f"{entrepot.host}/{name}:attestation",
        files=[f"{statement}:application/vnd.in-toto+json"],
        manifest_config=f"{config}:{ATTESTATION_TYPE}",
        subject=oras.oci.Subject(mediaType=OCI_MANIFEST, digest=digest, size=len(served)),
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201
    assert response.headers.get("OCI-Subject") == digest
    attestation_digest = response.headers["Docker-Content-Digest"]
    attestation = _get_manifest(client, f"{entrepot.host}/{name}@{attestation_digest}")

    listed = _referrers(entrepot, name, digest)
    assert "OCI-Filters-Applied" not in listed.headers
    index = listed.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    by_digest = {entry["digest"]: entry for entry in index["manifests"]}
    assert set(by_digest) == {signature_digest, attestation_digest}
    assert by_digest[signature_digest] == {
        "mediaType": OCI_MANIFEST,
        "digest": signature_digest,
        "size": len(signature),
        "artifactType": SIGNATURE_TYPE,
        "annotations": {"org.example.kind": SIGNATURE_TYPE},
    }
    assert by_digest[attestation_digest]["artifactType"] == ATTESTATION_TYPE
    assert by_digest[attestation_digest]["size"] == len(attestation)

    filtered = _referrers(entrepot, name, digest, artifactType=SIGNATURE_TYPE)
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in filtered.json()["manifests"]] == [signature_digest]
    none = _referrers(entrepot, name, digest, artifactType="application/vnd.example.none")
    assert none.json()["manifests"] == []

    # The signature is itself an artifact the SDK can pull.
    sig_out = tmp_path / "signature"
    client.pull(target=f"{entrepot.host}/{name}@{signature_digest}", outdir=str(sig_out))
    assert (sig_out / "signature.sig").read_bytes() == b"signed: " + digest.encode()
