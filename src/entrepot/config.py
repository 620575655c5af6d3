"""Distribution's ``config.yml``, read into typed and validated settings.

entrepot reads the configuration files of CNCF Distribution, version "0.1":
the same keys, defaults and ``REGISTRY_...`` environment overrides.
`load_config` parses a file, applies the environment, checks everything and
returns frozen `Settings` (one pydantic model per section) together with the
warnings an operator should see: unknown keys, deprecated spellings, and the
sections of Distribution that entrepot does not implement yet, which are
reported, never silently ignored. Anything wrong is a single `ConfigError`
that names the key and where it came from (file line or variable).
`embedded_default` is what entrepot runs with when given no file; `masked`
gives the effective settings with secrets hidden, ready to print.

Environment overrides
---------------------
``REGISTRY_<PATH>=<value>`` overrides one key: for example
``REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv`` sets
``storage.filesystem.rootdirectory``. The rule is Distribution's:

1. Variables are applied after the file, in the lexical order of their names,
   so ``REGISTRY_STORAGE`` comes before ``REGISTRY_STORAGE_S3_BUCKET``.
2. The name after ``REGISTRY_`` is split at every ``_`` and each part goes
   one level down, matched case-insensitively against the keys entrepot
   knows. In free-form mappings (``log.fields``, ``http.headers``) a part
   matches an existing key case-insensitively, or creates a lower-case one.
   A number indexes a list (``REGISTRY_HTTP_TLS_CLIENTCAS_0``); the index
   equal to the length appends.
3. As ``_`` separates levels, a key that contains ``_`` itself (azure's
   ``max_retries`` and ``retry_delay``) reads as nesting. Distribution always
   descends, so it cannot set them; entrepot first tries the longest run of
   parts joined by ``_`` that names a key it knows, so
   ``REGISTRY_STORAGE_AZURE_MAX_RETRIES`` sets ``storage.azure.max_retries``.
   Names matching no key are not guessed: they get a warning and are ignored
   (Kubernetes defines ``REGISTRY_PORT`` for a service named ``registry``).
4. A key holding text takes the value verbatim (``REGISTRY_HTTP_SECRET=0123``
   is the text "0123"); any other value is read as YAML: ``true``, ``50``,
   ``10s``, ``[a, b]``, ``{key: value}``. A section set as a whole is
   replaced as a whole.
5. ``REGISTRY_STORAGE=<driver>`` selects the storage driver: the file's driver
   section is dropped (kept if it names the same driver) and nothing else is
   replaced; ``delete``, ``cache``, ``maintenance`` and ``redirect`` stay.
   ``REGISTRY_STORAGE_<DRIVER>_<KEY>`` changes one parameter of the driver in
   use; naming another driver is an error (Distribution would end up with
   two drivers): select it with ``REGISTRY_STORAGE`` first.
6. Overriding one spelling of a deprecated key (``layerinfo`` and
   ``blobdescriptor``, ``loglevel`` and ``log.level``, ``validation.enabled``
   and ``validation.disabled``) drops the other one from the file.

Without a file, the overrides apply to the embedded default.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "CIPHER_SUITES",
    "CONFIG_VERSION",
    "EMBEDDED_DEFAULT_YAML",
    "ENV_PREFIX",
    "MASK",
    "AccessLogSettings",
    "AzureCredentials",
    "AzureSettings",
    "CacheSettings",
    "CatalogSettings",
    "ConfigError",
    "DebugSettings",
    "DeleteSettings",
    "DriverSettings",
    "Duration",
    "FilesystemSettings",
    "H2CSettings",
    "HTTP2Settings",
    "HealthSettings",
    "HttpSettings",
    "InMemorySettings",
    "LoadedConfig",
    "LogSettings",
    "MaintenanceSettings",
    "ManifestValidationSettings",
    "PrometheusSettings",
    "ReadOnlySettings",
    "RedirectSettings",
    "RedisPoolSettings",
    "RedisSettings",
    "RedisTLSSettings",
    "S3Settings",
    "Settings",
    "StorageDriverHealthSettings",
    "StorageSettings",
    "TLSSettings",
    "URLValidationSettings",
    "UploadPurgingSettings",
    "ValidationSettings",
    "embedded_default",
    "format_duration",
    "load_config",
    "masked",
    "parse_duration",
    "split_host_port",
]

CONFIG_VERSION: Final = "0.1"
ENV_PREFIX: Final = "REGISTRY_"
MASK: Final = "********"

_MiB: Final = 1024 * 1024
_GiB: Final = 1024 * _MiB


class ConfigError(Exception):
    """The configuration cannot be used. `str()` is one message naming the key
    and its origin; `problems` lists every problem found (usually one)."""

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        message = problems[0]
        if len(problems) > 1:
            message += "; also: " + "; ".join(problems[1:])
        super().__init__(message)


# Durations -------------------------------------------------------------------

_NS_PER_UNIT: Final[Mapping[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5, micro sign
    "μs": 1_000,  # U+03BC, Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_UNITS: Final = "ns|us|µs|μs|ms|s|m|h"
_NUMBER: Final = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_DURATION: Final = re.compile(rf"[-+]?(?:{_NUMBER}(?:{_UNITS}))+")
_DURATION_PART: Final = re.compile(rf"({_NUMBER})({_UNITS})")
_MAX_NANOSECONDS: Final = 2**63 - 1  # Go's time.Duration is an int64
_DURATION_EXAMPLE: Final = "a duration such as 10s, 1m30s or 168h"


def parse_duration(value: str | int) -> timedelta:
    """A duration as Distribution reads it (Go's `time.ParseDuration`):
    ``"300ms"``, ``"1.5h"``, ``"2h45m"``; a bare integer counts nanoseconds.

    Precision is the microsecond of `timedelta` (nanoseconds are rounded).
    Raises `ValueError` with a message fit for a user.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {_describe(value)}")
    if isinstance(value, int):
        nanoseconds = value
    else:
        negative = value.startswith("-")
        body = value[1:] if value.startswith(("-", "+")) else value
        if body == "0":
            nanoseconds = 0
        elif _DURATION.fullmatch(value) is None:
            raise ValueError(f"expected {_DURATION_EXAMPLE}, got {_describe(value)}")
        else:
            total = sum(
                (
                    Fraction(number) * _NS_PER_UNIT[unit]
                    for number, unit in _DURATION_PART.findall(body)
                ),
                Fraction(0),
            )
            nanoseconds = -int(total) if negative else int(total)  # Go truncates
    if abs(nanoseconds) > _MAX_NANOSECONDS:
        raise ValueError(f"duration out of range, got {_describe(value)}")
    microseconds, rest = divmod(abs(nanoseconds), 1000)
    if rest >= 500:
        microseconds += 1
    return timedelta(microseconds=-microseconds if nanoseconds < 0 else microseconds)


def format_duration(value: timedelta) -> str:
    """`value` the way Distribution's files write durations, and
    `parse_duration` reads them back: ``"168h"``, ``"1m30s"``, ``"100ms"``."""
    total = value // timedelta(microseconds=1)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1_000_000:
        return f"{sign}{total // 1000}ms" if total % 1000 == 0 else f"{sign}{total}us"
    hours, total = divmod(total, 3_600_000_000)
    minutes, total = divmod(total, 60_000_000)
    seconds, micro = divmod(total, 1_000_000)
    text = sign + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if seconds or micro:
        text += str(seconds) + (f".{micro:06d}".rstrip("0") if micro else "") + "s"
    return text


def _to_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | str) and not isinstance(value, bool):
        duration = parse_duration(value)
    else:
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {_describe(value)}")
    if duration < timedelta(0):
        raise ValueError(f"expected a duration that is not negative, got {_describe(value)}")
    return duration


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]
"""A non-negative duration, written ``10s``, ``1m30s``, ``168h`` or in nanoseconds."""


