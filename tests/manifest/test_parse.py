"""Tests of `entrepot.manifest.parse_manifest`: formats, dispatch, refusals.

The four formats (OCI image manifest and index, Docker schema 2 and manifest
list), the choice of format from `Content-Type` or the manifest's own
`mediaType`, the refusal of schema 1 and of anything that is not a JSON
object of at most 4 MiB, and the derived views (`blobs`, `subject`,
`effective_artifact_type`). Property tests feed random JSON, random bytes and
mutated valid manifests: the only exception allowed out is `ManifestInvalid`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.digest import Digest
from entrepot.errors import ManifestInvalid
from entrepot.manifest import (
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA2,
    MANIFEST_MAX_SIZE,
    MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    parse_manifest,
)


def digest_of(text: str, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, text.encode()).hexdigest()}"


OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
GENERIC = [None, "", "application/json", "application/octet-stream", "*/*"]


def oci_manifest() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of("config"), "size": 6},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": digest_of("layer0"), "size": 6},
            {"mediaType": OCI_LAYER, "digest": digest_of("layer1", "sha512"), "size": 6},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }


def oci_index() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of("amd64"),
                "size": 7143,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of("arm64"),
                "size": 7682,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
        "annotations": {"com.example.key1": "value1"},
    }


def docker_schema2() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_SCHEMA2,
        "config": {"mediaType": DOCKER_CONFIG, "digest": digest_of("config"), "size": 7023},
        "layers": [
            {"mediaType": DOCKER_LAYER, "digest": digest_of("l0"), "size": 32654},
            {"mediaType": DOCKER_LAYER, "digest": digest_of("l1"), "size": 16724},
        ],
    }


def docker_list() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_SCHEMA2,
                "digest": digest_of("ppc64le"),
                "size": 7143,
                "platform": {"architecture": "ppc64le", "os": "linux"},
            },
            {
                "mediaType": DOCKER_SCHEMA2,
                "digest": digest_of("amd64"),
                "size": 7682,
                "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]},
            },
        ],
    }


BUILDERS = {
    OCI_MANIFEST: oci_manifest,
    OCI_INDEX: oci_index,
    DOCKER_SCHEMA2: docker_schema2,
    DOCKER_MANIFEST_LIST: docker_list,
}


def encode(obj: Any) -> bytes:
    return json.dumps(obj, indent=3).encode()


def invalid(content: bytes, content_type: str | None) -> ManifestInvalid:
    with pytest.raises(ManifestInvalid) as info:
        parse_manifest(content, content_type)
    assert info.value.message
    return info.value


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    del obj[key]
    return obj


# -- the four formats -----------------------------------------------------------


@pytest.mark.parametrize("media_type", list(BUILDERS))
def test_each_format_parses_with_its_content_type(media_type: str) -> None:
    obj = BUILDERS[media_type]()
    content = encode(obj)
    manifest = parse_manifest(content, media_type)
    assert manifest.media_type == media_type
    assert manifest.content == content  # the exact bytes, never re-serialized
    assert manifest.digest == Digest.of(content)
    assert manifest.is_index is (media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST))
    if manifest.is_index:
        assert [str(d.digest) for d in manifest.manifests] == [
            m["digest"] for m in obj["manifests"]
        ]
        assert manifest.config is None
        assert manifest.layers == ()
        assert manifest.blobs == ()
    else:
        assert manifest.config is not None
        assert str(manifest.config.digest) == obj["config"]["digest"]
        assert manifest.config.media_type == obj["config"]["mediaType"]
        assert [d.to_json() for d in manifest.layers] == obj["layers"]
        assert manifest.manifests == ()
        assert manifest.blobs == (manifest.config, *manifest.layers)


def test_media_types_lists_the_four_formats() -> None:
    assert set(MEDIA_TYPES) == set(BUILDERS)


def test_oci_manifest_fields() -> None:
    manifest = parse_manifest(encode(oci_manifest()), OCI_MANIFEST)
    assert manifest.annotations == oci_manifest()["annotations"]
    assert manifest.subject is None
    assert manifest.artifact_type is None
    assert manifest.layers[1].digest.algorithm == "sha512"


def test_index_platforms_are_parsed() -> None:
    for builder, media_type in ((oci_index, OCI_INDEX), (docker_list, DOCKER_MANIFEST_LIST)):
        manifest = parse_manifest(encode(builder()), media_type)
        platforms = [d.platform for d in manifest.manifests]
        assert all(p is not None for p in platforms)
        assert [p.architecture for p in platforms if p] == [
            m["platform"]["architecture"] for m in builder()["manifests"]
        ]


def test_index_may_be_empty() -> None:
    obj = oci_index() | {"manifests": []}
    assert parse_manifest(encode(obj), OCI_INDEX).manifests == ()


def test_manifest_may_have_no_layers() -> None:
    obj = oci_manifest() | {"layers": []}
    manifest = parse_manifest(encode(obj), OCI_MANIFEST)
    assert manifest.layers == ()
    assert manifest.blobs == (manifest.config,)


def test_compact_and_whitespace_encodings_have_their_own_digest() -> None:
    compact = json.dumps(oci_manifest(), separators=(",", ":")).encode()
    spaced = b"\n  " + encode(oci_manifest()) + b"\n"
    a, b = parse_manifest(compact, OCI_MANIFEST), parse_manifest(spaced, OCI_MANIFEST)
    assert a.digest == Digest.of(compact)
    assert b.digest == Digest.of(spaced)
    assert a.digest != b.digest
    assert a.config == b.config


# -- Content-Type ---------------------------------------------------------------


@pytest.mark.parametrize("media_type", list(BUILDERS))
@pytest.mark.parametrize(
    "template",
    [
        "{}; charset=utf-8",
        "{};charset=utf-8",
        '{} ; charset="utf-8"; q=1',
        "  {}  ",
        "{upper}",
        "{upper}; Charset=UTF-8",
    ],
)
def test_content_type_parameters_and_case_are_ignored(media_type: str, template: str) -> None:
    content_type = template.format(media_type, upper=media_type.upper())
    manifest = parse_manifest(encode(BUILDERS[media_type]()), content_type)
    assert manifest.media_type == media_type


@pytest.mark.parametrize("content_type", GENERIC)
@pytest.mark.parametrize("media_type", list(BUILDERS))
def test_generic_content_type_falls_back_to_the_media_type_field(
    content_type: str | None, media_type: str
) -> None:
    manifest = parse_manifest(encode(BUILDERS[media_type]()), content_type)
    assert manifest.media_type == media_type


@pytest.mark.parametrize("content_type", GENERIC)
def test_generic_content_type_without_media_type_falls_back_to_the_shape(
    content_type: str | None,
) -> None:
    image = parse_manifest(encode(without(oci_manifest(), "mediaType")), content_type)
    assert image.media_type == OCI_MANIFEST
    index = parse_manifest(encode(without(oci_index(), "mediaType")), content_type)
    assert index.media_type == OCI_INDEX


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, OCI_INDEX])
def test_oci_media_type_field_is_optional_with_a_content_type(media_type: str) -> None:
    obj = without(BUILDERS[media_type](), "mediaType")
    assert parse_manifest(encode(obj), media_type).media_type == media_type


@pytest.mark.parametrize("media_type", [DOCKER_SCHEMA2, DOCKER_MANIFEST_LIST])
def test_docker_formats_must_declare_their_media_type(media_type: str) -> None:
    exc = invalid(encode(without(BUILDERS[media_type](), "mediaType")), media_type)
    assert "mediaType" in exc.message


@pytest.mark.parametrize("declared", list(BUILDERS))
@pytest.mark.parametrize("content_type", list(BUILDERS))
def test_media_type_must_match_content_type(declared: str, content_type: str) -> None:
    obj = BUILDERS[declared]()
    if declared == content_type:
        assert parse_manifest(encode(obj), content_type).media_type == declared
    else:
        invalid(encode(obj), content_type)


def test_mismatch_message_names_both_types() -> None:
    exc = invalid(encode(oci_manifest()), OCI_INDEX)
    assert OCI_MANIFEST in exc.message
    assert OCI_INDEX in exc.message


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v3+json",
        "application/vnd.oci.artifact.manifest.v1+json",
    ],
)
def test_unknown_content_types_are_refused(content_type: str) -> None:
    obj = without(oci_manifest(), "mediaType")
    invalid(encode(obj), content_type)


@pytest.mark.parametrize("declared", [OCI_CONFIG, "application/vnd.example+json", "text/plain"])
def test_unknown_declared_media_types_are_refused(declared: str) -> None:
    obj = oci_manifest() | {"mediaType": declared}
    invalid(encode(obj), None)
    invalid(encode(obj), OCI_MANIFEST)


@pytest.mark.parametrize("declared", [1, True, ["x"], {"a": "b"}])
def test_non_string_media_type_field_is_refused(declared: object) -> None:
    invalid(encode(oci_manifest() | {"mediaType": declared}), OCI_MANIFEST)


# -- schema versions ------------------------------------------------------------


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "hello-world",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": digest_of("layer")}],
    "history": [{"v1Compatibility": "{}"}],
}


@pytest.mark.parametrize(
    "content_type", [*GENERIC, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, OCI_MANIFEST]
)
def test_schema1_is_refused_as_unsupported(content_type: str | None) -> None:
    exc = invalid(encode(SCHEMA1), content_type)
    assert "schema 1" in exc.message
    assert "not supported" in exc.message


@pytest.mark.parametrize("content_type", [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED])
def test_schema1_content_type_is_refused_whatever_the_body(content_type: str) -> None:
    for builder in BUILDERS.values():
        exc = invalid(encode(builder()), f"{content_type}; charset=utf-8")
        assert "schema 1" in exc.message


@pytest.mark.parametrize("media_type", list(BUILDERS))
@pytest.mark.parametrize("version", [None, 0, 3, -2, "2", [2], {"v": 2}, True, 2.5])
def test_schema_version_must_be_2(media_type: str, version: object) -> None:
    obj = BUILDERS[media_type]()
    if version is None:
        del obj["schemaVersion"]
    else:
        obj["schemaVersion"] = version
    invalid(encode(obj), media_type)
    invalid(encode(obj), None)


def test_schema_version_must_be_an_integer() -> None:
    # `"schemaVersion": 2.0` is a JSON number but not the int the specs ask
    # for; Go's encoding/json (Distribution, containerd) fails to decode it
    # into the int field.
    content = encode(oci_manifest()).replace(b'"schemaVersion": 2', b'"schemaVersion": 2.0')
    assert b"2.0" in content
    invalid(content, OCI_MANIFEST)


# -- not a manifest at all ------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="whitespace"),
        pytest.param(b"not json", id="text"),
        pytest.param(b"{", id="truncated"),
        pytest.param(encode(oci_manifest())[:-1], id="truncated-manifest"),
        pytest.param(encode(oci_manifest()) + b"}", id="trailing-garbage"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"[" + encode(oci_manifest()) + b"]", id="array-of-manifest"),
        pytest.param(b"null", id="null"),
        pytest.param(b"2", id="number"),
        pytest.param(b'"manifest"', id="string"),
        pytest.param(b"true", id="bool"),
        pytest.param(b'{"schemaVersion": 2, "x": "\xff"}', id="invalid-utf8"),
        pytest.param(b'{"schemaVersion": 2, "x": "\xc3"}', id="truncated-utf8"),
        pytest.param(b'{"schemaVersion": 2, "x": "\xed\xa0\x80"}', id="utf8-surrogate"),
        pytest.param(b"\x00" * 16, id="nul-bytes"),
    ],
)
@pytest.mark.parametrize("content_type", [OCI_MANIFEST, None])
def test_non_manifests_are_refused(content: bytes, content_type: str | None) -> None:
    invalid(content, content_type)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_json_constants_are_refused(constant: bytes) -> None:
    # RFC 8259 has no NaN or Infinity; Python's json accepts them by default.
    content = encode(oci_manifest())[:-2] + b', "x-extra": ' + constant + b"}"
    invalid(content, OCI_MANIFEST)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_non_utf8_encodings_are_refused(encoding: str) -> None:
    # RFC 8259 section 8.1: JSON exchanged between systems MUST be UTF-8, and
    # senders MUST NOT add a byte order mark. Python's json.loads(bytes)
    # silently detects UTF-16 and UTF-32 and skips a UTF-8 BOM; Go's
    # encoding/json (Distribution, containerd) refuses all of these, so a
    # registry that stores them serves manifests its clients cannot read.
    content = json.dumps(oci_manifest()).encode(encoding)
    invalid(content, OCI_MANIFEST)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_refused_not_crashed(opener: bytes) -> None:
    # Well under 4 MiB, but deeper than the interpreter's recursion limit.
    content = opener * 200_000
    assert len(content) <= MANIFEST_MAX_SIZE
    invalid(content, OCI_MANIFEST)


def test_size_limit_is_4_mib() -> None:
    assert MANIFEST_MAX_SIZE == 4 * 1024 * 1024
    base = encode(oci_manifest())
    at_limit = base + b" " * (MANIFEST_MAX_SIZE - len(base))
    assert len(at_limit) == MANIFEST_MAX_SIZE
    assert parse_manifest(at_limit, OCI_MANIFEST).content == at_limit
    exc = invalid(at_limit + b" ", OCI_MANIFEST)
    assert str(MANIFEST_MAX_SIZE) in exc.message
    # Oversized content is refused before it is decoded.
    invalid(b"\xff" * (MANIFEST_MAX_SIZE + 1), OCI_MANIFEST)


# -- structure ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "key"),
    [
        (OCI_MANIFEST, "config"),
        (OCI_MANIFEST, "layers"),
        (OCI_INDEX, "manifests"),
        (DOCKER_SCHEMA2, "config"),
        (DOCKER_SCHEMA2, "layers"),
        (DOCKER_MANIFEST_LIST, "manifests"),
    ],
)
def test_required_members(media_type: str, key: str) -> None:
    obj = without(BUILDERS[media_type](), key)
    exc = invalid(encode(obj), media_type)
    assert key in exc.message
    obj[key] = None
    invalid(encode(obj), media_type)


@pytest.mark.parametrize(
    ("media_type", "key", "value"),
    [
        (OCI_MANIFEST, "config", []),
        (OCI_MANIFEST, "config", "sha256:abc"),
        (OCI_MANIFEST, "config", {"mediaType": OCI_CONFIG, "digest": "sha256:abc", "size": 1}),
        (OCI_MANIFEST, "layers", {}),
        (OCI_MANIFEST, "layers", "layers"),
        (OCI_MANIFEST, "layers", [None]),
        (OCI_MANIFEST, "layers", [{"mediaType": OCI_LAYER, "digest": "x", "size": 1}]),
        (OCI_MANIFEST, "layers", [{"mediaType": OCI_LAYER, "size": 1}]),
        (OCI_MANIFEST, "layers", [{"mediaType": OCI_LAYER, "digest": digest_of(""), "size": -1}]),
        (OCI_MANIFEST, "subject", []),
        (OCI_MANIFEST, "subject", {"mediaType": OCI_MANIFEST}),
        (OCI_MANIFEST, "artifactType", 1),
        (OCI_MANIFEST, "annotations", {"a": 1}),
        (OCI_MANIFEST, "annotations", ["a"]),
        (OCI_INDEX, "manifests", {}),
        (OCI_INDEX, "manifests", [1]),
        (OCI_INDEX, "manifests", [{"mediaType": OCI_MANIFEST, "digest": digest_of("")}]),
        (OCI_INDEX, "subject", "sha256:abc"),
        (OCI_INDEX, "artifactType", ["a/b"]),
        (OCI_INDEX, "annotations", "a=b"),
        (DOCKER_SCHEMA2, "config", {"mediaType": DOCKER_CONFIG, "digest": 1, "size": 1}),
        (DOCKER_SCHEMA2, "layers", [{"mediaType": DOCKER_LAYER, "digest": digest_of("")}]),
        (DOCKER_MANIFEST_LIST, "manifests", [{"digest": digest_of(""), "size": 1}]),
        (
            DOCKER_MANIFEST_LIST,
            "manifests",
            [
                {
                    "mediaType": DOCKER_SCHEMA2,
                    "digest": digest_of(""),
                    "size": 1,
                    "platform": {"os": "linux"},
                }
            ],
        ),
    ],
)
def test_bad_members_are_refused(media_type: str, key: str, value: object) -> None:
    obj = BUILDERS[media_type]() | {key: value}
    exc = invalid(encode(obj), media_type)
    assert key in exc.message


def test_bad_descriptor_message_says_where() -> None:
    obj = oci_manifest()
    obj["layers"][1]["digest"] = "sha256:abc"
    exc = invalid(encode(obj), OCI_MANIFEST)
    assert "layers[1]" in exc.message


def test_unknown_members_are_ignored() -> None:
    obj = oci_manifest() | {"x-vendor": {"anything": [1, 2.5, None]}}
    assert parse_manifest(encode(obj), OCI_MANIFEST).config is not None


# -- derived views --------------------------------------------------------------


def test_blobs_exclude_foreign_layers() -> None:
    obj = docker_schema2()
    foreign: dict[str, Any] = {
        "mediaType": DOCKER_FOREIGN,
        "digest": digest_of("windows-base"),
        "size": 1024,
        "urls": ["https://mcr.microsoft.com/v2/windows/blobs/sha256:abc"],
    }
    obj["layers"].insert(0, foreign)
    manifest = parse_manifest(encode(obj), DOCKER_SCHEMA2)
    assert len(manifest.layers) == 3
    assert manifest.layers[0].urls == tuple(foreign["urls"])
    assert manifest.config is not None
    assert manifest.blobs == (manifest.config, *manifest.layers[1:])
    assert foreign["digest"] not in [str(d.digest) for d in manifest.blobs]


def test_blobs_exclude_oci_layers_with_urls() -> None:
    obj = oci_manifest()
    obj["layers"][1]["urls"] = ["https://example.com/layer"]
    manifest = parse_manifest(encode(obj), OCI_MANIFEST)
    assert manifest.config is not None
    assert manifest.blobs == (manifest.config, manifest.layers[0])


def test_blobs_keep_layers_with_an_empty_urls_list() -> None:
    obj = oci_manifest()
    obj["layers"][0]["urls"] = []
    manifest = parse_manifest(encode(obj), OCI_MANIFEST)
    assert manifest.blobs == (manifest.config, *manifest.layers)


def test_effective_artifact_type_prefers_artifact_type() -> None:
    obj = oci_manifest() | {"artifactType": "application/vnd.example.sbom.v1"}
    obj["config"] = {"mediaType": OCI_EMPTY, "digest": digest_of("{}"), "size": 2}
    manifest = parse_manifest(encode(obj), OCI_MANIFEST)
    assert manifest.artifact_type == "application/vnd.example.sbom.v1"
    assert manifest.effective_artifact_type == "application/vnd.example.sbom.v1"


def test_effective_artifact_type_falls_back_to_config_media_type() -> None:
    obj = oci_manifest()
    obj["config"]["mediaType"] = "application/vnd.example.config.v1+json"
    manifest = parse_manifest(encode(obj), OCI_MANIFEST)
    assert manifest.artifact_type is None
    assert manifest.effective_artifact_type == "application/vnd.example.config.v1+json"


def test_effective_artifact_type_of_indexes_and_docker_manifests() -> None:
    assert parse_manifest(encode(oci_index()), OCI_INDEX).effective_artifact_type is None
    typed = oci_index() | {"artifactType": "application/vnd.example.bundle"}
    assert (
        parse_manifest(encode(typed), OCI_INDEX).effective_artifact_type
        == "application/vnd.example.bundle"
    )
    # Only OCI image manifests fall back to the config's media type.
    schema2 = parse_manifest(encode(docker_schema2()), DOCKER_SCHEMA2)
    assert schema2.effective_artifact_type is None
    listed = parse_manifest(encode(docker_list()), DOCKER_MANIFEST_LIST)
    assert listed.effective_artifact_type is None


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, OCI_INDEX])
def test_subject_is_parsed_and_kept_apart(media_type: str) -> None:
    subject = {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of("subject"),
        "size": 1234,
        "annotations": {"a": "b"},
    }
    obj = BUILDERS[media_type]() | {"subject": subject}
    manifest = parse_manifest(encode(obj), media_type)
    assert manifest.subject is not None
    assert manifest.subject.to_json() == subject
    # The subject need not exist yet: it is neither a blob nor a child.
    assert manifest.subject not in manifest.blobs
    assert manifest.subject not in manifest.manifests


def test_descriptor_of_a_manifest() -> None:
    obj = oci_manifest() | {"artifactType": "application/vnd.example.sig"}
    content = encode(obj)
    manifest = parse_manifest(content, OCI_MANIFEST)
    descriptor = manifest.descriptor()
    assert descriptor.digest == Digest.of(content)
    assert descriptor.size == len(content)
    assert descriptor.media_type == OCI_MANIFEST
    assert descriptor.artifact_type == "application/vnd.example.sig"
    assert descriptor.annotations == obj["annotations"]
    plain = parse_manifest(encode(oci_manifest()), OCI_MANIFEST).descriptor()
    assert plain.artifact_type == OCI_CONFIG


# -- properties: nothing escapes but ManifestInvalid ----------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
MANIFEST_KEYS = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "subject",
    "artifactType",
    "annotations",
    "digest",
    "size",
    "urls",
    "platform",
    "data",
]
json_objects = st.dictionaries(
    st.sampled_from(MANIFEST_KEYS) | st.text(max_size=8), json_values, max_size=6
)
content_types = st.sampled_from(
    [*GENERIC, *MEDIA_TYPES, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, "text/plain"]
) | st.text(max_size=20)


def parse_or_refuse(content: bytes, content_type: str | None) -> Manifest | None:
    try:
        manifest = parse_manifest(content, content_type)
    except ManifestInvalid:
        return None
    # Whatever is accepted is consistent with its bytes.
    assert manifest.content == content
    assert manifest.digest == Digest.of(content)
    assert manifest.media_type in MEDIA_TYPES
    assert set(manifest.blobs) <= {manifest.config, *manifest.layers} - {None}
    return manifest


@settings(max_examples=200, deadline=None)
@given(value=json_values | json_objects, content_type=st.none() | content_types)
def test_random_json_raises_only_manifest_invalid(value: Any, content_type: str | None) -> None:
    parse_or_refuse(json.dumps(value).encode(), content_type)


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=64), content_type=st.none() | content_types)
def test_random_bytes_raise_only_manifest_invalid(content: bytes, content_type: str | None) -> None:
    parse_or_refuse(content, content_type)


@st.composite
def mutated_manifests(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid manifest with one member (at any depth) replaced by random JSON."""
    media_type = draw(st.sampled_from(list(BUILDERS)))
    obj = BUILDERS[media_type]()
    node: Any = obj
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(json_values)
        break
    return obj, media_type


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated=mutated_manifests(), generic=st.booleans())
def test_mutated_manifests_raise_only_manifest_invalid(
    mutated: tuple[dict[str, Any], str], generic: bool
) -> None:
    obj, media_type = mutated
    parse_or_refuse(encode(obj), None if generic else media_type)
