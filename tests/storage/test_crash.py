"""Crashes: a registry process killed (SIGKILL) in the middle of an upload or
of a commit leaves nothing half visible, and any other process can take its
session over: resume it at the size of its data and commit it, or cancel it.

The killed process is `crash_child.py` on a filesystem root; the checks read
the storage both through entrepot and straight from the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.errors import BlobUnknown, BlobUploadUnknown
from entrepot.hashstate import ResumableHash
from entrepot.storage import paths
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.linked import LinkedBlobStore
from entrepot.storage.registry import Registry
from entrepot.storage.upload import UploadWriter
from tests.storage.children import Child
from tests.storage.crash_child import MiB, stream

SCRIPT = Path(__file__).with_name("crash_child.py")
NAME = "crash/test"
V2 = Path(paths.ROOT.lstrip("/"))
WAIT = 60.0  # seconds: the most any single report of a child may take


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[Path]:
    """A directory for storage roots, removed afterwards (they are big)."""
    directory = tmp_path / "roots"
    directory.mkdir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@functools.cache
def stream_digest(seed: int, size: int, algorithm: str) -> Digest:
    hasher = hashlib.new(algorithm)
    for piece in stream(seed, 0, size):
        hasher.update(piece)
    return Digest(algorithm, hasher.hexdigest())


def prefix_digests(seed: int, offsets: set[int]) -> dict[int, Digest]:
    """The sha256 of the first `offset` bytes of the stream, for each offset."""
    hasher = hashlib.sha256()
    found = {0: Digest("sha256", hasher.hexdigest())} if 0 in offsets else {}
    position = 0
    for offset in sorted(offsets - {0}):
        for piece in stream(seed, position, offset):
            hasher.update(piece)
        position = offset
        found[offset] = Digest("sha256", hasher.hexdigest())
    return found


def file_digest(path: Path, algorithm: str = "sha256") -> Digest:
    st = path.stat()
    return _file_digest(path, algorithm, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: Path, algorithm: str, inode: int, size: int, mtime_ns: int) -> Digest:
    """The digest of a file, computed once per version of it."""
    hasher = hashlib.new(algorithm)
    with path.open("rb") as file:
        while block := file.read(MiB):
            hasher.update(block)
    return Digest(algorithm, hasher.hexdigest())


def session_dir(root: Path, upload_id: str) -> Path:
    return root / V2 / "repositories" / NAME / "_uploads" / upload_id


def blob_files(root: Path) -> list[Path]:
    blobs = root / V2 / "blobs"
    return sorted(p for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else []


def assert_links_sound(root: Path) -> int:
    """Every layer link names a stored blob whose content has that digest
    (and the digest the link is filed under). Returns the number of links."""
    repositories = root / V2 / "repositories"
    links = [p for p in repositories.rglob("link") if "_layers" in p.parts]
    for link in links:
        target = Digest.parse(link.read_text())
        assert target.algorithm == "sha256", f"{link} names a non-canonical digest"
        data = root / V2 / "blobs/sha256" / target.hex[:2] / target.hex / "data"
        assert data.is_file(), f"{link} names {target}, which is not stored: a half state"
        assert file_digest(data) == target, f"blob {target} does not have that digest"
        filed_under = Digest(link.parent.parent.name, link.parent.name)
        assert file_digest(data, filed_under.algorithm) == filed_under
    return len(links)


def assert_hash_states_sound(root: Path, upload_id: str, seed: int) -> None:
    """Every stored hash state is the state after exactly the bytes it is
    named after, and names no more bytes than are stored."""
    session = session_dir(root, upload_id)
    directory = session / "hashstates/sha256"
    if not directory.exists():
        return
    data = session / "data"
    size = data.stat().st_size if data.exists() else 0
    states = {int(p.name): p.read_bytes() for p in directory.iterdir() if p.name.isdigit()}
    expected = prefix_digests(seed, set(states))
    for offset, state in states.items():
        hasher = ResumableHash.unmarshal(state)
        assert hasher.length == offset
        assert hasher.digest() == expected[offset], f"the state at {offset} lies"
        if data.exists():
            assert offset <= size, f"a state at {offset}, beyond the data ({size})"


async def visible(blobs: LinkedBlobStore, digest: Digest, expected: Descriptor) -> bool:
    """Whether the repository holds `digest`; if it does, as `expected`."""
    try:
        found = await blobs.stat(digest)
    except BlobUnknown:
        return False
    assert found == expected
    return True


async def take_over(root: Path, upload_id: str, seed: int, size: int, finish: str) -> str:
    """What another process finds after the crash, and how it ends the session.

    Checks that no blob is half visible, then resumes the session at the size
    of its data and commits the stream's first `size` bytes under their
    sha512 (unless the blob is already linked under it), or cancels it
    (`finish`). Returns what the crash had left: "uncommitted", "moved" (the
    data moved into the global store, no link), "linked" (under its canonical
    digest only) or "committed" (under both digests).
    """
    assert_links_sound(root)
    sha256 = stream_digest(seed, size, "sha256")
    sha512 = stream_digest(seed, size, "sha512")
    expected = Descriptor(digest=sha256, size=size)
    blobs = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository(NAME).blobs

    by_canonical = await visible(blobs, sha256, expected)
    by_provisional = await visible(blobs, sha512, expected)
    moved = (root / paths.blob_data(sha256).lstrip("/")).is_file()
    if by_provisional:
        outcome = "committed"
    elif by_canonical:
        outcome = "linked"
    else:
        outcome = "moved" if moved else "uncommitted"

    session = session_dir(root, upload_id)
    data = session / "data"
    offset = data.stat().st_size if data.is_file() else 0
    writer: UploadWriter | None
    try:
        writer = await blobs.resume(upload_id)
    except BlobUploadUnknown:
        # Only a commit may end a session, and only once it has moved the data.
        assert not data.exists(), "a session with data that cannot be resumed"
        writer = None
    else:
        assert writer.tell() == offset
    if writer is None:
        shutil.rmtree(session, ignore_errors=True)  # what a purge of old sessions does
    if finish == "cancel" or by_provisional:
        if writer is not None:
            await writer.cancel()
    else:
        if writer is None:  # the client starts over, in a new session
            writer, offset = await blobs.create(), 0
        for piece in stream(seed, offset, size):
            await writer.write(piece)
        assert await writer.commit(sha512) == expected
        by_canonical = by_provisional = True

    # The end state, as a fresh process sees it.
    assert not session.exists()
    fresh = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache()).repository(NAME)
    assert await visible(fresh.blobs, sha256, expected) == by_canonical
    assert await visible(fresh.blobs, sha512, expected) == by_provisional
    if by_canonical:
        assert len(blob_files(root)) == 1
        reader = await fresh.blobs.open(sha256)
        hasher = hashlib.sha256()
        async for piece in reader.chunks():
            hasher.update(piece)
        await reader.close()
        assert Digest("sha256", hasher.hexdigest()) == sha256
    assert_links_sound(root)
    return outcome


# -- killed while writing --


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("threshold", "finish"),
    [(5 * MiB, "commit"), (13 * MiB, "commit"), (9 * MiB, "cancel")],
)
def test_killed_while_writing(roots: Path, threshold: int, finish: str) -> None:
    root, seed = roots / "root", threshold
    with Child(SCRIPT, "write", str(root), NAME, str(seed), stderr=roots / "child.err") as child:
        upload_id = child.expect("id ", WAIT).split()[1]
        while int(child.expect("progress ", WAIT).split()[1]) < threshold:
            pass
        child.kill()  # while it goes on writing

    # Nothing is visible; the session holds what was written, and its
    # stored hash states are exact.
    assert not (root / V2 / "repositories" / NAME / "_layers").exists()
    assert blob_files(root) == []
    data = session_dir(root, upload_id) / "data"
    written = data.stat().st_size
    assert written >= threshold
    assert_hash_states_sound(root, upload_id, seed)
    assert file_digest(data) == stream_digest(seed, written, "sha256")  # the stream, in order

    size = written + 3 * MiB + 7
    outcome = asyncio.run(take_over(root, upload_id, seed, size, finish))
    assert outcome == "uncommitted"
    assert len(blob_files(root)) == (1 if finish == "commit" else 0)


# -- killed while committing: between every two changes to storage --


def test_killed_between_every_two_steps_of_a_commit(roots: Path) -> None:
    """The commit is stopped after each change it makes to storage (moving
    the data, writing each link, removing the session), then killed."""
    seed, size = 7, 2 * MiB + 3
    outcomes: list[tuple[str, str]] = []
    for kill_point in range(20):
        root = roots / f"root-{kill_point}"
        args = ("commit", str(root), NAME, str(seed), str(size), "sha512", "step")
        with Child(SCRIPT, *args, stderr=roots / f"child-{kill_point}.err") as child:
            upload_id = child.expect("id ", WAIT).split()[1]
            last = child.expect("committing", WAIT)
            for _ in range(kill_point):
                child.send("go")
                last = child.line(WAIT)
                if last.startswith("committed"):
                    break
            if last.startswith("committed"):
                child.finish(WAIT)
            else:
                child.kill()
        outcome = asyncio.run(take_over(root, upload_id, seed, size, "commit"))
        outcomes.append((last, outcome))
        if last.startswith("committed"):
            break
    else:
        pytest.fail("the commit never completed")

    steps = [last.split()[2] for last, _ in outcomes if last.startswith("done")]
    assert steps[-1] == "delete", "the session is removed last"
    # Each kill point leaves at least as much done as the one before it: the
    # data is moved into the global store (invisible: no link), then linked
    # under its canonical digest, then under the provisional one.
    found = [outcome for _, outcome in outcomes]
    order = ["uncommitted", "moved", "linked", "committed"]
    assert found == sorted(found, key=order.index), steps
    assert found[0] == "uncommitted"
    assert found[-1] == "committed"
    assert "moved" in found, steps


# -- killed while committing a big upload, at a random moment --


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_at_random_moments_of_a_big_commit(roots: Path) -> None:
    """~200 MiB, committed under its sha512 (so the commit hashes it all
    again), killed after a small random delay once the commit starts."""
    seed, size = 11, 200 * MiB + 5
    rng = random.Random(2024)
    # Early in the commit (it hashes first), later, and late enough to finish
    # on a fast machine.
    delays = [rng.uniform(0.0, 0.1), rng.uniform(0.1, 0.4), rng.uniform(0.4, 1.5)]
    outcomes: list[tuple[bool, str]] = []
    for run, delay in enumerate(delays):
        root = roots / f"root-{run}"
        args = ("commit", str(root), NAME, str(seed), str(size), "sha512", "run")
        with Child(SCRIPT, *args, stderr=roots / f"child-{run}.err") as child:
            upload_id = child.expect("id ", WAIT).split()[1]
            child.expect("committing", WAIT)
            finished = False
            with contextlib.suppress(TimeoutError):
                finished = child.line(delay).startswith("committed")  # if it is that fast
            child.kill()
        outcome = asyncio.run(take_over(root, upload_id, seed, size, "commit"))
        outcomes.append((finished, outcome))
        shutil.rmtree(root)
    print("killed inside the commit?, what it left:", outcomes)
    assert any(not finished for finished, _ in outcomes), "no kill landed inside a commit"
    assert all(outcome == "committed" for finished, outcome in outcomes if finished)