def _describe(value: object) -> str:
    """`value` as a user wrote it, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


# The settings model ----------------------------------------------------------


class _Section(BaseModel):
    """Base of every section: immutable, and strict about its keys (unknown
    keys are reported and removed before validation, see `_prune`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AccessLogSettings(_Section):
    disabled: StrictBool = False


class LogSettings(_Section):
    """``log``: level, line format and fields added to every line."""

    level: Literal["error", "warn", "info", "debug"] = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    fields: Mapping[str, Any] = Field(default_factory=dict)
    accesslog: AccessLogSettings = AccessLogSettings()

    @field_validator("level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        # Distribution lower-cases the level before checking it.
        if isinstance(value, str) and value.lower() in ("error", "warn", "info", "debug"):
            return value.lower()
        return value


class FilesystemSettings(_Section):
    """``storage.filesystem``: the local disk."""

    rootdirectory: str = Field(default="/var/lib/registry", min_length=1)
    maxthreads: StrictInt = Field(default=100, ge=25)


class InMemorySettings(_Section):
    """``storage.inmemory``: volatile, for tests; takes no parameters."""


class S3Settings(_Section):
    """``storage.s3``: Amazon S3 and compatible services (every key of
    Distribution's driver; defaults are Distribution's)."""

    region: str
    bucket: str = Field(min_length=1)
    accesskey: str | None = None
    secretkey: str | None = None
    regionendpoint: str | None = None
    redirectendpoint: str | None = None
    forcepathstyle: StrictBool = False
    encrypt: StrictBool = False
    keyid: str | None = None
    secure: StrictBool = True
    skipverify: StrictBool = False
    v4auth: StrictBool = True
    chunksize: StrictInt = Field(default=10 * _MiB, ge=5 * _MiB, le=5 * _GiB)
    multipartcopychunksize: StrictInt = Field(default=32 * _MiB, ge=5 * _MiB, le=5 * _GiB)
    multipartcopymaxconcurrency: StrictInt = Field(default=100, ge=1)
    multipartcopythresholdsize: StrictInt = Field(default=32 * _MiB, ge=0, le=5 * _GiB)
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    useragent: str | None = None
    usedualstack: StrictBool = False
    accelerate: StrictBool = False
    usefipsendpoint: StrictBool = False
    objectacl: str = "private"
    loglevel: str = "off"


class AzureCredentials(_Section):
    """``storage.azure.credentials``: how to authenticate to Azure."""

    type: str  # client_secret, shared_key or default_credentials
    clientid: str | None = None
    tenantid: str | None = None
    secret: str | None = None


class AzureSettings(_Section):
    """``storage.azure``: Azure Blob Storage."""

    accountname: str
    container: str = Field(min_length=1)
    accountkey: str | None = None
    credentials: AzureCredentials | None = None
    # Distribution 3's keys: the account's blob endpoint (by default
    # https://<accountname>.blob.<realm>; an Azurite server is another), and
    # a connection string, as Azure's tools print it, in place of the key.
    serviceurl: str | None = None
    connectionstring: str | None = None
    rootdirectory: str = ""
    realm: str = "core.windows.net"
    max_retries: StrictInt = Field(default=5, ge=-1)
    retry_delay: Duration = timedelta(milliseconds=100)

    @model_validator(mode="after")
    def _authenticated(self) -> Self:
        if self.accountkey is None and self.credentials is None and self.connectionstring is None:
            raise ValueError("give accountkey, credentials or connectionstring")
        return self


class DeleteSettings(_Section):
    enabled: StrictBool = False


class RedirectSettings(_Section):
    disable: StrictBool = False


class CacheSettings(_Section):
    """``storage.cache``: the blob descriptor cache (``layerinfo`` is the
    deprecated name of ``blobdescriptor``); none when not set."""

    blobdescriptor: Literal["inmemory", "redis"] | None = None
    blobdescriptorsize: StrictInt = Field(default=10000, ge=0)  # 0: unbounded


class UploadPurgingSettings(_Section):
    """``storage.maintenance.uploadpurging``: removal of abandoned uploads."""

    enabled: StrictBool = True
    age: Duration = timedelta(hours=168)
    interval: Duration = timedelta(hours=24)
    dryrun: StrictBool = False

    @model_validator(mode="after")
    def _positive_interval(self) -> Self:
        if self.enabled and not self.interval:
            raise ValueError("interval must be more than 0s while upload purging is enabled")
        return self


class ReadOnlySettings(_Section):
    enabled: StrictBool = False


class MaintenanceSettings(_Section):
    uploadpurging: UploadPurgingSettings = UploadPurgingSettings()
    readonly: ReadOnlySettings = ReadOnlySettings()


DriverSettings = FilesystemSettings | InMemorySettings | S3Settings | AzureSettings


class StorageSettings(_Section):
    """``storage``: exactly one driver section, and the storage options."""

    DRIVERS: ClassVar[tuple[str, ...]] = ("azure", "filesystem", "inmemory", "s3")

    filesystem: FilesystemSettings | None = None
    inmemory: InMemorySettings | None = None
    s3: S3Settings | None = None
    azure: AzureSettings | None = None
    delete: DeleteSettings = DeleteSettings()
    redirect: RedirectSettings = RedirectSettings()
    cache: CacheSettings = CacheSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()

    @model_validator(mode="after")
    def _one_driver(self) -> Self:
        configured = [name for name in self.DRIVERS if getattr(self, name) is not None]
        if len(configured) != 1:
            raise ValueError(_driver_count_problem(configured))
        return self

    @property
    def driver(self) -> str:
        """The driver's name, as `entrepot.storage.driver.factory.create_driver` takes it."""
        return next(name for name in self.DRIVERS if getattr(self, name) is not None)

    @property
    def driver_settings(self) -> DriverSettings:
        settings: DriverSettings = getattr(self, self.driver)
        return settings

    def driver_parameters(self) -> dict[str, Any]:
        """The driver's parameters as a plain mapping, for `create_driver`."""
        return self.driver_settings.model_dump()


def _driver_count_problem(drivers: Sequence[object]) -> str:
    if not drivers:
        return f"no storage driver configured; add one of: {', '.join(StorageSettings.DRIVERS)}"
    names = ", ".join(str(name) for name in drivers)
    return f"exactly one storage driver must be configured, got {len(drivers)}: {names}"


_CLIENT_AUTH = Literal[
    "request-client-cert",
    "require-any-client-cert",
    "verify-client-cert-if-given",
    "require-and-verify-client-cert",
]

# The cipher suites Distribution accepts (Go's names).
CIPHER_SUITES: Final = frozenset(
    {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
)


class TLSSettings(_Section):
    """``http.tls``: serve HTTPS when `certificate` (and `key`) are set."""

    certificate: str | None = None
    key: str | None = None
    clientcas: tuple[str, ...] = ()
    clientauth: _CLIENT_AUTH = "require-and-verify-client-cert"
    minimumtls: Literal["tls1.0", "tls1.1", "tls1.2", "tls1.3"] = "tls1.2"
    ciphersuites: tuple[str, ...] = ()  # empty: Distribution's default list

    @field_validator("ciphersuites")
    @classmethod
    def _known_suites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [suite for suite in value if suite not in CIPHER_SUITES]
        if unknown:
            raise ValueError(f"unknown cipher suite {unknown[0]!r}")
        return value

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.certificate is None) != (self.key is None):
            missing = "key" if self.key is None else "certificate"
            raise ValueError(f"certificate and key go together; {missing} is missing")
        return self

    @property
    def enabled(self) -> bool:
        return self.certificate is not None


class PrometheusSettings(_Section):
    enabled: StrictBool = False
    path: str = "/metrics"


class DebugSettings(_Section):
    """``http.debug``: the debug server, off unless `addr` is set."""

    addr: str | None = None
    prometheus: PrometheusSettings = PrometheusSettings()


class HTTP2Settings(_Section):
    disabled: StrictBool = False


class H2CSettings(_Section):
    enabled: StrictBool = False


class HttpSettings(_Section):
    """``http``: the server. Instances sharing storage must share `secret`
    (upload state is signed with it); none means one generated at start."""

    # `net` first: checking `addr` depends on it.
    net: Literal["tcp", "unix"] = "tcp"
    addr: str = Field(default=":5000", min_length=1)
    prefix: str = ""
    host: str | None = None
    secret: str | None = None
    relativeurls: StrictBool = False
    draintimeout: Duration = timedelta(0)
    headers: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)
    tls: TLSSettings = TLSSettings()
    debug: DebugSettings = DebugSettings()
    http2: HTTP2Settings = HTTP2Settings()
    h2c: H2CSettings = H2CSettings()

    @field_validator("net", mode="before")
    @classmethod
    def _default_net(cls, value: object) -> object:
        return "tcp" if value == "" else value  # Distribution: empty means tcp

    @field_validator("addr")
    @classmethod
    def _listen_address(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("net", "tcp") == "tcp":
            split_host_port(value)  # a unix socket's addr is a path
        return value

    @field_validator("prefix")
    @classmethod
    def _slashes(cls, value: str) -> str:
        if value and not (value.startswith("/") and value.endswith("/")):
            raise ValueError(f"expected a path starting and ending with /, got {value!r}")
        return value

    @field_validator("host")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"expected an absolute URL such as https://registry.example.com, got {value!r}"
                )
        return value


def split_host_port(addr: str) -> tuple[str, int]:
    """HOST and PORT of a listen address as Go writes it: ``:5000`` (every
    interface: empty host), ``localhost:5000``, ``[::1]:5000``. Raises
    `ValueError` with a message fit for a user."""
    host, colon, port = addr.rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT with a port from 0 to 65535, got {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets, as in [::1]:5000; got {addr!r}")
    return host, int(port)


class StorageDriverHealthSettings(_Section):
    """``health.storagedriver``: a periodic check of the storage driver."""

    enabled: StrictBool = False
    interval: Duration = timedelta(seconds=10)
    threshold: StrictInt = Field(default=1, ge=0)

    @field_validator("interval")
    @classmethod
    def _default_interval(cls, value: timedelta) -> timedelta:
        return value or timedelta(seconds=10)  # as Distribution: 0 means the default

    @field_validator("threshold")
    @classmethod
    def _one_failure(cls, value: int) -> int:
        return max(value, 1)  # as Distribution: 0 means a single failure


class HealthSettings(_Section):
    storagedriver: StorageDriverHealthSettings = StorageDriverHealthSettings()


class URLValidationSettings(_Section):
    """``validation.manifests.urls``: regular expressions for foreign layer
    URLs in pushed manifests (none allowed when `allow` is empty)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @field_validator("allow", "deny")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return value


class ManifestValidationSettings(_Section):
    urls: URLValidationSettings = URLValidationSettings()


class ValidationSettings(_Section):
    """``validation`` (``enabled`` is the deprecated opposite of ``disabled``)."""

    disabled: StrictBool = False
    manifests: ManifestValidationSettings = ManifestValidationSettings()


class CatalogSettings(_Section):
    maxentries: StrictInt = 1000

    @field_validator("maxentries")
    @classmethod
    def _default_entries(cls, value: int) -> int:
        return value if value > 0 else 1000  # as Distribution


class RedisPoolSettings(_Section):
    maxidle: StrictInt | None = Field(default=None, ge=0)
    maxactive: StrictInt | None = Field(default=None, ge=0)
    idletimeout: Duration | None = None


class RedisTLSSettings(_Section):
    """``redis.tls``: on with ``enabled: true``, or when a certificate or CA is given."""

    enabled: StrictBool = False
    certificate: str | None = None
    key: str | None = None
    rootcas: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _enabled_by_files(cls, data: object) -> object:
        files = ("certificate", "key", "rootcas")
        if isinstance(data, dict) and "enabled" not in data and any(map(data.get, files)):
            return {**data, "enabled": True}
        return data

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.certificate is None) != (self.key is None):
            missing = "key" if self.key is None else "certificate"
            raise ValueError(f"certificate and key go together; {missing} is missing")
        return self


class RedisSettings(_Section):
    """``redis``: the shared descriptor cache. Both spellings are read:
    Distribution 2's (``addr``, ``pool.maxidle``, ...) and 3's (``addrs``,
    ``maxidleconns``, ...); the properties give the effective values."""

    addr: str | None = None
    addrs: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None
    db: StrictInt = Field(default=0, ge=0)
    dialtimeout: Duration | None = None
    readtimeout: Duration | None = None
    writetimeout: Duration | None = None
    pool: RedisPoolSettings = RedisPoolSettings()
    maxidleconns: StrictInt | None = Field(default=None, ge=0)
    poolsize: StrictInt | None = Field(default=None, ge=0)
    connmaxidletime: Duration | None = None
    tls: RedisTLSSettings = RedisTLSSettings()

    @model_validator(mode="after")
    def _one_spelling(self) -> Self:
        if self.addr is not None and self.addrs:
            raise ValueError("give addr or addrs, not both")
        for old, new in (
            ("maxidle", "maxidleconns"),
            ("maxactive", "poolsize"),
            ("idletimeout", "connmaxidletime"),
        ):
            if getattr(self.pool, old) is not None and getattr(self, new) is not None:
                raise ValueError(f"pool.{old} and {new} are the same setting; give one")
        return self

    @property
    def addresses(self) -> tuple[str, ...]:
        """``host:port`` of each server; empty when Redis is not configured."""
        return self.addrs or ((self.addr,) if self.addr else ())

    @property
    def max_idle(self) -> int | None:
        return self.maxidleconns if self.maxidleconns is not None else self.pool.maxidle

    @property
    def max_active(self) -> int | None:
        return self.poolsize if self.poolsize is not None else self.pool.maxactive

    @property
    def idle_timeout(self) -> timedelta | None:
        return self.connmaxidletime if self.connmaxidletime is not None else self.pool.idletimeout


class Settings(_Section):
    """A whole configuration: the sections of Distribution's config.yml that
    entrepot implements, with Distribution's defaults."""

    version: Literal["0.1"] = CONFIG_VERSION
    log: LogSettings = LogSettings()
    storage: StorageSettings
    http: HttpSettings = HttpSettings()
    health: HealthSettings = HealthSettings()
    validation: ValidationSettings = ValidationSettings()
    catalog: CatalogSettings = CatalogSettings()
    redis: RedisSettings = RedisSettings()

    @model_validator(mode="after")
    def _redis_for_cache(self) -> Self:
        if self.storage.cache.blobdescriptor == "redis" and not self.redis.addresses:
            raise ValueError(
                "storage.cache.blobdescriptor: redis needs a redis section with addr (or addrs)"
            )
        return self


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """What `load_config` returns: the settings, the warnings to show the
    operator, and the file read (None for the embedded default)."""

    settings: Settings
    warnings: tuple[str, ...] = ()
    source: str | None = None


# What entrepot knows of Distribution's configuration, besides the model ------

# Sections Distribution has and entrepot does not implement yet: a warning.
_UNSUPPORTED: Final = frozenset(
    {
        ("auth",),
        ("compatibility",),
        ("middleware",),
        ("notifications",),
        ("policy",),
        ("proxy",),
        ("reporting",),
        ("tags",),
        ("log", "hooks"),
        ("log", "reportcaller"),
        ("storage", "tag"),
        ("http", "tls", "letsencrypt"),
        ("health", "file"),
        ("health", "http"),
        ("health", "tcp"),
        ("validation", "manifests", "indexes"),
    }
)
# Distribution's other storage drivers: an error, as nothing else can serve.
_UNSUPPORTED_DRIVERS: Final = frozenset({"gcs", "oss", "swift"})
# Keys of `storage` that are not drivers (Distribution's list).
_STORAGE_OPTIONS: Final = frozenset({"delete", "redirect", "cache", "maintenance", "tag"})

_KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Deprecated:
    """A deprecated key and the key that replaced it (`negate` if it means the opposite)."""

    path: tuple[str, ...]
    replacement: tuple[str, ...]
    negate: bool = False


_DEPRECATED: Final = (
    _Deprecated(("loglevel",), ("log", "level")),
    _Deprecated(("storage", "cache", "layerinfo"), ("storage", "cache", "blobdescriptor")),
    _Deprecated(("validation", "enabled"), ("validation", "disabled"), negate=True),
)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a key holds, as far as overrides and pruning care."""

    kind: Literal["model", "mapping", "list", "text", "value", "any"]
    model: type[_Section] | None = None
    item: _Shape | None = None


def _shape(annotation: object) -> _Shape:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _shape(args[0])
    if origin is typing.Union or origin is types.UnionType:
        members = [arg for arg in args if arg is not type(None)]
        return _shape(members[0]) if len(members) == 1 else _Shape("any")
    if origin is Literal:
        return _Shape("text") if all(isinstance(arg, str) for arg in args) else _Shape("value")
    if origin is dict or origin is Mapping:
        return _Shape("mapping", item=_shape(args[1]))
    if origin is tuple or origin is list:
        return _Shape("list", item=_shape(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, _Section):
        return _Shape("model", model=annotation)
    if annotation is str:
        return _Shape("text")
    if annotation is Any:
        return _Shape("any")
    return _Shape("value")


@functools.cache
def _field_shapes(model: type[_Section]) -> Mapping[str, _Shape]:
    return {name: _shape(info.annotation) for name, info in model.model_fields.items()}


def _shape_at(path: Sequence[str]) -> _Shape:
    shape = _Shape("model", model=Settings)
    for key in path:
        assert shape.model is not None
        shape = _field_shapes(shape.model)[key]
    return shape


def _env_keys(model: type[_Section], path: _KeyPath) -> Mapping[str, _Shape]:
    """The keys an override can name in `model` at `path`, deprecated ones included."""
    keys = dict(_field_shapes(model))
    for old in _DEPRECATED:
        if old.path[:-1] == path:
            keys[old.path[-1]] = _shape_at(old.replacement)
    return keys


def _dotted(path: _KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _suggestion(key: str, known: Sequence[str]) -> str:
    folded = [name for name in known if name.lower() == key.lower()]
    close = folded or difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _lookup(root: dict[str, Any], path: Sequence[str], *, create: bool = False) -> Any:
    """The value at `path` in a raw document (None if absent); with `create`,
    missing or empty mappings on the way are created."""
    node: Any = root
    for key in path:
        if not isinstance(node, dict):
            return None
        if create and node.get(key) is None:
            node[key] = {}
        node = node.get(key)
    return node


# Loading ---------------------------------------------------------------------


@dataclass(slots=True)
class _Loading:
    """The state of one load: where keys came from, and the warnings so far."""

    origin: str
    marks: dict[_KeyPath, int] = field(default_factory=dict)  # key -> line in the file
    sources: dict[_KeyPath, str] = field(default_factory=dict)  # key -> environment variable
    warnings: list[str] = field(default_factory=list)

    def where(self, path: _KeyPath) -> str:
        for length in range(len(path), 0, -1):
            if path[:length] in self.sources:
                return f" (from {self.sources[path[:length]]})"
        for length in range(len(path), 0, -1):
            if path[:length] in self.marks:
                return f" ({self.origin}, line {self.marks[path[:length]]})"
        for key, variable in self.sources.items():  # a section only the environment made
            if path and key[: len(path)] == path:
                return f" (from {variable})"
        return f" ({self.origin})"

    def problem(self, path: _KeyPath, message: str, *, named: bool = True) -> str:
        prefix = f"{_dotted(path)}: " if path and named else ""
        return f"{prefix}{message}{self.where(path)}"

    def error(self, path: _KeyPath, message: str, *, named: bool = True) -> ConfigError:
        return ConfigError(self.problem(path, message, named=named))

    def warn(self, path: _KeyPath, message: str) -> None:
        self.warnings.append(f"{message}{self.where(path)}")


def load_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> LoadedConfig:
    """Read the configuration file at `path` (the embedded default when None),
    apply the ``REGISTRY_...`` overrides found in `environ`, and check it all.

    Raises `ConfigError` for anything that cannot be used.
    """
    if path is None:
        return _load(EMBEDDED_DEFAULT_YAML, "embedded default", environ, None)
    origin = os.fspath(path)
    try:
        text = Path(origin).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {origin}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {origin}: {exc.strerror or exc}") from None
    return _load(text, origin, environ, origin)


def _load(text: str, origin: str, environ: Mapping[str, str], source: str | None) -> LoadedConfig:
    loading = _Loading(origin)
    document = _parse(text, loading)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"expected a mapping of sections at the top level, got {_describe(document)} ({origin})"
        )
    _check_version(document, loading)
    if isinstance(document.get("storage"), str):  # Distribution's shorthand: `storage: inmemory`
        document["storage"] = {document["storage"]: {}}
    _apply_environment(document, environ, loading)
    _replace_deprecated(document, loading)
    _check_storage(document, loading)
    _prune(document, Settings, (), loading)
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        problems = [
            loading.problem(tuple(error["loc"]), _explain(error))
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError(*problems) from None
    return LoadedConfig(settings, tuple(loading.warnings), source)


def _parse(text: str, loading: _Loading) -> Any:
    """The YAML document in `text`, recording the line of every key."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _index(node, (), loading, depth=0)
        document = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc, loading.origin)) from None
    finally:
        loader.dispose()
    if isinstance(document, dict) and isinstance(node, yaml.MappingNode):
        # The version as written: `version: 0.1` is a float to YAML, and
        # Distribution compares the text ("0.10" is not "0.1").
        for key_node, value_node in node.value:
            if (
                key_node.value == "version"
                and isinstance(value_node, yaml.ScalarNode)
                and value_node.tag != "tag:yaml.org,2002:null"
            ):
                document["version"] = value_node.value
    return document


