"""entrepot against the reference registry (CNCF Distribution 2.8), over HTTP.

Starts entrepot (`python -m entrepot.cli serve config.yml --root DIR --addr
127.0.0.1:PORT`, plus `--entrepot-args`) and Distribution
(`/usr/bin/docker-registry serve config.yml`) on loopback ports, each on a
fresh filesystem root, from the same config.yml but for the root and port
(filesystem driver, in-memory blob descriptor cache, deletes on, log level
error, no access log) -- or, with `--storage s3`, each on its own bucket of
one moto S3 server (redirects on: pulls follow the presigned URLs) -- and
measures both in the same run, alternating
(entrepot first in odd rounds, the reference first in even ones), several
rounds each; each phase starts once both servers are idle, each push after
a `sync`. A figure is the median of its rounds (the best is shown too):

- monolithic blob push (POST, then PUT with ?digest= and the whole body) of
  a 256 MiB and a 1 GiB blob, MB/s (10**6 bytes a second);
- chunked push of the 256 MiB blob (PATCH 8 MiB chunks with Content-Range,
  then PUT ?digest=), MB/s;
- blob pull of the 1 GiB blob on one connection, and of the 256 MiB blob on
  8 connections in parallel (8 client processes, aggregate MB/s); each
  stream is received into memory allocated beforehand and its SHA-256 is
  checked against its digest once the clock has stopped (hashing as it
  arrives would make one core's SHA-256, about 2 GB/s here, the limit of
  the figure for both registries);
- 500 small (4 KiB) blobs pushed (POST + PUT) by 16 concurrent clients,
  blobs/s;
- manifest HEAD and GET by tag and by digest (Accept: the OCI manifest
  type), and the tags list of a repository with 50 tags: requests/s and p99
  latency at 64 connections over a fixed duration. GETs use `wrk` (2
  threads) with a Lua script that reports its latency histogram; HEADs use
  `hey` (wrk 4.1 waits for a body after a HEAD response that carries a
  Content-Length, so it cannot measure HEAD);
- the catalog (`/v2/_catalog?n=1000`) of 1,000 repositories, requests/s,
  at 64 connections and with one client;
- peak memory: the resident set (VmRSS) of every server process (the server
  and all its descendants), sampled every 50 ms during the 1 GiB push, the
  pulls and the manifest loads: the peak, and its growth over the idle
  resident set measured just before.

Every pushed blob is new content (a random 32-byte tail after the shared
random data), so no registry can skip work because it already has the blob;
pushed blobs are removed from the storage roots after their figure is taken,
to keep the disk use bounded. Blob data is generated once, into a file the
client streams from with sendfile(2): the client never holds a blob in
memory.

The client must not be the bottleneck, so it measures itself. A second
table gives, for every figure and both registries, CPU time as a percentage
of the figure's wall time (100 % = one core busy): the client's (user +
system time of the client processes, or of wrk/hey), the server's (all its
processes, from /proc), the rest of the machine's (from /proc/stat: kernel
threads, and any other job running at the same time, which makes a run
noisy), and what was left idle: the headroom. A client well below 100 % of
its cores with idle left over was not the limit; where idle is near 0 the
machine was, and the two registries shared it with the same client. Pulls
verify SHA-256 as they receive, in a thread beside the receiving one, which
makes the pull client the busiest of the clients.

    python benchmarks/registry_bench.py [--short] [--rounds N] [--duration S]
        [--json FILE] [--entrepot-args "..."] [--workdir DIR] [--keep]

`--short` uses small blobs, fewer of everything and one round (the test
suite runs it so it cannot rot); benchmarks/run installs what this needs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import hashlib
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Final
from urllib.parse import quote, urlsplit

MiB: Final = 1 << 20
KiB: Final = 1 << 10
REFERENCE_BINARY: Final = Path(
    os.environ.get("ENTREPOT_REFERENCE_REGISTRY", "/usr/bin/docker-registry")
)
HTTP_SECRET: Final = "entrepot-registry-bench"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
SUFFIX_BYTES: Final = 32
CHUNK_BYTES: Final = 8 * MiB
SMALL_BLOB_BYTES: Final = 4 * KiB
SMALL_BLOB_CLIENTS: Final = 16
PARALLEL_PULLS: Final = 8
LOAD_CONNECTIONS: Final = 64
WRK_THREADS: Final = 2
SAMPLE_INTERVAL: Final = 0.05
START_TIMEOUT: Final = 30.0
# Before each phase, every server must be quiet: at most one clock tick of
# CPU over this interval (the reference keeps working through the walks
# queued by a catalog load for seconds after the client stops), waiting at
# most SETTLE_TIMEOUT.
SETTLE_INTERVAL: Final = 0.2
SETTLE_TIMEOUT: Final = 20.0
CLIENT_TIMEOUT: Final = 900.0
RESULT_MARK: Final = "REGISTRY-BENCH-RESULT"
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# The S3 server (moto) and the credentials both registries give it; moto accepts any.
S3_ACCESS_KEY: Final = "testing"
S3_SECRET_KEY: Final = "testing"
S3_REGION: Final = "us-east-1"
MOTO_START_TIMEOUT: Final = 30.0
S3_CATALOG_CONNECTIONS: Final = 1
S3_CATALOG_MIN_DURATION: Final = 5
# Above this mean share of a core used by the rest of the machine, say the run was noisy.
NOISY_OTHER_PERCENT: Final = 30.0
REGISTRIES: Final = ("entrepot", "reference")
_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")

PUSH_REPO: Final = "bench/push"
PULL_REPO: Final = "bench/pull"
SMALL_REPO: Final = "bench/small"
IMAGE_REPO: Final = "bench/image"
CATALOG_PREFIX: Final = "catalog/repo-"


@dataclass(frozen=True, slots=True)
class Settings:
    short: bool
    rounds: int
    duration: int
    blob_a: int  # the "256 MiB" blob
    blob_b: int  # the "1 GiB" blob
    small_blobs: int
    catalog_repos: int
    tags: int
    s3: bool = False

    @staticmethod
    def make(short: bool, rounds: int | None, duration: int | None, s3: bool = False) -> Settings:
        if short:
            return Settings(True, rounds or 1, duration or 1, 16 * MiB, 32 * MiB, 100, 100, 10, s3)
        return Settings(False, rounds or 3, duration or 5, 256 * MiB, 1024 * MiB, 500, 1000, 50, s3)

    def connections(self, key: str) -> int:
        """Connections of a request-rate load. On S3 a catalog request lists
        the whole bucket, which moto (one Python process) takes ~0.4 s to do
        for 100 repositories (~4 s for 1,000): 64 at once would not finish one
        in the load's duration, so the catalog runs on S3_CATALOG_CONNECTIONS,
        for longer."""
        if key == "catalog_1":
            return 1
        return S3_CATALOG_CONNECTIONS if self.s3 and key == "catalog" else LOAD_CONNECTIONS

    def load_duration(self, key: str) -> int:
        if self.s3 and key in ("catalog", "catalog_1"):
            # a few whole-bucket listings: ~0.4 s each for 100 repositories, ~4 s for 1,000
            return max(self.duration, S3_CATALOG_MIN_DURATION if self.short else 20)
        return self.duration


def human(size: int) -> str:
    if size >= 1 << 30 and size % (1 << 30) == 0:
        return f"{size >> 30} GiB"
    if size >= MiB and size % MiB == 0:
        return f"{size >> 20} MiB"
    return f"{size >> 10} KiB"


# -- figures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    tool: str = ""


def figures(s: Settings) -> list[Figure]:
    a, b = human(s.blob_a), human(s.blob_b)
    rows = [
        Figure("push_mono_a", f"monolithic push, {a}", "MB/s", True),
        Figure("push_mono_b", f"monolithic push, {b}", "MB/s", True),
        Figure("push_chunked", f"chunked push, {a} in {human(CHUNK_BYTES)} PATCHes", "MB/s", True),
        Figure("pull_1", f"pull {b}, 1 stream", "MB/s", True),
        Figure("pull_8", f"pull {a}, {PARALLEL_PULLS} streams in parallel", "MB/s", True),
        Figure(
            "small_blobs",
            f"push {s.small_blobs} x {human(SMALL_BLOB_BYTES)} blobs, {SMALL_BLOB_CLIENTS} clients",
            "blobs/s",
            True,
        ),
    ]
    for key, label, tool in LOADS:
        if key == "catalog":
            label = f"catalog of {s.catalog_repos} repositories"
        elif key == "catalog_1":
            label = f"catalog of {s.catalog_repos} repositories, one client"
        elif key == "tags_list":
            label = f"tags list ({s.tags} tags)"
        rows.append(Figure(key, f"{label} [{tool}]", "req/s", True, tool))
        conns = s.connections(key)
        conns_label = "1 conn" if conns == 1 else f"{conns} conns"
        rows.append(Figure(f"{key}_p99", f"  p99 latency at {conns_label}", "ms", False))
    for key, label in MEMORY:
        rows.append(Figure(f"rss_{key}", f"peak RSS, {label.format(b=b)}", "MiB", False))
        rows.append(Figure(f"rss_{key}_growth", "  growth over idle", "MiB", False))
    return rows


# (key, label, tool) of the request-rate loads
LOADS: Final = (
    ("manifest_head_tag", "manifest HEAD by tag", "hey"),
    ("manifest_get_tag", "manifest GET by tag", "wrk"),
    ("manifest_head_digest", "manifest HEAD by digest", "hey"),
    ("manifest_get_digest", "manifest GET by digest", "wrk"),
    ("tags_list", "tags list", "wrk"),
    ("catalog", "catalog", "wrk"),
    # One connection: the cost of one walk, which concurrent identical
    # requests may share in entrepot.
    ("catalog_1", "catalog", "wrk"),
)
# (figure key, label) of the memory figures; the phases each one covers
MEMORY: Final = (
    ("push_b", "{b} push"),
    ("pull", "pulls"),
    ("manifest", "manifest and tags loads"),
)
MEMORY_PHASES: Final = {
    "push_b": ("push_mono_b",),
    "pull": ("pull_1", "pull_8"),
    "manifest": (
        "manifest_head_tag",
        "manifest_get_tag",
        "manifest_head_digest",
        "manifest_get_digest",
        "tags_list",
    ),
}
# The growth of memory over idle is held to this bound (the issue's), not
# compared with the reference's: the reference's idle RSS after the setup
# already holds the heap its Go runtime grew, so its growth is near zero
# and a ratio of the two would say nothing.
GROWTH_LIMIT_MIB: Final = 100.0


# -- a minimal HTTP/1.1 client over a raw socket --------------------------------------
# Small and predictable: bodies go out with sendfile(2) from the data file, and
# come in with recv_into a reused buffer, so the client's own cost stays low.

Segment = bytes | tuple[int, int, int]  # bytes, or (fd, offset, count) sent with sendfile


class HTTPFailure(Exception):
    pass


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, timeout: float = 300.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.recv_buf = bytearray(4 * MiB)

    def _socket(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            self.buf.clear()
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: Sequence[Segment] = (),
        sink: Callable[[memoryview], None] | None = None,
    ) -> Response:
        """Send a request; the body goes to `sink` if given, else into the response."""
        sock = self._socket()
        length = sum(len(s) if isinstance(s, bytes) else s[2] for s in body)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if len(body) == 1 and isinstance(body[0], bytes) and len(body[0]) <= 64 * KiB:
            sock.sendall(head + body[0])
        else:
            sock.sendall(head)
            for segment in body:
                if isinstance(segment, bytes):
                    sock.sendall(segment)
                else:
                    _sendfile(sock, *segment)
        status, response_headers = self._read_head()
        collected = bytearray()
        if method != "HEAD" and status not in (204, 304) and status >= 200:
            self._read_body(response_headers, sink or collected.extend)
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, response_headers, bytes(collected))

    def get_into(self, target: str, buffer: bytearray, redirects: int = 3) -> tuple[int, bool]:
        """GET a blob into `buffer` (allocated and touched beforehand, so the
        client's own cost is a copy out of the socket; its digest is checked
        after the clock stops): the bytes received, and whether it was
        redirected. Follows redirects (plain HTTP)."""
        sock = self._socket()
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        status, headers = self._read_head()
        if status in REDIRECTS:
            # A presigned storage URL (S3): drain this response, then fetch
            # from where it points, on a connection of its own.
            self._read_body(headers, lambda _: None)
            if headers.get("connection", "").lower() == "close":
                self.close()
            location = urlsplit(headers.get("location", ""))
            if redirects <= 0 or not location.path:
                raise HTTPFailure(f"GET {target}: {status} without a usable Location: {headers}")
            path = location.path + (f"?{location.query}" if location.query else "")
            host = location.hostname or self.host
            port = location.port or (self.port if not location.hostname else 80)
            if location.scheme not in ("", "http"):
                raise HTTPFailure(f"GET {target}: cannot follow a redirect to {location.scheme}")
            other = Conn(host, port, self.timeout)
            try:
                received, _ = other.get_into(path, buffer, redirects - 1)
            finally:
                other.close()
            return received, True
        if status != 200 or "content-length" not in headers:
            raise HTTPFailure(f"GET {target}: {status} {headers}")
        length = int(headers["content-length"])
        if length > len(buffer):
            raise HTTPFailure(f"GET {target}: {length} bytes, more than the {len(buffer)} expected")
        view = memoryview(buffer)
        take = min(length, len(self.buf))
        view[:take] = self.buf[:take]
        del self.buf[:take]
        received = take
        while received < length:
            n = sock.recv_into(view[received:length])
            if n == 0:
                raise HTTPFailure(f"the server closed with {length - received} bytes to come")
            received += n
        return received, False

    def _fill(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(256 * KiB)
        if not data:
            self.close()
            raise HTTPFailure("the server closed the connection")
        self.buf += data

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        raw = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        status_line, *header_lines = raw.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _read_body(self, headers: dict[str, str], sink: Callable[[memoryview], None]) -> None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                while (end := self.buf.find(b"\r\n")) < 0:
                    self._fill()
                size = int(bytes(self.buf[:end]).split(b";")[0], 16)
                del self.buf[: end + 2]
                if size == 0:
                    while (end := self.buf.find(b"\r\n")) < 0:
                        self._fill()
                    trailer_empty = end == 0
                    del self.buf[: end + 2]
                    if trailer_empty:
                        return
                    continue
                self._read_exactly(size, sink)
                while len(self.buf) < 2:
                    self._fill()
                del self.buf[:2]
        length = headers.get("content-length")
        if length is None:
            raise HTTPFailure("a response with neither Content-Length nor chunked encoding")
        self._read_exactly(int(length), sink)

    def _read_exactly(self, size: int, sink: Callable[[memoryview], None]) -> None:
        if self.buf:
            take = min(size, len(self.buf))
            sink(memoryview(bytes(self.buf[:take])))
            del self.buf[:take]
            size -= take
        if size == 0:
            return
        assert self.sock is not None
        view = memoryview(self.recv_buf)
        while size > 0:
            n = self.sock.recv_into(view, min(size, len(view)))
            if n == 0:
                self.close()
                raise HTTPFailure(f"the server closed the connection with {size} bytes to come")
            sink(view[:n])
            size -= n


def _sendfile(sock: socket.socket, fd: int, offset: int, count: int) -> None:
    # The socket has a timeout, so it is non-blocking underneath: wait for room.
    end = offset + count
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    timeout_ms = int((sock.gettimeout() or 300.0) * 1000)
    while offset < end:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, end - offset)
        except BlockingIOError:
            if not poller.poll(timeout_ms):
                raise HTTPFailure("timed out sending a body") from None
            continue
        if sent == 0:
            raise HTTPFailure("sendfile sent nothing: the data file is shorter than expected")
        offset += sent


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        detail = response.body[:300].decode("utf-8", "replace")
        raise HTTPFailure(f"{what}: expected {status}, got {response.status}: {detail}")
    return response


def location_target(response: Response) -> str:
    """The path and query of a Location header (absolute or relative)."""
    location = response.headers.get("location")
    if not location:
        raise HTTPFailure(f"no Location in a {response.status} response")
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def with_query(target: str, key: str, value: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}{key}={quote(value, safe=':')}"


def sha256_digest(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- blob content: the shared data file plus a per-push tail ---------------------------


@dataclass(frozen=True, slots=True)
class Content:
    """`size` bytes of the data file followed by `suffix`: one pushed blob."""

    path: str
    size: int
    suffix: bytes
    digest: str

    @property
    def length(self) -> int:
        return self.size + len(self.suffix)

    def segments(self, fd: int, start: int, end: int) -> list[Segment]:
        """The bytes [start, end) of the blob as body segments."""
        out: list[Segment] = []
        if start < self.size:
            out.append((fd, start, min(end, self.size) - start))
        if end > self.size:
            out.append(self.suffix[max(start - self.size, 0) : end - self.size])
        return out


class DataFile:
    """Random bytes, written once; the SHA-256 state after each blob size is
    kept, so a blob's digest costs only the hashing of its tail."""

    def __init__(self, path: Path, sizes: Sequence[int]) -> None:
        self.path = path
        self.states: dict[int, Any] = {}
        hasher = hashlib.sha256()
        written = 0
        piece = 8 * MiB
        with path.open("wb") as out:
            for size in sorted(set(sizes)):
                while written < size:
                    data = os.urandom(min(piece, size - written))
                    out.write(data)
                    hasher.update(data)
                    written += len(data)
                self.states[size] = hasher.copy()

    def content(self, size: int) -> Content:
        suffix = os.urandom(SUFFIX_BYTES // 2).hex().encode()
        hasher = self.states[size].copy()
        hasher.update(suffix)
        return Content(str(self.path), size, suffix, "sha256:" + hasher.hexdigest())


# -- client jobs, each in its own process ------------------------------------------------
# A job connects, prepares, waits at the barrier with the other clients of its
# phase, and then times itself: wall clock (perf_counter is system-wide) and
# its own CPU time. The phase's wall time is from the first start to the last end.

Job = Callable[[dict[str, Any], Any], dict[str, Any]]


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    # user nice system idle iowait irq softirq steal (guest time is in user)
    values = [int(x) for x in fields[:8]]
    return (sum(values) - values[3] - values[4]) / _CLK_TCK


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _timed(barrier: Any, out: dict[str, Any]) -> Iterator[None]:
    barrier.wait()
    cpu0, t0, busy0 = _cpu_seconds(), time.perf_counter(), machine_busy()
    yield
    out["t0"], out["t1"], out["busy0"], out["busy1"] = (
        t0,
        time.perf_counter(),
        busy0,
        machine_busy(),
    )
    out["cpu"] = _cpu_seconds() - cpu0


def push_blob(conn: Conn, repo: str, content: Content, fd: int, chunk: int | None) -> None:
    """Push one blob: POST, then either one PUT with the body or PATCHes + PUT."""
    started = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, "POST upload")
    target = location_target(started)
    octets = {"Content-Type": "application/octet-stream"}
    if chunk is None:
        body = content.segments(fd, 0, content.length)
        put_target = with_query(target, "digest", content.digest)
    else:
        for start in range(0, content.length, chunk):
            end = min(start + chunk, content.length)
            headers = {**octets, "Content-Range": f"{start}-{end - 1}"}
            patched = conn.request("PATCH", target, headers, content.segments(fd, start, end))
            target = location_target(expect(patched, 202, "PATCH chunk"))
        body, put_target = [], with_query(target, "digest", content.digest)
    done = expect(conn.request("PUT", put_target, octets, body), 201, "PUT upload")
    if done.headers.get("docker-content-digest", content.digest) != content.digest:
        raise HTTPFailure(f"pushed {content.digest}, registry says {done.headers}")


