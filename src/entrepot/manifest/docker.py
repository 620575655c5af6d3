"""Docker image manifest v2 schema 2 and manifest lists (manifest-v2-2.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from entrepot.digest import Digest
from entrepot.manifest.base import (
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA2,
    Manifest,
    descriptor_field,
    descriptor_list,
    register,
)


@register(DOCKER_SCHEMA2)
def parse_schema2(obj: Mapping[str, Any], content: bytes, digest: Digest) -> Manifest:
    return Manifest(
        media_type=DOCKER_SCHEMA2,
        content=content,
        digest=digest,
        config=descriptor_field(obj, "config", required=True),
        layers=descriptor_list(obj, "layers", required=True),
    )


@register(DOCKER_MANIFEST_LIST)
def parse_manifest_list(obj: Mapping[str, Any], content: bytes, digest: Digest) -> Manifest:
    return Manifest(
        media_type=DOCKER_MANIFEST_LIST,
        content=content,
        digest=digest,
        manifests=descriptor_list(obj, "manifests", required=True),
    )
