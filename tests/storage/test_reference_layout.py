"""Distribution's storage layout, proven both ways against the real thing.

CNCF Distribution 2.8 and entrepot take turns on one storage root: what one
writes over its own API, the other must read (principle 7 of the design).
Uploads are handed over mid-way in both directions, and each side must
continue from the hash state the other left in `_uploads/<id>/hashstates/`.

Distribution runs in a worker thread (`asyncio.to_thread`) with a blocking
HTTP client, so the event loop of the test only ever runs entrepot.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.hashstate import ResumableHash
from entrepot.storage import paths
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.base import FileReader
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.linked import LinkedBlobStore
from entrepot.storage.registry import Registry
from entrepot.storage.upload import format_started_at
from tests.reference_registry import HTTP_SECRET, run_reference_registry

pytestmark = pytest.mark.reference

NAME: Final = "interop/layout"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCTET: Final = {"Content-Type": "application/octet-stream"}
MiB: Final = 1 << 20


# -- content -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Image:
    """A config, two layers, and the OCI and Docker manifests naming them."""

    config: bytes
    layers: tuple[bytes, bytes]

    @staticmethod
    def random() -> Image:
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}
        ).encode()
        # Sizes off the 1 MiB chunk and 64-byte block boundaries on purpose.
        return Image(config, (os.urandom(MiB + 321), os.urandom(3 * MiB + 4099)))

    @property
    def blobs(self) -> tuple[bytes, ...]:
        return (self.config, *self.layers)

    def manifest(self, media_type: str) -> bytes:
        config_type, layer_type = (
            (OCI_CONFIG, OCI_LAYER) if media_type == OCI_MANIFEST else (DOCKER_CONFIG, DOCKER_LAYER)
        )
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": _descriptor(config_type, self.config),
                "layers": [_descriptor(layer_type, layer) for layer in self.layers],
            },
            indent=3,  # not what a re-serialisation would produce: bytes must survive
        ).encode()


def _descriptor(media_type: str, content: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(content)), "size": len(content)}


def new_registry(root: Path, driver: FilesystemDriver | None = None) -> Registry:
    return Registry(driver or FilesystemDriver(root), InMemoryBlobDescriptorCache())


async def read_blob(blobs: LinkedBlobStore, digest: Digest) -> bytes:
    reader = await blobs.open(digest)
    try:
        return b"".join([chunk async for chunk in reader.chunks()])
    finally:
        await reader.close()


def upload_dir(root: Path, upload_id: str) -> Path:
    return root / paths.upload_dir(NAME, upload_id).lstrip("/")


# -- Distribution's upload state token (registry/handlers/hmac.go) ------------


def pack_upload_state(state: dict[str, Any], secret: str = HTTP_SECRET) -> str:
    """`_state` as Distribution signs it: base64url(HMAC-SHA256(json) + json),
    with the JSON compact, as Go's `json.Marshal` writes it."""
    message = json.dumps(state, separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac + message).decode("ascii")


def unpack_upload_state(token: str, secret: str = HTTP_SECRET) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(token)
    mac, message = raw[:32], raw[32:]
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    assert hmac.compare_digest(mac, expected), "the _state token is not signed with the secret"
    state: dict[str, Any] = json.loads(message)
    return state


def upload_url(base: str, upload_id: str, offset: int, started_at: str) -> httpx.URL:
    """The URL Distribution would have handed out for an upload at `offset`."""
    token = pack_upload_state(
        {"Name": NAME, "UUID": upload_id, "Offset": offset, "StartedAt": started_at}
    )
    return httpx.URL(f"{base}/v2/{NAME}/blobs/uploads/{upload_id}").copy_add_param("_state", token)


# -- talking to Distribution -------------------------------------------------------


