"""The HTTP API: OCI Distribution Spec 1.1 and Docker's Registry API V2, as ASGI."""

from entrepot.api.app import App
from entrepot.api.context import Context

__all__ = ["App", "Context"]
