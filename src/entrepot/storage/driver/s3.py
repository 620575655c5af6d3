"""A storage driver on Amazon S3 and S3-compatible object stores.

The keys and behaviour of Distribution's `s3` (s3-aws) driver, so both
registries can share a bucket: driver path `/a/b` is the key
`<rootdirectory>/a/b` (without a leading `/`). Directories are implicit: a
directory is a key prefix that has objects below it, so it appears with its
first object and goes away with its last.

Writers are S3 multipart uploads, Distribution's way, so an upload survives
a change of process and Distribution and entrepot resume each other's:

- A truncating writer starts a multipart upload at once; an appending one
  finds the newest multipart upload in progress for the key (pages of
  `ListMultipartUploads` and `ListParts`, any number of parts), its size the
  sum of its parts. With no upload in progress, an existing object is the
  start of the file ("the base") and a missing one an empty file.
- Written bytes collect in a buffer and go up as parts of exactly `chunksize`
  bytes as it fills, so memory stays bounded. `close` uploads what is left as
  the last part, whatever its size: S3 refuses parts under 5 MiB only when an
  upload is completed, and then only before the last.
- When more bytes come after such a short last part, the upload is completed
  (its bytes become an object), and a new upload starts from that object: as
  its first parts by server-side `UploadPartCopy` when it is 5 MiB or more,
  else read back into the buffer. The object is then deleted, as its bytes
  are in the upload. The same absorbs a base.
- `commit` completes the upload, or stores the file with one `PutObject`
  when it never outgrew one chunk; `cancel` aborts it (and removes a base).
  A truncating writer aborts the uploads already in progress for its key.
- A write whose bytes could not be sent is undone (when none of them went
  up), so the caller can send them again.

`delete` removes the objects below a path in batches of 1,000 and aborts
the multipart uploads in progress there, so a deleted upload session leaves
no parts to pay for. `walk` lists one directory at a time: the order of a
flat listing of keys is not the drivers' (`a-b/x` sorts before `a/x`).

What an object store cannot do, and the file systems can:

- The bytes of an unfinished writer are not readable, even once it is
  closed: they are parts of an upload, which S3 cannot read back. A file
  being written shows its old content until `commit`, or nothing once
  bytes have followed a short last part (completing the upload replaced
  the old object, and the new one went into the next upload).
- A path can be both a file and a directory (`a` and `a/b`): checking would
  cost requests on every write, and Distribution does not check either.
- A directory has no time of its own: `stat` and `walk` give it that of an
  object below it.
- `local_path` is always None; `redirect_url` is a presigned URL (GET or
  HEAD, 20 minutes), made without a request, so it does not say whether the
  file exists.

Every call is a coroutine on aiobotocore's client, made on first use on the
running event loop; `aclose` releases its connections. Credentials are the
keys given, or else the standard AWS chain (environment, shared files,
container or instance roles).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError

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
    from aiobotocore.response import StreamingBody
    from types_aiobotocore_s3 import S3Client

NAME: Final = "s3"

log = logging.getLogger(__name__)

MiB: Final = 1 << 20
GiB: Final = 1 << 30
# S3's limits: every part but the last of a multipart upload is at least
# 5 MiB, no part is over 5 GiB, an upload has at most 10,000 parts, and a
# single CopyObject copies at most 5 GiB.
MIN_PART_SIZE: Final = 5 * MiB
MAX_PART_SIZE: Final = 5 * GiB
MAX_PARTS: Final = 10_000
MAX_SINGLE_COPY: Final = 5 * GiB

DEFAULT_CHUNK_SIZE: Final = 10 * MiB
DEFAULT_COPY_CHUNK_SIZE: Final = 32 * MiB
DEFAULT_COPY_MAX_CONCURRENCY: Final = 100
DEFAULT_COPY_THRESHOLD_SIZE: Final = 32 * MiB

# Keys (or parts, or uploads) asked for per list page: S3's maximum. Tests
# lower it to go through many pages with few objects.
LIST_PAGE_SIZE = 1000
# Keys per DeleteObjects request: S3's maximum.
DELETE_BATCH: Final = 1000
PRESIGN_EXPIRY: Final = timedelta(minutes=20)

STORAGE_CLASSES: Final = (
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)
OBJECT_ACLS: Final = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
LOG_LEVELS: Final = (
    "off",
    "debug",
    "debugwithsigning",
    "debugwithhttpbody",
    "debugwithrequestretries",
    "debugwithrequesterrors",
    "debugwitheventstreambody",
)

_CONTENT_TYPE: Final = "application/octet-stream"
_NOT_FOUND: Final = frozenset({"NoSuchKey", "404", "NotFound"})

# One botocore session per process: it caches the S3 service model, which
# each client would otherwise load and parse again.
_session: AioSession | None = None


def _shared_session() -> AioSession:
    global _session
    if _session is None:
        _session = AioSession()
    return _session


# -- parameters --


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        # Go's strconv.ParseBool, which Distribution uses.
        if value in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if value in ("0", "f", "F", "false", "FALSE", "False"):
            return False
    raise ValueError(f"s3: the {name} parameter should be a boolean, not {value!r}")


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        result = default
    elif isinstance(value, bool):
        raise ValueError(f"s3: the {name} parameter must be an integer, not {value!r}")
    elif isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        result = int(value)
    else:
        raise ValueError(f"s3: the {name} parameter must be an integer, not {value!r}")
    if not low <= result <= high:
        raise ValueError(f"s3: the {name} parameter must be between {low} and {high}, not {result}")
    return result


def _str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"s3: the {name} parameter must be a string, not {value!r}")
    return value


def _endpoint(value: str | None, secure: bool, name: str) -> str | None:
    if value is None:
        return None
    if "://" not in value:
        value = ("https://" if secure else "http://") + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"s3: the {name} parameter is not an http(s) URL: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class S3Options:
    """The driver's configuration, from Distribution's `storage.s3` keys."""

    bucket: str
    region: str | None = None
    region_endpoint: str | None = None
    redirect_endpoint: str | None = None
    force_path_style: bool = False
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    encrypt: bool = False
    key_id: str | None = None
    secure: bool = True
    skip_verify: bool = False
    v4_auth: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    multipart_copy_chunk_size: int = DEFAULT_COPY_CHUNK_SIZE
    multipart_copy_max_concurrency: int = DEFAULT_COPY_MAX_CONCURRENCY
    multipart_copy_threshold_size: int = DEFAULT_COPY_THRESHOLD_SIZE
    root_directory: str = ""
    storage_class: str = "STANDARD"
    object_acl: str = "private"
    user_agent: str | None = None
    use_dual_stack: bool = False
    accelerate: bool = False
    use_fips_endpoint: bool = False
    log_level: str = "off"

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> S3Options:
        """Read Distribution's keys; raise `ValueError` for a bad one."""
        bucket = _str(params, "bucket")
        if bucket is None:
            raise ValueError("s3: no bucket parameter provided")
        secure = _bool(params, "secure", True)
        region_endpoint = _endpoint(_str(params, "regionendpoint"), secure, "regionendpoint")
        region = _str(params, "region")
        if region is None and region_endpoint is None:
            raise ValueError("s3: no region parameter provided")
        redirect_endpoint = _endpoint(_str(params, "redirectendpoint"), secure, "redirectendpoint")
        if redirect_endpoint is not None:
            parts = urlsplit(redirect_endpoint)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError("s3: redirectendpoint cannot have a path or a query")
        v4_auth = _bool(params, "v4auth", True)
        if not v4_auth and (
            region_endpoint is None or "amazonaws.com" in (urlsplit(region_endpoint).hostname or "")
        ):
            raise ValueError("s3: on Amazon S3 only v4 authentication (v4auth: true) works")
        storage_class = (_str(params, "storageclass") or "STANDARD").upper()
        if storage_class not in STORAGE_CLASSES:
            known = ", ".join(STORAGE_CLASSES)
            raise ValueError(f"s3: the storageclass parameter must be one of {known}")
        object_acl = _str(params, "objectacl") or "private"
        if object_acl not in OBJECT_ACLS:
            raise ValueError(f"s3: invalid value for the objectacl parameter: {object_acl!r}")
        # YAML reads an unquoted `off` as false.
        raw_level = params.get("loglevel")
        log_level = "off" if raw_level in (None, False) else str(raw_level).lower()
        if log_level not in LOG_LEVELS:
            log_level = "off"  # Distribution ignores an unknown level too
        force_path_style = _bool(params, "forcepathstyle", False)
        accelerate = _bool(params, "accelerate", False)
        if accelerate and force_path_style:
            raise ValueError("s3: accelerate does not work with forcepathstyle")
        root = _str(params, "rootdirectory") or ""
        return cls(
            bucket=bucket,
            region=region,
            region_endpoint=region_endpoint,
            redirect_endpoint=redirect_endpoint,
            force_path_style=force_path_style,
            access_key=_str(params, "accesskey"),
            secret_key=_str(params, "secretkey"),
            session_token=_str(params, "sessiontoken"),
            encrypt=_bool(params, "encrypt", False),
            key_id=_str(params, "keyid"),
            secure=secure,
            skip_verify=_bool(params, "skipverify", False),
            v4_auth=v4_auth,
            chunk_size=_int(params, "chunksize", DEFAULT_CHUNK_SIZE, MIN_PART_SIZE, MAX_PART_SIZE),
            multipart_copy_chunk_size=_int(
                params,
                "multipartcopychunksize",
                DEFAULT_COPY_CHUNK_SIZE,
                MIN_PART_SIZE,
                MAX_PART_SIZE,
            ),
            multipart_copy_max_concurrency=_int(
                params,
                "multipartcopymaxconcurrency",
                DEFAULT_COPY_MAX_CONCURRENCY,
                1,
                1 << 31,
            ),
            multipart_copy_threshold_size=_int(
                params,
                "multipartcopythresholdsize",
                DEFAULT_COPY_THRESHOLD_SIZE,
                0,
                MAX_SINGLE_COPY,
            ),
            root_directory=root,
            storage_class=storage_class,
            object_acl=object_acl,
            user_agent=_str(params, "useragent"),
            use_dual_stack=_bool(params, "usedualstack", False),
            accelerate=accelerate,
            use_fips_endpoint=_bool(params, "usefipsendpoint", False),
            log_level=log_level,
        )


