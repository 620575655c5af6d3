"""Storage throughput of entrepot's filesystem driver on this machine.

Measures, in MB/s (10**6 bytes a second), for `--size-mib` MiB in 1 MiB
chunks: single-core SHA-256 with hashlib and with entrepot's `ResumableHash`
(which bound an upload from above), an upload through `UploadWriter` (write and
commit, hashing included), a read through `BlobReader`, and the zero-copy
path a server takes for a local file (`local_path` then `os.sendfile` to
/dev/null, which discards pages without copying them: an upper bound that
shows what Python costs per blob, not a socket's speed). Each figure is
taken `--rounds` times; the best and the median are reported, and
`--json FILE` keeps the raw timings.

Writes land in the page cache (nothing is fsynced), and reads find the blob
just written there unless `--cold` drops it first: the figures are the
software's cost, not the disk's, unless the disk is the bottleneck.

    python benchmarks/storage_throughput.py [--size-mib N] [--rounds R]
        [--root DIR] [--cold] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from entrepot.descriptor import Descriptor
from entrepot.digest import Digest
from entrepot.hashstate import ResumableHash
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry

CHUNK: Final = 1 << 20
MiB: Final = 1 << 20
# Distinct random chunks, cycled through: enough that no cache line or page
# is reused between neighbouring chunks, small enough to generate at once.
POOL_CHUNKS: Final = 16
REPOSITORY: Final = "bench/throughput"
REPOSITORY_ROOT: Final = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Measure:
    key: str
    label: str


MEASURES: Final = (
    Measure("sha256_hashlib", "sha256, hashlib (1 core)"),
    Measure("sha256_resumable", "sha256, entrepot ResumableHash"),
    Measure("upload", "upload, UploadWriter (write + commit)"),
    Measure("read", "read, BlobReader"),
    Measure("sendfile", "read, local_path + sendfile (zero-copy)"),
)


@dataclass(slots=True)
class Timings:
    size: int
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, elapsed: float) -> None:
        self.seconds.setdefault(key, []).append(elapsed)

    def rates(self, key: str) -> list[float]:
        return [self.size / s / 1e6 for s in self.seconds.get(key, [])]


# -- the data --------------------------------------------------------------------


def chunks(pool: Sequence[bytes], size: int) -> Iterator[bytes | memoryview]:
    """`size` bytes as 1 MiB chunks of the pool, in turn; the last one cut short."""
    index = 0
    remaining = size
    while remaining > 0:
        chunk = pool[index % len(pool)]
        index += 1
        if remaining < len(chunk):
            yield memoryview(chunk)[:remaining]
            return
        remaining -= len(chunk)
        yield chunk


# -- the measures ------------------------------------------------------------------


def time_hashlib(pool: Sequence[bytes], size: int) -> tuple[float, Digest]:
    start = time.perf_counter()
    hasher = hashlib.sha256()
    for chunk in chunks(pool, size):
        hasher.update(chunk)
    digest = Digest("sha256", hasher.hexdigest())
    return time.perf_counter() - start, digest


def time_resumable(pool: Sequence[bytes], size: int) -> tuple[float, Digest]:
    start = time.perf_counter()
    hasher = ResumableHash("sha256")
    for chunk in chunks(pool, size):
        hasher.update(chunk)
    digest = hasher.digest()
    return time.perf_counter() - start, digest


async def time_upload(
    registry: Registry, pool: Sequence[bytes], size: int, digest: Digest
) -> float:
    blobs = registry.repository(REPOSITORY).blobs
    start = time.perf_counter()
    writer = await blobs.create()
    for chunk in chunks(pool, size):
        await writer.write(chunk)
    descriptor = await writer.commit(Descriptor(digest=digest, size=size))
    elapsed = time.perf_counter() - start
    if descriptor.digest != digest or descriptor.size != size:
        raise SystemExit(f"upload committed as {descriptor}, expected {digest} of {size} bytes")
    return elapsed


async def time_read(registry: Registry, digest: Digest, size: int) -> float:
    blobs = registry.repository(REPOSITORY).blobs
    start = time.perf_counter()
    reader = await blobs.open(digest)
    total = 0
    try:
        while chunk := await reader.read(CHUNK):
            total += len(chunk)
    finally:
        await reader.close()
    elapsed = time.perf_counter() - start
    if total != size:
        raise SystemExit(f"read {total} bytes of a {size}-byte blob")
    return elapsed


def _sendfile_to_null(path: str, size: int) -> int:
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        source = os.open(path, os.O_RDONLY)
        try:
            offset = 0
            while offset < size:
                sent = os.sendfile(sink, source, offset, size - offset)
                if sent == 0:
                    break
                offset += sent
            return offset
        finally:
            os.close(source)
    finally:
        os.close(sink)


async def time_sendfile(registry: Registry, digest: Digest, size: int) -> float:
    blobs = registry.repository(REPOSITORY).blobs
    start = time.perf_counter()
    path = await blobs.local_path(digest)
    if path is None:
        raise SystemExit("the filesystem driver gave no local path")
    sent = await asyncio.to_thread(_sendfile_to_null, path, size)
    elapsed = time.perf_counter() - start
    if sent != size:
        raise SystemExit(f"sendfile sent {sent} bytes of a {size}-byte blob")
    return elapsed


def _drop_from_page_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


async def drop_blob_from_page_cache(registry: Registry, digest: Digest) -> None:
    path = await registry.repository(REPOSITORY).blobs.local_path(digest)
    if path is not None:
        await asyncio.to_thread(_drop_from_page_cache, path)


async def remove_blob(registry: Registry, digest: Digest) -> None:
    """Unlink and delete the blob, so that the next round's commit moves data."""
    await registry.repository(REPOSITORY).blobs.delete(digest)
    await registry.blob_store.delete(digest)


