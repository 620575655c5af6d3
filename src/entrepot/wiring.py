"""Everything the application needs, built from `Settings` in one place:
the storage driver, the descriptor cache, the registry and the API context.
No global state: each worker process calls `build_app` once."""

from __future__ import annotations

import logging
import re

from entrepot.api import App, Context
from entrepot.api.context import UrlPolicy
from entrepot.blobs import BlobDescriptorCacheProvider
from entrepot.config import Settings
from entrepot.memory import IdleTrim, malloc_trim
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.base import StorageDriver
from entrepot.storage.driver.factory import create_driver
from entrepot.storage.driver.instrumented import InstrumentedDriver
from entrepot.storage.registry import Registry

log = logging.getLogger(__name__)

# An unbounded in-memory cache is refused: this is its size then.
_UNBOUNDED_STAND_IN = 1_000_000


def build_driver(settings: Settings) -> StorageDriver:
    return create_driver(settings.storage.driver, settings.storage.driver_parameters())


def build_cache(settings: Settings, workers: int) -> BlobDescriptorCacheProvider | None:
    """The descriptor cache `storage.cache.blobdescriptor` names.

    An in-memory cache is per process: with several workers a delete served
    by one would not be seen by the others' caches, so it is left out then
    (the Redis cache is shared and stays correct).
    """
    cache = settings.storage.cache
    if cache.blobdescriptor == "inmemory":
        if workers > 1:
            return None
        size = cache.blobdescriptorsize or _UNBOUNDED_STAND_IN
        return InMemoryBlobDescriptorCache(size=size)
    if cache.blobdescriptor == "redis":
        # Shared by every worker and instance: correct with any number.
        from entrepot.storage.cache.redis import RedisBlobDescriptorCache

        return RedisBlobDescriptorCache.from_settings(settings.redis)
    return None


def metrics_enabled(settings: Settings) -> bool:
    """Whether Prometheus metrics are served (`http.debug` with `prometheus`)."""
    return bool(settings.http.debug.addr) and settings.http.debug.prometheus.enabled


def build_registry(settings: Settings, workers: int = 1) -> Registry:
    driver = build_driver(settings)
    if metrics_enabled(settings) or settings.log.level == "debug":
        # Storage calls measured for the metrics, traced at debug level.
        driver = InstrumentedDriver(driver)
    return Registry(
        driver,
        build_cache(settings, workers),
        delete_enabled=settings.storage.delete.enabled,
        redirect=not settings.storage.redirect.disable,
    )


def build_context(settings: Settings, workers: int = 1) -> Context:
    return Context(
        build_registry(settings, workers),
        catalog_max_entries=settings.catalog.maxentries,
        read_only=settings.storage.maintenance.readonly.enabled,
        access_log=not settings.log.accesslog.disabled,
        headers={name: ", ".join(values) for name, values in settings.http.headers.items()},
        prefix=settings.http.prefix,
        host="" if settings.http.relativeurls else (settings.http.host or ""),
        url_policy=build_url_policy(settings),
    )


def build_url_policy(settings: Settings) -> UrlPolicy | None:
    validation = settings.validation
    if validation.disabled:
        return None
    urls = validation.manifests.urls
    return UrlPolicy(
        tuple(re.compile(pattern) for pattern in urls.allow),
        tuple(re.compile(pattern) for pattern in urls.deny),
    )


def build_app(settings: Settings, workers: int = 1) -> App:
    trim = malloc_trim()
    return App(build_context(settings, workers), IdleTrim(trim) if trim is not None else None)
