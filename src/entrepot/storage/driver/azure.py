"""A storage driver on Azure Blob Storage.

The keys and behaviour of Distribution's `azure` driver, so both registries
can share a container: driver path `/a/b` is the blob `<rootdirectory>/a/b`
(without a leading `/`). Directories are implicit: a directory is a name
prefix that has blobs below it, so it appears with its first blob and goes
away with its last.

Files written by `put_content` are block blobs, replaced whole by one
`Put Blob`, so a reader sees the old or the new content. Writers make
append blobs, Distribution's way, so an upload survives a change of process
and Distribution and entrepot resume each other's:

- A truncating writer creates an empty append blob at once (replacing what
  was there); an appending one continues the append blob at the path, its
  size that of the blob. An appending writer on a missing path creates the
  blob; on a block blob (a file from `put_content`) it reads the block
  blob's bytes back and puts them first in a new append blob when it first
  sends bytes.
- Written bytes collect in a buffer and go up as blocks of 4 MiB (the
  largest append block of the API versions Distribution uses) as it fills,
  so memory stays bounded; `close` and `commit` send what is left as one
  shorter block. An append blob takes 50,000 blocks: some 195 GiB in full
  blocks, less for a file written in many short pieces.
- Every block is sent at the offset the writer expects (the append position
  condition), so two writers cannot interleave their bytes. When a block
  is refused because it is already there (a retry after a lost answer), its
  bytes are compared with the blob's and the write goes on.
- `cancel` deletes the blob if it is still the one this writer left (by
  ETag), so a file replaced meanwhile is spared.
- A write whose bytes could not be sent is undone (when none of them went
  up), so the caller can send them again.

Bytes of an unfinished writer are readable once sent, as an append blob is
readable as it grows: a closed writer's bytes are all there. `move` is a
server-side copy (`Copy Blob`, polled until done, `max_retries` times
`retry_delay` apart, as Distribution does) and a delete of the source;
`delete` removes the blobs below a path, a page at a time, several at once;
`walk` lists one directory at a time, since a flat listing of names does not
sort as the drivers do (`a-b/x` sorts before `a/x`).

What an object store cannot do, and the file systems can:

- A path can be both a file and a directory (`a` and `a/b`).
- A directory has no time of its own: `stat` and `walk` give it that of a
  blob below it.
- Some names cannot be blob names: Azure turns `\\` into `/`, and cannot
  list names with characters XML cannot carry. Such paths are refused
  (`InvalidPath`), as are names over 1,024 characters or 254 segments.
- `local_path` is always None; `redirect_url` is a read-only SAS URL (GET or
  HEAD, 20 minutes), signed with the account key or, with Azure AD
  credentials, a user delegation key; made without a request for the blob,
  it does not say whether the file exists.

Every call is a coroutine on the official async client
(`azure.storage.blob.aio`, on aiohttp), made on first use on the running
event loop; `aclose` releases its connections. Credentials are the account
key, a connection string, or Azure AD credentials (`azure-identity`):
a client secret, or the default chain (environment, workload identity,
managed identity).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobProperties,
    BlobSasPermissions,
    BlobType,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
)
from azure.storage.blob.aio import BlobClient, BlobPrefix, BlobServiceClient, ContainerClient

from entrepot.config import parse_duration
from entrepot.storage.driver.base import (
    FileInfo,
    FileReader,
    FileWriter,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriverError,
    check_file_path,
    check_path,
)
from entrepot.storage.driver.objectstore import EPOCH, Entry, ObjectStoreTree

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

NAME: Final = "azure"

MiB: Final = 1 << 20
# Azure's limits: an append block of at most 4 MiB (in the API versions
# Distribution uses), 50,000 blocks to an append blob, names of at most
# 1,024 characters in at most 254 segments.
APPEND_BLOCK_SIZE: Final = 4 * MiB
MAX_APPEND_BLOCKS: Final = 50_000
MAX_NAME_LENGTH: Final = 1024
MAX_SEGMENTS: Final = 254
# Bytes the client's downloads (a writer reading a block blob back) ask for
# at a time; readers stream one GET instead.
DOWNLOAD_CHUNK_SIZE: Final = 4 * MiB

DEFAULT_REALM: Final = "core.windows.net"
DEFAULT_MAX_RETRIES: Final = 5
DEFAULT_RETRY_DELAY: Final = timedelta(milliseconds=100)
CREDENTIAL_TYPES: Final = ("client_secret", "shared_key", "default_credentials", "default")

# Blobs asked for per list page: Azure's maximum. Tests lower it to go
# through many pages with few blobs.
LIST_PAGE_SIZE = 5000
# Deletes in flight at once when removing a tree (Azure has batches, but
# not every Azure-compatible store does).
DELETE_CONCURRENCY: Final = 16
PRESIGN_EXPIRY: Final = timedelta(minutes=20)
# A user delegation key (Azure AD credentials) is asked for this long, and
# a new one once less than the grace period is left, as Distribution does.
DELEGATION_KEY_EXPIRY: Final = timedelta(hours=48)
DELEGATION_KEY_GRACE: Final = timedelta(minutes=30)

_CONTENT_TYPE: Final = "application/octet-stream"
# `\` becomes `/` in Azure; XML (listings) cannot carry surrogates,
# U+FFFE and U+FFFF; Azure refuses the C1 control characters.
_UNSTORABLE: Final = re.compile("[\\\\\x80-\x9f\ud800-\udfff\ufffe\uffff]")


# -- parameters --


def _str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"azure: the {name} parameter must be a string, not {value!r}")
    return value


def _int(params: Mapping[str, Any], names: tuple[str, ...], default: int, low: int) -> int:
    for name in names:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            break
        if isinstance(value, int):
            result = value
        elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            result = int(value)
        else:
            break
        if result < low:
            raise ValueError(f"azure: the {name} parameter must be {low} or more, not {result}")
        return result
    else:
        return default
    raise ValueError(f"azure: the {name} parameter must be an integer, not {value!r}")


def _duration(params: Mapping[str, Any], names: tuple[str, ...], default: timedelta) -> timedelta:
    for name in names:
        value = params.get(name)
        if value is None or value == "":
            continue
        try:
            if isinstance(value, timedelta):
                result = value
            elif isinstance(value, int | str) and not isinstance(value, bool):
                result = parse_duration(value)
            else:
                raise ValueError(f"not a duration: {value!r}")
        except ValueError as err:
            raise ValueError(f"azure: the {name} parameter: {err}") from None
        if result < timedelta(0):
            raise ValueError(f"azure: the {name} parameter must not be negative")
        return result
    return default


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"azure: the {name} parameter is not an http(s) URL: {value!r}")
    return value.rstrip("/")


def _connection_string_fields(value: str) -> dict[str, str]:
    """`Key=value;...` of an Azure connection string (keys case-insensitive)."""
    fields: dict[str, str] = {}
    for item in value.split(";"):
        key, sep, field = item.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = field.strip()
    return fields


@dataclass(frozen=True, slots=True)
class AzureCredentialOptions:
    """`credentials`: Azure AD credentials, Distribution's keys."""

    type: str
    client_id: str | None = None
    tenant_id: str | None = None
    secret: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class AzureOptions:
    """The driver's configuration, from Distribution's `storage.azure` keys.

    `serviceurl` (Distribution 3's key) names the account's blob endpoint,
    `https://<accountname>.blob.<realm>` by default: an Azure-compatible
    server such as Azurite is one. `connectionstring` is the other way to
    say where and who, as Azure's tools print it.
    """

    account_name: str
    container: str
    account_key: str | None = None
    credentials: AzureCredentialOptions | None = None
    connection_string: str | None = None
    service_url: str = ""
    realm: str = DEFAULT_REALM
    root_directory: str = ""
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_delay: timedelta = DEFAULT_RETRY_DELAY

    def __repr__(self) -> str:
        # Never the key, the secret or the connection string.
        return (
            f"AzureOptions(account_name={self.account_name!r}, container={self.container!r}, "
            f"service_url={self.service_url!r}, root_directory={self.root_directory!r})"
        )

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> AzureOptions:
        """Read Distribution's keys; raise `ValueError` for a bad one."""
        connection_string = _str(params, "connectionstring")
        fields = _connection_string_fields(connection_string) if connection_string else {}
        account_name = _str(params, "accountname") or fields.get("accountname")
        if account_name is None:
            raise ValueError("azure: no accountname parameter provided")
        container = _str(params, "container")
        if container is None:
            raise ValueError("azure: no container parameter provided")
        realm = _str(params, "realm") or DEFAULT_REALM
        service_url = _str(params, "serviceurl") or fields.get("blobendpoint")
        if service_url is None:
            service_url = f"https://{account_name}.blob.{realm}"
        service_url = _url(service_url, "serviceurl")
        credentials = _credential_options(params.get("credentials"))
        account_key = _str(params, "accountkey")
        if account_key is None and credentials is None and connection_string is None:
            raise ValueError("azure: give accountkey, credentials or connectionstring")
        if (
            credentials is not None
            and credentials.type == "shared_key"
            and account_key is None
            and connection_string is None
        ):
            raise ValueError("azure: shared_key credentials need the accountkey parameter")
        root = _str(params, "rootdirectory") or ""
        return cls(
            account_name=account_name,
            container=container,
            account_key=account_key,
            credentials=credentials,
            connection_string=connection_string,
            service_url=service_url,
            realm=realm,
            root_directory=root,
            # Distribution 3 calls them copy_status_poll_max_retry and
            # copy_status_poll_delay; its documentation, the names first.
            max_retries=_int(
                params, ("max_retries", "copy_status_poll_max_retry"), DEFAULT_MAX_RETRIES, -1
            ),
            retry_delay=_duration(
                params, ("retry_delay", "copy_status_poll_delay"), DEFAULT_RETRY_DELAY
            ),
        )

    @property
    def signing_key(self) -> str | None:
        """The account key that signs SAS URLs, if one was given."""
        if self.account_key is not None:
            return self.account_key
        if self.connection_string is not None:
            return _connection_string_fields(self.connection_string).get("accountkey") or None
        return None


