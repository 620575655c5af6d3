"""Descriptors: the handles by which content is read, written and referenced.

A `Descriptor` is the OCI content descriptor (image spec, "Descriptors"):
media type, digest and size, with the optional fields. Blob services take
and return descriptors; manifests are lists of them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from entrepot.digest import Digest
from entrepot.errors import DigestInvalid, ManifestInvalid

OCTET_STREAM: Final = "application/octet-stream"
INT64_MAX: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform an image in an index runs on."""

    architecture: str
    os: str
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    variant: str | None = None
    features: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any) -> Platform:
        if not isinstance(obj, Mapping):
            raise ManifestInvalid("platform must be an object")
        architecture, os_ = obj.get("architecture"), obj.get("os")
        if not isinstance(architecture, str) or not isinstance(os_, str):
            raise ManifestInvalid("platform needs string fields architecture and os")
        return cls(
            architecture=architecture,
            os=os_,
            os_version=_optional_str(obj, "os.version"),
            os_features=_str_tuple(obj, "os.features"),
            variant=_optional_str(obj, "variant"),
            features=_str_tuple(obj, "features"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version is not None:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant is not None:
            out["variant"] = self.variant
        if self.features:
            out["features"] = list(self.features)
        return out


@dataclass(frozen=True, slots=True)
class Descriptor:
    """Describes a piece of content: what it is, its digest and its size."""

    digest: Digest
    size: int
    media_type: str = OCTET_STREAM
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] | None = field(default=None, compare=False)
    platform: Platform | None = None
    artifact_type: str | None = None
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        """Build from the JSON form, raising `ManifestInvalid` on bad fields."""
        if not isinstance(obj, Mapping):
            raise ManifestInvalid("descriptor must be an object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ManifestInvalid("descriptor needs a mediaType string")
        if not isinstance(digest, str):
            raise ManifestInvalid("descriptor needs a digest string")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= INT64_MAX:
            raise ManifestInvalid("descriptor needs a non-negative integer size")
        try:
            parsed = Digest.parse(digest)
        except DigestInvalid as exc:
            raise ManifestInvalid(f"descriptor digest: {exc.reason}") from exc
        annotations = obj.get("annotations")
        if annotations is not None and not (
            isinstance(annotations, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
        ):
            raise ManifestInvalid("annotations must map strings to strings")
        platform = obj.get("platform")
        data = obj.get("data")
        decoded: bytes | None = None
        if data is not None:
            if not isinstance(data, str):
                raise ManifestInvalid("descriptor data must be base64 text")
            try:
                decoded = base64.b64decode(data, validate=True)
            except binascii.Error as exc:
                raise ManifestInvalid("descriptor data is not valid base64") from exc
        return cls(
            digest=parsed,
            size=size,
            media_type=media_type,
            urls=_str_tuple(obj, "urls"),
            annotations=dict(annotations) if annotations is not None else None,
            platform=Platform.from_json(platform) if platform is not None else None,
            artifact_type=_optional_str(obj, "artifactType"),
            data=decoded,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form, with optional fields only when set."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations is not None:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.data is not None:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        return out


def _optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestInvalid(f"{key} must be a string")
    return value


def _str_tuple(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestInvalid(f"{key} must be a list of strings")
    return tuple(value)
