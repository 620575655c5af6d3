"""OCI image manifests and image indexes (image-spec v1.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from entrepot.digest import Digest
from entrepot.manifest.base import (
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    annotations_field,
    descriptor_field,
    descriptor_list,
    optional_str,
    register,
)


@register(OCI_MANIFEST)
def parse_image_manifest(obj: Mapping[str, Any], content: bytes, digest: Digest) -> Manifest:
    return Manifest(
        media_type=OCI_MANIFEST,
        content=content,
        digest=digest,
        config=descriptor_field(obj, "config", required=True),
        layers=descriptor_list(obj, "layers", required=True),
        subject=descriptor_field(obj, "subject", required=False),
        artifact_type=optional_str(obj, "artifactType"),
        annotations=annotations_field(obj),
    )


@register(OCI_INDEX)
def parse_image_index(obj: Mapping[str, Any], content: bytes, digest: Digest) -> Manifest:
    return Manifest(
        media_type=OCI_INDEX,
        content=content,
        digest=digest,
        manifests=descriptor_list(obj, "manifests", required=True),
        subject=descriptor_field(obj, "subject", required=False),
        artifact_type=optional_str(obj, "artifactType"),
        annotations=annotations_field(obj),
    )