def _credential_options(value: object) -> AzureCredentialOptions | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"azure: the credentials parameter must be a mapping, not {value!r}")
    kind = value.get("type")
    if kind is None or kind == "":
        return None
    if kind not in CREDENTIAL_TYPES:
        known = ", ".join(CREDENTIAL_TYPES)
        raise ValueError(f"azure: the credentials type must be one of {known}, not {kind!r}")
    fields = {name: _str(value, name) for name in ("clientid", "tenantid", "secret")}
    if kind == "client_secret" and None in fields.values():
        raise ValueError("azure: client_secret credentials need clientid, tenantid and secret")
    return AzureCredentialOptions(
        type=kind,
        client_id=fields["clientid"],
        tenant_id=fields["tenantid"],
        secret=fields["secret"],
    )


# -- helpers --


def _error_code(err: HttpResponseError) -> str:
    # The client sets a `StorageErrorCode` (a str enum), or the raw header.
    code = getattr(err, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return EPOCH
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class AzureDriver(ObjectStoreTree):
    """A `StorageDriver` on an Azure Blob Storage container."""

    def __init__(self, options: AzureOptions) -> None:
        self._options = options
        root = options.root_directory.strip("/")
        self._prefix = f"{root}/" if root else ""
        if _UNSTORABLE.search(self._prefix):
            raise ValueError("azure: the rootdirectory has a character blob names cannot have")
        self._service: BlobServiceClient | None = None
        self._container: ContainerClient | None = None
        self._credential: AsyncTokenCredential | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delegation: tuple[UserDelegationKey, datetime] | None = None
        self._https = urlsplit(options.service_url).scheme == "https"
        # azure-core logs every request and response at INFO: too much for a
        # registry's log, unless someone asked for it.
        http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
        if http_log.level == logging.NOTSET:
            http_log.setLevel(logging.WARNING)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> AzureDriver:
        return cls(AzureOptions.from_parameters(params))

    @property
    def name(self) -> str:
        return NAME

    @property
    def options(self) -> AzureOptions:
        return self._options

    # -- the client --

    def _token_credential(self) -> AsyncTokenCredential:
        credentials = self._options.credentials
        assert credentials is not None
        try:
            from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
        except ModuleNotFoundError as err:
            raise ValueError(
                f"azure: credentials of type {credentials.type} need {err.name!r}, which is "
                "not installed: install entrepot with its azure extra"
            ) from err
        if credentials.type == "client_secret":
            # All three are there: `from_parameters` checks.
            return ClientSecretCredential(
                credentials.tenant_id or "", credentials.client_id or "", credentials.secret or ""
            )
        return DefaultAzureCredential()

    def _make_service(self) -> BlobServiceClient:
        o = self._options
        settings: dict[str, Any] = {
            "max_single_get_size": DOWNLOAD_CHUNK_SIZE,
            "max_chunk_get_size": DOWNLOAD_CHUNK_SIZE,
        }
        if o.account_key is not None:
            credential: Any = {"account_name": o.account_name, "account_key": o.account_key}
            return BlobServiceClient(o.service_url, credential=credential, **settings)
        if o.connection_string is not None:
            return BlobServiceClient.from_connection_string(o.connection_string, **settings)
        self._credential = self._token_credential()
        return BlobServiceClient(o.service_url, credential=self._credential, **settings)

    def _client(self) -> ContainerClient:
        """The container client of the running event loop, made on first use
        (it opens its connections with its first request)."""
        loop = asyncio.get_running_loop()
        if self._container is None or self._loop is not loop:
            # A new loop (a test's asyncio.run): the old client's connections
            # belong to the old loop, which is gone or not ours to use.
            self._service = self._make_service()
            self._container = self._service.get_container_client(self._options.container)
            self._loop = loop
        return self._container

    def _blob(self, key: str) -> BlobClient:
        return self._client().get_blob_client(key)

    async def aclose(self) -> None:
        """Close the client's connections (it is made again if needed)."""
        service, credential, loop = self._service, self._credential, self._loop
        self._service = self._container = None
        self._credential = None
        if loop is asyncio.get_running_loop():
            if service is not None:
                await service.close()
            if credential is not None:
                await credential.close()

    # -- names --

    def _key(self, path: str) -> str:
        """The blob name of a checked file path."""
        bad = _UNSTORABLE.search(path)
        if bad is not None:
            raise InvalidPath(NAME, path, f"{bad.group()!r} cannot be in an Azure blob name")
        key = self._prefix + path[1:]
        if len(key) > MAX_NAME_LENGTH:
            raise InvalidPath(NAME, path, "name too long")
        if key.count("/") >= MAX_SEGMENTS:
            raise InvalidPath(NAME, path, "too many segments")
        return key

    def _dir_prefix(self, path: str) -> str:
        """The name prefix of what lies below a checked path."""
        return self._prefix if path == "/" else self._key(path) + "/"

    # -- requests shared by the operations --

    async def _properties(self, key: str) -> BlobProperties | None:
        """The properties of the blob `key`, None if there is none."""
        try:
            return await self._blob(key).get_blob_properties()
        except ResourceNotFoundError:
            return None

    async def _stream(self, key: str, offset: int = 0) -> AsyncIterator[bytes]:
        """The body of one GET of the blob `key` from `offset`, streamed.

        One request, so the bytes are of one version of the blob even if it
        is replaced meanwhile (the client's `download_blob` makes a request
        per 4 MiB and fails when the blob changes between them). Its
        operation is the client's own, one layer down.
        """
        # Without a range an empty blob reads too (a ranged GET is refused).
        ranged: dict[str, Any] = {"range": f"bytes={offset}-"} if offset else {}
        stream: AsyncIterator[bytes] = await self._blob(key)._client.blob.download(**ranged)
        return stream

    async def _list_level(self, prefix: str) -> builtins.list[Entry]:
        """The direct children of the directory `prefix` (ends with `/`, or
        is the root's prefix), all pages, sorted by name."""
        entries: builtins.list[Entry] = []
        listing = self._client().walk_blobs(
            name_starts_with=prefix or None, delimiter="/", results_per_page=LIST_PAGE_SIZE
        )
        async for item in listing:
            if isinstance(item, BlobPrefix):
                name = item.name[len(prefix) : -1]
                if name:  # not the empty segment of a `//` in a name
                    entries.append(Entry(name, True))
            else:
                name = item.name[len(prefix) :]
                if name:
                    entries.append(Entry(name, False, item.size, _utc(item.last_modified)))
        entries.sort(key=lambda entry: (entry.name, entry.is_dir))
        return entries

    async def _first_below(self, prefix: str) -> datetime | None:
        """The mtime of the first blob below `prefix`, None if there is none."""
        pages = self._client().list_blobs(name_starts_with=prefix or None, results_per_page=1)
        async for page in pages.by_page():
            async for item in page:
                return _utc(item.last_modified)
        return None

    async def _create_append_blob(self, key: str, *, replacing: str | None = None) -> str:
        """Make an empty append blob at `key`, replacing any blob there (or
        only the one whose ETag is `replacing`); its ETag."""
        blob = self._blob(key)
        conditions: dict[str, Any] = {}
        if replacing is not None:
            conditions = {"etag": replacing, "match_condition": MatchConditions.IfNotModified}
        settings = ContentSettings(content_type=_CONTENT_TYPE)
        try:
            created = await blob.create_append_blob(content_settings=settings, **conditions)
        except HttpResponseError as err:
            if _error_code(err) != "InvalidBlobType":
                raise
            # A service that will not change a blob's type in place: the old
            # blob goes first (Distribution's way too).
            await blob.delete_blob(delete_snapshots="include", **conditions)
            created = await blob.create_append_blob(
                content_settings=settings, match_condition=MatchConditions.IfMissing
            )
        return str(created["etag"])

    async def _delete_quietly(self, key: str, etag: str | None = None) -> bool:
        """Delete the blob `key` (if still the one named `etag`); whether it was."""
        conditions: dict[str, Any] = {}
        if etag is not None:
            conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            await self._blob(key).delete_blob(delete_snapshots="include", **conditions)
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        return True

    async def _signed_url(self, key: str) -> str | None:
        """A read-only SAS URL of the blob `key`, None without a way to sign."""
        o = self._options
        now = datetime.now(UTC)
        sas_args: dict[str, Any] = {
            "permission": BlobSasPermissions(read=True),
            "start": now - timedelta(seconds=10),
            "expiry": now + PRESIGN_EXPIRY,
            "protocol": "https" if self._https else "https,http",
        }
        blob = self._blob(key)
        signing_key = o.signing_key
        if signing_key is not None:
            sas = generate_blob_sas(
                blob.account_name or o.account_name,
                o.container,
                key,
                account_key=signing_key,
                **sas_args,
            )
        elif o.credentials is not None:
            delegation = await self._delegation_key(now)
            sas = generate_blob_sas(
                blob.account_name or o.account_name,
                o.container,
                key,
                user_delegation_key=delegation,
                **sas_args,
            )
        else:
            return None
        return f"{blob.url}?{sas}"

    async def _delegation_key(self, now: datetime) -> UserDelegationKey:
        """A user delegation key to sign with, asked for again near its end."""
        if self._delegation is not None:
            key, expiry = self._delegation
            if expiry - now > DELEGATION_KEY_GRACE:
                return key
        self._client()
        assert self._service is not None
        start = now - timedelta(seconds=10)
        expiry = start + DELEGATION_KEY_EXPIRY
        key = await self._service.get_user_delegation_key(start, expiry)
        self._delegation = (key, expiry)
        return key

    # -- the StorageDriver protocol --

    async def get_content(self, path: str) -> bytes:
        key = self._key(check_file_path(NAME, path))
        try:
            stream = await self._stream(key)
        except ResourceNotFoundError:
            raise PathNotFound(NAME, path) from None
        return b"".join([chunk async for chunk in stream])

    async def put_content(self, path: str, content: bytes) -> None:
        key = self._key(check_file_path(NAME, path))
        blob = self._blob(key)
        settings = ContentSettings(content_type=_CONTENT_TYPE)
        try:
            await blob.upload_blob(
                content, blob_type=BlobType.BLOCKBLOB, overwrite=True, content_settings=settings
            )
        except HttpResponseError as err:
            if _error_code(err) != "InvalidBlobType":
                raise
            # An append blob a service will not replace by a block blob in
            # place: deleted first, as Distribution does.
            await self._delete_quietly(key)
            await blob.upload_blob(
                content, blob_type=BlobType.BLOCKBLOB, overwrite=True, content_settings=settings
            )

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        key = self._key(check_file_path(NAME, path))
        if offset < 0:
            raise InvalidOffset(NAME, path, offset)
        try:
            stream = await self._stream(key, offset)
        except ResourceNotFoundError:
            raise PathNotFound(NAME, path) from None
        except HttpResponseError as err:
            if err.status_code != 416:
                raise
            # At or past the end: only the end itself is a valid offset.
            properties = await self._properties(key)
            if properties is None:
                raise PathNotFound(NAME, path) from None
            if offset != properties.size:
                raise InvalidOffset(NAME, path, offset) from None
            return _Reader(None)
        return _Reader(stream)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(check_file_path(NAME, path))
        if not append:
            # Made at once, as Distribution does, so that the truncation
            # holds even if nothing is written before `close`, and another
            # process finds the blob to resume.
            etag = await self._create_append_blob(key)
            return _Writer(self, path, key, size=0, etag=etag)
        for _ in range(3):
            properties = await self._properties(key)
            if properties is not None:
                if properties.blob_type == BlobType.APPENDBLOB:
                    return _Writer(self, path, key, size=properties.size, etag=properties.etag)
                if properties.blob_type == BlobType.BLOCKBLOB:
                    size, etag = properties.size, properties.etag
                    return _Writer(self, path, key, size=size, etag=etag, base=True)
                raise StorageDriverError(NAME, path, f"cannot append to a {properties.blob_type}")
            try:
                created = await self._blob(key).create_append_blob(
                    content_settings=ContentSettings(content_type=_CONTENT_TYPE),
                    match_condition=MatchConditions.IfMissing,
                )
            except HttpResponseError as err:
                if err.status_code not in (409, 412):
                    raise
                continue  # made meanwhile by another writer: resume that
            return _Writer(self, path, key, size=0, etag=str(created["etag"]))
        raise StorageDriverError(NAME, path, "the file keeps changing")

    async def stat(self, path: str) -> FileInfo:
        check_path(NAME, path)
        if path != "/":
            properties = await self._properties(self._key(path))
            if properties is not None:
                return FileInfo(path, properties.size, _utc(properties.last_modified), is_dir=False)
        return await self._directory_info(path)

    async def move(self, source: str, dest: str) -> None:
        source_key = self._key(check_file_path(NAME, source))
        dest_key = self._key(check_file_path(NAME, dest))
        if dest.startswith(source + "/"):
            raise InvalidPath(NAME, dest, "destination inside the source")
        properties = await self._properties(source_key)
        if properties is None:
            raise PathNotFound(NAME, source)
        if source == dest:
            return
        source_url = await self._signed_url(source_key) or self._blob(source_key).url
        dest_blob = self._blob(dest_key)
        try:
            copy = await dest_blob.start_copy_from_url(
                source_url,
                source_etag=properties.etag,
                source_match_condition=MatchConditions.IfNotModified,
            )
        except ResourceNotFoundError:
            raise PathNotFound(NAME, source) from None
        except HttpResponseError as err:
            if _error_code(err) != "InvalidBlobType":
                raise
            # A destination of another type (a block blob over which an
            # append blob is moved) goes first.
            await self._delete_quietly(dest_key)
            copy = await dest_blob.start_copy_from_url(
                source_url,
                source_etag=properties.etag,
                source_match_condition=MatchConditions.IfNotModified,
            )
        await self._wait_for_copy(dest, dest_blob, str(copy["copy_status"]), str(copy["copy_id"]))
        await self._delete_quietly(source_key)

    async def _wait_for_copy(self, dest: str, blob: BlobClient, status: str, copy_id: str) -> None:
        """Poll a copy until it is done, Distribution's way: `max_retries`
        polls, the n-th `n * retry_delay` after the one before; abort it if
        it does not finish in time (at once with `max_retries: -1`)."""
        o = self._options
        attempt = 1
        while status == "pending":
            if o.max_retries == -1 or attempt > o.max_retries:
                await blob.abort_copy(copy_id)
                raise StorageDriverError(NAME, dest, "the copy did not finish in time: aborted")
            await asyncio.sleep((o.retry_delay * attempt).total_seconds())
            properties = await blob.get_blob_properties()
            status = str(properties.copy.status or "")
            copy_id = properties.copy.id or copy_id
            attempt += 1
        if status != "success":
            raise StorageDriverError(NAME, dest, f"the copy ended as {status!r}")

    async def delete(self, path: str) -> None:
        key = self._key(check_file_path(NAME, path))

        async def delete_tree() -> bool:
            found = False
            gate = asyncio.Semaphore(DELETE_CONCURRENCY)

            async def delete_one(name: str) -> None:
                async with gate:
                    await self._delete_quietly(name)

            pages = self._client().list_blobs(
                name_starts_with=key + "/", results_per_page=LIST_PAGE_SIZE
            )
            async for page in pages.by_page():
                names = [item.name async for item in page]
                found = found or bool(names)
                await asyncio.gather(*(delete_one(name) for name in names))
            return found

        found = await asyncio.gather(self._delete_quietly(key), delete_tree())
        if not any(found):
            raise PathNotFound(NAME, path)

    async def local_path(self, path: str) -> str | None:
        check_file_path(NAME, path)
        return None

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        key = self._key(check_file_path(NAME, path))
        if method.upper() not in ("GET", "HEAD"):
            return None
        return await self._signed_url(key)


class _Reader:
    """Reads the streamed body of a GET; `None` reads as an empty file."""

    def __init__(self, stream: AsyncIterator[bytes] | None) -> None:
        self._stream = stream
        self._pending = bytearray()  # received, not read yet
        self._closed = False

    async def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError("read from a closed reader")
        if size == 0:
            return b""
        # The socket hands over what it has: gather `size` bytes, as the
        # other drivers' readers give, unless the end comes first.
        while self._stream is not None and (size < 0 or len(self._pending) < size):
            chunk = await anext(self._stream, b"")
            if not chunk:
                self._stream = None
                break
            self._pending += chunk
        if size < 0 or size >= len(self._pending):
            data, self._pending = bytes(self._pending), bytearray()
            return data
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending = bytearray()
        stream, self._stream = self._stream, None
        # An abandoned body lets its connection go.
        response = getattr(getattr(stream, "response", None), "internal_response", None)
        if response is not None:
            response.close()


class _Writer:
    """A file being written as an append blob (see the module doc).

    `_stored` bytes of the file are in the blob at the key (an append blob,
    or a block blob if `_base`, whose bytes go into a new append blob with
    the first block sent), the rest in `_buffer`. `_etag` is the blob's as
    this writer last left it.
    """

    def __init__(
        self,
        driver: AzureDriver,
        path: str,
        key: str,
        *,
        size: int,
        etag: str,
        base: bool = False,
    ) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._stored = size
        self._etag = etag
        self._base = base
        self._buffer = bytearray()
        self._done = False  # closed, committed or cancelled

    @property
    def size(self) -> int:
        return self._stored + len(self._buffer)

    async def write(self, data: bytes | memoryview) -> int:
        if self._done:
            raise ValueError("write to a closed writer")
        with memoryview(data) as view:
            count = view.nbytes
            self._buffer += view
        if len(self._buffer) >= APPEND_BLOCK_SIZE:
            try:
                await self._flush(final=False)
            except BaseException:
                # Blocks go from the buffer's front: if the write's bytes
                # (its last) are all still there, none went up. Undone, a
                # failed write stores nothing and can be sent again.
                if len(self._buffer) >= count:
                    del self._buffer[len(self._buffer) - count :]
                raise
        return count

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        if self._buffer:
            await self._flush(final=True)

    async def commit(self) -> None:
        if self._done:
            raise ValueError("commit of a closed writer")
        self._done = True
        if self._buffer:
            await self._flush(final=True)

    async def cancel(self) -> None:
        self._done = True
        self._buffer = bytearray()
        await self._driver._delete_quietly(self._key, self._etag)

    async def _flush(self, final: bool) -> None:
        """Send the buffer as blocks of 4 MiB; if `final`, the rest too."""
        if self._base:
            await self._absorb_base()
        while len(self._buffer) >= APPEND_BLOCK_SIZE or (final and self._buffer):
            size = min(APPEND_BLOCK_SIZE, len(self._buffer))
            await self._append(bytes(self._buffer[:size]))
            del self._buffer[:size]

    async def _absorb_base(self) -> None:
        """Turn the block blob at the key into an append blob: its bytes go
        in front of the buffer, to be sent first."""
        content = b""
        try:
            if self._stored:
                download = await self._driver._blob(self._key).download_blob(
                    etag=self._etag, match_condition=MatchConditions.IfNotModified
                )
                content = await download.readall()
            # All or nothing: a failure leaves the base where it was.
            etag = await self._driver._create_append_blob(self._key, replacing=self._etag)
        except (ResourceModifiedError, ResourceNotFoundError) as err:
            message = "the file was changed by another writer"
            raise StorageDriverError(NAME, self._path, message) from err
        self._etag = etag
        self._buffer[:0] = content
        self._stored = 0
        self._base = False

    async def _append(self, block: bytes) -> None:
        blob = self._driver._blob(self._key)
        try:
            appended = await blob.append_block(block, appendpos_condition=self._stored)
        except HttpResponseError as err:
            code = _error_code(err)
            if code == "BlockCountExceedsLimit":
                message = f"over {MAX_APPEND_BLOCKS} blocks: the file is written in too many pieces"
                raise StorageDriverError(NAME, self._path, message) from err
            if code != "AppendPositionConditionNotMet":
                raise
            if not await self._already_appended(block):
                message = "the file was changed by another writer"
                raise StorageDriverError(NAME, self._path, message) from err
        else:
            self._etag = str(appended["etag"])
        self._stored += len(block)

    async def _already_appended(self, block: bytes) -> bool:
        """Whether `block` is the blob's end past the writer's offset: a retry
        after an answer lost on the way, whose first try went through."""
        properties = await self._driver._properties(self._key)
        if properties is None or properties.size != self._stored + len(block):
            return False
        download = await self._driver._blob(self._key).download_blob(
            offset=self._stored,
            length=len(block),
            etag=properties.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        if await download.readall() != block:
            return False
        self._etag = properties.etag
        return True
