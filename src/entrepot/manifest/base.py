"""The manifest model and the dispatch from media type to format.

A `Manifest` keeps the exact bytes it was parsed from (a manifest's digest is
that of its bytes, so it is never re-serialized) and the descriptors it
references: `blobs` that must exist in the repository (config and layers)
and `manifests` (an index's children). `subject` is kept apart: the spec lets
a manifest name a subject the registry does not have yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import ManifestInvalid

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA2: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_EMPTY_CONFIG: Final = "application/vnd.oci.empty.v1+json"

# The distribution spec's limit for a manifest body (4 MiB).
MANIFEST_MAX_SIZE: Final = 4 * 1024 * 1024

_DOCKER: Final = frozenset({DOCKER_SCHEMA2, DOCKER_MANIFEST_LIST})
_GENERIC: Final = frozenset({"", "application/json", "application/octet-stream", "*/*"})


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, validated manifest."""

    media_type: str
    content: bytes = field(repr=False)
    digest: Digest
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = field(default=None, compare=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Blobs that must be in the repository: config and distributable layers."""
        config = (self.config,) if self.config is not None else ()
        # Foreign layers (with `urls`) are fetched from elsewhere, as
        # Distribution allows; everything else must be pushed first.
        return config + tuple(layer for layer in self.layers if not layer.urls)

    def descriptor(self) -> Descriptor:
        """This manifest as a descriptor (as the referrers API lists it)."""
        return Descriptor(
            digest=self.digest,
            size=len(self.content),
            media_type=self.media_type,
            annotations=self.annotations,
            artifact_type=self.effective_artifact_type,
        )

    @property
    def effective_artifact_type(self) -> str | None:
        """`artifactType`, or for an image manifest its config's media type."""
        if self.artifact_type is not None:
            return self.artifact_type
        if self.media_type == OCI_MANIFEST and self.config is not None:
            return self.config.media_type
        return None


Parser = Callable[[Mapping[str, Any], bytes, Digest], Manifest]
_PARSERS: dict[str, Parser] = {}


def register(media_type: str) -> Callable[[Parser], Parser]:
    def decorate(parser: Parser) -> Parser:
        _PARSERS[media_type] = parser
        return parser

    return decorate


def parse_manifest(content: bytes, content_type: str | None) -> Manifest:
    """Parse and validate a pushed manifest.

    The format is the one `content_type` names; a missing or generic
    `content_type` falls back to the manifest's own `mediaType` (and, for
    OCI content that leaves it out, to the shape of the document).
    """
    if len(content) > MANIFEST_MAX_SIZE:
        raise ManifestInvalid(f"manifest is larger than {MANIFEST_MAX_SIZE} bytes")
    try:
        # UTF-8 only and strict JSON, as Go's encoding/json (Distribution's
        # and containerd's) reads it: what clients cannot read is refused.
        obj = json.loads(content.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    declared = obj.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    media_type = _media_type(content_type)
    version = obj.get("schemaVersion")
    if version == 1 or {media_type, declared} & {DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED}:
        raise ManifestInvalid("schema 1 manifests are not supported; push schema 2 or OCI")
    if media_type in _GENERIC:
        if declared is not None:
            media_type = declared
        else:
            media_type = OCI_INDEX if "manifests" in obj else OCI_MANIFEST
    if media_type in _DOCKER and declared != media_type:
        raise ManifestInvalid(f"a {media_type} manifest must declare its mediaType")
    if declared is not None and declared != media_type:
        raise ManifestInvalid(
            f"mediaType {declared!r} in the manifest does not match Content-Type {media_type!r}"
        )
    parser = _PARSERS.get(media_type)
    if parser is None:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version != 2:
        raise ManifestInvalid("schemaVersion must be the integer 2")
    return parser(obj, content, Digest.of(content))


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (parameters dropped)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


MEDIA_TYPES: Final = (OCI_MANIFEST, OCI_INDEX, DOCKER_SCHEMA2, DOCKER_MANIFEST_LIST)


def descriptor_field(obj: Mapping[str, Any], key: str, required: bool) -> Descriptor | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ManifestInvalid(f"manifest needs a {key!r} descriptor")
        return None
    try:
        return Descriptor.from_json(value)
    except ManifestInvalid as exc:
        raise ManifestInvalid(f"{key}: {exc.message}") from exc


def descriptor_list(obj: Mapping[str, Any], key: str, required: bool) -> tuple[Descriptor, ...]:
    value = obj.get(key)
    if value is None:
        if required:
            raise ManifestInvalid(f"manifest needs a {key!r} array")
        return ()
    if not isinstance(value, list):
        raise ManifestInvalid(f"{key} must be an array")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(Descriptor.from_json(item))
        except ManifestInvalid as exc:
            raise ManifestInvalid(f"{key}[{i}]: {exc.message}") from exc
    return tuple(out)


def optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestInvalid(f"{key} must be a string")
    return value


def annotations_field(obj: Mapping[str, Any]) -> Mapping[str, str] | None:
    value = obj.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestInvalid("annotations must map strings to strings")
    return value
