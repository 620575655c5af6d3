"""Tests of `entrepot.config`: Distribution's config.yml as typed settings.

Distribution's own examples load as Distribution reads them; every kind of
bad file is one message naming the key and where it is; the ``REGISTRY_...``
overrides follow Distribution's rule; what entrepot does not know or does not
implement yet is a warning, never silence; secrets are never printed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from entrepot.config import (
    MASK,
    ConfigError,
    FilesystemSettings,
    InMemorySettings,
    LoadedConfig,
    RedisSettings,
    Settings,
    StorageSettings,
    embedded_default,
    format_duration,
    load_config,
    masked,
    parse_duration,
)
from entrepot.storage.driver.factory import create_driver
from entrepot.storage.driver.filesystem import FilesystemDriver

# configuration.md, "List of configuration options", verbatim. It lists every
# option, so it configures five storage drivers at once; `only_driver` keeps
# one. (It also gives `middleware.storage` and `redis.tls` twice.)
FULL_LIST = r"""
version: 0.1
log:
  accesslog:
    disabled: true
  level: debug
  formatter: text
  fields:
    service: registry
    environment: staging
  hooks:
    - type: mail
      disabled: true
      levels:
        - panic
      options:
        smtp:
          addr: mail.example.com:25
          username: mailuser
          password: password
          insecure: true
        from: sender@example.com
        to:
          - errors@example.com
loglevel: debug # deprecated: use "log"
storage:
  filesystem:
    rootdirectory: /var/lib/registry
    maxthreads: 100
  azure:
    accountname: accountname
    accountkey: base64encodedaccountkey
    container: containername
    rootdirectory: /az/object/name/prefix
    credentials:
      type: client_secret
      clientid: client_id_string
      tenantid: tenant_id_string
      secret: secret_string
    max_retries: 10
    retry_delay: 100ms
  gcs:
    bucket: bucketname
    keyfile: /path/to/keyfile
    credentials:
      type: service_account
      project_id: project_id_string
      private_key_id: private_key_id_string
      private_key: private_key_string
      client_email: client@example.com
      client_id: client_id_string
      auth_uri: http://example.com/auth_uri
      token_uri: http://example.com/token_uri
      auth_provider_x509_cert_url: http://example.com/provider_cert_url
      client_x509_cert_url: http://example.com/client_cert_url
    rootdirectory: /gcs/object/name/prefix
    chunksize: 5242880
  s3:
    accesskey: awsaccesskey
    secretkey: awssecretkey
    region: us-west-1
    regionendpoint: http://myobjects.local
    forcepathstyle: true
    accelerate: false
    bucket: bucketname
    encrypt: true
    keyid: mykeyid
    secure: true
    v4auth: true
    chunksize: 5242880
    multipartcopychunksize: 33554432
    multipartcopymaxconcurrency: 100
    multipartcopythresholdsize: 33554432
    rootdirectory: /s3/object/name/prefix
    usedualstack: false
    usefipsendpoint: false
    loglevel: debug
  inmemory:  # This driver takes no parameters
  tag:
    concurrencylimit: 8
  delete:
    enabled: false
  redirect:
    disable: false
  cache:
    blobdescriptor: redis
    blobdescriptorsize: 10000
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
    readonly:
      enabled: false
auth:
  silly:
    realm: silly-realm
    service: silly-service
  token:
    autoredirect: true
    realm: token-realm
    service: token-service
    issuer: registry-token-issuer
    rootcertbundle: /root/certs/bundle
    jwks: /path/to/jwks
    signingalgorithms:
        - EdDSA
        - HS256
  htpasswd:
    realm: basic-realm
    path: /path/to/htpasswd
middleware:
  registry:
    - name: ARegistryMiddleware
      options:
        foo: bar
  repository:
    - name: ARepositoryMiddleware
      options:
        foo: bar
  storage:
    - name: cloudfront
      options:
        baseurl: https://my.cloudfronted.domain.com/
        privatekey: /path/to/pem
        keypairid: cloudfrontkeypairid
        duration: 3000s
        ipfilteredby: awsregion
        awsregion: us-east-1, use-east-2
        updatefrequency: 12h
        iprangesurl: https://ip-ranges.amazonaws.com/ip-ranges.json
  storage:
    - name: redirect
      options:
        baseurl: https://example.com/
catalog:
  maxentries: 1000
tags:
  maxtags: 1000
http:
  addr: localhost:5000
  prefix: /my/nested/registry/
  host: https://myregistryaddress.org:5000
  secret: asecretforlocaldevelopment
  relativeurls: false
  draintimeout: 60s
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
    clientauth: require-and-verify-client-cert
    letsencrypt:
      cachefile: /path/to/cache-file
      email: emailused@letsencrypt.com
      hosts: [myregistryaddress.org]
      directoryurl: https://acme-v02.api.letsencrypt.org/directory
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: false
  h2c:
    enabled: false
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers: <http.Header>
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/octet-stream
        actions:
           - pull
redis:
  tls:
    certificate: /path/to/cert.crt
    key: /path/to/key.pem
    rootcas:
      - /path/to/ca.pem
  addrs: [localhost:6379]
  password: asecret
  db: 0
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  maxidleconns: 16
  poolsize: 64
  connmaxidletime: 300s
  tls:
    enabled: false
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
  file:
    - file: /path/to/checked/file
      interval: 10s
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 200
      timeout: 3s
      interval: 10s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
proxy:
  remoteurl: https://registry-1.docker.io
  username: [username]
  password: [password]
  exec:
    command: docker-credential-helper
    lifetime: 1h
  ttl: 168h
validation:
  manifests:
    urls:
      allow:
        - ^https?://([^/]+\.)*example\.com/
      deny:
        - ^https?://www\.example\.com/
    indexes:
      platforms: List
      platformlist:
      - architecture: amd64
        os: linux