# -- helpers --


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _is_not_found(err: ClientError) -> bool:
    return _error_code(err) in _NOT_FOUND


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ranges(size: int, piece: int, most: int) -> list[tuple[int, int]]:
    """Split `size` bytes into ranges (first, last) for a multipart copy:
    about `piece` bytes each; fewer, larger ones past `most`; more, smaller
    ones where a part would be over 5 GiB; never under 5 MiB, as all of them
    may come before other parts."""
    count = max(1, min(size // piece, most), -(-size // MAX_PART_SIZE))
    bounds = [size * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


@dataclass(frozen=True, slots=True)
class _Part:
    number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class _Object:
    """An object at a writer's key whose bytes start the file."""

    etag: str
    size: int


class S3Driver(ObjectStoreTree):
    """A `StorageDriver` on an S3 bucket."""

    def __init__(self, options: S3Options) -> None:
        self._options = options
        root = options.root_directory.strip("/")
        self._prefix = f"{root}/" if root else ""
        self._client: S3Client | None = None
        self._presigner: S3Client | None = None
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._write_args = self._object_args()
        if options.log_level != "off":
            for name in ("botocore", "aiobotocore"):
                logging.getLogger(name).setLevel(logging.DEBUG)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> S3Driver:
        return cls(S3Options.from_parameters(params))

    @property
    def name(self) -> str:
        return NAME

    @property
    def options(self) -> S3Options:
        return self._options

    @property
    def bucket(self) -> str:
        return self._options.bucket

    # -- the client --

    def _config(self) -> AioConfig:
        o = self._options
        s3: dict[str, Any] = {"addressing_style": "path" if o.force_path_style else "auto"}
        if o.use_dual_stack:
            s3["use_dualstack_endpoint"] = True
        if o.accelerate:
            s3["use_accelerate_endpoint"] = True
        return AioConfig(
            signature_version="s3v4" if o.v4_auth else "s3",
            s3=s3,
            user_agent_extra=o.user_agent,
            use_fips_endpoint=o.use_fips_endpoint,
            # Checksums only where S3 requires them (DeleteObjects), as
            # Distribution: the newer default (CRC trailers on every upload)
            # is refused by many S3-compatible stores.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max(10, min(o.multipart_copy_max_concurrency, 64)),
            retries={"mode": "standard", "max_attempts": 5},
        )

    async def _open_client(self, stack: AsyncExitStack, endpoint: str | None) -> S3Client:
        o = self._options
        return await stack.enter_async_context(
            _shared_session().create_client(
                "s3",
                region_name=o.region or "us-east-1",
                endpoint_url=endpoint,
                use_ssl=o.secure,
                verify=False if o.skip_verify else None,
                aws_access_key_id=o.access_key if o.secret_key else None,
                aws_secret_access_key=o.secret_key if o.access_key else None,
                aws_session_token=o.session_token if o.access_key and o.secret_key else None,
                config=self._config(),
            )
        )

    async def _s3(self) -> S3Client:
        """The client of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        if self._loop is not loop:
            # A new loop (a test's asyncio.run): the old client's connections
            # belong to the old loop, which is gone or not ours to use.
            self._client = self._presigner = None
            self._stack = None
            self._loop = loop
            self._lock = asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                try:
                    client = await self._open_client(stack, self._options.region_endpoint)
                    presigner = client
                    if self._options.redirect_endpoint is not None:
                        presigner = await self._open_client(stack, self._options.redirect_endpoint)
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
                self._client, self._presigner = client, presigner
        return self._client

    async def aclose(self) -> None:
        """Close the client's connections (it is made again if needed)."""
        stack, loop = self._stack, self._loop
        self._client = self._presigner = None
        self._stack = None
        if stack is not None and loop is asyncio.get_running_loop():
            await stack.aclose()

    # -- keys --

    def _key(self, path: str) -> str:
        """The key of a checked file path."""
        key = self._prefix + path[1:]
        if len(key.encode()) > 1024:
            raise InvalidPath(NAME, path, "name too long")
        return key

    def _dir_prefix(self, path: str) -> str:
        """The key prefix of what lies below a checked path."""
        return self._prefix if path == "/" else self._key(path) + "/"

    def _object_args(self) -> dict[str, Any]:
        """Arguments of every request that makes an object."""
        o = self._options
        args: dict[str, Any] = {}
        if o.encrypt:
            args["ServerSideEncryption"] = "aws:kms" if o.key_id else "AES256"
            if o.key_id:
                args["SSEKMSKeyId"] = o.key_id
        if o.storage_class != "NONE":
            args["StorageClass"] = o.storage_class
        # A new object is private anyway; saying so would be refused by
        # buckets with ACLs disabled (S3's default since 2023).
        if o.object_acl != "private":
            args["ACL"] = o.object_acl
        return args

    # -- requests shared by the operations --

    async def _head(self, key: str) -> tuple[int, datetime, str] | None:
        """Size, mtime and ETag of the object at `key`, None if there is none."""
        client = await self._s3()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _is_not_found(err):
                return None
            raise
        return head["ContentLength"], _utc(head["LastModified"]), head["ETag"]

    async def _list_level(self, prefix: str) -> builtins.list[Entry]:
        """The direct children of the directory `prefix` (ends with `/`, or
        is the root's prefix), all pages, sorted by name."""
        client = await self._s3()
        entries: builtins.list[Entry] = []
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = await client.list_objects_v2(
                Bucket=self.bucket,
                Prefix=prefix,
                Delimiter="/",
                MaxKeys=LIST_PAGE_SIZE,
                **extra,
            )
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name:  # not a "folder" marker object at the prefix itself
                    entries.append(Entry(name, False, obj["Size"], _utc(obj["LastModified"])))
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(prefix) : -1]
                if name:  # not the empty segment of a `//` in a key
                    entries.append(Entry(name, True))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        entries.sort(key=lambda entry: (entry.name, entry.is_dir))
        return entries

    async def _first_below(self, prefix: str) -> datetime | None:
        """The mtime of the first object below `prefix`, None if there is none."""
        client = await self._s3()
        page = await client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        contents = page.get("Contents", [])
        return _utc(contents[0]["LastModified"]) if contents else None

    async def _uploads(self, key: str, *, below: bool = False) -> builtins.list[tuple[str, str]]:
        """(key, upload id) of the multipart uploads in progress for `key`
        (and, if `below`, for keys under it), oldest first, all pages."""
        client = await self._s3()
        found: builtins.list[tuple[datetime, int, str, str]] = []
        markers: dict[str, Any] = {}
        while True:
            page = await client.list_multipart_uploads(
                Bucket=self.bucket, Prefix=key, MaxUploads=LIST_PAGE_SIZE, **markers
            )
            for upload in page.get("Uploads", []):
                upload_key = upload.get("Key", "")
                if upload_key == key or (below and upload_key.startswith(key + "/")):
                    initiated = _utc(upload.get("Initiated", EPOCH))
                    found.append((initiated, len(found), upload_key, upload["UploadId"]))
            if not page.get("IsTruncated"):
                break
            key_marker = page.get("NextKeyMarker")
            upload_marker = page.get("NextUploadIdMarker")
            if not key_marker and not upload_marker:
                break
            markers = {"KeyMarker": key_marker or "", "UploadIdMarker": upload_marker or ""}
        # S3 lists a key's uploads oldest first; sort in case a store does not.
        found.sort()
        return [(upload_key, upload_id) for _, _, upload_key, upload_id in found]

    async def _parts(self, key: str, upload_id: str) -> builtins.list[_Part]:
        """The parts of an upload in progress, all pages (over 1,000 parts)."""
        client = await self._s3()
        parts: builtins.list[_Part] = []
        marker = 0
        while True:
            page = await client.list_parts(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MaxParts=LIST_PAGE_SIZE,
                PartNumberMarker=marker,
            )
            for part in page.get("Parts", []):
                parts.append(_Part(part["PartNumber"], part["ETag"], part["Size"]))
            next_marker = int(page.get("NextPartNumberMarker", 0) or 0)
            if not page.get("IsTruncated") or next_marker <= marker:
                break
            marker = next_marker
        parts.sort(key=lambda part: part.number)
        return parts

    async def _abort(self, key: str, upload_id: str) -> None:
        client = await self._s3()
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as err:
            if _error_code(err) != "NoSuchUpload":
                raise

    async def _create_upload(self, key: str) -> str:
        client = await self._s3()
        created = await client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=_CONTENT_TYPE, **self._write_args
        )
        return created["UploadId"]

    async def _complete(self, key: str, upload_id: str, parts: Iterable[_Part]) -> str:
        """Complete an upload; the ETag of the object it makes."""
        client = await self._s3()
        done = await client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"ETag": part.etag, "PartNumber": part.number} for part in parts]
            },
        )
        return done.get("ETag", "")

    async def _copy_parts(
        self, source_key: str, etag: str, size: int, key: str, upload_id: str, most: int
    ) -> builtins.list[_Part]:
        """Copy the object `source_key` (its version `etag`) into an upload
        as its first parts, at most `most` of them, several at once."""
        client = await self._s3()
        limit = asyncio.Semaphore(self._options.multipart_copy_max_concurrency)
        ranges = _ranges(size, self._options.multipart_copy_chunk_size, most)

        async def copy(number: int, first: int, last: int) -> _Part:
            async with limit:
                copied = await client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceRange=f"bytes={first}-{last}",
                    CopySourceIfMatch=etag,
                )
            return _Part(number, copied["CopyPartResult"]["ETag"], last - first + 1)

        tasks = [copy(number, first, last) for number, (first, last) in enumerate(ranges, 1)]
        return builtins.list(await asyncio.gather(*tasks))

    async def _get_object(self, key: str, etag: str | None = None) -> bytes:
        client = await self._s3()
        extra: dict[str, Any] = {"IfMatch": etag} if etag else {}
        got = await client.get_object(Bucket=self.bucket, Key=key, **extra)
        body = got["Body"]
        try:
            return await body.read()
        finally:
            await body.__aexit__(None, None, None)

    async def _delete_keys(self, keys: builtins.list[str], path: str) -> None:
        client = await self._s3()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            deleted = await client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = deleted.get("Errors", [])
            if errors:
                first = errors[0]
                message = f"{len(errors)} objects not deleted, first {first.get('Key')!r}: "
                message += f"{first.get('Code')} {first.get('Message')}"
                raise StorageDriverError(NAME, path, message)

    # -- the StorageDriver protocol --

    async def get_content(self, path: str) -> bytes:
        key = self._key(check_file_path(NAME, path))
        try:
            return await self._get_object(key)
        except ClientError as err:
            if _is_not_found(err):
                raise PathNotFound(NAME, path) from None
            raise

    async def put_content(self, path: str, content: bytes) -> None:
        key = self._key(check_file_path(NAME, path))
        client = await self._s3()
        await client.put_object(
            Bucket=self.bucket, Key=key, Body=content, ContentType=_CONTENT_TYPE, **self._write_args
        )

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        key = self._key(check_file_path(NAME, path))
        if offset < 0:
            raise InvalidOffset(NAME, path, offset)
        client = await self._s3()
        extra: dict[str, Any] = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            got = await client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as err:
            if _is_not_found(err):
                raise PathNotFound(NAME, path) from None
            if _error_code(err) != "InvalidRange":
                raise
            # At or past the end: only the end itself is a valid offset.
            head = await self._head(key)
            if head is None:
                raise PathNotFound(NAME, path) from None
            if offset != head[0]:
                raise InvalidOffset(NAME, path, offset) from None
            return _Reader(None)
        return _Reader(got["Body"])

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self._key(check_file_path(NAME, path))
        if not append:
            # Started at once, as Distribution does, so that the truncation
            # holds even if nothing is written before `close`, and another
            # process (entrepot or Distribution) finds the upload to resume.
            # Uploads already in progress for the key are what it truncates:
            # left, one would be resumed once this one is finished.
            upload_id, uploads = await asyncio.gather(self._create_upload(key), self._uploads(key))
            stale = [other for _, other in uploads if other != upload_id]
            await asyncio.gather(*(self._abort(key, other) for other in stale))
            return _Writer(self, path, key, upload_id=upload_id)
        uploads = await self._uploads(key)
        if uploads:
            _, upload_id = uploads[-1]  # the newest
            parts = await self._parts(key, upload_id)
            return _Writer(self, path, key, upload_id=upload_id, parts=parts)
        head = await self._head(key)
        base = None if head is None else _Object(etag=head[2], size=head[0])
        return _Writer(self, path, key, base=base)

    async def stat(self, path: str) -> FileInfo:
        check_path(NAME, path)
        if path != "/":
            head = await self._head(self._key(path))
            if head is not None:
                size, mtime, _ = head
                return FileInfo(path, size, mtime, is_dir=False)
        return await self._directory_info(path)

    async def move(self, source: str, dest: str) -> None:
        source_key = self._key(check_file_path(NAME, source))
        dest_key = self._key(check_file_path(NAME, dest))
        if dest.startswith(source + "/"):
            raise InvalidPath(NAME, dest, "destination inside the source")
        head = await self._head(source_key)
        if head is None:
            raise PathNotFound(NAME, source)
        if source == dest:
            return
        size, _, etag = head
        client = await self._s3()
        o = self._options
        if size <= min(o.multipart_copy_threshold_size, MAX_SINGLE_COPY):
            try:
                await client.copy_object(
                    Bucket=self.bucket,
                    Key=dest_key,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    **self._write_args,
                )
            except ClientError as err:
                if _is_not_found(err):
                    raise PathNotFound(NAME, source) from None
                raise
        else:
            await self._multipart_copy(source_key, etag, size, dest_key)
        await client.delete_object(Bucket=self.bucket, Key=source_key)

    async def _multipart_copy(self, source_key: str, etag: str, size: int, dest_key: str) -> None:
        upload_id = await self._create_upload(dest_key)
        try:
            parts = await self._copy_parts(source_key, etag, size, dest_key, upload_id, MAX_PARTS)
            await self._complete(dest_key, upload_id, parts)
        except BaseException:
            with suppress(Exception):
                await asyncio.shield(self._abort(dest_key, upload_id))
            raise

    async def delete(self, path: str) -> None:
        key = self._key(check_file_path(NAME, path))
        client = await self._s3()

        async def delete_file() -> bool:
            if await self._head(key) is None:
                return False
            await client.delete_object(Bucket=self.bucket, Key=key)
            return True

        async def delete_tree() -> bool:
            prefix = key + "/"
            found = False
            start_after = ""
            while True:
                extra: dict[str, Any] = {"StartAfter": start_after} if start_after else {}
                page = await client.list_objects_v2(
                    Bucket=self.bucket, Prefix=prefix, MaxKeys=LIST_PAGE_SIZE, **extra
                )
                keys = [obj["Key"] for obj in page.get("Contents", [])]
                if keys:
                    found = True
                    await self._delete_keys(keys, path)
                    start_after = keys[-1]
                if not page.get("IsTruncated") or not keys:
                    return found

        async def abort_uploads() -> bool:
            # An upload in progress is a file being written: it goes too,
            # and leaves no parts behind to be paid for.
            uploads = await self._uploads(key, below=True)
            await asyncio.gather(*(self._abort(k, upload_id) for k, upload_id in uploads))
            return bool(uploads)

        found = await asyncio.gather(delete_file(), delete_tree(), abort_uploads())
        if not any(found):
            raise PathNotFound(NAME, path)

    async def local_path(self, path: str) -> str | None:
        check_file_path(NAME, path)
        return None

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        key = self._key(check_file_path(NAME, path))
        operation = {"GET": "get_object", "HEAD": "head_object"}.get(method.upper())
        if operation is None:
            return None
        await self._s3()
        assert self._presigner is not None
        return await self._presigner.generate_presigned_url(
            operation,
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=int(PRESIGN_EXPIRY.total_seconds()),
        )


