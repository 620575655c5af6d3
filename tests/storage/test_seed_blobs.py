"""The seed's three blob service tests (blob_test.go), ported step for step.

sha512 stands in for the obsolete tarsum as the provisional digest: the blob
is committed under its sha512 and must come back under its canonical sha256.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from entrepot.blobs import BlobIngester
from entrepot.descriptor import OCTET_STREAM, Descriptor
from entrepot.digest import EMPTY_SHA256, Digest
from entrepot.errors import BlobUnknown, BlobUploadUnknown
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.inmemory import InMemoryDriver
from entrepot.storage.registry import Registry

CHUNK = 32 * 1024


def random_layer(size: int = 3 * 1024 * 1024 + 12345) -> tuple[io.BytesIO, Digest]:
    """Random content and its provisional (sha512) digest."""
    data = os.urandom(size)
    return io.BytesIO(data), Digest.of(data, "sha512")


def seeker_size(seeker: io.BytesIO) -> int:
    current = seeker.tell()
    end = seeker.seek(0, os.SEEK_END)
    assert seeker.seek(current, os.SEEK_SET) == current
    return end


def new_blobs() -> Registry:
    return Registry(InMemoryDriver(), InMemoryBlobDescriptorCache())


async def add_blob(bs: BlobIngester, desc: Descriptor, rd: io.BytesIO) -> Descriptor:
    """Consume the reader into the blob service; the seed's addBlob."""
    wr = await bs.create()
    try:
        nn = 0
        while chunk := rd.read(CHUNK):
            nn += await wr.write(chunk)
        if nn != desc.size:
            raise AssertionError(f"incorrect number of bytes copied: {nn} != {desc.size}")
        return await wr.commit(desc)
    finally:
        await wr.cancel()


async def test_simple_blob_upload() -> None:
    """TestSimpleBlobUpload: the upload process and its common error paths."""
    random_data, provisional = random_layer()
    bs = new_blobs().repository("foo/bar").blobs

    h = hashlib.sha256()

    blob_upload = await bs.create()
    # Cancel the upload then restart it.
    await blob_upload.cancel()
    # Do a resume, get unknown upload.
    with pytest.raises(BlobUploadUnknown):
        await bs.resume(blob_upload.id)

    # Restart!
    blob_upload = await bs.create()
    random_data_size = seeker_size(random_data)

    nn = 0
    while chunk := random_data.read(CHUNK):
        h.update(chunk)
        nn += await blob_upload.write(chunk)
    assert nn == random_data_size, "layer data write incomplete"

    offset = blob_upload.seek(0, os.SEEK_CUR)
    assert offset == nn, f"blobUpload not updated with correct offset: {offset} != {nn}"
    await blob_upload.close()

    # Do a resume, for good fun.
    blob_upload = await bs.resume(blob_upload.id)

    sha256_digest = Digest("sha256", h.hexdigest())
    desc = await blob_upload.commit(provisional)

    # After finishing an upload, it should no longer exist.
    with pytest.raises(BlobUploadUnknown):
        await bs.resume(blob_upload.id)

    # Test for existence.
    stat_desc = await bs.stat(desc.digest)
    assert stat_desc == desc

    rc = await bs.open(desc.digest)
    try:
        h = hashlib.sha256()
        nn = 0
        while chunk := await rc.read(CHUNK):
            h.update(chunk)
            nn += len(chunk)
    finally:
        await rc.close()
    assert nn == random_data_size, "incorrect read length"
    assert Digest("sha256", h.hexdigest()) == sha256_digest


async def test_simple_blob_read() -> None:
    """TestSimpleBlobRead: open, read, seek, read of a simple blob."""
    bs = new_blobs().repository("foo/bar").blobs
    random_layer_reader, dgst = random_layer()

    # Test for existence.
    with pytest.raises(BlobUnknown):
        await bs.stat(dgst)
    with pytest.raises(BlobUnknown):
        await bs.open(dgst)

    random_layer_size = seeker_size(random_layer_reader)
    desc_before = Descriptor(digest=dgst, media_type=OCTET_STREAM, size=random_layer_size)
    desc = await add_blob(bs, desc_before, random_layer_reader)
    assert desc.size == random_layer_size, "committed blob has incorrect length"

    rc = await bs.open(dgst)  # opening with the original (provisional) digest
    try:
        h = hashlib.sha256()
        nn = 0
        while chunk := await rc.read(CHUNK):
            h.update(chunk)
            nn += len(chunk)
        assert nn == random_layer_size, "stored incorrect number of bytes in blob"
        assert Digest("sha256", h.hexdigest()) == desc.digest, "fetched digest does not match"

        # Now seek back the blob, read the whole thing and check against the data.
        assert rc.seek(0, os.SEEK_SET) == 0, "seek failed"
        p = await rc.read()
        assert len(p) == random_layer_size, "blob data read has different length"
    finally:
        await rc.close()

    random_layer_reader.seek(0, os.SEEK_SET)
    assert p == random_layer_reader.read(), "layer data not equal"


async def test_layer_upload_zero_length() -> None:
    """TestLayerUploadZeroLength: a zero-length upload commits."""
    bs = new_blobs().repository("foo/bar").blobs
    wr = await bs.create()
    nn = 0
    for chunk in iter(lambda: io.BytesIO(b"").read(CHUNK), b""):
        nn += await wr.write(chunk)
    assert nn == 0

    dgst = Digest.of(b"")
    assert dgst == EMPTY_SHA256, "digest not as expected"

    desc = await wr.commit(Descriptor(digest=dgst, size=0))
    assert desc.digest == dgst