""".lstrip("\n")

# configuration.md, "Example: Development configuration", verbatim.
DEVELOPMENT = """\
version: 0.1
log:
  level: debug
storage:
    filesystem:
        rootdirectory: /var/lib/registry
http:
    addr: localhost:5000
    secret: asecretforlocaldevelopment
    debug:
        addr: localhost:5001
"""

DRIVERS = ("filesystem", "azure", "gcs", "s3", "inmemory")


def only_driver(text: str, keep: str) -> str:
    """`text` without the storage driver sections other than `keep`."""
    lines: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip(" "))
        if dropping and (indent > 2 or not line.strip()):
            continue
        dropping = indent == 2 and any(
            line.startswith(f"  {name}:") for name in DRIVERS if name != keep
        )
        if not dropping:
            lines.append(line)
    return "".join(lines)


Load = Callable[..., LoadedConfig]
Fail = Callable[..., str]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config.yml"


@pytest.fixture
def load(config_file: Path) -> Load:
    """Write `text` to config.yml and load it with `env` as the environment."""

    def load(text: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
        config_file.write_text(text, encoding="utf-8")
        return load_config(str(config_file), env or {})

    return load


@pytest.fixture
def fail(config_file: Path) -> Fail:
    """The error message for `text`, with the file's path written as FILE."""

    def fail(text: str, env: Mapping[str, str] | None = None) -> str:
        config_file.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(str(config_file), env or {})
        return str(caught.value).replace(str(config_file), "FILE")

    return fail


MINIMAL = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n"


# Distribution's own examples ---------------------------------------------------


def test_development_example(load: Load) -> None:
    loaded = load(DEVELOPMENT)
    assert loaded.warnings == ()
    settings = loaded.settings
    assert settings.log.level == "debug"
    assert settings.storage.driver == "filesystem"
    assert settings.storage.filesystem == FilesystemSettings(rootdirectory="/var/lib/registry")
    assert settings.http.addr == "localhost:5000"
    assert settings.http.secret == "asecretforlocaldevelopment"
    assert settings.http.debug.addr == "localhost:5001"


def test_full_list_configures_five_drivers_at_once(fail: Fail) -> None:
    assert fail(FULL_LIST) == (
        "storage: exactly one storage driver must be configured, got 5: "
        "filesystem, azure, gcs, s3, inmemory (FILE, line 25)"
    )


def test_full_list_with_the_filesystem_driver(load: Load, tmp_path: Path) -> None:
    root = tmp_path / "registry"
    text = only_driver(FULL_LIST, "filesystem").replace("/var/lib/registry", str(root))
    loaded = load(text)
    assert [warning.split(" (")[0] for warning in loaded.warnings] == [
        "middleware.storage is given twice",
        "redis.tls is given twice",
        "loglevel is deprecated; use log.level",
        "not supported yet: log.hooks",
        "not supported yet: storage.tag",
        "not supported yet: auth",
        "not supported yet: middleware",
        "not supported yet: tags",
        "not supported yet: http.tls.letsencrypt",
        "not supported yet: notifications",
        "not supported yet: health.file",
        "not supported yet: health.http",
        "not supported yet: health.tcp",
        "not supported yet: proxy",
        "not supported yet: validation.manifests.indexes",
    ]
    s = loaded.settings
    assert s.version == "0.1"
    assert s.log.level == "debug"
    assert s.log.formatter == "text"
    assert s.log.fields == {"service": "registry", "environment": "staging"}
    assert s.log.accesslog.disabled is True
    assert s.storage.filesystem == FilesystemSettings(rootdirectory=str(root), maxthreads=100)
    assert s.storage.delete.enabled is False
    assert s.storage.redirect.disable is False
    assert s.storage.cache.blobdescriptor == "redis"
    assert s.storage.cache.blobdescriptorsize == 10000
    purging = s.storage.maintenance.uploadpurging
    assert (purging.enabled, purging.age, purging.interval, purging.dryrun) == (
        True,
        timedelta(hours=168),
        timedelta(hours=24),
        False,
    )
    assert s.storage.maintenance.readonly.enabled is False
    assert s.catalog.maxentries == 1000
    http = s.http
    assert http.addr == "localhost:5000"
    assert http.prefix == "/my/nested/registry/"
    assert http.host == "https://myregistryaddress.org:5000"
    assert http.secret == "asecretforlocaldevelopment"
    assert http.relativeurls is False
    assert http.draintimeout == timedelta(seconds=60)
    assert http.tls.enabled
    assert http.tls.certificate == "/path/to/x509/public"
    assert http.tls.key == "/path/to/x509/private"
    assert http.tls.clientcas == ("/path/to/ca.pem", "/path/to/another/ca.pem")
    assert http.tls.clientauth == "require-and-verify-client-cert"
    assert http.tls.minimumtls == "tls1.2"
    assert http.debug.addr == "localhost:5001"
    assert http.debug.prometheus.enabled is True
    assert http.debug.prometheus.path == "/metrics"
    assert http.headers == {"X-Content-Type-Options": ("nosniff",)}
    assert http.http2.disabled is False
    assert http.h2c.enabled is False
    redis = s.redis
    assert redis.addresses == ("localhost:6379",)
    assert redis.password == "asecret"
    assert redis.db == 0
    assert (
        redis.dialtimeout == redis.readtimeout == redis.writetimeout == timedelta(milliseconds=10)
    )
    assert (redis.max_idle, redis.max_active, redis.idle_timeout) == (
        16,
        64,
        timedelta(seconds=300),
    )
    assert redis.tls.enabled is False  # the second `tls:` wins, as in Distribution
    health = s.health.storagedriver
    assert (health.enabled, health.interval, health.threshold) == (True, timedelta(seconds=10), 3)
    assert s.validation.disabled is False
    assert s.validation.manifests.urls.allow == (r"^https?://([^/]+\.)*example\.com/",)
    assert s.validation.manifests.urls.deny == (r"^https?://www\.example\.com/",)


