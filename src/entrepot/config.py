"""Distribution's ``config.yml``, read into typed and validated settings.

entrepot reads the configuration files of CNCF Distribution, version "0.1":
the same keys, defaults and ``REGISTRY_...`` environment overrides.
`load_config` parses a file, applies the environment, checks everything and
returns frozen `Settings` (one dataclass per section, checked against its
type hints) together with the warnings an operator should see: unknown keys,
deprecated spellings, and the sections of Distribution that entrepot does not
implement yet, which are reported, never silently ignored. Anything wrong is
a single `ConfigError` that names the key and where it came from (file line
or variable).
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

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from urllib.parse import urlsplit

import yaml

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
_DURATION_PART: Final = re.compile(rf"([0-9]*)\.?([0-9]*)({_UNITS})")
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
            total = 0
            for whole, fraction, unit in _DURATION_PART.findall(body):
                scale = _NS_PER_UNIT[unit]
                total += int(whole or 0) * scale
                if fraction:  # exact, then truncated (as Go)
                    total += int(fraction) * scale // 10 ** len(fraction)
            nanoseconds = -total if negative else total
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


@dataclass(frozen=True, slots=True)
class _Before:
    """Type-hint metadata (``Annotated[T, _Before(f)]``): `f` turns the raw
    value into one of type T before it is checked, or raises `ValueError`."""

    convert: Callable[[Any], object]


@dataclass(frozen=True, slots=True)
class _After:
    """Type-hint metadata: `f` checks (or adjusts) a value once it has its
    type, or raises `ValueError`. Not applied to None."""

    convert: Callable[[Any], object]


def _between(low: int | None = None, high: int | None = None) -> _After:
    """An integer from `low` to `high`, both included (None: no bound)."""

    def check(value: int) -> int:
        if low is not None and value < low:
            raise ValueError(f"expected at least {low}, got {_describe(value)}")
        if high is not None and value > high:
            raise ValueError(f"expected at most {high}, got {_describe(value)}")
        return value

    return _After(check)


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


_NOT_EMPTY: Final = _After(_not_empty)

Duration = Annotated[timedelta, _Before(_to_duration)]
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
#
# Each section is a frozen dataclass whose type hints say what it accepts;
# `_validate` checks a raw mapping against them, the way config.yml is meant:
# strictly (a string is not a number, 1 is not true), with `_Before` and
# `_After` metadata for conversions and bounds. Checks across fields live in
# `__post_init__` (raising `ValueError`, or `_KeyProblem` to name one field),
# so a section built directly in code is checked too.


class _KeyProblem(ValueError):
    """A problem `__post_init__` finds with one field (`key`) of a section."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, kw_only=True)
