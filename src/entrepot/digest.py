"""Content digests: `alg:hex` identifiers, strictly parsed, and digesters.

A `Digest` names content by its hash (OCI image spec, "Digests"). Only the
registered algorithms `sha256` (canonical) and `sha512` are accepted; both
must be lowercase hex of the exact length. A `Digester` hashes a stream as it
passes and can hand out its state in the format Distribution stores, so an
upload can be resumed by another process (see `entrepot.hashstate`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from entrepot.errors import DigestInvalid

SHA256: Final = "sha256"
SHA512: Final = "sha512"
CANONICAL: Final = SHA256

_HEX_LENGTHS: Final = {SHA256: 64, SHA512: 128}
# The grammar of the OCI image spec: algorithm ":" encoded.
_GRAMMAR: Final = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_LOWER_HEX: Final = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated content digest such as `sha256:e3b0...`."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `alg:hex`, raising `DigestInvalid` with the reason."""
        if not isinstance(text, str):
            raise DigestInvalid(str(text), "a digest must be a string")
        if not _GRAMMAR.fullmatch(text):
            raise DigestInvalid(text, "not of the form algorithm:encoded")
        algorithm, _, encoded = text.partition(":")
        length = _HEX_LENGTHS.get(algorithm)
        if length is None:
            raise DigestInvalid(text, f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != length or not _LOWER_HEX.fullmatch(encoded):
            raise DigestInvalid(
                text, f"{algorithm} wants {length} lowercase hexadecimal characters"
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        """The digest of `data`."""
        if algorithm not in _HEX_LENGTHS:
            raise DigestInvalid(f"{algorithm}:", f"unsupported digest algorithm {algorithm!r}")
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"


def is_supported(algorithm: str) -> bool:
    """Whether entrepot can hash with `algorithm`."""
    return algorithm in _HEX_LENGTHS


EMPTY_SHA256: Final = Digest.of(b"")