def test_full_list_with_the_s3_driver(load: Load) -> None:
    storage = load(only_driver(FULL_LIST, "s3")).settings.storage
    assert storage.driver == "s3"
    s3 = storage.s3
    assert s3 is not None
    assert (s3.accesskey, s3.secretkey) == ("awsaccesskey", "awssecretkey")
    assert (s3.region, s3.regionendpoint, s3.bucket) == (
        "us-west-1",
        "http://myobjects.local",
        "bucketname",
    )
    assert (s3.forcepathstyle, s3.accelerate, s3.encrypt, s3.keyid) == (
        True,
        False,
        True,
        "mykeyid",
    )
    assert (s3.secure, s3.v4auth, s3.skipverify) == (True, True, False)
    assert s3.chunksize == 5242880
    assert s3.multipartcopychunksize == 33554432
    assert s3.multipartcopymaxconcurrency == 100
    assert s3.multipartcopythresholdsize == 33554432
    assert s3.rootdirectory == "/s3/object/name/prefix"
    assert (s3.usedualstack, s3.usefipsendpoint, s3.loglevel) == (False, False, "debug")
    assert (s3.storageclass, s3.objectacl) == ("STANDARD", "private")  # defaults
    assert storage.driver_parameters()["bucket"] == "bucketname"


def test_full_list_with_the_azure_driver(load: Load) -> None:
    azure = load(only_driver(FULL_LIST, "azure")).settings.storage.azure
    assert azure is not None
    assert (azure.accountname, azure.accountkey, azure.container) == (
        "accountname",
        "base64encodedaccountkey",
        "containername",
    )
    assert azure.rootdirectory == "/az/object/name/prefix"
    assert azure.credentials is not None
    assert azure.credentials.type == "client_secret"
    assert (azure.credentials.clientid, azure.credentials.tenantid) == (
        "client_id_string",
        "tenant_id_string",
    )
    assert azure.credentials.secret == "secret_string"
    assert (azure.max_retries, azure.retry_delay) == (10, timedelta(milliseconds=100))
    assert azure.realm == "core.windows.net"


def test_full_list_with_the_inmemory_driver(load: Load) -> None:
    # `inmemory:` with nothing under it, as the example writes it.
    storage = load(only_driver(FULL_LIST, "inmemory")).settings.storage
    assert storage.driver == "inmemory"
    assert storage.inmemory == InMemorySettings()
    assert storage.driver_parameters() == {}


def test_full_list_with_the_gcs_driver_is_not_supported_yet(fail: Fail) -> None:
    assert fail(only_driver(FULL_LIST, "gcs")) == (
        "storage.gcs: storage driver not supported yet "
        "(entrepot has: azure, filesystem, inmemory, s3) (FILE, line 26)"
    )


def test_driver_parameters_build_the_driver(load: Load, tmp_path: Path) -> None:
    loaded = load(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}\n")
    storage = loaded.settings.storage
    driver = create_driver(storage.driver, storage.driver_parameters())
    assert isinstance(driver, FilesystemDriver)


# Defaults ------------------------------------------------------------------------


def test_distribution_defaults(load: Load) -> None:
    loaded = load("version: 0.1\nstorage:\n  filesystem:\n")
    assert loaded.warnings == ()
    assert loaded.source is not None
    s = loaded.settings
    assert s.storage.filesystem == FilesystemSettings(rootdirectory="/var/lib/registry")
    assert s.storage.filesystem.maxthreads == 100
    assert s.storage.delete.enabled is False  # Distribution: deletes are opt-in
    assert s.storage.redirect.disable is False
    assert s.storage.cache.blobdescriptor is None
    assert s.storage.cache.blobdescriptorsize == 10000
    purging = s.storage.maintenance.uploadpurging
    assert (purging.enabled, purging.age, purging.interval, purging.dryrun) == (
        True,
        timedelta(hours=168),
        timedelta(hours=24),
        False,
    )
    assert s.storage.maintenance.readonly.enabled is False
    assert (s.log.level, s.log.formatter, s.log.accesslog.disabled) == ("info", "text", False)
    assert (s.http.addr, s.http.net, s.http.prefix) == (":5000", "tcp", "")
    assert (s.http.host, s.http.secret, s.http.draintimeout) == (None, None, timedelta(0))
    assert not s.http.tls.enabled
    assert s.http.tls.minimumtls == "tls1.2"
    assert s.http.debug.addr is None
    assert s.http.debug.prometheus.path == "/metrics"
    health = s.health.storagedriver
    assert (health.enabled, health.interval, health.threshold) == (False, timedelta(seconds=10), 1)
    assert s.catalog.maxentries == 1000
    assert s.validation.disabled is False
    assert s.validation.manifests.urls.allow == ()
    assert s.redis.addresses == ()


def test_s3_defaults(load: Load) -> None:
    loaded = load("version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n    bucket: b\n")
    s3 = loaded.settings.storage.s3
    assert s3 is not None
    assert (s3.secure, s3.v4auth, s3.encrypt, s3.forcepathstyle) == (True, True, False, False)
    assert s3.chunksize == 10 * 1024 * 1024
    assert (s3.rootdirectory, s3.storageclass, s3.objectacl) == ("", "STANDARD", "private")


def test_embedded_default() -> None:
    settings = embedded_default()
    assert settings.storage.filesystem == FilesystemSettings(rootdirectory="./data")
    assert settings.storage.cache.blobdescriptor == "inmemory"
    assert settings.http.addr == "0.0.0.0:5000"
    assert settings.storage.delete.enabled is True
    assert settings.http.draintimeout == timedelta(seconds=30)
    assert load_config(None, {}) == LoadedConfig(settings, (), None)


