"""What every handler is given: the registry and the settings of the API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from entrepot.storage.registry import Registry


@dataclass(frozen=True, slots=True)
class Context:
    registry: Registry
    catalog_max_entries: int = 1000
    read_only: bool = False
    access_log: bool = True
    # `http.headers`: added to every response.
    headers: Mapping[str, str] = field(default_factory=dict)
    # `http.prefix`: the path the API is served under ("/registry/").
    prefix: str = ""
    # `http.host` (unless `relativeurls`): makes Location headers absolute.
    host: str = ""
    # `validation.manifests.urls`: None when validation is disabled.
    url_policy: UrlPolicy | None = field(default_factory=lambda: UrlPolicy((), ()))

    def url(self, path: str) -> str:
        """The URL of `path` (which starts with "/v2/") for a client."""
        return f"{self.host.rstrip('/')}{self.prefix.rstrip('/')}{path}"


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which foreign-layer URLs a pushed manifest may carry (Distribution's
    rule: each must match an `allow` pattern and none a `deny` one; with no
    `allow` pattern, none may)."""

    allow: tuple[re.Pattern[str], ...]
    deny: tuple[re.Pattern[str], ...]

    def allows(self, url: str) -> bool:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https") or "#" in url:
            return False
        if not any(pattern.search(url) for pattern in self.allow):
            return False
        return not any(pattern.search(url) for pattern in self.deny)
