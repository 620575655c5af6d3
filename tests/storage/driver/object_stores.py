"""The object stores the server-level tests run entrepot on: S3 (a bucket on
the moto server of `s3_server`) and Azure (a container on the Azurite of
`azurite_server`).

For each: a fresh place to store in, the `storage` keys that point entrepot
at it, and what only a look from outside the driver shows: the names
stored there, the writes still in progress, and what a blob GET's redirect
URL must look like. Tests parametrized over `OBJECT_STORES` run once per
store; what one store alone has (S3's multipart uploads, Azure's append
blocks) stays in that store's class.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobType

from tests.storage.driver import azurite_server, s3_server

# Where Distribution's layout (and so entrepot's) keeps the repositories,
# below the storage root (the tests' drivers have no root directory).
_REPOSITORIES: Final = "docker/registry/v2/repositories"


def repository_prefix(repository: str) -> str:
    """The name prefix of what is stored for `repository` (links, sessions)."""
    return f"{_REPOSITORIES}/{repository}/"


def uploads_prefix(repository: str) -> str:
    """The name prefix of the upload sessions of `repository`."""
    return f"{repository_prefix(repository)}_uploads/"


class ObjectStore(abc.ABC):
    """One object store, as the tests see it from outside entrepot."""

    #: The driver's name: the `storage` key, and the tests' id.
    name: str

    @abc.abstractmethod
    def new_place(self) -> str:
        """A new, empty bucket or container, shared with no other test."""

    @abc.abstractmethod
    def parameters(self, place: str) -> dict[str, Any]:
        """Distribution's keys of the driver on `place`."""

    @abc.abstractmethod
    def names(self, place: str, prefix: str = "") -> list[str]:
        """The names of the objects (blobs) stored in `place` under `prefix`."""

    @abc.abstractmethod
    def writes_in_progress(self, place: str, prefix: str) -> list[str]:
        """The names under `prefix` that a writer is still adding to: on S3
        a multipart upload not yet completed nor aborted (its parts are
        kept, and billed, but not an object); on Azure an append blob."""

    @abc.abstractmethod
    def check_redirect(self, place: str, url: str) -> None:
        """Assert that `url` is a signed URL of `place` on this store."""

    @abc.abstractmethod
    def redirect_expiry(self, url: str) -> datetime:
        """When the signed `url` stops being valid, as it says itself."""

    def storage(self, place: str) -> dict[str, Any]:
        """The `storage` driver section of a config on `place`."""
        return {self.name: self.parameters(place)}

    def __repr__(self) -> str:
        return self.name


class S3Store(ObjectStore):
    name = "s3"

    def new_place(self) -> str:
        return s3_server.new_bucket()

    def parameters(self, place: str) -> dict[str, Any]:
        return s3_server.driver_parameters(place)

    def names(self, place: str, prefix: str = "") -> list[str]:
        pages = s3_server.admin_client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in pages.paginate(Bucket=place, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def writes_in_progress(self, place: str, prefix: str) -> list[str]:
        listed = s3_server.admin_client().list_multipart_uploads(Bucket=place, Prefix=prefix)
        return [upload["Key"] for upload in listed.get("Uploads", [])]

    def check_redirect(self, place: str, url: str) -> None:
        assert url.startswith(f"{s3_server.moto_server().endpoint}/{place}/"), url
        assert "Signature=" in url or "X-Amz-Signature=" in url, url

    def redirect_expiry(self, url: str) -> datetime:
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        if "X-Amz-Expires" in query:  # signature version 4
            signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return signed + timedelta(seconds=int(query["X-Amz-Expires"]))
        return datetime.fromtimestamp(int(query["Expires"]), UTC)  # version 2


class AzureStore(ObjectStore):
    name = "azure"

    def new_place(self) -> str:
        return azurite_server.new_container()

    def parameters(self, place: str) -> dict[str, Any]:
        return azurite_server.driver_parameters(place)

    def names(self, place: str, prefix: str = "") -> list[str]:
        container = azurite_server.admin_client().get_container_client(place)
        return [blob.name for blob in container.list_blobs(name_starts_with=prefix)]

    def writes_in_progress(self, place: str, prefix: str) -> list[str]:
        container = azurite_server.admin_client().get_container_client(place)
        return [
            blob.name
            for blob in container.list_blobs(name_starts_with=prefix)
            if blob.blob_type == BlobType.APPENDBLOB
        ]

    def append_blob(self, place: str, name: str) -> tuple[int, int]:
        """The size of the append blob `name`, and how many blocks make it."""
        blob = azurite_server.admin_client().get_blob_client(place, name)
        properties = blob.get_blob_properties()
        assert properties.blob_type == BlobType.APPENDBLOB, properties.blob_type
        blocks = properties.append_blob_committed_block_count
        assert isinstance(blocks, int), blocks
        return properties.size, blocks

    def check_redirect(self, place: str, url: str) -> None:
        assert url.startswith(f"{azurite_server.azurite_server().service_url}/{place}/"), url
        query = parse_qs(urlsplit(url).query)
        assert "sig" in query, url
        assert query["sp"] == ["r"], url  # read only

    def redirect_expiry(self, url: str) -> datetime:
        expiry = parse_qs(urlsplit(url).query)["se"][0]
        return datetime.fromisoformat(expiry.replace("Z", "+00:00"))


S3: Final = S3Store()
AZURE: Final = AzureStore()
OBJECT_STORES: Final[tuple[ObjectStore, ...]] = (S3, AZURE)


def only_on(store: ObjectStore) -> pytest.MarkDecorator:
    """Run a test of a module parametrized over `OBJECT_STORES` (by a
    module-scoped `store` fixture) on `store` alone, sharing its servers."""
    return pytest.mark.parametrize("store", [store], ids=[store.name], indirect=True)