def test_storage_shorthand(load: Load) -> None:
    # Distribution reads `storage: <driver>` as a driver without parameters.
    assert load("version: 0.1\nstorage: inmemory\n").settings.storage.driver == "inmemory"


def test_empty_sections_mean_the_defaults(load: Load) -> None:
    loaded = load(MINIMAL + "http:\n  tls:\n  headers:\nlog:\nredis:\n")
    assert loaded.warnings == ()
    assert not loaded.settings.http.tls.enabled
    assert loaded.settings.http.headers == {}


@pytest.mark.parametrize(("given", "expected"), [(0, 1000), (-5, 1000), (20, 20)])
def test_catalog_maxentries_below_one_means_the_default(
    load: Load, given: int, expected: int
) -> None:
    text = MINIMAL + f"catalog:\n  maxentries: {given}\n"
    assert load(text).settings.catalog.maxentries == expected


def test_log_level_is_case_insensitive(load: Load) -> None:
    assert load(MINIMAL + "log:\n  level: DEBUG\n").settings.log.level == "debug"


def test_settings_are_frozen() -> None:
    settings = embedded_default()
    name = "addr"  # (a plain assignment would not pass mypy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(settings.http, name, ":1")


def test_storage_settings_need_exactly_one_driver() -> None:
    with pytest.raises(ValueError, match="no storage driver configured"):
        StorageSettings()
    with pytest.raises(ValueError, match="got 2: filesystem, inmemory"):
        StorageSettings(filesystem=FilesystemSettings(), inmemory=InMemorySettings())


def test_redis_reads_both_spellings() -> None:
    old = RedisSettings.parse(
        {"addr": "r:6379", "pool": {"maxidle": 2, "maxactive": 8, "idletimeout": "1m"}}
    )
    new = RedisSettings.parse(
        {"addrs": ["r:6379"], "maxidleconns": 2, "poolsize": 8, "connmaxidletime": "60s"}
    )
    for redis in (old, new):
        assert redis.addresses == ("r:6379",)
        assert (redis.max_idle, redis.max_active, redis.idle_timeout) == (
            2,
            8,
            timedelta(minutes=1),
        )


def test_a_section_parsed_alone_lists_its_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisSettings.parse({"db": "three", "pool": {"maxactive": True}, "tls": {"key": "k"}})
    assert caught.value.problems == (
        "db: expected an integer, got 'three'",
        "pool.maxactive: expected an integer, got true",
        "tls: certificate and key go together; certificate is missing",
    )
    with pytest.raises(ConfigError, match=r"^RedisSettings: give addr or addrs, not both$"):
        RedisSettings.parse({"addr": "a:1", "addrs": ["b:1"]})


def test_redis_tls_is_on_when_files_are_given(load: Load) -> None:
    text = MINIMAL + "redis:\n  addr: r:6379\n  tls:\n    rootcas: [/ca.pem]\n"
    assert load(text).settings.redis.tls.enabled is True


# Environment overrides ---------------------------------------------------------


def test_env_overrides_a_nested_key_and_nothing_else(load: Load) -> None:
    text = MINIMAL + "    maxthreads: 50\n  delete:\n    enabled: true\n"
    loaded = load(text, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/somewhere"})
    assert loaded.warnings == ()
    storage = loaded.settings.storage
    assert storage.filesystem == FilesystemSettings(rootdirectory="/somewhere", maxthreads=50)
    assert storage.delete.enabled is True


@pytest.mark.parametrize(
    ("name", "value", "read", "expected"),
    [
        ("REGISTRY_LOG_LEVEL", "debug", lambda s: s.log.level, "debug"),
        ("REGISTRY_LOG_FORMATTER", "json", lambda s: s.log.formatter, "json"),
        ("REGISTRY_HTTP_ADDR", ":6000", lambda s: s.http.addr, ":6000"),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "true", lambda s: s.storage.delete.enabled, True),
        ("REGISTRY_STORAGE_REDIRECT_DISABLE", "True", lambda s: s.storage.redirect.disable, True),
        ("REGISTRY_CATALOG_MAXENTRIES", "50", lambda s: s.catalog.maxentries, 50),
        (
            "REGISTRY_STORAGE_CACHE_BLOBDESCRIPTORSIZE",
            "0",
            lambda s: s.storage.cache.blobdescriptorsize,
            0,
        ),
        (
            "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE",
            "1h30m",
            lambda s: s.storage.maintenance.uploadpurging.age,
            timedelta(minutes=90),
        ),
        (
            # A duration without unit counts nanoseconds, as in Distribution.
            "REGISTRY_HEALTH_STORAGEDRIVER_INTERVAL",
            "1500000000",
            lambda s: s.health.storagedriver.interval,
            timedelta(seconds=1.5),
        ),
        ("REGISTRY_HTTP_DRAINTIMEOUT", "2m", lambda s: s.http.draintimeout, timedelta(minutes=2)),
        # Text stays text, even when YAML would read a number or a boolean.
        ("REGISTRY_HTTP_SECRET", "0123", lambda s: s.http.secret, "0123"),
        ("REGISTRY_HTTP_SECRET", "yes", lambda s: s.http.secret, "yes"),
        ("REGISTRY_HTTP_PREFIX", "/v/", lambda s: s.http.prefix, "/v/"),
        ("REGISTRY_REDIS_PASSWORD", "", lambda s: s.redis.password, ""),
        # Every part is matched case-insensitively (the prefix is not).
        ("REGISTRY_http_Addr", "[::1]:5000", lambda s: s.http.addr, "[::1]:5000"),
    ],
)
def test_env_overrides_one_value(
    load: Load, name: str, value: str, read: Callable[[Settings], object], expected: object
) -> None:
    loaded = load(MINIMAL, {name: value})
    assert loaded.warnings == ()
    assert read(loaded.settings) == expected


