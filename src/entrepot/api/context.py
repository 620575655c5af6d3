"""What every handler is given: the registry and the settings of the API."""

from __future__ import annotations

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
