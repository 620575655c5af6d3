"""The domain errors: one hierarchy for everything a registry can refuse.

Every layer raises these; only the HTTP layer maps them to OCI error codes
and statuses, in one place. Storage drivers have their own small hierarchy
(`entrepot.storage.driver.base`) that the blob layers translate into these.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base of all domain errors. `detail` is safe to show to a client."""

    message = "registry error"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message or type(self).message
        self.detail = detail
        super().__init__(self.message)


class DigestInvalid(RegistryError):
    """A digest string that does not parse, or names an unsupported algorithm."""

    message = "provided digest did not match uploaded content"

    def __init__(self, digest: str, reason: str) -> None:
        super().__init__(f"invalid digest {digest!r}: {reason}", {"digest": digest})
        self.digest = digest
        self.reason = reason


class BlobUnknown(RegistryError):
    """The blob is not known to the registry (or to this repository)."""

    message = "blob unknown to registry"

    def __init__(self, digest: object = None) -> None:
        super().__init__(None, {"digest": str(digest)} if digest is not None else None)
        self.digest = digest


class BlobUploadUnknown(RegistryError):
    """No upload session with that id (never started, cancelled or committed)."""

    message = "blob upload unknown to registry"


class BlobUploadInvalid(RegistryError):
    """The upload cannot go on as asked (wrong offset, bad order of calls)."""

    message = "blob upload invalid"


class BlobUploadOutOfOrder(BlobUploadInvalid):
    """A chunk that does not start where the upload stands."""

    message = "chunk is out of order"

    def __init__(self, offset: int, expected: int) -> None:
        super().__init__(
            f"chunk starts at {offset}, the upload is at {expected}",
            {"offset": offset, "expected": expected},
        )
        self.offset = offset
        self.expected = expected


class BlobInvalidDigest(RegistryError):
    """The content does not match the digest it was committed under."""

    message = "provided digest did not match uploaded content"

    def __init__(self, digest: object, reason: str) -> None:
        super().__init__(f"invalid digest for blob {digest}: {reason}", {"digest": str(digest)})
        self.digest = digest
        self.reason = reason


class BlobInvalidLength(RegistryError):
    """The content does not have the length it was committed under."""

    message = "provided length did not match content length"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"provided length {expected} did not match content length {actual}",
            {"expected": expected, "actual": actual},
        )
        self.expected = expected
        self.actual = actual


class BlobMounted(RegistryError):
    """Not a failure: a create-with-mount linked an existing blob instead."""

    message = "blob mounted from another repository"

    def __init__(self, source: str, descriptor: object) -> None:
        super().__init__(f"blob mounted from {source}")
        self.source = source
        self.descriptor = descriptor


class NameInvalid(RegistryError):
    """A repository name outside the OCI grammar."""

    message = "invalid repository name"

    def __init__(self, name: str, reason: str = "invalid repository name") -> None:
        super().__init__(f"invalid repository name {name!r}: {reason}", {"name": name})
        self.name = name
        self.reason = reason


class NameUnknown(RegistryError):
    """The repository is not known to the registry."""

    message = "repository name not known to registry"

    def __init__(self, name: str) -> None:
        super().__init__(None, {"name": name})
        self.name = name


class TagInvalid(RegistryError):
    """A tag outside the OCI grammar."""

    message = "invalid tag"

    def __init__(self, tag: str) -> None:
        super().__init__(f"invalid tag {tag!r}", {"tag": tag})
        self.tag = tag


class TagUnknown(RegistryError):
    """The repository has no such tag."""

    message = "manifest tag unknown"

    def __init__(self, tag: str) -> None:
        super().__init__(f"unknown tag {tag!r}", {"tag": tag})
        self.tag = tag


class ManifestUnknown(RegistryError):
    """The repository has no such manifest revision."""

    message = "manifest unknown"

    def __init__(self, reference: object = None) -> None:
        detail = {"reference": str(reference)} if reference is not None else None
        super().__init__(None, detail)
        self.reference = reference


class ManifestInvalid(RegistryError):
    """A manifest that does not parse or does not validate."""

    message = "manifest invalid"


class ManifestBlobUnknown(RegistryError):
    """A manifest references a blob (or child manifest) the repository lacks."""

    message = "blob unknown to registry"

    def __init__(self, digest: object) -> None:
        super().__init__(f"manifest references unknown blob {digest}", {"digest": str(digest)})
        self.digest = digest


class SizeInvalid(RegistryError):
    """A length that cannot be right (negative, too large, not matching)."""

    message = "provided length did not match content length"


class RangeInvalid(RegistryError):
    """A byte range that cannot be satisfied."""

    message = "requested range not satisfiable"

    def __init__(self, size: int, message: str | None = None) -> None:
        super().__init__(message)
        self.size = size


class PaginationNumberInvalid(RegistryError):
    """A page size (`n`) that is not a non-negative integer."""

    message = "invalid number of results requested"


class Unsupported(RegistryError):
    """The operation is not supported (for example, delete when disabled)."""

    message = "the operation is unsupported"


class Denied(RegistryError):
    """Access to the resource is denied."""

    message = "requested access to the resource is denied"


class Unauthorized(RegistryError):
    """Authentication is required."""

    message = "authentication required"


class TooManyRequests(RegistryError):
    """The client is over its rate limit."""

    message = "too many requests"


class ReadOnly(RegistryError):
    """The registry is in read-only mode and refuses writes."""

    message = "registry is in read-only mode"