def test_env_creates_sections_the_file_lacks(load: Load) -> None:
    env = {"REGISTRY_HTTP_TLS_CERTIFICATE": "/c.pem", "REGISTRY_HTTP_TLS_KEY": "/k.pem"}
    tls = load(MINIMAL, env).settings.http.tls
    assert (tls.certificate, tls.key) == ("/c.pem", "/k.pem")


def test_env_indexes_lists(load: Load) -> None:
    text = MINIMAL + "http:\n  tls:\n    clientcas: [/a.pem, /b.pem]\n"
    env = {"REGISTRY_HTTP_TLS_CLIENTCAS_0": "/x.pem", "REGISTRY_HTTP_TLS_CLIENTCAS_2": "/c.pem"}
    assert load(text, env).settings.http.tls.clientcas == ("/x.pem", "/b.pem", "/c.pem")


def test_env_index_beyond_the_end_is_an_error(fail: Fail) -> None:
    text = MINIMAL + "http:\n  tls:\n    clientcas: [/a.pem]\n"
    assert fail(text, {"REGISTRY_HTTP_TLS_CLIENTCAS_3": "/c.pem"}) == (
        "REGISTRY_HTTP_TLS_CLIENTCAS_3: http.tls.clientcas[3]: no such item; "
        "the list has 1, and the next one is http.tls.clientcas[1]"
    )


def test_env_sets_a_whole_list_or_mapping_as_yaml(load: Load) -> None:
    env = {
        "REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW": "[^https://a/, ^https://b/]",
        "REGISTRY_HTTP_HEADERS": "{X-Frame-Options: [DENY]}",
    }
    settings = load(MINIMAL, env).settings
    assert settings.validation.manifests.urls.allow == ("^https://a/", "^https://b/")
    assert settings.http.headers == {"X-Frame-Options": ("DENY",)}


def test_env_free_form_keys_match_case_insensitively(load: Load) -> None:
    text = MINIMAL + "log:\n  fields:\n    service: registry\n"
    env = {"REGISTRY_LOG_FIELDS_SERVICE": "entrepot", "REGISTRY_LOG_FIELDS_REGION": "eu-1"}
    assert load(text, env).settings.log.fields == {"service": "entrepot", "region": "eu-1"}


def test_env_reaches_keys_with_underscores(load: Load) -> None:
    # Distribution would read MAX_RETRIES as max.retries and never set max_retries.
    text = (
        "version: 0.1\nstorage:\n  azure:\n    accountname: a\n    accountkey: k\n"
        "    container: c\n"
    )
    env = {"REGISTRY_STORAGE_AZURE_MAX_RETRIES": "-1", "REGISTRY_STORAGE_AZURE_RETRY_DELAY": "1s"}
    azure = load(text, env).settings.storage.azure
    assert azure is not None
    assert (azure.max_retries, azure.retry_delay) == (-1, timedelta(seconds=1))


def test_env_switches_the_driver_and_keeps_the_storage_options(load: Load) -> None:
    text = MINIMAL + "  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n"
    env = {  # in no particular order: they apply sorted, REGISTRY_STORAGE first
        "REGISTRY_STORAGE_S3_REGION": "eu-west-3",
        "REGISTRY_STORAGE_S3_BUCKET": "images",
        "REGISTRY_STORAGE": "s3",
    }
    loaded = load(text, env)
    assert loaded.warnings == ()
    storage = loaded.settings.storage
    assert (storage.driver, storage.filesystem) == ("s3", None)
    assert storage.s3 is not None
    assert (storage.s3.region, storage.s3.bucket) == ("eu-west-3", "images")
    assert storage.delete.enabled is True
    assert storage.cache.blobdescriptor == "inmemory"


def test_env_naming_the_same_driver_keeps_its_parameters(load: Load) -> None:
    storage = load(MINIMAL, {"REGISTRY_STORAGE": "filesystem"}).settings.storage
    assert storage.filesystem == FilesystemSettings(rootdirectory="/srv/registry")


