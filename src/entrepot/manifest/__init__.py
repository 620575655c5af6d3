"""Manifests by media type: parse, validate, and list what they reference.

One module per format (OCI image manifest, OCI image index, Docker schema 2,
Docker manifest list), each registering a parser for its media type.
`parse_manifest` picks the parser from the `Content-Type` a client pushed
with (or, failing that, the manifest's own `mediaType`), and refuses what
cannot be a valid manifest with `ManifestInvalid`. Schema 1 is refused
outright.
"""

from __future__ import annotations

from entrepot.manifest import docker, oci  # noqa: F401  (registers the formats)
from entrepot.manifest.base import (
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

__all__ = [
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "DOCKER_SCHEMA2",
    "MANIFEST_MAX_SIZE",
    "MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Manifest",
    "parse_manifest",
]