class _Section:
    """Base of every section: immutable; keys it does not know are reported
    and removed before validation (see `_prune`)."""

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The raw mapping, adjusted before its fields are checked."""
        return data

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """This section from plain data, checked; raises `ConfigError`
        listing every problem, each with its key path in the section."""
        problems: list[tuple[_KeyPath, str]] = []
        section = _validate(cls, dict(data), (), problems)
        if section is None:
            raise ConfigError(
                *(f"{_dotted(path) or cls.__name__}: {text}" for path, text in problems)
            )
        return section

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain data, sections as nested dicts."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class AccessLogSettings(_Section):
    disabled: bool = False


def _lower_level(value: object) -> object:
    # Distribution lower-cases the level before checking it.
    if isinstance(value, str) and value.lower() in ("error", "warn", "info", "debug"):
        return value.lower()
    return value


@dataclass(frozen=True, kw_only=True)
class LogSettings(_Section):
    """``log``: level, line format and fields added to every line."""

    level: Annotated[Literal["error", "warn", "info", "debug"], _Before(_lower_level)] = "info"
    formatter: Literal["text", "json", "logstash"] = "text"
    fields: Mapping[str, Any] = field(default_factory=dict)
    accesslog: AccessLogSettings = AccessLogSettings()


@dataclass(frozen=True, kw_only=True)
class FilesystemSettings(_Section):
    """``storage.filesystem``: the local disk."""

    rootdirectory: Annotated[str, _NOT_EMPTY] = "/var/lib/registry"
    maxthreads: Annotated[int, _between(25)] = 100


@dataclass(frozen=True, kw_only=True)
class InMemorySettings(_Section):
    """``storage.inmemory``: volatile, for tests; takes no parameters."""


@dataclass(frozen=True, kw_only=True)
class S3Settings(_Section):
    """``storage.s3``: Amazon S3 and compatible services (every key of
    Distribution's driver; defaults are Distribution's)."""

    region: str
    bucket: Annotated[str, _NOT_EMPTY]
    accesskey: str | None = None
    secretkey: str | None = None
    regionendpoint: str | None = None
    redirectendpoint: str | None = None
    forcepathstyle: bool = False
    encrypt: bool = False
    keyid: str | None = None
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: Annotated[int, _between(5 * _MiB, 5 * _GiB)] = 10 * _MiB
    multipartcopychunksize: Annotated[int, _between(5 * _MiB, 5 * _GiB)] = 32 * _MiB
    multipartcopymaxconcurrency: Annotated[int, _between(1)] = 100
    multipartcopythresholdsize: Annotated[int, _between(0, 5 * _GiB)] = 32 * _MiB
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    useragent: str | None = None
    usedualstack: bool = False
    accelerate: bool = False
    usefipsendpoint: bool = False
    objectacl: str = "private"
    loglevel: str = "off"


@dataclass(frozen=True, kw_only=True)
class AzureCredentials(_Section):
    """``storage.azure.credentials``: how to authenticate to Azure."""

    type: str  # client_secret, shared_key or default_credentials
    clientid: str | None = None
    tenantid: str | None = None
    secret: str | None = None


@dataclass(frozen=True, kw_only=True)
class AzureSettings(_Section):
    """``storage.azure``: Azure Blob Storage."""

    accountname: str
    container: Annotated[str, _NOT_EMPTY]
    accountkey: str | None = None
    credentials: AzureCredentials | None = None
    # Distribution 3's keys: the account's blob endpoint (by default
    # https://<accountname>.blob.<realm>; an Azurite server is another), and
    # a connection string, as Azure's tools print it, in place of the key.
    serviceurl: str | None = None
    connectionstring: str | None = None
    rootdirectory: str = ""
    realm: str = "core.windows.net"
    max_retries: Annotated[int, _between(-1)] = 5
    retry_delay: Duration = timedelta(milliseconds=100)

    def __post_init__(self) -> None:
        if self.accountkey is None and self.credentials is None and self.connectionstring is None:
            raise ValueError("give accountkey, credentials or connectionstring")


@dataclass(frozen=True, kw_only=True)
class DeleteSettings(_Section):
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class RedirectSettings(_Section):
    disable: bool = False


@dataclass(frozen=True, kw_only=True)
class CacheSettings(_Section):
    """``storage.cache``: the blob descriptor cache (``layerinfo`` is the
    deprecated name of ``blobdescriptor``); none when not set."""

    blobdescriptor: Literal["inmemory", "redis"] | None = None
    blobdescriptorsize: Annotated[int, _between(0)] = 10000  # 0: unbounded


@dataclass(frozen=True, kw_only=True)
class UploadPurgingSettings(_Section):
    """``storage.maintenance.uploadpurging``: removal of abandoned uploads."""

    enabled: bool = True
    age: Duration = timedelta(hours=168)
    interval: Duration = timedelta(hours=24)
    dryrun: bool = False

    def __post_init__(self) -> None:
        if self.enabled and not self.interval:
            raise ValueError("interval must be more than 0s while upload purging is enabled")


@dataclass(frozen=True, kw_only=True)
class ReadOnlySettings(_Section):
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class MaintenanceSettings(_Section):
    uploadpurging: UploadPurgingSettings = UploadPurgingSettings()
    readonly: ReadOnlySettings = ReadOnlySettings()


DriverSettings = FilesystemSettings | InMemorySettings | S3Settings | AzureSettings


@dataclass(frozen=True, kw_only=True)
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

    def __post_init__(self) -> None:
        configured = [name for name in self.DRIVERS if getattr(self, name) is not None]
        if len(configured) != 1:
            raise ValueError(_driver_count_problem(configured))

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
        return self.driver_settings.as_dict()


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


def _known_suites(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [suite for suite in value if suite not in CIPHER_SUITES]
    if unknown:
        raise ValueError(f"unknown cipher suite {unknown[0]!r}")
    return value


def _certificate_and_key(certificate: str | None, key: str | None) -> None:
    if (certificate is None) != (key is None):
        missing = "key" if key is None else "certificate"
        raise ValueError(f"certificate and key go together; {missing} is missing")


@dataclass(frozen=True, kw_only=True)
class TLSSettings(_Section):
    """``http.tls``: serve HTTPS when `certificate` (and `key`) are set."""

    certificate: str | None = None
    key: str | None = None
    clientcas: tuple[str, ...] = ()
    clientauth: _CLIENT_AUTH = "require-and-verify-client-cert"
    minimumtls: Literal["tls1.0", "tls1.1", "tls1.2", "tls1.3"] = "tls1.2"
    ciphersuites: Annotated[tuple[str, ...], _After(_known_suites)] = ()  # empty: Distribution's

    def __post_init__(self) -> None:
        _certificate_and_key(self.certificate, self.key)

    @property
    def enabled(self) -> bool:
        return self.certificate is not None


@dataclass(frozen=True, kw_only=True)
class PrometheusSettings(_Section):
    enabled: bool = False
    path: str = "/metrics"


@dataclass(frozen=True, kw_only=True)
class DebugSettings(_Section):
    """``http.debug``: the debug server, off unless `addr` is set."""

    addr: str | None = None
    prometheus: PrometheusSettings = PrometheusSettings()


@dataclass(frozen=True, kw_only=True)
class HTTP2Settings(_Section):
    disabled: bool = False


@dataclass(frozen=True, kw_only=True)
class H2CSettings(_Section):
    enabled: bool = False


def _default_net(value: object) -> object:
    return "tcp" if value == "" else value  # Distribution: empty means tcp


def _slashes(value: str) -> str:
    if value and not (value.startswith("/") and value.endswith("/")):
        raise ValueError(f"expected a path starting and ending with /, got {value!r}")
    return value


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"expected an absolute URL such as https://registry.example.com, got {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class HttpSettings(_Section):
    """``http``: the server. Instances sharing storage must share `secret`
    (upload state is signed with it); none means one generated at start."""

    net: Annotated[Literal["tcp", "unix"], _Before(_default_net)] = "tcp"
    addr: Annotated[str, _NOT_EMPTY] = ":5000"
    prefix: Annotated[str, _After(_slashes)] = ""
    host: Annotated[str | None, _After(_absolute_url)] = None
    secret: str | None = None
    relativeurls: bool = False
    draintimeout: Duration = timedelta(0)
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tls: TLSSettings = TLSSettings()
    debug: DebugSettings = DebugSettings()
    http2: HTTP2Settings = HTTP2Settings()
    h2c: H2CSettings = H2CSettings()

    def __post_init__(self) -> None:
        if self.net == "tcp":  # a unix socket's addr is a path
            try:
                split_host_port(self.addr)
            except ValueError as exc:
                raise _KeyProblem("addr", str(exc)) from None


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


def _ten_seconds_if_zero(value: timedelta) -> timedelta:
    return value or timedelta(seconds=10)  # as Distribution: 0 means the default


def _at_least_one(value: int) -> int:
    return max(value, 1)  # as Distribution: 0 means a single failure


@dataclass(frozen=True, kw_only=True)
class StorageDriverHealthSettings(_Section):
    """``health.storagedriver``: a periodic check of the storage driver."""

    enabled: bool = False
    interval: Annotated[Duration, _After(_ten_seconds_if_zero)] = timedelta(seconds=10)
    threshold: Annotated[int, _between(0), _After(_at_least_one)] = 1


@dataclass(frozen=True, kw_only=True)
class HealthSettings(_Section):
    storagedriver: StorageDriverHealthSettings = StorageDriverHealthSettings()


def _compiles(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return value


@dataclass(frozen=True, kw_only=True)
class URLValidationSettings(_Section):
    """``validation.manifests.urls``: regular expressions for foreign layer
    URLs in pushed manifests (none allowed when `allow` is empty)."""

    allow: Annotated[tuple[str, ...], _After(_compiles)] = ()
    deny: Annotated[tuple[str, ...], _After(_compiles)] = ()


@dataclass(frozen=True, kw_only=True)
class ManifestValidationSettings(_Section):
    urls: URLValidationSettings = URLValidationSettings()


@dataclass(frozen=True, kw_only=True)
class ValidationSettings(_Section):
    """``validation`` (``enabled`` is the deprecated opposite of ``disabled``)."""

    disabled: bool = False
    manifests: ManifestValidationSettings = ManifestValidationSettings()


def _default_entries(value: int) -> int:
    return value if value > 0 else 1000  # as Distribution


@dataclass(frozen=True, kw_only=True)
class CatalogSettings(_Section):
    maxentries: Annotated[int, _After(_default_entries)] = 1000


@dataclass(frozen=True, kw_only=True)
class RedisPoolSettings(_Section):
    maxidle: Annotated[int | None, _between(0)] = None
    maxactive: Annotated[int | None, _between(0)] = None
    idletimeout: Duration | None = None


@dataclass(frozen=True, kw_only=True)
class RedisTLSSettings(_Section):
    """``redis.tls``: on with ``enabled: true``, or when a certificate or CA is given."""

    enabled: bool = False
    certificate: str | None = None
    key: str | None = None
    rootcas: tuple[str, ...] = ()

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        files = ("certificate", "key", "rootcas")
        if "enabled" not in data and any(map(data.get, files)):
            return {**data, "enabled": True}
        return data

    def __post_init__(self) -> None:
        _certificate_and_key(self.certificate, self.key)


@dataclass(frozen=True, kw_only=True)
class RedisSettings(_Section):
    """``redis``: the shared descriptor cache. Both spellings are read:
    Distribution 2's (``addr``, ``pool.maxidle``, ...) and 3's (``addrs``,
    ``maxidleconns``, ...); the properties give the effective values."""

    addr: str | None = None
    addrs: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = None
    db: Annotated[int, _between(0)] = 0
    dialtimeout: Duration | None = None
    readtimeout: Duration | None = None
    writetimeout: Duration | None = None
    pool: RedisPoolSettings = RedisPoolSettings()
    maxidleconns: Annotated[int | None, _between(0)] = None
    poolsize: Annotated[int | None, _between(0)] = None
    connmaxidletime: Duration | None = None
    tls: RedisTLSSettings = RedisTLSSettings()

    def __post_init__(self) -> None:
        if self.addr is not None and self.addrs:
            raise ValueError("give addr or addrs, not both")
        for old, new in (
            ("maxidle", "maxidleconns"),
            ("maxactive", "poolsize"),
            ("idletimeout", "connmaxidletime"),
        ):
            if getattr(self.pool, old) is not None and getattr(self, new) is not None:
                raise ValueError(f"pool.{old} and {new} are the same setting; give one")

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


@dataclass(frozen=True, kw_only=True)
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

    def __post_init__(self) -> None:
        if self.storage.cache.blobdescriptor == "redis" and not self.redis.addresses:
            raise ValueError(
                "storage.cache.blobdescriptor: redis needs a redis section with addr (or addrs)"
            )


# Checking raw data against a section's type hints ----------------------------

_S = typing.TypeVar("_S", bound=_Section)
_INVALID: Final = object()  # a value with a problem (recorded in `problems`)
_HINTS: Final[dict[type[_Section], Mapping[str, object]]] = {}


def _hints(model: type[_Section]) -> Mapping[str, object]:
    """Each field's type hint, metadata included (evaluated once)."""
    hints = _HINTS.get(model)
    if hints is None:
        every = typing.get_type_hints(model, include_extras=True)
        hints = _HINTS[model] = {spec.name: every[spec.name] for spec in dataclasses.fields(model)}
    return hints