def _index(node: yaml.Node, path: _KeyPath, loading: _Loading, depth: int) -> None:
    if depth > 32:  # a recursive alias; nothing to configure that deep
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                # Distribution's YAML parser keeps the last one silently.
                loading.warnings.append(
                    f"{_dotted((*path, key))} is given twice ({loading.origin}, lines "
                    f"{seen[key]} and {line}); the last one is used"
                )
            seen[key] = line
            loading.marks[(*path, key)] = line
            _index(value_node, (*path, key), loading, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            loading.marks[(*path, index)] = item.start_mark.line + 1
            _index(item, (*path, index), loading, depth + 1)


def _yaml_problem(exc: yaml.YAMLError, origin: str) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f"{exc.context}: " if exc.context else ""
        problem = exc.problem or "invalid syntax"
        where = f"{origin}, line {mark.line + 1}, column {mark.column + 1}"
        return f"invalid YAML: {context}{problem} ({where})"
    return f"invalid YAML: {exc} ({origin})"


def _check_version(document: dict[str, Any], loading: _Loading) -> None:
    version = document.get("version")
    if version is None:
        raise loading.error(("version",), f'required; set version: "{CONFIG_VERSION}"')
    if not isinstance(version, str):
        raise loading.error(("version",), f'expected "{CONFIG_VERSION}", got {_describe(version)}')
    if version != CONFIG_VERSION:
        raise loading.error(
            ("version",),
            f'unsupported configuration version "{version}"; '
            f'entrepot reads version "{CONFIG_VERSION}"',
        )


# Environment overrides (the rule is in the module docstring) ------------------


def _apply_environment(
    document: dict[str, Any], environ: Mapping[str, str], loading: _Loading
) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        parts = name[len(ENV_PREFIX) :].split("_")
        if not all(parts):
            loading.warnings.append(f"{name}: empty part in the name; ignored")
            continue
        _Override(name, environ[name], document, loading).apply(parts)


@dataclass(slots=True)
class _Override:
    """One ``REGISTRY_...`` variable, applied to the raw document."""

    var: str
    raw: str
    document: dict[str, Any]
    loading: _Loading

    def apply(self, parts: Sequence[str]) -> None:
        self._into_model(self.document, Settings, parts, ())

    def _into_model(
        self, node: dict[Any, Any], model: type[_Section], parts: Sequence[str], path: _KeyPath
    ) -> None:
        keys = _env_keys(model, path)
        for count in range(len(parts), 0, -1):
            key = "_".join(parts[:count]).lower()
            if key in keys:
                shape, rest = keys[key], parts[count:]
                break
        else:
            key, rest = parts[0].lower(), parts[1:]
            if model is StorageSettings and key not in _STORAGE_OPTIONS:
                # Another driver: kept, so that checking the storage reports it.
                shape = _Shape("mapping", item=_Shape("any"))
            else:
                target = (*path, key)
                if target in _UNSUPPORTED:
                    self.loading.warnings.append(
                        f"not supported yet: {_dotted(target)} (from {self.var})"
                    )
                else:
                    hint = _suggestion(key, list(keys))
                    self.loading.warnings.append(
                        f"{self.var}: unknown key {_dotted(target)}, ignored{hint}"
                    )
                return
        target = (*path, key)
        if model is Settings and key == "storage" and not rest:
            self._select_storage(node)
            return
        if model is StorageSettings and key not in _STORAGE_OPTIONS:
            others = [name for name in node if name not in _STORAGE_OPTIONS and name != key]
            if others:
                raise ConfigError(
                    f"{self.var}: names storage driver {key}, but the configured driver is "
                    f"{others[0]}; set {ENV_PREFIX}STORAGE={key} to switch drivers"
                )
        self._forget_other_spelling(target)
        self._descend(node, key, shape, rest, target)

    def _descend(
        self,
        container: dict[Any, Any] | list[Any],
        key: Any,
        shape: _Shape,
        rest: Sequence[str],
        target: _KeyPath,
    ) -> None:
        if not rest:
            container[key] = self._value(shape)
            self.loading.sources[target] = self.var
            return
        current = container.get(key) if isinstance(container, dict) else container[key]
        if shape.kind == "list" or (shape.kind == "any" and isinstance(current, list)):
            items = current if isinstance(current, list) else []
            container[key] = items
            self._into_list(items, shape.item or _Shape("any"), rest, target)
        elif shape.kind in ("model", "mapping", "any"):
            child = current if isinstance(current, dict) else {}
            container[key] = child
            if shape.model is not None:
                self._into_model(child, shape.model, rest, target)
            else:
                self._into_mapping(child, shape.item or _Shape("any"), rest, target)
        else:
            self.loading.warnings.append(
                f"{self.var}: {_dotted(target)} is a single value, not a section; ignored"
            )

    def _into_mapping(
        self, node: dict[Any, Any], item: _Shape, parts: Sequence[str], path: _KeyPath
    ) -> None:
        for count in range(len(parts), 0, -1):
            wanted = "_".join(parts[:count]).upper()
            found = [key for key in node if isinstance(key, str) and key.upper() == wanted]
            if found:
                key, rest = found[0], parts[count:]
                break
        else:
            key, rest = parts[0].lower(), parts[1:]
        self._descend(node, key, item, rest, (*path, key))

    def _into_list(
        self, items: list[Any], item: _Shape, parts: Sequence[str], path: _KeyPath
    ) -> None:
        head, rest = parts[0], parts[1:]
        if not (head.isascii() and head.isdigit()):
            self.loading.warnings.append(
                f"{self.var}: {_dotted(path)} is a list and {head} is not an index; ignored"
            )
            return
        index = int(head)
        if index > len(items):
            raise ConfigError(
                f"{self.var}: {_dotted((*path, index))}: no such item; the list has "
                f"{len(items)}, and the next one is {_dotted((*path, len(items)))}"
            )
        if index == len(items):
            items.append(None)
        self._descend(items, index, item, rest, (*path, index))

    def _value(self, shape: _Shape) -> Any:
        if shape.kind == "text":
            return self.raw
        try:
            return yaml.safe_load(self.raw)
        except yaml.YAMLError as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            raise ConfigError(f"{self.var}: cannot read {self.raw!r} as YAML: {reason}") from None

    def _select_storage(self, node: dict[str, Any]) -> None:
        """``REGISTRY_STORAGE``: switch the driver, replacing nothing else."""
        value = self._value(_Shape("any"))
        if isinstance(value, str):
            given: dict[Any, Any] = {value: None}
        elif isinstance(value, dict):
            given = dict(value)
        else:
            raise ConfigError(
                f"{self.var}: expected a storage driver name such as s3, or a mapping, "
                f"got {_describe(value)}"
            )
        storage = node.get("storage")
        if isinstance(storage, str):
            storage = {storage: {}}
        if not isinstance(storage, dict):
            storage = {}
        drivers = [name for name in given if name not in _STORAGE_OPTIONS]
        if len(drivers) > 1:
            raise ConfigError(f"{self.var}: {_driver_count_problem(drivers)}")
        if drivers:
            name = drivers[0]
            parameters = given.pop(name)
            same = storage.get(name) if parameters is None else None
            for old in [key for key in storage if key not in _STORAGE_OPTIONS]:
                del storage[old]
            storage[name] = parameters if parameters is not None else (same or {})
            if same is None:
                self.loading.sources[("storage", name)] = self.var
        for key, option in given.items():
            storage[key] = option
            self.loading.sources[("storage", key)] = self.var
        node["storage"] = storage

    def _forget_other_spelling(self, target: _KeyPath) -> None:
        for old in _DEPRECATED:
            for this, other in ((old.path, old.replacement), (old.replacement, old.path)):
                if target == this:
                    parent = _lookup(self.document, other[:-1])
                    if isinstance(parent, dict):
                        parent.pop(other[-1], None)


# Normalizing the document before validation ---------------------------------


def _replace_deprecated(document: dict[str, Any], loading: _Loading) -> None:
    """Move deprecated keys to their replacements; both given and different
    is an error (which one would the operator mean?)."""
    for old in _DEPRECATED:
        parent = _lookup(document, old.path[:-1])
        if not isinstance(parent, dict) or old.path[-1] not in parent:
            continue
        given = parent.pop(old.path[-1])
        loading.warn(old.path, f"{_dotted(old.path)} is deprecated; use {_dotted(old.replacement)}")
        value = given
        if old.negate:
            if not isinstance(given, bool):
                raise loading.error(old.path, f"expected true or false, got {_describe(given)}")
            value = not given
        target = _lookup(document, old.replacement[:-1], create=True)
        if not isinstance(target, dict):
            continue  # not a mapping: validation reports it
        key = old.replacement[-1]
        if key in target and not _same(target[key], value):
            raise loading.error(
                old.path,
                f"{_dotted(old.path)} (deprecated) is {_describe(given)} but "
                f"{_dotted(old.replacement)} is {_describe(target[key])}; keep only {key}",
                named=False,
            )
        target[key] = value


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b


def _check_storage(document: dict[str, Any], loading: _Loading) -> None:
    storage = document.get("storage")
    if storage is None:
        raise loading.error(
            ("storage",),
            f"required; configure one storage driver ({', '.join(StorageSettings.DRIVERS)})",
        )
    if not isinstance(storage, dict):
        return  # validation reports it
    drivers = [name for name in storage if name not in _STORAGE_OPTIONS]
    if len(drivers) != 1:
        raise loading.error(("storage",), _driver_count_problem(drivers))
    name = drivers[0]
    known = ", ".join(StorageSettings.DRIVERS)
    if name in _UNSUPPORTED_DRIVERS:
        raise loading.error(
            ("storage", name), f"storage driver not supported yet (entrepot has: {known})"
        )
    if name not in StorageSettings.DRIVERS:
        hint = _suggestion(str(name), StorageSettings.DRIVERS)
        raise loading.error(
            ("storage", str(name)), f"unknown storage driver{hint} (entrepot has: {known})"
        )
    if storage[name] is None:  # `inmemory:` with nothing under it
        storage[name] = {}


def _prune(node: dict[Any, Any], model: type[_Section], path: _KeyPath, loading: _Loading) -> None:
    """Remove, with a warning, the keys `model` does not know; drop empty
    sections (``tls:`` with nothing under it means the defaults)."""
    shapes = _field_shapes(model)
    for key in list(node):
        if not isinstance(key, str):
            raise loading.error(path, f"keys must be text, got {_describe(key)}")
        target = (*path, key)
        shape = shapes.get(key)
        if shape is None:
            if target in _UNSUPPORTED:
                loading.warn(target, f"not supported yet: {_dotted(target)}")
            else:
                hint = _suggestion(key, list(shapes))
                loading.warn(target, f"unknown key {_dotted(target)}, ignored{hint}")
            del node[key]
            continue
        value = node[key]
        if value is None and shape.kind in ("model", "mapping", "list"):
            del node[key]
        elif shape.model is not None and isinstance(value, dict):
            _prune(value, shape.model, target, loading)


def _explain(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors, in the words of this module."""
    kind: str = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    got = _describe(error.get("input"))
    if kind == "missing":
        return "required"
    if kind == "string_type":
        return f"expected a string, got {got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}"
    if kind == "literal_error":
        return f"expected {context['expected']}, got {got}"
    if kind in ("dict_type", "mapping_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {got}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = context.get("ge", context.get("gt"))
        return f"expected at least {bound}, got {got}"
    if kind in ("less_than_equal", "less_than"):
        bound = context.get("le", context.get("lt"))
        return f"expected at most {bound}, got {got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("value_error", "assertion_error") and "error" in context:
        return str(context["error"])
    if kind == "extra_forbidden":
        return "unknown key"
    message: str = error["msg"]
    return f"{message[:1].lower()}{message[1:]}, got {got}"


# Defaults and printing -------------------------------------------------------

EMBEDDED_DEFAULT_YAML: Final = f"""\
# entrepot's configuration when it is given none (Distribution's format).
version: "{CONFIG_VERSION}"
storage:
  filesystem:
    rootdirectory: ./data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 0.0.0.0:5000
  draintimeout: 30s
"""


def embedded_default() -> Settings:
    """entrepot's settings without a configuration file: storage under
    ``./data``, in-memory descriptor cache, ``0.0.0.0:5000``, deletes enabled
    (Distribution's defaults differ: no cache, deletes disabled)."""
    return _load(EMBEDDED_DEFAULT_YAML, "embedded default", {}, None).settings


# Keys whose values must never be printed.
_SECRETS: Final = frozenset(
    {
        ("http", "secret"),
        ("storage", "s3", "accesskey"),
        ("storage", "s3", "secretkey"),
        ("storage", "azure", "accountkey"),
        ("storage", "azure", "connectionstring"),
        ("storage", "azure", "credentials", "secret"),
        ("redis", "password"),
    }
)


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data in config.yml's shape (only the
    configured driver, durations as text), secrets replaced by `MASK`:
    printable as YAML or JSON, and loadable again."""
    data = settings.model_dump()
    for name in StorageSettings.DRIVERS:
        if data["storage"][name] is None:
            del data["storage"][name]
    return {key: _plain(value, (key,)) for key, value in data.items()}


def _plain(value: object, path: tuple[str, ...]) -> object:
    if isinstance(value, Mapping):
        return {key: _plain(item, (*path, key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, path) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if path in _SECRETS and isinstance(value, str) and value:
        return MASK
    return value