class _Reader:
    """Streams a ranged GET's body; `None` reads as an empty file."""

    def __init__(self, body: StreamingBody | None) -> None:
        self._body = body
        self._closed = False

    async def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError("read from a closed reader")
        body = self._body
        if body is None or size == 0:
            return b""
        if size < 0:
            return await body.read()
        # The socket hands over what it has: gather `size` bytes, as the
        # other drivers' readers give, unless the end comes first.
        chunk = await body.read(size)
        if len(chunk) == size or not chunk:
            return chunk
        pieces = [chunk]
        remaining = size - len(chunk)
        while remaining > 0:
            chunk = await body.read(remaining)
            if not chunk:
                break
            pieces.append(chunk)
            remaining -= len(chunk)
        return b"".join(pieces)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        body, self._body = self._body, None
        if body is not None:
            await body.__aexit__(None, None, None)


class _Writer:
    """A file being written as an S3 multipart upload (see the module doc).

    State: the upload in progress (`_upload_id`, its `_parts`), an object at
    the key whose bytes start the file and are not in the upload yet
    (`_base`), and the bytes written since (`_buffer`). `_object_etag` names
    an object at the key holding bytes of this file that is to be deleted
    once they are safely in the upload, or by `cancel`.
    """

    def __init__(
        self,
        driver: S3Driver,
        path: str,
        key: str,
        *,
        upload_id: str | None = None,
        parts: builtins.list[_Part] | None = None,
        base: _Object | None = None,
    ) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._chunk = driver.options.chunk_size
        self._upload_id = upload_id
        self._parts = parts or []
        self._base = base
        self._object_etag = base.etag if base is not None else None
        self._buffer = bytearray()
        self._sent = 0  # bytes of the buffer uploaded by the current flush
        self._size = sum(part.size for part in self._parts) + (base.size if base else 0)
        self._done = False  # closed, committed or cancelled

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes | memoryview) -> int:
        if self._done:
            raise ValueError("write to a closed writer")
        with memoryview(data) as view:
            count = view.nbytes
            self._buffer += view
        self._size += count
        if len(self._buffer) >= self._chunk:
            self._sent = 0
            try:
                await self._flush(final=False)
            except BaseException:
                # Undo the write if none of its bytes went up (they are still
                # the buffer's last): a failed write then stores nothing.
                if self._sent <= len(self._buffer) - count:
                    del self._buffer[len(self._buffer) - count :]
                    self._size -= count
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
        driver = self._driver
        if self._upload_id is None and self._base is not None and not self._buffer:
            return  # appended nothing: the base is the file
        if self._upload_id is not None and self._parts and not self._buffer:
            await driver._complete(self._key, self._upload_id, self._parts)
            self._reset()
            return
        if self._parts and self._parts[-1].size < MIN_PART_SIZE:
            await self._complete_short_tail()
        base_size = self._base.size if self._base is not None else 0
        if not self._parts and base_size + len(self._buffer) <= self._chunk:
            # Never outgrew a chunk: one PutObject, and no upload is needed.
            content = bytes(self._buffer)
            if self._base is not None and base_size:
                content = await driver._get_object(self._key, self._base.etag) + content
            client = await driver._s3()
            await client.put_object(
                Bucket=driver.bucket,
                Key=self._key,
                Body=content,
                ContentType=_CONTENT_TYPE,
                **driver._write_args,
            )
            if self._upload_id is not None:
                await driver._abort(self._key, self._upload_id)
            self._reset()
            return
        # Completing replaces the object at the key: nothing stale to delete.
        self._object_etag = None
        await self._flush(final=True)
        assert self._upload_id is not None
        await driver._complete(self._key, self._upload_id, self._parts)
        self._reset()

    async def cancel(self) -> None:
        self._done = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            await self._driver._abort(self._key, upload_id)
        etag, self._object_etag = self._object_etag, None
        if etag is not None:
            await self._delete_object(etag)
        self._reset()

    def _reset(self) -> None:
        self._upload_id = None
        self._parts = []
        self._base = None
        self._object_etag = None
        self._buffer = bytearray()

    async def _delete_object(self, etag: str) -> None:
        """Delete the object at the key if it is still the one named `etag`."""
        head = await self._driver._head(self._key)
        if head is not None and head[2] == etag:
            client = await self._driver._s3()
            await client.delete_object(Bucket=self._driver.bucket, Key=self._key)

    async def _complete_short_tail(self) -> None:
        """Turn an upload whose last part is short into an object, the base
        of the file: S3 takes no more parts after a short one."""
        assert self._upload_id is not None
        etag = await self._driver._complete(self._key, self._upload_id, self._parts)
        self._base = _Object(etag=etag, size=sum(part.size for part in self._parts))
        self._object_etag = etag
        self._upload_id = None
        self._parts = []

    async def _prepare(self) -> None:
        """Make the upload ready to take the buffer's bytes (there are some):
        started, its last part full, the base in it (or in the buffer, on
        its way)."""
        driver = self._driver
        if self._parts and self._parts[-1].size < MIN_PART_SIZE:
            await self._complete_short_tail()
        base = self._base
        if base is not None and 0 < base.size < MIN_PART_SIZE:
            # Too short to be a part before others: its bytes go in front.
            self._buffer[:0] = await driver._get_object(self._key, base.etag)
            self._base = base = None
        if self._upload_id is None:
            self._upload_id = await driver._create_upload(self._key)
        if base is not None:
            if base.size:
                # A tenth of the parts at most, the rest for what comes next.
                self._parts = await driver._copy_parts(
                    self._key, base.etag, base.size, self._key, self._upload_id, MAX_PARTS // 10
                )
                await self._drop_object()
            self._base = None

    async def _drop_object(self) -> None:
        """The bytes of the object at the key are now in the upload: remove
        it, so that nothing stale shows and a later `cancel` (of any process)
        has only the upload to abort."""
        if self._object_etag is not None:
            self._object_etag = None
            client = await self._driver._s3()
            await client.delete_object(Bucket=self._driver.bucket, Key=self._key)

    async def _flush(self, final: bool) -> None:
        """Upload the buffer as parts of `chunksize` bytes; if `final`, the
        rest too, as a last part of any size."""
        await self._prepare()
        while len(self._buffer) >= self._chunk or (final and self._buffer):
            size = min(self._chunk, len(self._buffer))
            await self._upload_part(bytes(self._buffer[:size]))
            del self._buffer[:size]
            self._sent += size
        if self._parts:
            await self._drop_object()

    async def _upload_part(self, body: bytes) -> None:
        assert self._upload_id is not None
        number = self._parts[-1].number + 1 if self._parts else 1
        if number > MAX_PARTS:
            message = f"over {MAX_PARTS} parts: a larger chunksize is needed for this file"
            raise StorageDriverError(NAME, self._path, message)
        client = await self._driver._s3()
        uploaded = await client.upload_part(
            Bucket=self._driver.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append(_Part(number, uploaded["ETag"], len(body)))