def _validate(
    model: type[_S], data: object, path: _KeyPath, problems: list[tuple[_KeyPath, str]]
) -> _S | None:
    """`data` as a `model`, or None with the reasons added to `problems`."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        problems.append((path, f"expected a mapping, got {_describe(data)}"))
        return None
    data = model._prepare(data)
    values: dict[str, object] = {}
    valid = True
    for spec in dataclasses.fields(model):
        if spec.name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                problems.append(((*path, spec.name), "required"))
                valid = False
            continue
        value = _check(_hints(model)[spec.name], data[spec.name], (*path, spec.name), problems)
        if value is _INVALID:
            valid = False
        values[spec.name] = value
    for key in data:
        if key not in _hints(model):
            problems.append(((*path, str(key)), "unknown key"))
            valid = False
    if not valid:
        return None
    try:
        return model(**values)
    except _KeyProblem as exc:
        problems.append(((*path, exc.key), str(exc)))
    except ValueError as exc:
        problems.append((path, str(exc)))
    return None


def _check(
    hint: object, value: object, path: _KeyPath, problems: list[tuple[_KeyPath, str]]
) -> object:
    """`value` checked against the type `hint` (converted where the hint's
    metadata says), or `_INVALID` with the reason added to `problems`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is Annotated:
            steps = args[1:]
            for step in steps:
                if isinstance(step, _Before):
                    value = step.convert(value)
            value = _check(args[0], value, path, problems)
            if value is _INVALID or value is None:
                return value
            for step in steps:
                if isinstance(step, _After):
                    value = step.convert(value)
            return value
    except ValueError as exc:
        problems.append((path, str(exc)))
        return _INVALID
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        members = [arg for arg in args if arg is not type(None)]
        assert len(members) == 1, f"{hint}: a union other than with None"
        return _check(members[0], value, path, problems)
    if isinstance(hint, type) and issubclass(hint, _Section):
        return _validate(hint, value, path, problems) or _INVALID
    problem = _problem(hint, origin, value)
    if problem is not None:
        problems.append((path, problem))
        return _INVALID
    if origin is tuple or origin is list:
        assert isinstance(value, list | tuple)
        items = [
            _check(args[0], item, (*path, index), problems) for index, item in enumerate(value)
        ]
        return _INVALID if _INVALID in items else tuple(items)
    if origin is dict or origin is Mapping:
        assert isinstance(value, dict)
        checked = {
            key: _check(args[1], item, (*path, key), problems) for key, item in value.items()
        }
        return _INVALID if _INVALID in checked.values() else checked
    return value


