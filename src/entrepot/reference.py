"""Repository names and tags, with exactly the grammar of the OCI spec.

Names: path components of lowercase alphanumerics joined by `.`, `_`, `__`
or runs of `-`, separated by `/` (distribution-spec, "Pulling manifests").
Tags: up to 128 characters of `[a-zA-Z0-9_.-]`, not starting with `.` or `-`.
Like Distribution, names are limited to 255 characters in all.
"""

from __future__ import annotations

import re
from typing import Final

from entrepot.errors import NameInvalid, TagInvalid

NAME_MAX_LENGTH: Final = 255
_COMPONENT: Final = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN: Final = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_PATTERN: Final = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise `NameInvalid`."""
    if not name:
        raise NameInvalid(name, "repository name must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise NameInvalid(name, f"repository name must not exceed {NAME_MAX_LENGTH} characters")
    if not NAME_PATTERN.fullmatch(name):
        raise NameInvalid(name, "repository name must match the OCI name grammar")
    return name


def is_valid_name(name: str) -> bool:
    return bool(name) and len(name) <= NAME_MAX_LENGTH and bool(NAME_PATTERN.fullmatch(name))


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag, else raise `TagInvalid`."""
    if not TAG_PATTERN.fullmatch(tag):
        raise TagInvalid(tag)
    return tag


def is_valid_tag(tag: str) -> bool:
    return bool(TAG_PATTERN.fullmatch(tag))
