"""A registry process to be killed: run by `test_crash.py` with this interpreter.

    crash_child.py write ROOT NAME SEED
        Starts an upload and writes the stream of SEED into it for ever, 1 MiB
        at a time, closing and resuming the session every 4 MiB (so hash
        states are stored); reports `id <upload id>`, then `progress <offset>`
        after every write.

    crash_child.py commit ROOT NAME SEED SIZE ALGORITHM run|step
        Uploads SIZE bytes of the stream, closes, resumes and commits them
        under their ALGORITHM digest; reports `id <upload id>`, `committing`,
        then `committed <digest>`. With `step`, every change the commit makes
        to storage is reported as `done <n> <method> <path>`, and after each
        report (`committing` included) the child waits for a line on stdin
        before it goes on: a kill then lands exactly between two changes.

The stream of a seed is deterministic, so the parent can rebuild any part of
it: 1 MiB chunks, each a random block of the seed with its index in front.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import sys
from collections.abc import Iterator

from entrepot.digest import Digest
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry

MiB = 1 << 20


@functools.cache
def _block(seed: int) -> bytes:
    return random.Random(seed).randbytes(MiB)


def chunk(seed: int, index: int) -> bytes:
    """Chunk `index` of the stream of `seed`: MiB bytes, unlike any other chunk."""
    return index.to_bytes(8, "big") + _block(seed)[8:]


def stream(seed: int, start: int, end: int) -> Iterator[bytes]:
    """Bytes `start` to `end` of the stream of `seed`, in pieces of 1 MiB at most."""
    offset = start
    while offset < end:
        index, skip = divmod(offset, MiB)
        piece = chunk(seed, index)[skip : skip + end - offset]
        yield piece
        offset += len(piece)


def report(*words: object) -> None:
    print(*words, flush=True)


class SteppingDriver(FilesystemDriver):
    """A filesystem driver that, while `armed`, reports each change to
    storage once made and waits for the parent's go-ahead."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.armed = False
        self._steps = 0

    async def _done(self, method: str, path: str) -> None:
        if self.armed:
            self._steps += 1
            report("done", self._steps, method, path)
            await wait_for_go()

    async def put_content(self, path: str, content: bytes) -> None:
        await super().put_content(path, content)
        await self._done("put_content", path)

    async def move(self, source: str, dest: str) -> None:
        await super().move(source, dest)
        await self._done("move", dest)

    async def delete(self, path: str) -> None:
        await super().delete(path)
        await self._done("delete", path)


async def wait_for_go() -> None:
    line = await asyncio.to_thread(sys.stdin.readline)
    if line != "go\n":
        raise SystemExit(f"expected go, got {line!r}")


async def write_forever(root: str, name: str, seed: int) -> None:
    blobs = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository(name).blobs
    writer = await blobs.create()
    report("id", writer.id)
    index = 0
    while True:
        await writer.write(chunk(seed, index))
        index += 1
        report("progress", writer.tell())
        if index % 4 == 0:
            await writer.close()
            writer = await blobs.resume(writer.id)


async def commit(root: str, name: str, seed: int, size: int, algorithm: str, step: bool) -> None:
    driver = SteppingDriver(root)
    blobs = Registry(driver, InMemoryBlobDescriptorCache()).repository(name).blobs
    writer = await blobs.create()
    report("id", writer.id)
    hasher = hashlib.new(algorithm)
    for piece in stream(seed, 0, size):
        hasher.update(piece)
        await writer.write(piece)
    await writer.close()
    writer = await blobs.resume(writer.id)
    report("committing")
    if step:
        await wait_for_go()
        driver.armed = True
    committed = await writer.commit(Digest(algorithm, hasher.hexdigest()))
    report("committed", committed.digest)


def main(argv: list[str]) -> None:
    mode, root, name, seed = argv[0], argv[1], argv[2], int(argv[3])
    if mode == "write":
        asyncio.run(write_forever(root, name, seed))
    elif mode == "commit":
        size, algorithm, step = int(argv[4]), argv[5], argv[6] == "step"
        asyncio.run(commit(root, name, seed, size, algorithm, step))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