@contextmanager
def distribution(root: Path) -> Iterator[httpx.Client]:
    with run_reference_registry(root) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def start_upload(client: httpx.Client) -> httpx.URL:
    response = client.post(f"/v2/{NAME}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return client.base_url.join(response.headers["Location"])


def patch_chunk(client: httpx.Client, location: httpx.URL, chunk: bytes, start: int) -> httpx.URL:
    headers = {**OCTET, "Content-Range": f"{start}-{start + len(chunk) - 1}"}
    response = client.patch(location, content=chunk, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{start + len(chunk) - 1}"
    return client.base_url.join(response.headers["Location"])


def finish_upload(client: httpx.Client, location: httpx.URL, digest: Digest, body: bytes) -> None:
    response = client.put(
        location.copy_add_param("digest", str(digest)), content=body, headers=OCTET
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == str(digest)


def push_monolithic(client: httpx.Client, content: bytes) -> None:
    finish_upload(client, start_upload(client), Digest.of(content), content)


def push_chunked(client: httpx.Client, content: bytes) -> None:
    middle = len(content) // 2
    location = start_upload(client)
    location = patch_chunk(client, location, content[:middle], 0)
    location = patch_chunk(client, location, content[middle:], middle)
    finish_upload(client, location, Digest.of(content), b"")


def put_manifest(client: httpx.Client, reference: str, content: bytes, media_type: str) -> str:
    response = client.put(
        f"/v2/{NAME}/manifests/{reference}", content=content, headers={"Content-Type": media_type}
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


# -- a. Distribution writes, entrepot reads --------------------------------------


def push_image_with_distribution(root: Path, image: Image) -> dict[str, str]:
    """Push `image` (one layer monolithic, one chunked) and tag both manifests;
    the tags' digests as Distribution reports them."""
    with distribution(root) as client:
        push_monolithic(client, image.config)
        push_monolithic(client, image.layers[0])
        push_chunked(client, image.layers[1])
        return {
            "v1": put_manifest(client, "v1", image.manifest(OCI_MANIFEST), OCI_MANIFEST),
            "v1-docker": put_manifest(
                client, "v1-docker", image.manifest(DOCKER_MANIFEST), DOCKER_MANIFEST
            ),
        }


async def test_entrepot_reads_what_distribution_wrote(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image = Image.random()
    pushed = await asyncio.to_thread(push_image_with_distribution, root, image)

    registry = new_registry(root)
    repository = registry.repository(NAME)
    assert await registry.repositories() == [NAME]
    assert await repository.tags.all() == ["v1", "v1-docker"]

    for tag, media_type in (("v1", OCI_MANIFEST), ("v1-docker", DOCKER_MANIFEST)):
        digest = await repository.tags.get(tag)
        assert str(digest) == pushed[tag]
        manifest = await repository.manifests.get(digest)
        assert manifest.content == image.manifest(media_type)
        assert manifest.media_type == media_type
        assert manifest.digest == digest
        assert await repository.tags.lookup(digest) == [tag]

    for content in image.blobs:
        digest = Digest.of(content)
        descriptor = await repository.blobs.stat(digest)
        assert (descriptor.digest, descriptor.size) == (digest, len(content))
        data = await read_blob(repository.blobs, digest)
        assert Digest.of(data) == digest
        assert data == content


# -- b. entrepot writes, Distribution reads --------------------------------------


async def upload_blob(blobs: LinkedBlobStore, content: bytes) -> Descriptor:
    writer = await blobs.create()
    for start in range(0, len(content), MiB):
        await writer.write(content[start : start + MiB])
    return await writer.commit(Descriptor(digest=Digest.of(content), size=len(content)))


async def push_image_with_entrepot(root: Path, image: Image) -> dict[str, Digest]:
    first = new_registry(root).repository(NAME)
    await upload_blob(first.blobs, image.config)
    await upload_blob(first.blobs, image.layers[0])

    # The last layer is handed over between two registries mid-upload.
    layer = image.layers[1]
    cut = len(layer) // 3
    writer = await first.blobs.create()
    await writer.write(layer[:cut])
    await writer.close()
    second = new_registry(root).repository(NAME)
    resumed = await second.blobs.resume(writer.id)
    assert resumed.size == cut
    await resumed.write(layer[cut:])
    committed = await resumed.commit(Digest.of(layer))
    assert committed.size == len(layer)

    tags = {}
    for tag, media_type in (("v1", OCI_MANIFEST), ("v1-docker", DOCKER_MANIFEST)):
        descriptor = await second.manifests.put(image.manifest(media_type), media_type)
        await second.tags.tag(tag, descriptor.digest)
        tags[tag] = descriptor.digest
    return tags


def check_image_with_distribution(root: Path, image: Image, tags: dict[str, Digest]) -> None:
    with distribution(root) as client:
        for content in image.blobs:
            digest = str(Digest.of(content))
            response = client.get(f"/v2/{NAME}/blobs/{digest}")
            assert response.status_code == 200, response.text
            assert response.content == content
            assert response.headers["Docker-Content-Digest"] == digest
            head = client.head(f"/v2/{NAME}/blobs/{digest}")
            assert head.status_code == 200
            assert head.headers["Content-Length"] == str(len(content))
            assert head.headers["Docker-Content-Digest"] == digest

        for tag, media_type in (("v1", OCI_MANIFEST), ("v1-docker", DOCKER_MANIFEST)):
            content, digest = image.manifest(media_type), str(tags[tag])
            for reference in (tag, digest):
                url = f"/v2/{NAME}/manifests/{reference}"
                response = client.get(url, headers={"Accept": media_type})
                assert response.status_code == 200, response.text
                assert response.content == content
                assert response.headers["Docker-Content-Digest"] == digest
                assert response.headers["Content-Type"] == media_type
                head = client.head(url, headers={"Accept": media_type})
                assert head.status_code == 200
                assert head.headers["Docker-Content-Digest"] == digest
                assert head.headers["Content-Length"] == str(len(content))

        catalog = client.get("/v2/_catalog")
        assert catalog.status_code == 200
        assert catalog.json() == {"repositories": [NAME]}
        listed = client.get(f"/v2/{NAME}/tags/list")
        assert listed.status_code == 200
        assert listed.json() == {"name": NAME, "tags": ["v1", "v1-docker"]}


async def test_distribution_reads_what_entrepot_wrote(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image = Image.random()
    tags = await push_image_with_entrepot(root, image)
    assert tags["v1"] == Digest.of(image.manifest(OCI_MANIFEST))
    await asyncio.to_thread(check_image_with_distribution, root, image, tags)


# -- c. uploads handed over between the two ---------------------------------------


class RecordingDriver(FilesystemDriver):
    """A filesystem driver that remembers which files were opened for reading."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        self.opened.append(path)
        return await super().reader(path, offset)


def start_upload_with_distribution(root: Path, first_chunk: bytes) -> tuple[str, str]:
    """POST and PATCH one chunk; the upload id and the `_state` handed back."""
    with distribution(root) as client:
        location = start_upload(client)
        location = patch_chunk(client, location, first_chunk, 0)
    upload_id = location.path.rsplit("/", 1)[1]
    return upload_id, location.params["_state"]


async def test_entrepot_finishes_an_upload_distribution_started(tmp_path: Path) -> None:
    root = tmp_path / "root"
    content = os.urandom(6 * MiB + 777)
    cut = 4 * MiB + 33  # off the block boundary: the state buffers a partial block
    upload_id, token = await asyncio.to_thread(start_upload_with_distribution, root, content[:cut])

    # What Distribution left: its signed state, and the hash state at the offset.
    state = unpack_upload_state(token)
    assert (state["Name"], state["UUID"], state["Offset"]) == (NAME, upload_id, cut)
    assert pack_upload_state(state) == token, "the signer must agree with Distribution's"
    hashstate = upload_dir(root, upload_id) / "hashstates" / "sha256" / str(cut)
    left = ResumableHash.unmarshal(hashstate.read_bytes(), "sha256")
    assert left.length == cut
    assert left.hexdigest() == hashlib.sha256(content[:cut]).hexdigest()

    driver = RecordingDriver(root)
    blobs = new_registry(root, driver).repository(NAME).blobs
    writer = await blobs.resume(upload_id)
    assert writer.size == cut
    await writer.write(content[cut:])
    descriptor = await writer.commit(Digest.of(content))
    assert (descriptor.digest, descriptor.size) == (Digest.of(content), len(content))
    # The hash continued from Distribution's state: not one byte was re-read.
    assert paths.upload_data(NAME, upload_id) not in driver.opened
    assert not upload_dir(root, upload_id).exists()
    assert await read_blob(blobs, descriptor.digest) == content


async def test_entrepot_rehashes_when_distribution_left_no_usable_state(tmp_path: Path) -> None:
    root = tmp_path / "root"
    content = os.urandom(2 * MiB + 5)
    cut = MiB + 1
    upload_id, _ = await asyncio.to_thread(start_upload_with_distribution, root, content[:cut])
    # A state that claims the right offset but holds nonsense (a torn write).
    hashstate = upload_dir(root, upload_id) / "hashstates" / "sha256" / str(cut)
    hashstate.write_bytes(b"sha\x03" + bytes(20))

    driver = RecordingDriver(root)
    blobs = new_registry(root, driver).repository(NAME).blobs
    writer = await blobs.resume(upload_id)
    await writer.write(content[cut:])
    descriptor = await writer.commit(Digest.of(content))
    assert descriptor.digest == Digest.of(content)
    assert paths.upload_data(NAME, upload_id) in driver.opened
    assert await read_blob(blobs, descriptor.digest) == content


async def start_upload_with_entrepot(root: Path, first_chunk: bytes) -> tuple[str, str]:
    """Create, write and close an upload; its id and its start time."""
    blobs = new_registry(root).repository(NAME).blobs
    writer = await blobs.create()
    await writer.write(first_chunk)
    await writer.close()
    hashstate = upload_dir(root, writer.id) / "hashstates" / "sha256" / str(len(first_chunk))
    assert ResumableHash.unmarshal(hashstate.read_bytes()).length == len(first_chunk)
    return writer.id, format_started_at(writer.started_at)


def finish_upload_with_distribution(
    root: Path, upload_id: str, started_at: str, content: bytes, cut: int
) -> bytes:
    """Check the status, PATCH the rest, commit; the blob as Distribution serves it."""
    with distribution(root) as client:
        status_path = f"/v2/{NAME}/blobs/uploads/{upload_id}"
        unsigned = client.get(status_path)
        assert unsigned.status_code == 404  # Distribution 2.8 wants its _state
        assert unsigned.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"

        location = upload_url(str(client.base_url), upload_id, cut, started_at)
        status = client.get(location)
        assert status.status_code == 204, status.text
        assert status.headers["Range"] == f"0-{cut - 1}"
        assert status.headers["Docker-Upload-UUID"] == upload_id

        location = patch_chunk(client, location, content[cut:], cut)
        finish_upload(client, location, Digest.of(content), b"")
        response = client.get(f"/v2/{NAME}/blobs/{Digest.of(content)}")
        assert response.status_code == 200, response.text
        return response.content


async def test_distribution_finishes_an_upload_entrepot_started(tmp_path: Path) -> None:
    root = tmp_path / "root"
    content = os.urandom(5 * MiB + 99)
    cut = 2 * MiB + 17
    upload_id, started_at = await start_upload_with_entrepot(root, content[:cut])
    served = await asyncio.to_thread(
        finish_upload_with_distribution, root, upload_id, started_at, content, cut
    )
    assert served == content
    assert not upload_dir(root, upload_id).exists()
    blobs = new_registry(root).repository(NAME).blobs
    assert await read_blob(blobs, Digest.of(content)) == content


def patch_with_distribution(root: Path, upload_id: str, started_at: str, chunk: bytes) -> None:
    offset = (upload_dir(root, upload_id) / "data").stat().st_size
    with distribution(root) as client:
        patch_chunk(
            client, upload_url(str(client.base_url), upload_id, offset, started_at), chunk, offset
        )


def commit_status_with_distribution(
    root: Path, upload_id: str, started_at: str, digest: Digest
) -> tuple[int, str]:
    offset = (upload_dir(root, upload_id) / "data").stat().st_size
    with distribution(root) as client:
        location = upload_url(str(client.base_url), upload_id, offset, started_at)
        response = client.put(
            location.copy_add_param("digest", str(digest)), content=b"", headers=OCTET
        )
        return response.status_code, response.text


@pytest.mark.parametrize("state_kept", [True, False], ids=["state-kept", "state-lost"])
async def test_distribution_continues_entrepots_hash_state(
    tmp_path: Path, state_kept: bool
) -> None:
    """Proof that Distribution hashes on from entrepot's state and does not
    re-read the data: after the data written so far is altered behind both
    registries' backs, only the state still knows the original bytes, and
    the commit succeeds under the digest of the original content. Without
    the state, Distribution re-hashes the altered data and refuses."""
    root = tmp_path / "root"
    content = os.urandom(3 * MiB + 5)
    cut = 2 * MiB + 3
    upload_id, started_at = await start_upload_with_entrepot(root, content[:cut])
    with (upload_dir(root, upload_id) / "data").open("r+b") as file:
        file.write(bytes(4096))  # same length: the offset stays right
    if not state_kept:
        for state in (upload_dir(root, upload_id) / "hashstates" / "sha256").iterdir():
            state.unlink()

    await asyncio.to_thread(patch_with_distribution, root, upload_id, started_at, content[cut:])
    status, text = await asyncio.to_thread(
        commit_status_with_distribution, root, upload_id, started_at, Digest.of(content)
    )
    if state_kept:
        assert status == 201, text
    else:
        assert status == 400, text
        assert "DIGEST_INVALID" in text


# -- hash states Distribution misnames, and schema 1 roots -------------------------


@pytest.mark.parametrize("middle", ["distribution", "entrepot"])
async def test_a_misnamed_distribution_state_is_not_laundered(tmp_path: Path, middle: str) -> None:
    """After a lost hash state, Distribution 2.8 names its next state after the
    bytes it hashed since then, not after the offset: `hashstates/sha256/<len(b)>`
    holds the hash of `b` alone. Distribution only ever trusts a state named
    after the exact data size, so it never uses that one and re-hashes at commit.

    entrepot must do the same: had it continued from the newest state below
    the size, it would store a wrong running hash under the exact size, which
    Distribution trusts, answering DIGEST_INVALID to the correct digest on
    every retry (the upload lost). Either registry in the middle commits.
    """
    root = tmp_path / "root"
    a, b, c = os.urandom(2 * MiB + 1), os.urandom(MiB + 3), os.urandom(MiB + 7)
    upload_id, started_at = await start_upload_with_entrepot(root, a)
    # The state is lost, as when a process dies between writing data and closing.
    for state in (upload_dir(root, upload_id) / "hashstates" / "sha256").iterdir():
        state.unlink()
    await asyncio.to_thread(patch_with_distribution, root, upload_id, started_at, b)
    assert [p.name for p in (upload_dir(root, upload_id) / "hashstates" / "sha256").iterdir()] == [
        str(len(b))
    ]

    if middle == "entrepot":
        writer = await new_registry(root).repository(NAME).blobs.resume(upload_id)
        await writer.write(c)
        await writer.close()
    else:
        await asyncio.to_thread(patch_with_distribution, root, upload_id, started_at, c)

    status, text = await asyncio.to_thread(
        commit_status_with_distribution, root, upload_id, started_at, Digest.of(a + b + c)
    )
    assert status == 201, text


async def test_a_schema1_manifest_keeps_its_media_type(tmp_path: Path) -> None:
    """Roots written by Distribution up to 2.7 hold signed schema1 manifests,
    which carry no `mediaType`; Distribution recognises them by
    `schemaVersion: 1`, and so must entrepot (not as OCI image manifests)."""
    schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    content = json.dumps(
        {
            "schemaVersion": 1,
            "name": NAME,
            "tag": "old",
            "architecture": "amd64",
            "fsLayers": [],
            "history": [],
            "signatures": [],
        },
        indent=3,
    ).encode()
    manifests = new_registry(tmp_path / "root").repository(NAME).manifests
    descriptor = await manifests.put(content, schema1)
    assert (await manifests.get(descriptor.digest)).media_type == schema1
