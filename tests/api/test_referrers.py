"""The referrers API (end-12a, end-12b) and `OCI-Subject` on pushes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    assert_error,
    descriptor,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    unique_name,
)

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"


async def push_artifact(
    client: httpx.AsyncClient,
    name: str,
    subject: Image | dict[str, Any],
    artifact_type: str | None,
    annotations: dict[str, str] | None = None,
    config_media_type: str = OCI_EMPTY,
) -> tuple[bytes, httpx.Response]:
    """An artifact manifest (empty config, one empty layer) about `subject`."""
    await push_blob(client, name, EMPTY_JSON)
    subject_desc = subject.descriptor() if isinstance(subject, Image) else subject
    content = image_manifest(
        descriptor(config_media_type, EMPTY_JSON),
        [descriptor(OCI_EMPTY, EMPTY_JSON)],
        artifact_type=artifact_type,
        subject=subject_desc,
        annotations=annotations,
    )
    response = await push_manifest(client, name, sha256(content), content, OCI_MANIFEST)
    return content, response


async def referrers(
    client: httpx.AsyncClient, name: str, subject: str, **params: str
) -> httpx.Response:
    response = await client.get(f"/v2/{name}/referrers/{subject}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    assert isinstance(body["manifests"], list)
    return response


async def test_referrers_are_listed(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    sbom, sbom_put = await push_artifact(
        client, name, subject, SBOM, {"org.example.sbom.format": "json"}
    )
    signature, signature_put = await push_artifact(
        client, name, subject, SIGNATURE, {"org.example.signature.fingerprint": "abcd"}
    )
    assert sbom_put.headers["OCI-Subject"] == subject.digest
    assert signature_put.headers["OCI-Subject"] == subject.digest

    response = await referrers(client, name, subject.digest)
    assert "OCI-Filters-Applied" not in response.headers
    listed = {m["digest"]: m for m in response.json()["manifests"]}
    assert listed == {
        sha256(sbom): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(sbom),
            "size": len(sbom),
            "artifactType": SBOM,
            "annotations": {"org.example.sbom.format": "json"},
        },
        sha256(signature): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(signature),
            "size": len(signature),
            "artifactType": SIGNATURE,
            "annotations": {"org.example.signature.fingerprint": "abcd"},
        },
    }


async def test_referrers_filtered_by_artifact_type(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    sbom, _ = await push_artifact(client, name, subject, SBOM)
    await push_artifact(client, name, subject, SIGNATURE)

    response = await referrers(client, name, subject.digest, artifactType=SBOM)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in response.json()["manifests"]] == [sha256(sbom)]

    none = await referrers(client, name, subject.digest, artifactType="application/x-none")
    assert none.headers["OCI-Filters-Applied"] == "artifactType"
    assert none.json()["manifests"] == []


async def test_artifact_type_defaults_to_the_config_media_type(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    config_type = "application/vnd.example.config.v1+json"
    content, _ = await push_artifact(client, name, subject, None, config_media_type=config_type)
    (entry,) = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert entry["digest"] == sha256(content)
    assert entry["artifactType"] == config_type
    assert "annotations" not in entry or entry["annotations"] == {}


async def test_index_referrer_without_artifact_type(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    child = await push_image(client, name)
    content = index_manifest(
        [child.descriptor()],
        subject=subject.descriptor(),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )
    response = await push_manifest(client, name, "idx", content, OCI_INDEX)
    assert response.headers["OCI-Subject"] == subject.digest
    (entry,) = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert entry == {
        "mediaType": OCI_INDEX,
        "digest": sha256(content),
        "size": len(content),
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }


async def test_subject_need_not_exist(client: httpx.AsyncClient) -> None:
    name = unique_name()
    ghost = {"mediaType": OCI_MANIFEST, "digest": sha256(b"not pushed yet"), "size": 14}
    content, response = await push_artifact(client, name, ghost, SBOM)
    assert response.headers["OCI-Subject"] == ghost["digest"]
    listed = (await referrers(client, name, ghost["digest"])).json()["manifests"]
    assert [m["digest"] for m in listed] == [sha256(content)]


async def test_manifest_without_subject_has_no_oci_subject_header(
    client: httpx.AsyncClient,
) -> None:
    name = unique_name()
    config = b'{"os":"linux"}'
    await push_blob(client, name, config)
    content = image_manifest(descriptor("application/vnd.oci.image.config.v1+json", config), [])
    response = await push_manifest(client, name, "v1", content, OCI_MANIFEST)
    assert "OCI-Subject" not in response.headers


async def test_unknown_subject_has_no_referrers(client: httpx.AsyncClient) -> None:
    name = unique_name()
    await push_image(client, name, "v1")
    response = await referrers(client, name, sha256(b"nobody refers to me"))
    assert response.json()["manifests"] == []
    # a repository that does not exist: still 200 (the spec: MUST NOT 404)
    response = await referrers(client, unique_name(), sha256(b"nobody refers to me"))
    assert response.json()["manifests"] == []


@pytest.mark.parametrize("digest", ["sha256:zzz", "md5:abc", "nocolon", "sha256:" + "A" * 64])
async def test_referrers_of_a_malformed_digest_is_400(
    client: httpx.AsyncClient, digest: str
) -> None:
    response = await client.get(f"/v2/{unique_name()}/referrers/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")


async def test_deleted_referrer_is_no_longer_listed(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    sbom, _ = await push_artifact(client, name, subject, SBOM)
    signature, _ = await push_artifact(client, name, subject, SIGNATURE)
    assert (await client.delete(f"/v2/{name}/manifests/{sha256(sbom)}")).status_code == 202
    listed = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert [m["digest"] for m in listed] == [sha256(signature)]


async def test_referrers_are_per_repository(client: httpx.AsyncClient) -> None:
    name, other = unique_name(), unique_name()
    subject = await push_image(client, name, "v1")
    await push_artifact(client, name, subject, SBOM)
    listed = (await referrers(client, other, subject.digest)).json()["manifests"]
    assert listed == []


async def test_referrer_pushed_by_tag_is_listed_once(client: httpx.AsyncClient) -> None:
    name = unique_name()
    subject = await push_image(client, name, "v1")
    content, _ = await push_artifact(client, name, subject, SBOM)
    # the same artifact pushed again, by a tag this time
    response = await push_manifest(client, name, "sbom", content, OCI_MANIFEST)
    assert response.headers["OCI-Subject"] == subject.digest
    listed = (await referrers(client, name, subject.digest)).json()["manifests"]
    assert [m["digest"] for m in listed] == [sha256(content)]