def test_env_can_provide_the_storage_the_file_lacks(load: Load) -> None:
    loaded = load("version: 0.1\n", {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv"})
    assert loaded.settings.storage.filesystem == FilesystemSettings(rootdirectory="/srv")


def test_env_parameter_of_another_driver_is_an_error(fail: Fail) -> None:
    assert fail(MINIMAL, {"REGISTRY_STORAGE_S3_BUCKET": "images"}) == (
        "REGISTRY_STORAGE_S3_BUCKET: names storage driver s3, but the configured driver is "
        "filesystem; set REGISTRY_STORAGE=s3 to switch drivers"
    )


def test_env_applies_to_the_embedded_default() -> None:
    loaded = load_config(None, {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/srv"})
    assert loaded.settings.storage.filesystem == FilesystemSettings(rootdirectory="/srv")
    assert loaded.settings.storage.delete.enabled is True


@pytest.mark.parametrize(
    ("file_key", "env_name"),
    [
        ("layerinfo", "REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR"),
        ("blobdescriptor", "REGISTRY_STORAGE_CACHE_LAYERINFO"),
    ],
)
def test_env_replaces_both_spellings_of_a_deprecated_key(
    load: Load, file_key: str, env_name: str
) -> None:
    text = MINIMAL + f"  cache:\n    {file_key}: redis\n"
    settings = load(text, {env_name: "inmemory"}).settings
    assert settings.storage.cache.blobdescriptor == "inmemory"


def test_env_ignores_other_variables(load: Load) -> None:
    env = {"PATH": "/bin", "registry_http_addr": ":1", "REGISTRY_": "x", "HOME": "/root"}
    loaded = load(MINIMAL, env)
    assert loaded.warnings == ()
    assert loaded.settings.http.addr == ":5000"


def test_env_unknown_keys_are_warned_about(load: Load) -> None:
    # Kubernetes defines REGISTRY_PORT and friends for a service named registry.
    env = {
        "REGISTRY_PORT": "tcp://10.0.0.7:5000",
        "REGISTRY_HTTP_ADR": ":6000",
        "REGISTRY_HTTP_ADDR_PORT": "6000",
    }
    loaded = load(MINIMAL, env)
    assert loaded.warnings == (
        "REGISTRY_HTTP_ADDR_PORT: http.addr is a single value, not a section; ignored",
        "REGISTRY_HTTP_ADR: unknown key http.adr, ignored; did you mean addr?",
        "REGISTRY_PORT: unknown key port, ignored",
    )
    assert loaded.settings.http.addr == ":5000"


def test_env_unsupported_sections_are_warned_about(load: Load) -> None:
    env = {"REGISTRY_AUTH_HTPASSWD_REALM": "basic", "REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT": "8"}
    assert load(MINIMAL, env).warnings == (
        "not supported yet: auth (from REGISTRY_AUTH_HTPASSWD_REALM)",
        "not supported yet: storage.tag (from REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT)",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "REGISTRY_STORAGE_DELETE_ENABLED",
            "maybe",
            "storage.delete.enabled: expected true or false, got 'maybe'",
        ),
        (
            "REGISTRY_CATALOG_MAXENTRIES",
            "many",
            "catalog.maxentries: expected an integer, got 'many'",
        ),
        (
            "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL",
            "1d",
            "storage.maintenance.uploadpurging.interval: "
            "expected a duration such as 10s, 1m30s or 168h, got '1d'",
        ),
        (
            "REGISTRY_LOG_LEVEL",
            "loud",
            "log.level: expected 'error', 'warn', 'info' or 'debug', got 'loud'",
        ),
    ],
)
def test_env_bad_values_name_the_variable(fail: Fail, name: str, value: str, message: str) -> None:
    assert fail(MINIMAL, {name: value}) == f"{message} (from {name})"


def test_env_bad_yaml_names_the_variable(fail: Fail) -> None:
    assert fail(MINIMAL, {"REGISTRY_HTTP_HEADERS": "{a: ["}).startswith(
        "REGISTRY_HTTP_HEADERS: cannot read '{a: [' as YAML: "
    )


def test_env_driver_not_supported_yet(fail: Fail) -> None:
    assert fail("version: 0.1\n", {"REGISTRY_STORAGE_GCS_BUCKET": "images"}) == (
        "storage.gcs: storage driver not supported yet "
        "(entrepot has: azure, filesystem, inmemory, s3) (from REGISTRY_STORAGE_GCS_BUCKET)"
    )


def test_env_storage_must_name_a_driver(fail: Fail) -> None:
    assert fail(MINIMAL, {"REGISTRY_STORAGE": "[s3]"}) == (
        "REGISTRY_STORAGE: expected a storage driver name such as s3, or a mapping, got a list"
    )


@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
def test_env_text_is_taken_verbatim(secret: str) -> None:
    loaded = load_config(None, {"REGISTRY_HTTP_SECRET": secret})
    assert loaded.settings.http.secret == secret


# Invalid files: one message, naming the key and the line --------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n   bad: [\n",
            "invalid YAML: while parsing a block mapping: expected <block end>, "
            "but found '<block mapping start>' (FILE, line 5, column 4)",
            id="bad-indentation",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n\tinmemory: {}\n",
            "invalid YAML: while scanning for the next token: "
            "found character '\\t' that cannot start any token (FILE, line 3, column 1)",
            id="tab",
        ),
        pytest.param(
            "version: 0.1\nstorage: {inmemory: {}\n",
            "invalid YAML: while parsing a flow mapping: expected ',' or '}', "
            "but got '<stream end>' (FILE, line 3, column 1)",
            id="unclosed",
        ),
        pytest.param("", 'version: required; set version: "0.1" (FILE)', id="empty-file"),
        pytest.param(
            "storage: inmemory\n", 'version: required; set version: "0.1" (FILE)', id="no-version"
        ),
        pytest.param(
            "version: 0.2\nstorage: inmemory\n",
            'version: unsupported configuration version "0.2"; '
            'entrepot reads version "0.1" (FILE, line 1)',
            id="version-0.2",
        ),
        pytest.param(
            "version: 0.10\nstorage: inmemory\n",
            'version: unsupported configuration version "0.10"; '
            'entrepot reads version "0.1" (FILE, line 1)',
            id="version-0.10",
        ),
        pytest.param(
            "version: [0.1]\nstorage: inmemory\n",
            'version: expected "0.1", got a list (FILE, line 1)',
            id="version-list",
        ),
        pytest.param(
            "- version: 0.1\n",
            "expected a mapping of sections at the top level, got a list (FILE)",
            id="top-level-list",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: 3\n",
            "storage.filesystem.rootdirectory: expected a string, got 3 (FILE, line 4)",
            id="wrong-type",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  filesystem:\n    maxthreads: 10\n",
            "storage.filesystem.maxthreads: expected at least 25, got 10 (FILE, line 4)",
            id="too-small",
        ),
        pytest.param(
            'version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: "yes"\n',
            "storage.delete.enabled: expected true or false, got 'yes' (FILE, line 5)",
            id="quoted-boolean",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\ncatalog:\n  maxentries: true\n",
            "catalog.maxentries: expected an integer, got true (FILE, line 4)",
            id="boolean-as-integer",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  filesystem:\n    maxthreads: 50.0\n",
            "storage.filesystem.maxthreads: expected an integer, got 50.0 (FILE, line 4)",
            id="float-as-integer",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  secret: 1234\n",
            "http.secret: expected a string, got 1234 (FILE, line 4)",
            id="number-as-string",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    clientcas: /ca.pem\n",
            "http.tls.clientcas: expected a list, got '/ca.pem' (FILE, line 5)",
            id="string-as-list",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  headers:\n    X-A: [ok, 7]\n",
            "http.headers.X-A[1]: expected a string, got 7 (FILE, line 5)",
            id="list-item",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  headers: [X-A]\n",
            "http.headers: expected a mapping, got a list (FILE, line 4)",
            id="list-as-mapping",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    certificate: /c.pem\n",
            "http.tls: certificate and key go together; key is missing (FILE, line 4)",
            id="section-check",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: localhost\n",
            "http.addr: expected HOST:PORT with a port from 0 to 65535, got 'localhost' "
            "(FILE, line 4)",
            id="check-naming-a-key",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nredis:\n  pool:\n    maxidle: -1\n",
            "redis.pool.maxidle: expected at least 0, got -1 (FILE, line 5)",
            id="optional-bounded",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nlog: debug\n",
            "log: expected a mapping, got 'debug' (FILE, line 3)",
            id="section-not-a-mapping",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nlog:\n  level: loud\n",
            "log.level: expected 'error', 'warn', 'info' or 'debug', got 'loud' (FILE, line 4)",
            id="bad-choice",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n"
            "      age: 10 parsecs\n",
            "storage.maintenance.uploadpurging.age: expected a duration such as 10s, 1m30s "
            "or 168h, got '10 parsecs' (FILE, line 6)",
            id="bad-duration",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  draintimeout: -1s\n",
            "http.draintimeout: expected a duration that is not negative, got '-1s' (FILE, line 4)",
            id="negative-duration",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  filesystem: {}\n  s3: {region: r, bucket: b}\n",
            "storage: exactly one storage driver must be configured, got 2: filesystem, s3 "
            "(FILE, line 2)",
            id="two-drivers",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  delete:\n    enabled: true\n",
            "storage: no storage driver configured; add one of: azure, filesystem, inmemory, s3 "
            "(FILE, line 2)",
            id="no-driver",
        ),
        pytest.param(
            "version: 0.1\nhttp:\n  addr: :5000\n",
            "storage: required; configure one storage driver (azure, filesystem, inmemory, s3) "
            "(FILE)",
            id="no-storage",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  filesystme: {}\n",
            "storage.filesystme: unknown storage driver; did you mean filesystem? "
            "(entrepot has: azure, filesystem, inmemory, s3) (FILE, line 3)",
            id="unknown-driver",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: inmemory\n"
            "    layerinfo: redis\n",
            "storage.cache.layerinfo (deprecated) is 'redis' but storage.cache.blobdescriptor "
            "is 'inmemory'; keep only blobdescriptor (FILE, line 6)",
            id="layerinfo-conflict",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nvalidation:\n  enabled: true\n  disabled: true\n",
            "validation.enabled (deprecated) is true but validation.disabled is true; "
            "keep only disabled (FILE, line 4)",
            id="validation-enabled-conflict",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\n",
            "storage.cache.blobdescriptor: redis needs a redis section with addr (or addrs) (FILE)",
            id="redis-cache-without-redis",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  tls:\n    certificate: /c.pem\n",
            "http.tls: certificate and key go together; key is missing (FILE, line 4)",
            id="certificate-without-key",
        ),
        pytest.param(
            "version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n",
            "storage.s3.bucket: required (FILE, line 3)",
            id="missing-required",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  prefix: registry\n",
            "http.prefix: expected a path starting and ending with /, got 'registry' "
            "(FILE, line 4)",
            id="bad-prefix",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  host: registry.example.com\n",
            "http.host: expected an absolute URL such as https://registry.example.com, "
            "got 'registry.example.com' (FILE, line 4)",
            id="bad-host",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nvalidation:\n  manifests:\n    urls:\n"
            "      deny: ['(']\n",
            "validation.manifests.urls.deny: invalid regular expression '(': missing ), "
            "unterminated subpattern at position 0 (FILE, line 6)",
            id="bad-regex",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nhttp:\n  1: x\n",
            "http: keys must be text, got 1 (FILE, line 3)",
            id="number-as-key",
        ),
        pytest.param(
            "version: 0.1\nstorage: inmemory\nredis:\n  addr: a:6379\n  addrs: [b:6379]\n",
            "redis: give addr or addrs, not both (FILE, line 3)",
            id="redis-addr-and-addrs",
        ),
    ],
)
def test_invalid_file(fail: Fail, text: str, message: str) -> None:
    assert fail(text) == message