def _problem(hint: object, origin: object, value: object) -> str | None:
    """What is wrong with `value` as a `hint` at its own level, if anything."""
    got = _describe(value)
    if origin is Literal:
        choices = typing.get_args(hint)
        if any(type(value) is type(choice) and value == choice for choice in choices):
            return None
        quoted = [repr(choice) for choice in choices]
        expected = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return f"expected {expected}, got {got}"
    if origin is tuple or origin is list:
        return None if isinstance(value, list | tuple) else f"expected a list, got {got}"
    if origin is dict or origin is Mapping:
        if not isinstance(value, dict):
            return f"expected a mapping, got {got}"
        keys = [key for key in value if not isinstance(key, str)]
        return f"keys must be text, got {_describe(keys[0])}" if keys else None
    if hint is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {got}"
    if hint is int:
        integer = isinstance(value, int) and not isinstance(value, bool)
        return None if integer else f"expected an integer, got {got}"
    if hint is str:
        return None if isinstance(value, str) else f"expected a string, got {got}"
    if hint is timedelta:
        return None if isinstance(value, timedelta) else f"expected a duration, got {got}"
    if hint is Any:
        return None
    raise TypeError(f"no check for the type hint {hint!r}")


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


def _field_shapes(model: type[_Section]) -> Mapping[str, _Shape]:
    return {name: _shape(hint) for name, hint in _hints(model).items()}


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
    import difflib  # only needed for a mistyped key

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
    problems: list[tuple[_KeyPath, str]] = []
    settings = _validate(Settings, document, (), problems)
    if settings is None:
        raise ConfigError(*(loading.problem(path, text) for path, text in problems))
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
    data = settings.as_dict()
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
