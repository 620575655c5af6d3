"""The one place where domain errors become HTTP: OCI error codes, statuses
and the error envelope `{"errors": [{"code", "message", "detail"}]}`."""

from __future__ import annotations

import json
from typing import Any, Final

from entrepot import errors

# Most specific classes first: lookup walks the exception's MRO.
_MAPPING: Final[dict[type[errors.RegistryError], tuple[str, int]]] = {
    errors.BlobUnknown: ("BLOB_UNKNOWN", 404),
    errors.BlobUploadUnknown: ("BLOB_UPLOAD_UNKNOWN", 404),
    errors.BlobUploadOutOfOrder: ("BLOB_UPLOAD_INVALID", 416),
    errors.BlobUploadInvalid: ("BLOB_UPLOAD_INVALID", 400),
    errors.BlobInvalidDigest: ("DIGEST_INVALID", 400),
    errors.DigestInvalid: ("DIGEST_INVALID", 400),
    errors.BlobInvalidLength: ("SIZE_INVALID", 400),
    errors.SizeInvalid: ("SIZE_INVALID", 400),
    errors.RangeInvalid: ("SIZE_INVALID", 416),
    errors.NameInvalid: ("NAME_INVALID", 400),
    errors.NameUnknown: ("NAME_UNKNOWN", 404),
    # The spec's codes have none for these two; the closest ones.
    errors.TagInvalid: ("MANIFEST_INVALID", 400),
    errors.TagUnknown: ("MANIFEST_UNKNOWN", 404),
    errors.ManifestUnknown: ("MANIFEST_UNKNOWN", 404),
    errors.ManifestInvalid: ("MANIFEST_INVALID", 400),
    errors.ManifestBlobUnknown: ("MANIFEST_BLOB_UNKNOWN", 400),
    errors.PaginationNumberInvalid: ("UNSUPPORTED", 400),
    errors.Unsupported: ("UNSUPPORTED", 405),
    errors.ReadOnly: ("UNSUPPORTED", 405),
    errors.Denied: ("DENIED", 403),
    errors.Unauthorized: ("UNAUTHORIZED", 401),
    errors.TooManyRequests: ("TOOMANYREQUESTS", 429),
}


def code_and_status(error: errors.RegistryError) -> tuple[str, int]:
    for cls in type(error).__mro__:
        found = _MAPPING.get(cls)
        if found is not None:
            return found
    return "UNKNOWN", 500


def envelope(code: str, message: str, detail: Any = None) -> bytes:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


def error_body(error: errors.RegistryError) -> tuple[int, bytes]:
    code, status = code_and_status(error)
    return status, envelope(code, error.message, error.detail)