def test_every_problem_is_listed(config_file: Path) -> None:
    config_file.write_text("version: 0.1\nstorage:\n  s3:\n    chunksize: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})
    assert caught.value.problems == (
        f"storage.s3.region: required ({config_file}, line 3)",
        f"storage.s3.bucket: required ({config_file}, line 3)",
        f"storage.s3.chunksize: expected at least 5242880, got 1 ({config_file}, line 4)",
    )
    first, *others = caught.value.problems
    assert str(caught.value) == f"{first}; also: {'; '.join(others)}"


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError, match=r"^cannot read .*missing\.yml: No such file"):
        load_config(missing, {})


# Warnings: never silence ---------------------------------------------------------


def test_unknown_keys_are_warned_about(load: Load) -> None:
    text = MINIMAL + "http:\n  adr: :6000\n  color: blue\nbanner: hello\n"
    loaded = load(text)
    assert loaded.warnings == (
        f"unknown key http.adr, ignored; did you mean addr? ({loaded.source}, line 6)",
        f"unknown key http.color, ignored ({loaded.source}, line 7)",
        f"unknown key banner, ignored ({loaded.source}, line 8)",
    )
    assert loaded.settings.http.addr == ":5000"


def test_unsupported_sections_are_warned_about(load: Load) -> None:
    text = (
        MINIMAL + "auth:\n  htpasswd:\n    realm: r\n    path: /p\nproxy:\n  remoteurl: https://r\n"
    )
    loaded = load(text)
    assert loaded.warnings == (
        f"not supported yet: auth ({loaded.source}, line 5)",
        f"not supported yet: proxy ({loaded.source}, line 9)",
    )


