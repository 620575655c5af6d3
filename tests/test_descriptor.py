"""Tests of `entrepot.descriptor`: OCI content descriptors and platforms.

The JSON form round-trips with every optional field (image-spec,
descriptor.md and image-index.md for `platform`), and bad fields are refused
with `ManifestInvalid`, never with another exception.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.descriptor import OCTET_STREAM, Descriptor, Platform
from entrepot.digest import Digest
from entrepot.errors import ManifestInvalid

DIGEST = f"sha256:{hashlib.sha256(b'hello').hexdigest()}"
INT64_MAX = 2**63 - 1

FULL: dict[str, Any] = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": DIGEST,
    "size": 5,
    "urls": ["https://example.com/blob", "http://mirror.example.org/b"],
    "annotations": {"org.opencontainers.image.title": "hello", "empty": ""},
    "platform": {
        "architecture": "arm64",
        "os": "windows",
        "os.version": "10.0.14393.1066",
        "os.features": ["win32k"],
        "variant": "v8",
        "features": ["sse4"],
    },
    "artifactType": "application/vnd.example.sbom.v1",
    "data": base64.b64encode(b"hello").decode(),
}


def minimal() -> dict[str, Any]:
    return {"mediaType": "application/octet-stream", "digest": DIGEST, "size": 5}


def invalid(obj: Any) -> ManifestInvalid:
    with pytest.raises(ManifestInvalid) as info:
        Descriptor.from_json(obj)
    assert info.value.message
    return info.value


# -- round trips ----------------------------------------------------------------


def test_full_descriptor_round_trips() -> None:
    descriptor = Descriptor.from_json(FULL)
    assert descriptor.media_type == FULL["mediaType"]
    assert descriptor.digest == Digest.parse(DIGEST)
    assert descriptor.size == 5
    assert descriptor.urls == tuple(FULL["urls"])
    assert descriptor.annotations == FULL["annotations"]
    assert descriptor.artifact_type == "application/vnd.example.sbom.v1"
    assert descriptor.data == b"hello"
    assert descriptor.platform == Platform(
        architecture="arm64",
        os="windows",
        os_version="10.0.14393.1066",
        os_features=("win32k",),
        variant="v8",
        features=("sse4",),
    )
    assert descriptor.to_json() == FULL
    again = Descriptor.from_json(descriptor.to_json())
    assert again == descriptor
    assert again.annotations == descriptor.annotations


def test_minimal_descriptor_round_trips_without_optional_fields() -> None:
    descriptor = Descriptor.from_json(minimal())
    assert descriptor.urls == ()
    assert descriptor.annotations is None
    assert descriptor.platform is None
    assert descriptor.artifact_type is None
    assert descriptor.data is None
    assert descriptor.to_json() == minimal()


def test_defaults_and_empty_values() -> None:
    descriptor = Descriptor(Digest.of(b""), 0)
    assert descriptor.media_type == OCTET_STREAM
    assert descriptor.to_json() == {
        "mediaType": OCTET_STREAM,
        "digest": str(Digest.of(b"")),
        "size": 0,
    }
    # Empty data and empty annotations are kept: they are set, just empty.
    obj = minimal() | {"data": "", "annotations": {}}
    parsed = Descriptor.from_json(obj)
    assert parsed.data == b""
    assert parsed.annotations == {}
    assert parsed.to_json() == obj


def test_from_json_does_not_alias_the_input() -> None:
    obj = copy.deepcopy(FULL)
    descriptor = Descriptor.from_json(obj)
    obj["annotations"]["new"] = "x"
    obj["urls"].append("https://other.example")
    assert descriptor.annotations == FULL["annotations"]
    assert descriptor.urls == tuple(FULL["urls"])


def test_unknown_fields_are_ignored() -> None:
    descriptor = Descriptor.from_json(minimal() | {"x-unknown": [1, 2, 3]})
    assert descriptor.to_json() == minimal()


def test_sha512_digest_is_accepted() -> None:
    digest = f"sha512:{hashlib.sha512(b'hello').hexdigest()}"
    assert Descriptor.from_json(minimal() | {"digest": digest}).digest.algorithm == "sha512"


def test_platform_round_trip_minimal() -> None:
    platform = Platform.from_json({"architecture": "amd64", "os": "linux"})
    assert platform == Platform("amd64", "linux")
    assert platform.to_json() == {"architecture": "amd64", "os": "linux"}


def test_largest_int64_size_is_accepted() -> None:
    assert Descriptor.from_json(minimal() | {"size": INT64_MAX}).size == INT64_MAX


# -- refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"size": -1}, id="size-negative"),
        pytest.param({"size": True}, id="size-true"),
        pytest.param({"size": False}, id="size-false"),
        pytest.param({"size": 5.0}, id="size-float-integral"),
        pytest.param({"size": 5.5}, id="size-float"),
        pytest.param({"size": "5"}, id="size-string"),
        pytest.param({"size": None}, id="size-null"),
        pytest.param({"size": [5]}, id="size-list"),
        pytest.param({"digest": "sha256:abc"}, id="digest-short"),
        pytest.param({"digest": DIGEST.upper()}, id="digest-upper"),
        pytest.param({"digest": "md5:" + hashlib.md5(b"x").hexdigest()}, id="digest-md5"),
        pytest.param({"digest": ""}, id="digest-empty"),
        pytest.param({"digest": 5}, id="digest-int"),
        pytest.param({"digest": None}, id="digest-null"),
        pytest.param({"mediaType": None}, id="mediaType-null"),
        pytest.param({"mediaType": ""}, id="mediaType-empty"),
        pytest.param({"mediaType": 1}, id="mediaType-int"),
        pytest.param({"annotations": {"a": 1}}, id="annotations-int-value"),
        pytest.param({"annotations": {"a": None}}, id="annotations-null-value"),
        pytest.param({"annotations": {"a": ["b"]}}, id="annotations-list-value"),
        pytest.param({"annotations": ["a"]}, id="annotations-list"),
        pytest.param({"annotations": "a=b"}, id="annotations-string"),
        pytest.param({"data": "not base64!"}, id="data-not-base64"),
        pytest.param({"data": "aGVsbG8"}, id="data-missing-padding"),
        pytest.param({"data": "aGVs\nbG8="}, id="data-newline"),
        pytest.param({"data": "aGVsbG8_"}, id="data-urlsafe-alphabet"),
        pytest.param({"data": 5}, id="data-int"),
        pytest.param({"data": ["aGVsbG8="]}, id="data-list"),
        pytest.param({"urls": "https://example.com"}, id="urls-string"),
        pytest.param({"urls": [1]}, id="urls-int-item"),
        pytest.param({"urls": {"a": "b"}}, id="urls-object"),
        pytest.param({"artifactType": 1}, id="artifactType-int"),
        pytest.param({"artifactType": ["a/b"]}, id="artifactType-list"),
        pytest.param({"platform": "linux/amd64"}, id="platform-string"),
        pytest.param({"platform": {"os": "linux"}}, id="platform-no-architecture"),
        pytest.param({"platform": {"architecture": "amd64"}}, id="platform-no-os"),
        pytest.param({"platform": {"architecture": 1, "os": "linux"}}, id="platform-arch-int"),
        pytest.param(
            {"platform": {"architecture": "amd64", "os": "linux", "os.version": 10}},
            id="platform-os.version-int",
        ),
        pytest.param(
            {"platform": {"architecture": "amd64", "os": "linux", "os.features": "win32k"}},
            id="platform-os.features-string",
        ),
        pytest.param(
            {"platform": {"architecture": "amd64", "os": "linux", "variant": 8}},
            id="platform-variant-int",
        ),
        pytest.param(
            {"platform": {"architecture": "amd64", "os": "linux", "features": [1]}},
            id="platform-features-int",
        ),
    ],
)
def test_bad_fields_are_refused(changes: dict[str, Any]) -> None:
    invalid(minimal() | changes)


@pytest.mark.parametrize("missing", ["mediaType", "digest", "size"])
def test_required_fields(missing: str) -> None:
    obj = minimal()
    del obj[missing]
    invalid(obj)


@pytest.mark.parametrize("obj", [None, [], "descriptor", 5, [minimal()]])
def test_non_objects_are_refused(obj: Any) -> None:
    invalid(obj)


def test_digest_refusal_says_why() -> None:
    exc = invalid(minimal() | {"digest": "sha384:" + hashlib.sha384(b"x").hexdigest()})
    assert "digest" in exc.message
    assert "unsupported" in exc.message


def test_size_beyond_int64_is_refused() -> None:
    # descriptor.md: size is an int64. Larger values cannot be a real size,
    # and Go clients (Distribution, containerd) fail to decode them.
    invalid(minimal() | {"size": INT64_MAX + 1})


# -- property: any descriptor survives the JSON round trip ----------------------

texts = st.text(string.ascii_letters + string.digits + "./+-_:", min_size=1, max_size=20)
platforms = st.builds(
    Platform,
    architecture=texts,
    os=texts,
    os_version=st.none() | texts,
    os_features=st.lists(texts, max_size=3).map(tuple),
    variant=st.none() | texts,
    features=st.lists(texts, max_size=3).map(tuple),
)
descriptors = st.builds(
    Descriptor,
    digest=st.builds(Digest.of, st.binary(max_size=16), st.sampled_from(["sha256", "sha512"])),
    size=st.integers(0, INT64_MAX),
    media_type=texts,
    urls=st.lists(texts, max_size=3).map(tuple),
    annotations=st.none() | st.dictionaries(st.text(max_size=10), st.text(max_size=10)),
    platform=st.none() | platforms,
    artifact_type=st.none() | texts,
    data=st.none() | st.binary(max_size=32),
)


@settings(max_examples=150, deadline=None)
@given(descriptor=descriptors)
def test_any_descriptor_round_trips(descriptor: Descriptor) -> None:
    obj = descriptor.to_json()
    again = Descriptor.from_json(obj)
    assert again == descriptor
    assert again.annotations == descriptor.annotations
    assert again.to_json() == obj
