"""Memory use of a big upload and a big read: run by `test_memory.py`.

    memory_child.py ROOT SIZE_MIB

Warms up (imports, worker threads, a small upload and read), then uploads
SIZE_MIB MiB through an `UploadWriter` on the filesystem driver, generated
1 MiB at a time (never the whole blob in memory), commits it, and reads it
back through the `BlobReader`. Reports on stdout, one line each, as
`<phase> <peak RSS in bytes> <current RSS in bytes> <seconds>` for the phases
`before`, `upload` and `read`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import resource
import sys
import time

from entrepot.digest import Digest
from entrepot.storage.blobstore import BlobReader
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry, Repository

MiB = 1 << 20


def peak_rss() -> int:
    """The peak resident set size of this process, in bytes (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def report(phase: str, started: float) -> None:
    print(phase, peak_rss(), current_rss(), f"{time.monotonic() - started:.3f}", flush=True)


async def upload(repo: Repository, chunks: int, seed: int) -> Digest:
    """Upload `chunks` MiB, each a new chunk in one reused buffer."""
    buffer = bytearray(random.Random(seed).randbytes(MiB))
    view = memoryview(buffer)
    hasher = hashlib.sha256()
    writer = await repo.blobs.create()
    for index in range(chunks):
        buffer[:8] = index.to_bytes(8, "big")
        hasher.update(view)
        await writer.write(view)
    committed = await writer.commit(Digest("sha256", hasher.hexdigest()))
    assert committed.size == chunks * MiB
    return committed.digest


async def read(repo: Repository, digest: Digest) -> None:
    reader = await repo.blobs.open(digest)
    assert isinstance(reader, BlobReader)
    hasher = hashlib.sha256()
    async for chunk in reader.chunks(MiB):
        hasher.update(chunk)
    await reader.close()
    assert Digest("sha256", hasher.hexdigest()) == digest


async def main(root: str, size_mib: int) -> None:
    repo = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository("memory")
    await read(repo, await upload(repo, 8, seed=0))  # warm-up
    started = time.monotonic()
    report("before", started)
    digest = await upload(repo, size_mib, seed=1)
    report("upload", started)
    started = time.monotonic()
    await read(repo, digest)
    report("read", started)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