async def run_rounds(root: Path, size: int, rounds: int, cold: bool) -> Timings:
    pool = [os.urandom(CHUNK) for _ in range(min(POOL_CHUNKS, max(1, -(-size // CHUNK))))]
    timings = Timings(size)
    for round_number in range(1, rounds + 1):
        elapsed, digest = time_hashlib(pool, size)
        timings.add("sha256_hashlib", elapsed)
        elapsed, resumable_digest = time_resumable(pool, size)
        timings.add("sha256_resumable", elapsed)
        if resumable_digest != digest:
            raise SystemExit(f"ResumableHash gave {resumable_digest}, hashlib {digest}")

        # A fresh registry each round: no warm descriptor cache carried over.
        registry = Registry(FilesystemDriver(root), InMemoryBlobDescriptorCache())
        timings.add("upload", await time_upload(registry, pool, size, digest))
        if cold:
            await drop_blob_from_page_cache(registry, digest)
        timings.add("read", await time_read(registry, digest, size))
        if cold:
            await drop_blob_from_page_cache(registry, digest)
        timings.add("sendfile", await time_sendfile(registry, digest, size))
        await remove_blob(registry, digest)
        print(f"round {round_number}/{rounds} done", file=sys.stderr, flush=True)
    return timings


# -- where and on what -------------------------------------------------------------


def default_parent() -> Path:
    """/var/tmp (on disk on most systems, where /tmp may be tmpfs), else the temp dir."""
    var_tmp = Path("/var/tmp")
    if var_tmp.is_dir() and os.access(var_tmp, os.W_OK):
        return var_tmp
    return Path(tempfile.gettempdir())


def filesystem_of(path: Path) -> str:
    """`<type> on <device>` of the mount holding `path`, from /proc/mounts."""
    best = ("", "unknown", "unknown")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                device, mount_point, fs_type = fields[0], fields[1], fields[2]
                mount_point = mount_point.replace("\\040", " ")
                inside = str(path) == mount_point or str(path).startswith(
                    mount_point.rstrip("/") + "/"
                )
                if inside and len(mount_point) >= len(best[0]):
                    best = (mount_point, fs_type, device)
    except OSError:
        pass
    return f"{best[1]} on {best[2]}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the report ----------------------------------------------------------------------


def summary(timings: Timings) -> list[dict[str, Any]]:
    rows = []
    for measure in MEASURES:
        rates = timings.rates(measure.key)
        rows.append(
            {
                "name": measure.key,
                "label": measure.label,
                "seconds": timings.seconds.get(measure.key, []),
                "mb_per_s": rates,
                "best_mb_per_s": max(rates),
                "median_mb_per_s": statistics.median(rates),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    headers = ("measure", "best MB/s", "median MB/s")
    cells = [
        (str(r["label"]), f"{r['best_mb_per_s']:.0f}", f"{r['median_mb_per_s']:.0f}") for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [
        f"{headers[0]:<{widths[0]}}  {headers[1]:>{widths[1]}}  {headers[2]:>{widths[2]}}",
        "  ".join("-" * w for w in widths),
    ]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in cells]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="MiB per round (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--root", type=Path, default=None, help="parent of the scratch storage root (/var/tmp)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="drop the blob from the page cache before reads"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write raw results")
    args = parser.parse_args(argv)
    if args.size_mib <= 0 or args.rounds <= 0:
        parser.error("--size-mib and --rounds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    size = int(args.size_mib) * MiB
    rounds = int(args.rounds)
    cold = bool(args.cold)
    parent = Path(args.root) if args.root is not None else default_parent()
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="entrepot-bench-", dir=parent)).resolve()
    try:
        same_device = os.stat(root).st_dev == os.stat(REPOSITORY_ROOT).st_dev
        filesystem = filesystem_of(root)
        print("entrepot storage throughput: filesystem driver")
        print(
            f"  data   {size // MiB} MiB per round, {rounds} rounds, 1 MiB chunks; MB/s = 1e6 B/s"
        )
        print(
            f"  root   {root} ({filesystem}; "
            f"{'same' if same_device else 'not the same'} filesystem as the repository)"
        )
        print(f"  cpu    {cpu_model()}, {os.cpu_count()} logical CPUs")
        print(f"  python {platform.python_version()}, {ssl.OPENSSL_VERSION}")
        cache = "blob dropped from the page cache before reads" if cold else "warm page cache"
        print(f"  cache  {cache}; writes not fsynced")
        print(flush=True)
        timings = asyncio.run(run_rounds(root, size, rounds, cold))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = summary(timings)
    print(table(rows))
    if args.json is not None:
        report = {
            "size_bytes": size,
            "rounds": rounds,
            "chunk_bytes": CHUNK,
            "root": str(root),
            "filesystem": filesystem,
            "same_filesystem_as_repository": same_device,
            "cold": cold,
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "openssl": ssl.OPENSSL_VERSION,
            "results": rows,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