def test_layerinfo_is_accepted(load: Load) -> None:
    loaded = load(MINIMAL + "  cache:\n    layerinfo: inmemory\n")
    assert loaded.settings.storage.cache.blobdescriptor == "inmemory"
    assert loaded.warnings == (
        "storage.cache.layerinfo is deprecated; use storage.cache.blobdescriptor "
        f"({loaded.source}, line 6)",
    )


def test_layerinfo_may_repeat_blobdescriptor(load: Load) -> None:
    loaded = load(MINIMAL + "  cache:\n    layerinfo: inmemory\n    blobdescriptor: inmemory\n")
    assert loaded.settings.storage.cache.blobdescriptor == "inmemory"
    assert len(loaded.warnings) == 1


def test_deprecated_loglevel_and_validation_enabled(load: Load) -> None:
    loaded = load(MINIMAL + "loglevel: debug\nvalidation:\n  enabled: false\n")
    assert loaded.settings.log.level == "debug"
    assert loaded.settings.validation.disabled is True
    assert [warning.split(" (")[0] for warning in loaded.warnings] == [
        "loglevel is deprecated; use log.level",
        "validation.enabled is deprecated; use validation.disabled",
    ]


def test_duplicate_keys_are_warned_about(load: Load) -> None:
    loaded = load(MINIMAL + "http:\n  addr: :1\n  addr: :2\n")
    assert loaded.settings.http.addr == ":2"  # the last one, as Distribution's parser
    assert loaded.warnings == (
        f"http.addr is given twice ({loaded.source}, lines 6 and 7); the last one is used",
    )


# Printing the effective settings ---------------------------------------------------


def test_masked_hides_secrets(load: Load) -> None:
    text = only_driver(FULL_LIST, "s3")
    shown = masked(load(text).settings)
    assert shown["http"]["secret"] == MASK
    assert shown["storage"]["s3"]["accesskey"] == MASK
    assert shown["storage"]["s3"]["secretkey"] == MASK
    assert shown["storage"]["s3"]["bucket"] == "bucketname"
    assert shown["redis"]["password"] == MASK
    assert "asecret" not in json.dumps(shown)
    azure = masked(load(only_driver(FULL_LIST, "azure")).settings)["storage"]["azure"]
    assert azure["accountkey"] == MASK
    assert azure["credentials"]["secret"] == MASK
    assert azure["credentials"]["clientid"] == "client_id_string"


def test_masked_shows_the_settings_in_config_yml_shape() -> None:
    shown = masked(embedded_default())
    assert list(shown["storage"]) == ["filesystem", "delete", "redirect", "cache", "maintenance"]
    assert shown["storage"]["maintenance"]["uploadpurging"]["age"] == "168h"
    assert shown["http"]["secret"] is None  # unset is not a secret
    assert shown["http"]["draintimeout"] == "30s"


def test_masked_keeps_empty_credentials_visible(load: Load) -> None:
    # Empty keys mean "use the instance's IAM role": worth seeing, nothing to hide.
    text = 'version: 0.1\nstorage:\n  s3: {region: r, bucket: b, accesskey: "", secretkey: ""}\n'
    s3 = masked(load(text).settings)["storage"]["s3"]
    assert (s3["accesskey"], s3["secretkey"]) == ("", "")


def test_masked_output_loads_again(load: Load) -> None:
    for settings in (embedded_default(), load(only_driver(FULL_LIST, "s3")).settings):
        shown = masked(settings)
        reloaded = load(yaml.safe_dump(shown, sort_keys=False))
        assert reloaded.warnings == ()
        assert masked(reloaded.settings) == shown


# Durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("1m30s", timedelta(seconds=90)),
        ("168h", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
        (".5s", timedelta(milliseconds=500)),
        ("1.s", timedelta(seconds=1)),
        ("2h45m", timedelta(hours=2, minutes=45)),
        ("300ms", timedelta(milliseconds=300)),
        ("1h15m30.918273645s", timedelta(hours=1, minutes=15, seconds=30, microseconds=918274)),
        ("1us", timedelta(microseconds=1)),
        ("1µs", timedelta(microseconds=1)),
        ("1μs", timedelta(microseconds=1)),
        ("1500ns", timedelta(microseconds=2)),
        ("1ns", timedelta(0)),
        ("0", timedelta(0)),
        ("+5s", timedelta(seconds=5)),
        ("-1.5h", timedelta(minutes=-90)),
        (1_000_000_000, timedelta(seconds=1)),
        (0, timedelta(0)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "10", "1d", "s", "1 s", " 1s", "1s ", ".s", "-", "1h-1m", "\u0661s", "2562048h"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [True, 1.5, None, [1]])
def test_parse_duration_rejects_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(days=7), "168h"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1, seconds=1), "1h1s"),
        (timedelta(milliseconds=100), "100ms"),
        (timedelta(microseconds=1500), "1500us"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(minutes=-2), "-2m"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.timedeltas(min_value=timedelta(days=-100_000), max_value=timedelta(days=100_000)))
def test_durations_round_trip(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