def job_push(args: dict[str, Any], barrier: Any) -> dict[str, Any]:
    content = Content(**args["content"])
    conn = Conn(args["host"], args["port"])
    fd = os.open(content.path, os.O_RDONLY)
    out: dict[str, Any] = {"bytes": content.length}
    try:
        with _timed(barrier, out):
            push_blob(conn, args["repo"], content, fd, args.get("chunk"))
    finally:
        os.close(fd)
        conn.close()
    return out


def job_pull(args: dict[str, Any], barrier: Any) -> dict[str, Any]:
    conn = Conn(args["host"], args["port"])
    target = f"/v2/{args['repo']}/blobs/{args['digest']}"
    out: dict[str, Any] = {}
    buffer = bytearray(args["size"])  # zero-filled: its pages are touched now
    try:
        conn._socket()
        with _timed(barrier, out):
            received, redirected = conn.get_into(target, buffer)
    finally:
        conn.close()
    digest = sha256_digest(memoryview(buffer)[:received])
    if digest != args["digest"] or received != args["size"]:
        raise HTTPFailure(f"pulled {received} bytes with {digest}, expected {args['digest']}")
    out["bytes"] = received
    out["redirected"] = redirected
    return out


def job_small_blobs(args: dict[str, Any], barrier: Any) -> dict[str, Any]:
    blobs = [os.urandom(SMALL_BLOB_BYTES) for _ in range(args["count"])]
    digests = [sha256_digest(blob) for blob in blobs]
    conns = [Conn(args["host"], args["port"]) for _ in range(args["clients"])]
    for conn in conns:
        conn._socket()
    next_index = iter(range(len(blobs)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client(conn: Conn) -> None:
        octets = {"Content-Type": "application/octet-stream"}
        try:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                started = conn.request("POST", f"/v2/{args['repo']}/blobs/uploads/")
                target = location_target(expect(started, 202, "POST upload"))
                put = with_query(target, "digest", digests[i])
                expect(conn.request("PUT", put, octets, [blobs[i]]), 201, "PUT small blob")
        except BaseException as exc:
            errors.append(exc)

    out: dict[str, Any] = {"blobs": len(blobs)}
    with _timed(barrier, out):
        threads = [threading.Thread(target=client, args=(conn,)) for conn in conns]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return out


JOBS: Final[dict[str, Job]] = {
    "push": job_push,
    "pull": job_pull,
    "small_blobs": job_small_blobs,
}


def _client_entry(job: str, args: dict[str, Any], barrier: Any, queue: Any) -> None:
    try:
        queue.put(("ok", JOBS[job](args, barrier)))
    except BaseException as exc:
        barrier.abort()
        queue.put(("error", f"{job}: {exc!r}\n{traceback.format_exc()}"))


@dataclass(slots=True)
class ClientRun:
    wall: float
    cpu: float
    busy: float
    results: list[dict[str, Any]]


def run_clients(job: str, args_list: Sequence[dict[str, Any]]) -> ClientRun:
    """Run `job` once per element of `args_list`, each in its own process,
    all started together."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_list))
    queue = ctx.Queue()
    processes = [
        ctx.Process(target=_client_entry, args=(job, args, barrier, queue), daemon=True)
        for args in args_list
    ]
    for process in processes:
        process.start()
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    deadline = time.monotonic() + CLIENT_TIMEOUT
    try:
        while len(results) + len(failures) < len(processes):
            try:
                status, value = queue.get(timeout=1.0)
            except Empty:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{job} clients still running after {CLIENT_TIMEOUT} s"
                    ) from None
                if not any(p.is_alive() for p in processes) and queue.empty():
                    raise RuntimeError(f"{job} clients exited without a result") from None
                continue
            if status == "ok":
                results.append(value)
            else:
                failures.append(value)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    real = [f for f in failures if "BrokenBarrierError" not in f] or failures
    if real:
        raise RuntimeError("a client failed:\n" + real[0])
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    busy = max(r["busy1"] for r in results) - min(r["busy0"] for r in results)
    return ClientRun(wall, sum(r["cpu"] for r in results), busy, results)


# -- load generators: wrk (GET) and hey (HEAD) ------------------------------------------

WRK_SCRIPT: Final = """\
wrk.method = "GET"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{mark} %d %d %d %d %d %d %d %.1f %.1f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(slots=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: float
    busy: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str, accept: str | None, duration: int, scratch: Path, connections: int = LOAD_CONNECTIONS
) -> LoadResult:
    script = scratch / "wrk-get.lua"
    headers = f'wrk.headers["Accept"] = "{accept}"' if accept else ""
    script.write_text(WRK_SCRIPT.format(headers=headers, mark=RESULT_MARK))
    argv = ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{duration}s"]
    argv += ["--timeout", "10s", "-s", str(script), url]
    cpu0, busy0 = _children_cpu(), machine_busy()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    cpu, busy = _children_cpu() - cpu0, machine_busy() - busy0
    line = next((x for x in done.stdout.splitlines() if x.startswith(RESULT_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fields = line.split()[1:]
    requests, duration_us = int(fields[0]), int(fields[1])
    errors = sum(int(x) for x in fields[2:7])
    p50, p99 = float(fields[7]) / 1e3, float(fields[8]) / 1e3
    return LoadResult(requests, duration_us / 1e6, p50, p99, errors, cpu, busy)


_HEY_RATE: Final = re.compile(r"Requests/sec:\s*([\d.]+)")
_HEY_TOTAL: Final = re.compile(r"Total:\s*([\d.]+) secs")
_HEY_PERCENTILE: Final = re.compile(r"(\d+)% in ([\d.]+) secs")
_HEY_STATUS: Final = re.compile(r"\[(\d+)\]\s+(\d+) responses")


def run_hey(url: str, accept: str | None, duration: int) -> LoadResult:
    argv = ["hey", "-z", f"{duration}s", "-c", str(LOAD_CONNECTIONS), "-m", "HEAD", "-t", "10"]
    if accept:
        argv += ["-H", f"Accept: {accept}"]
    argv.append(url)
    cpu0, busy0 = _children_cpu(), machine_busy()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    cpu, busy = _children_cpu() - cpu0, machine_busy() - busy0
    out = done.stdout
    rate, total = _HEY_RATE.search(out), _HEY_TOTAL.search(out)
    percentiles = {int(p): float(s) for p, s in _HEY_PERCENTILE.findall(out)}
    statuses = {int(code): int(n) for code, n in _HEY_STATUS.findall(out)}
    if done.returncode != 0 or rate is None or total is None or 99 not in percentiles:
        raise RuntimeError(f"hey failed ({done.returncode}):\n{out}\n{done.stderr}")
    ok = statuses.get(200, 0)
    errors = sum(statuses.values()) - ok + (1 if "Error distribution" in out else 0)
    seconds = float(total.group(1))
    p50, p99 = percentiles.get(50, 0.0) * 1e3, percentiles[99] * 1e3
    return LoadResult(ok + errors, seconds, p50, p99, errors, cpu, busy)


# -- the servers and what they use ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoS3:
    """A local S3 server (moto's, `python -m moto.server`) on a free loopback
    port: one for the run, one bucket per registry."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Any = None
        self._buckets = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + MOTO_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the moto server exited ({self.process.returncode}):\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            conn = Conn("127.0.0.1", self.port, timeout=2.0)
            try:
                if conn.request("GET", "/moto-api/").status == 200:
                    return
            except (OSError, HTTPFailure):
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"the moto server did not answer in {MOTO_START_TIMEOUT} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def cpu(self) -> float:
        """CPU seconds the moto server has used."""
        return cpu_seconds(process_tree(self.process.pid)) if self.process is not None else 0.0

    def client(self) -> Any:
        if self._client is None:
            try:
                import botocore.session
                from botocore.config import Config
            except ImportError:
                raise SystemExit(
                    "--storage s3 needs botocore: run with the project's .venv"
                ) from None
            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=S3_REGION,
                aws_access_key_id=S3_ACCESS_KEY,
                aws_secret_access_key=S3_SECRET_KEY,
                config=Config(
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        return self._client

    def new_bucket(self, name: str) -> str:
        self._buckets += 1
        bucket = f"bench-{name}-{self._buckets}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def remove_prefix(self, bucket: str, prefix: str) -> None:
        client = self.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        keys = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def storage_section(root: Path, s3: MotoS3 | None, bucket: str | None) -> str:
    # A JSON string is a valid YAML scalar: safe quoting for any path.
    if s3 is None:
        return f"""\
  filesystem:
    rootdirectory: {json.dumps(str(root))}
"""
    return f"""\
  s3:
    region: {S3_REGION}
    regionendpoint: {s3.endpoint}
    forcepathstyle: true
    bucket: {bucket}
    accesskey: {S3_ACCESS_KEY}
    secretkey: {S3_SECRET_KEY}
    secure: false
    v4auth: true
    rootdirectory: /
"""


def reference_config(storage: str, port: int) -> str:
    return f"""\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
{storage.rstrip()}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {HTTP_SECRET}
"""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


class Server:
    """A registry process (and its children) on a loopback port."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        root: Path,
        log: Path,
        port: int,
        s3: MotoS3 | None = None,
        bucket: str | None = None,
    ) -> None:
        self.name, self.argv, self.root, self.log, self.port = name, argv, root, log, port
        self.s3, self.bucket = s3, bucket
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.s3 is not None:
            # Distribution 2.8's S3 session panics when AWS_CA_BUNDLE is set
            # ("HTTPClient's transport unsupported type"); moto is plain HTTP
            # anyway, so neither registry gets it.
            env.pop("AWS_CA_BUNDLE", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise RuntimeError(f"{self.name} exited ({status}):\n{self.tail()}")
            conn = Conn(self.host, self.port, timeout=2.0)
            try:
                if conn.request("GET", "/v2/").status == 200:
                    return
            except (OSError, HTTPFailure):
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {START_TIMEOUT} s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def state(self) -> str:
        """Whether the server runs, or how it ended (a signal: killed from outside)."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return "running" if self.process is not None else "not started"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def pids(self) -> list[int]:
        return process_tree(self.process.pid) if self.process is not None else []

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)  # the session this server leads
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def conn(self) -> Conn:
        return Conn(self.host, self.port)

    def remove_blob(self, digest: str) -> None:
        """Drop pushed content from the storage root (never read again), so
        that the disk use stays bounded and no writeback runs during later
        figures. Digests are unique, so no cache can be asked about it."""
        hex_ = digest.split(":", 1)[1]
        blob = f"docker/registry/v2/blobs/sha256/{hex_[:2]}/{hex_}"
        if self.s3 is not None and self.bucket is not None:
            self.s3.remove_prefix(self.bucket, blob + "/")
            return
        shutil.rmtree(self.root / blob, ignore_errors=True)


@dataclass(slots=True)
class Window:
    """What a server did while a phase ran: peak and idle RSS, CPU seconds."""

    idle: int = 0
    peak: int = 0
    cpu: float = 0.0


def settle(servers: Sequence[Server]) -> bool:
    """Wait until no server is working (what one leaves running must not
    slow the next one's phase down); False if they were still busy after
    SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    pids = [pid for server in servers for pid in server.pids()]
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL)
        after = cpu_seconds(pids)
        if after - before <= 1.0 / _CLK_TCK:
            return True
        before = after
    return False


@contextmanager
def monitor(server: Server) -> Iterator[Window]:
    """Sample the RSS of the server's process tree every 50 ms while the
    block runs; the window's idle RSS is taken just before."""
    window = Window()
    pids = server.pids()
    window.idle = window.peak = rss_bytes(pids)
    cpu0 = cpu_seconds(pids)
    stop = threading.Event()

    def sample() -> None:
        nonlocal pids
        refreshed = time.monotonic()
        while not stop.wait(SAMPLE_INTERVAL):
            if time.monotonic() - refreshed > 1.0:
                pids, refreshed = server.pids(), time.monotonic()
            window.peak = max(window.peak, rss_bytes(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield window
    finally:
        stop.set()
        sampler.join()
        window.peak = max(window.peak, rss_bytes(pids))
        window.cpu = cpu_seconds(server.pids()) - cpu0


# -- setup on each registry (not timed) --------------------------------------------------


@dataclass(slots=True)
class Fixture:
    """What the setup pushed to one registry."""

    pull_a: Content | None = None
    pull_b: Content | None = None
    manifest_digest: str = ""


def push_manifest(conn: Conn, repo: str, ref: str, manifest: bytes) -> str:
    headers = {"Content-Type": OCI_MANIFEST}
    response = conn.request("PUT", f"/v2/{repo}/manifests/{ref}", headers, [manifest])
    expect(response, 201, f"PUT manifest {repo}:{ref}")
    return sha256_digest(manifest)


def upload_bytes(conn: Conn, repo: str, data: bytes) -> dict[str, Any]:
    content = Content("", 0, data, sha256_digest(data))
    push_blob(conn, repo, content, -1, None)
    return {"digest": content.digest, "size": len(data)}


def setup_registry(server: Server, data: DataFile, s: Settings) -> Fixture:
    fixture = Fixture(data.content(s.blob_a), data.content(s.blob_b))
    conn = server.conn()
    fd = os.open(data.path, os.O_RDONLY)
    try:
        for content in (fixture.pull_a, fixture.pull_b):
            assert content is not None
            push_blob(conn, PULL_REPO, content, fd, None)
    finally:
        os.close(fd)

    # An image: a config, two small layers, a manifest tagged "latest" and more tags.
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_desc = {"mediaType": OCI_CONFIG, **upload_bytes(conn, IMAGE_REPO, config)}
    layers = [
        {"mediaType": OCI_LAYER, **upload_bytes(conn, IMAGE_REPO, os.urandom(2 * KiB))}
        for _ in range(2)
    ]
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layers},
        indent=3,
    ).encode()
    fixture.manifest_digest = push_manifest(conn, IMAGE_REPO, "latest", manifest)
    for i in range(s.tags - 1):
        push_manifest(conn, IMAGE_REPO, f"v{i:04d}", manifest)
    got = expect(
        conn.request("GET", f"/v2/{IMAGE_REPO}/manifests/latest", {"Accept": OCI_MANIFEST}),
        200,
        "GET manifest",
    )
    if got.body != manifest:
        raise RuntimeError(f"{server.name} returned another manifest than the one pushed")
    tags = json.loads(expect(conn.request("GET", f"/v2/{IMAGE_REPO}/tags/list"), 200, "tags").body)
    if len(tags["tags"]) != s.tags:
        raise RuntimeError(f"{server.name} lists {len(tags['tags'])} tags, not {s.tags}")

    # The catalog: one small manifest (the config, mounted; no layers) per
    # repository, so that with the image the registry holds catalog_repos.
    small = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": []}
    ).encode()
    local = threading.local()

    def create(i: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = server.conn()
        c: Conn = local.conn
        repo = f"{CATALOG_PREFIX}{i:05d}"
        mount = f"/v2/{repo}/blobs/uploads/?mount={config_desc['digest']}&from={IMAGE_REPO}"
        expect(c.request("POST", mount), 201, f"mount into {repo}")
        push_manifest(c, repo, "latest", small)

    with concurrent.futures.ThreadPoolExecutor(SMALL_BLOB_CLIENTS) as pool:
        list(pool.map(create, range(s.catalog_repos - 1)))
    catalog = expect(conn.request("GET", f"/v2/_catalog?n={s.catalog_repos}"), 200, "GET catalog")
    names = json.loads(catalog.body)["repositories"]
    if len(names) != s.catalog_repos:
        raise RuntimeError(f"{server.name}'s catalog lists {len(names)}, not {s.catalog_repos}")
    conn.close()
    return fixture


# -- the phases ----------------------------------------------------------------------------


@dataclass(slots=True)
class PhaseResult:
    values: dict[str, float]
    wall: float
    client_cpu: float
    machine_busy: float
    tool: str = "python"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Bench:
    settings: Settings
    data: DataFile
    scratch: Path
    fixtures: dict[str, Fixture] = field(default_factory=dict)

    def _address(self, server: Server) -> dict[str, Any]:
        return {"host": server.host, "port": server.port}

    def push(self, server: Server, size: int, chunk: int | None, key: str) -> PhaseResult:
        content = self.data.content(size)
        args = {**self._address(server), "repo": PUSH_REPO, "chunk": chunk}
        args["content"] = {
            "path": content.path,
            "size": content.size,
            "suffix": content.suffix,
            "digest": content.digest,
        }
        run = run_clients("push", [args])
        server.remove_blob(content.digest)
        return PhaseResult({key: content.length / run.wall / 1e6}, run.wall, run.cpu, run.busy)

    def pull(self, server: Server, streams: int, key: str) -> PhaseResult:
        fixture = self.fixtures[server.name]
        content = fixture.pull_b if streams == 1 else fixture.pull_a
        assert content is not None
        args = {
            **self._address(server),
            "repo": PULL_REPO,
            "digest": content.digest,
            "size": content.length,
        }
        run = run_clients("pull", [args] * streams)
        total = sum(r["bytes"] for r in run.results)
        redirected = sum(bool(r.get("redirected")) for r in run.results)
        return PhaseResult(
            {key: total / run.wall / 1e6},
            run.wall,
            run.cpu,
            run.busy,
            extra={"redirected_streams": redirected},
        )

    def small_blobs(self, server: Server) -> PhaseResult:
        args = {
            **self._address(server),
            "repo": SMALL_REPO,
            "count": self.settings.small_blobs,
            "clients": SMALL_BLOB_CLIENTS,
        }
        run = run_clients("small_blobs", [args])
        rate = self.settings.small_blobs / run.wall
        return PhaseResult({"small_blobs": rate}, run.wall, run.cpu, run.busy)

    def load(self, server: Server, key: str) -> PhaseResult:
        digest = self.fixtures[server.name].manifest_digest
        duration = self.settings.load_duration(key)
        paths = {
            "manifest_head_tag": (f"/v2/{IMAGE_REPO}/manifests/latest", OCI_MANIFEST, "hey"),
            "manifest_get_tag": (f"/v2/{IMAGE_REPO}/manifests/latest", OCI_MANIFEST, "wrk"),
            "manifest_head_digest": (f"/v2/{IMAGE_REPO}/manifests/{digest}", OCI_MANIFEST, "hey"),
            "manifest_get_digest": (f"/v2/{IMAGE_REPO}/manifests/{digest}", OCI_MANIFEST, "wrk"),
            "tags_list": (f"/v2/{IMAGE_REPO}/tags/list", None, "wrk"),
            "catalog": (f"/v2/_catalog?n={self.settings.catalog_repos}", None, "wrk"),
            "catalog_1": (f"/v2/_catalog?n={self.settings.catalog_repos}", None, "wrk"),
        }
        path, accept, tool = paths[key]
        url = server.url + path
        if tool == "hey":
            result = run_hey(url, accept, duration)
        else:
            result = run_wrk(url, accept, duration, self.scratch, self.settings.connections(key))
        if result.requests == 0 or result.errors > result.requests // 100:
            raise RuntimeError(
                f"{tool} on {server.name} {path}: {result.errors} errors "
                f"in {result.requests} requests"
            )
        return PhaseResult(
            {key: result.rate, f"{key}_p99": result.p99_ms},
            result.seconds,
            result.cpu,
            result.busy,
            tool,
            {"requests": result.requests, "errors": result.errors, "p50_ms": result.p50_ms},
        )

    def phases(self) -> list[tuple[str, Callable[[Server], PhaseResult]]]:
        s = self.settings
        out: list[tuple[str, Callable[[Server], PhaseResult]]] = [
            ("push_mono_a", lambda srv: self.push(srv, s.blob_a, None, "push_mono_a")),
            ("push_mono_b", lambda srv: self.push(srv, s.blob_b, None, "push_mono_b")),
            ("push_chunked", lambda srv: self.push(srv, s.blob_a, CHUNK_BYTES, "push_chunked")),
            ("pull_1", lambda srv: self.pull(srv, 1, "pull_1")),
            ("pull_8", lambda srv: self.pull(srv, PARALLEL_PULLS, "pull_8")),
            ("small_blobs", self.small_blobs),
        ]
        for key, _, _ in LOADS:
            out.append((key, functools.partial(self.load, key=key)))
        return out


# -- the report ----------------------------------------------------------------------------


def best(values: Sequence[float], higher: bool) -> float:
    return max(values) if higher else min(values)


def ratio(fig: Figure, entrepot: float, reference: float) -> float | None:
    """>= 1.0 when entrepot is at least as good; None for the growth of
    memory, which is held to GROWTH_LIMIT_MIB instead."""
    if fig.key.endswith("_growth"):
        return None
    if fig.higher_is_better:
        return entrepot / reference if reference > 0 else math.inf
    return reference / entrepot if entrepot > 0 else math.inf


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_table(figs: list[dict[str, Any]], s: Settings) -> str:
    rows = [("figure", "unit", "entrepot", "reference", "ratio")]
    for f in figs:
        cells = []
        for name in REGISTRIES:
            r = f[name]
            cells.append(f"{fmt(r['median'])} ({fmt(r['best'])})")
        if f["ratio"] is None:  # a growth: held to its limit
            verdict = f"< {f['limit']:.0f}" if f["within_limit"] else f"OVER {f['limit']:.0f}"
        else:
            verdict = f"{f['ratio']:.2f}"
        rows.append((f["label"], f["unit"], cells[0], cells[1], verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        f"median of {s.rounds} round{'s' if s.rounds != 1 else ''} (best in brackets); "
        "ratio >= 1.00 means entrepot is at least as good as the reference",
        "(ratio = entrepot/reference for throughput and rates, "
        "reference/entrepot for latency and memory;",
        f" growth over idle is held to {GROWTH_LIMIT_MIB:.0f} MiB in every round, not compared: "
        "the reference's idle already holds its grown heap)",
    ]
    for n, row in enumerate(rows):
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  "
            f"{row[3]:>{widths[3]}}  {row[4]:>{widths[4]}}"
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_cpu_table(phases: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """Median CPU use per phase, as a percentage of the phase's wall time."""
    keys = list(dict.fromkeys(p["phase"] for p in phases))
    capacity = 100 * (os.cpu_count() or 1)
    head = ["figure", "tool"]
    for what in ("client", "server", "other", "idle"):
        head += [f"{what} E", f"{what} R"]
    rows: list[tuple[str, ...]] = [tuple(head)]
    for key in keys:
        cells: dict[str, list[float]] = {}
        tool = ""
        for name in REGISTRIES:
            mine = [p for p in phases if p["phase"] == key and p["registry"] == name]
            tool = mine[0]["tool"]
            cells[name] = [
                statistics.median(100 * p["client_cpu_s"] / p["wall_s"] for p in mine),
                statistics.median(100 * p["server_cpu_s"] / p["wall_s"] for p in mine),
                statistics.median(100 * other_cpu(p) / p["wall_s"] for p in mine),
                statistics.median(
                    max(0.0, capacity - 100 * p["machine_busy_s"] / p["wall_s"]) for p in mine
                ),
            ]
        row = [labels[key].strip(), tool]
        for i in range(4):
            row += [f"{cells['entrepot'][i]:.0f}%", f"{cells['reference'][i]:.0f}%"]
        rows.append(tuple(row))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"CPU over each figure's wall time, median: 100% = one core, {capacity}% = this "
        f"machine ({os.cpu_count()} CPUs). E = entrepot, R = reference.",
        "client = the benchmark's own client processes, or wrk/hey; server = the registry's "
        "processes; other = the rest of the machine",
        "(kernel threads such as writeback and softirq, and any other job: a noisy run); "
        "idle = what nobody used, the headroom.",
    ]
    for n, cols in enumerate(rows):
        lines.append(
            "  ".join(
                f"{c:<{widths[i]}}" if i < 2 else f"{c:>{widths[i]}}" for i, c in enumerate(cols)
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def other_cpu(phase: dict[str, Any]) -> float:
    """CPU seconds the rest of the machine used during a phase (never below 0)."""
    own = float(phase["client_cpu_s"]) + float(phase["server_cpu_s"])
    own += float(phase.get("s3_server_cpu_s", 0.0))  # moto's, on S3: part of the setup
    return max(0.0, float(phase["machine_busy_s"]) - own)


def summarise(s: Settings, values: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    out = []
    for fig in figures(s):
        entry: dict[str, Any] = {
            "key": fig.key,
            "label": fig.label,
            "unit": fig.unit,
            "higher_is_better": fig.higher_is_better,
        }
        for name in REGISTRIES:
            rounds = values[name][fig.key]
            entry[name] = {
                "rounds": rounds,
                "median": statistics.median(rounds),
                "best": best(rounds, fig.higher_is_better),
            }
        entry["ratio"] = ratio(fig, entry["entrepot"]["median"], entry["reference"]["median"])
        if fig.key.endswith("_growth"):
            entry["limit"] = GROWTH_LIMIT_MIB
            entry["within_limit"] = max(entry["entrepot"]["rounds"]) < GROWTH_LIMIT_MIB
        out.append(entry)
    return out


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="small blobs, fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3; 1 with --short)")
    parser.add_argument(
        "--duration", type=int, default=None, help="seconds per wrk/hey load (5; 1 with --short)"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write raw results")
    parser.add_argument(
        "--entrepot-args", default="", help='extra arguments to `entrepot serve` ("--workers 2")'
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="parent of the scratch directory (/var/tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--storage",
        choices=("filesystem", "s3"),
        default="filesystem",
        help="storage driver of both registries: filesystem, or s3 on a local moto server",
    )
    args = parser.parse_args(argv)
    if (args.rounds is not None and args.rounds <= 0) or (
        args.duration is not None and args.duration <= 0
    ):
        parser.error("--rounds and --duration must be positive")
    return args


def check_tools() -> None:
    missing = [tool for tool in ("wrk", "hey") if shutil.which(tool) is None]
    if not REFERENCE_BINARY.is_file():
        missing.append(str(REFERENCE_BINARY))
    if missing:
        raise SystemExit(
            f"missing: {', '.join(missing)}; benchmarks/run installs them "
            "(apt-get install docker-registry wrk hey)"
        )
    try:
        import entrepot  # noqa: F401
    except ImportError:
        raise SystemExit("entrepot is not importable: run with the project's .venv") from None


def default_parent() -> Path:
    var_tmp = Path("/var/tmp")
    if var_tmp.is_dir() and os.access(var_tmp, os.W_OK):
        return var_tmp
    return Path(tempfile.gettempdir())


def needed_disk(s: Settings) -> int:
    # the data file, the two pull blobs on each registry, one pushed blob at a time
    return s.blob_b + 2 * (s.blob_a + s.blob_b) + s.blob_b + 256 * MiB


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools()
    s = Settings.make(args.short, args.rounds, args.duration, args.storage == "s3")
    parent = (args.workdir or default_parent()).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(parent).free < needed_disk(s):
        raise SystemExit(f"{parent} has less than the {needed_disk(s) >> 20} MiB this needs")
    scratch = Path(tempfile.mkdtemp(prefix="entrepot-registry-bench-", dir=parent))
    servers: dict[str, Server] = {}
    s3 = MotoS3(scratch / "moto.log") if args.storage == "s3" else None
    try:
        if s3 is not None:
            log(f"starting the moto S3 server on {s3.endpoint}")
            s3.start()
        return run(args, s, scratch, servers, s3)
    finally:
        for server in servers.values():
            server.stop()
        if s3 is not None:
            s3.stop()
        if args.keep:
            print(f"scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def storage_header(storage: str, s3: MotoS3 | None, phase_log: list[dict[str, Any]]) -> list[str]:
    if s3 is None:
        return [
            "  CONFIG     the same for both but root and port: filesystem, in-memory blob "
            "descriptor cache, deletes on, log level error, no access log",
        ]
    redirected = sum(p.get("redirected_streams", 0) for p in phase_log)
    streams = sum(
        1 if p["phase"] == "pull_1" else PARALLEL_PULLS
        for p in phase_log
        if p["phase"] in ("pull_1", "pull_8")
    )
    return [
        "  CONFIG     the same for both but bucket and port: in-memory blob descriptor cache, "
        "deletes on, log level error, no access log",
        f"  STORAGE    S3 (moto): one local moto server ({s3.endpoint}), a fresh bucket per "
        "registry; s3 region us-east-1, forcepathstyle, secure false, v4auth, rootdirectory /",
        "             redirects on for both: blob GETs answer 307 to a presigned moto URL, "
        f"which the pull client follows ({redirected} of {streams} pull streams were "
        "redirected)",
        "             moto is not a registry process: not in the RSS and server CPU figures, "
        "nor in 'other' (but it uses the cores 'idle' leaves)",
    ]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(
    args: argparse.Namespace,
    s: Settings,
    scratch: Path,
    servers: dict[str, Server],
    s3: MotoS3 | None = None,
) -> int:
    started = time.monotonic()
    entrepot_port, reference_port = free_port(), free_port()
    # One configuration for both (entrepot reads Distribution's config.yml):
    # in-memory descriptor cache, deletes on, errors-only log, no access log;
    # on S3, a fresh bucket each.
    configs, buckets = {}, {}
    for name, port in (("entrepot", entrepot_port), ("reference", reference_port)):
        buckets[name] = s3.new_bucket(name) if s3 is not None else None
        storage = storage_section(scratch / f"{name}-root", s3, buckets[name])
        configs[name] = scratch / f"{name}-config.yml"
        configs[name].write_text(reference_config(storage, port))
    entrepot_argv = [sys.executable, "-m", "entrepot.cli", "serve", str(configs["entrepot"])]
    if s3 is None:
        entrepot_argv += ["--root", str(scratch / "entrepot-root")]
    entrepot_argv += ["--addr", f"127.0.0.1:{entrepot_port}", *shlex.split(args.entrepot_args)]
    servers["entrepot"] = Server(
        "entrepot",
        entrepot_argv,
        scratch / "entrepot-root",
        scratch / "entrepot.log",
        entrepot_port,
        s3,
        buckets["entrepot"],
    )
    servers["reference"] = Server(
        "reference",
        [str(REFERENCE_BINARY), "serve", str(configs["reference"])],
        scratch / "reference-root",
        scratch / "reference.log",
        reference_port,
        s3,
        buckets["reference"],
    )
    log(f"generating {human(s.blob_b)} of random data in {scratch}")
    data = DataFile(scratch / "data", (s.blob_a, s.blob_b))
    bench = Bench(s, data, scratch)
    for name in REGISTRIES:
        servers[name].start()
        log(f"{name} up on {servers[name].url}; setting up (pull blobs, image, catalog)")
        bench.fixtures[name] = setup_registry(servers[name], data, s)
    # Write back the setup's gigabytes now, not while the figures are taken.
    os.sync()

    values: dict[str, dict[str, list[float]]] = {name: {} for name in REGISTRIES}
    phase_log: list[dict[str, Any]] = []
    phases = bench.phases()
    for round_index in range(s.rounds):
        order = REGISTRIES if round_index % 2 == 0 else tuple(reversed(REGISTRIES))
        log(f"round {round_index + 1}/{s.rounds} ({' then '.join(order)})")
        round_windows: dict[str, dict[str, Window]] = {name: {} for name in REGISTRIES}
        for key, phase in phases:
            for name in order:
                server = servers[name]
                if key.startswith("push"):
                    os.sync()  # the other registry's pushes must not be written back meanwhile
                if not settle(list(servers.values())):
                    log(f"the servers were still busy {SETTLE_TIMEOUT:.0f} s before {key}")
                moto_cpu0 = s3.cpu() if s3 is not None else 0.0
                try:
                    with monitor(server) as window:
                        result = phase(server)
                except Exception as exc:
                    raise RuntimeError(
                        f"{key} failed on {name} ({server.state()}): {exc}\n"
                        f"the end of {name}'s log:\n{server.tail()}"
                    ) from exc
                round_windows[name][key] = window
                for figure_key, value in result.values.items():
                    values[name].setdefault(figure_key, []).append(value)
                phase_log.append(
                    {
                        "round": round_index + 1,
                        "phase": key,
                        "registry": name,
                        "tool": result.tool,
                        "wall_s": result.wall,
                        "client_cpu_s": result.client_cpu,
                        "server_cpu_s": window.cpu,
                        "machine_busy_s": result.machine_busy,
                        "s3_server_cpu_s": (s3.cpu() - moto_cpu0) if s3 is not None else 0.0,
                        "rss_idle_mib": window.idle / MiB,
                        "rss_peak_mib": window.peak / MiB,
                        "values": result.values,
                        **result.extra,
                    }
                )
            for server in servers.values():
                if server.process is None or server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} {server.state()}:\n{server.tail()}")
        for name in REGISTRIES:
            for mem_key, keys in MEMORY_PHASES.items():
                ws = [round_windows[name][k] for k in keys]
                values[name].setdefault(f"rss_{mem_key}", []).append(max(w.peak for w in ws) / MiB)
                values[name].setdefault(f"rss_{mem_key}_growth", []).append(
                    max(w.peak - w.idle for w in ws) / MiB
                )

    summary = summarise(s, values)
    labels = {f.key: f.label for f in figures(s)}
    elapsed = time.monotonic() - started
    wrk_version = tool_version(["wrk", "--version"]).split(" [")[0]
    entrepot_version = tool_version([sys.executable, "-m", "entrepot.cli", "--version"])
    header = [
        "entrepot vs the reference registry (CNCF Distribution), over loopback HTTP",
        f"  entrepot   {entrepot_version}: python -m entrepot.cli serve CONFIG "
        f"{'' if s.s3 else '--root DIR '}--addr ADDR {args.entrepot_args}".rstrip(),
        f"  reference  {tool_version([str(REFERENCE_BINARY), '--version'])}: "
        "docker-registry serve CONFIG",
        *storage_header(args.storage, s3, phase_log),
        f"  clients    python, raw sockets (sendfile out, recv_into in); {wrk_version} (GET); "
        "hey (HEAD)",
        f"  machine    {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"python {platform.python_version()}",
        f"  run        {s.rounds} round(s), {'short' if s.short else 'full'} mode, "
        f"{s.duration} s per load, {elapsed:.0f} s in all; MB/s = 10**6 B/s",
        "",
    ]
    print("\n".join(header))
    print(render_table(summary, s))
    print()
    print(render_cpu_table(phase_log, labels))
    noise = statistics.mean(100 * other_cpu(p) / p["wall_s"] for p in phase_log)
    if noise > NOISY_OTHER_PERCENT:
        print(
            f"\nnoisy run: the rest of the machine used {noise:.0f}% of a core on average "
            "while the figures were taken (another job?): compare with care, or run again"
        )
    if args.json is not None:
        report = {
            "settings": {
                "short": s.short,
                "rounds": s.rounds,
                "duration_s": s.duration,
                "blob_a_bytes": s.blob_a,
                "blob_b_bytes": s.blob_b,
                "chunk_bytes": CHUNK_BYTES,
                "small_blobs": s.small_blobs,
                "small_blob_bytes": SMALL_BLOB_BYTES,
                "small_blob_clients": SMALL_BLOB_CLIENTS,
                "parallel_pulls": PARALLEL_PULLS,
                "catalog_repositories": s.catalog_repos,
                "tags": s.tags,
                "connections": LOAD_CONNECTIONS,
                "entrepot_args": args.entrepot_args,
            },
            "machine": {
                "cpu": cpu_model(),
                "cpu_count": os.cpu_count(),
                "kernel": platform.release(),
                "python": platform.python_version(),
                "reference": tool_version([str(REFERENCE_BINARY), "--version"]),
                "wrk": wrk_version,
                "entrepot": entrepot_version,
            },
            "elapsed_s": elapsed,
            "other_cpu_percent_mean": noise,
            "figures": summary,
            "phases": phase_log,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
