"""Prometheus metrics, one set for the whole server however many worker
processes serve it.

The layers record through the small functions here (`observe_request`,
`observe_storage_call`, `count_bytes_pushed`, ...), which do nothing until
`enable()` is called in the process, so code paths cost one global lookup
when metrics are off. When on, a call adds to plain numbers under a lock
(well under a microsecond); a thread writes them into the Prometheus
metrics every `FLUSH_INTERVAL` and at exit, since in multiprocess mode each
write into a metric is a locked write into a memory-mapped file.

Worker processes are aggregated with `prometheus_client`'s multiprocess
mode: `setup_multiprocess_dir()`, called by the main process before any
worker starts, makes a fresh directory and names it in
`PROMETHEUS_MULTIPROC_DIR`; each worker's `enable()` then records into its
own memory-mapped files there, and `exposition()` (served by the debug
listener in the main process) merges the files of every worker, alive or
gone. Counters and histograms of a worker that exited still count; the
in-flight gauge sums live processes only ("livesum"), the files of dead
processes being dropped when metrics are collected.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Final

# prometheus_client is imported where it is used: a registry without
# metrics does not pay the few MiB it costs.
if TYPE_CHECKING:
    from prometheus_client.metrics import Counter, Histogram
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# How often what a process recorded is written into its metrics (seconds):
# a scrape sees the other processes' metrics of at most this long ago.
FLUSH_INTERVAL: Final = 1.0

# From a manifest HEAD served from cache to a multi-GiB blob streamed.
REQUEST_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
# From an in-memory stat to a slow object-store copy.
STORAGE_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

# Methods outside this set are recorded as "OTHER", so that a client sending
# made-up methods cannot grow the number of series.
_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})

# The route whose GET bodies are counted as pulled bytes (api.app names it).
BLOB_ROUTE: Final = "blob"


class _Series:
    """A labelled counter and histogram pair (calls, and their durations)
    with what was observed of it since the last flush."""

    __slots__ = ("bounds", "buckets", "count", "counter", "histogram", "total")

    def __init__(self, counter: Counter, histogram: Histogram, bounds: tuple[float, ...]) -> None:
        self.counter = counter
        self.histogram = histogram
        self.bounds = bounds
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        # As prometheus_client: the first bucket whose bound is >= the value.
        self.buckets[bisect_left(self.bounds, seconds)] += 1

    def take(self) -> tuple[int, float, list[int]] | None:
        if not self.count:
            return None
        taken = (self.count, self.total, self.buckets)
        self.count, self.total, self.buckets = 0, 0.0, [0] * len(self.buckets)
        return taken

    def apply(self, count: int, total: float, buckets: list[int]) -> None:
        self.counter.inc(count)
        # prometheus_client cannot add n observations at once in public: add
        # them to the sum and the (non-cumulative) buckets as `observe` does.
        self.histogram._sum.inc(total)
        for index, n in enumerate(buckets):
            if n:
                self.histogram._buckets[index].inc(n)


class _Metrics:
    """The metric objects of one process, and what the hot paths recorded
    since the last flush.

    Recording is a few additions under a lock; a flusher thread writes them
    into the metric objects every `FLUSH_INTERVAL` (and at exit). In
    multiprocess mode each write into a metric is a locked write into a
    memory-mapped file, which costs several times the addition.
    """

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client.metrics import Counter, Gauge, Histogram

        self.registry = registry
        self.requests = Counter(
            "entrepot_http_requests",
            "HTTP requests served, by route, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "entrepot_http_request_duration_seconds",
            "Time to serve an HTTP request, response body included, by route and method.",
            ("route", "method"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.storage_calls = Counter(
            "entrepot_storage_driver_calls",
            "Storage driver calls, by driver and method (reader.read, writer.write, ...).",
            ("driver", "method"),
            registry=registry,
        )
        self.storage_seconds = Histogram(
            "entrepot_storage_driver_call_duration_seconds",
            "Time spent in a storage driver call, by driver and method.",
            ("driver", "method"),
            buckets=STORAGE_BUCKETS,
            registry=registry,
        )
        self.bytes_pushed = Counter(
            "entrepot_bytes_pushed",
            "Blob bytes written into upload sessions.",
            registry=registry,
        )
        self.bytes_pulled = Counter(
            "entrepot_bytes_pulled",
            "Blob bytes sent in the bodies of blob GET responses.",
            registry=registry,
        )
        self.uploads_in_flight = Gauge(
            "entrepot_upload_sessions_in_flight",
            "Upload sessions open in a request right now (being written, committed or cancelled).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cache_hits = Counter(
            "entrepot_descriptor_cache_hits",
            "Blob descriptor lookups answered by the cache.",
            registry=registry,
        )
        self.cache_misses = Counter(
            "entrepot_descriptor_cache_misses",
            "Blob descriptor lookups the cache could not answer (asked of storage).",
            registry=registry,
        )
        # What was recorded since the last flush, guarded by `lock`.
        self.lock = threading.Lock()
        self.request_series: dict[tuple[str, str, int], _Series] = {}
        self.storage_series: dict[tuple[str, str], _Series] = {}
        self.series: list[_Series] = []
        self.pushed = 0
        self.pulled = 0
        self.hits = 0
        self.misses = 0
        self.uploads = 0
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # Under `lock`: resolving labels takes prometheus_client's lock and builds
    # a key, done once per label set, not once per call.

    def request(self, route: str, method: str, status: int) -> _Series:
        key = (route, method, status)
        series = self.request_series.get(key)
        if series is None:
            series = _Series(
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
                REQUEST_BUCKETS,
            )
            self.request_series[key] = series
            self.series.append(series)
        return series

    def storage(self, driver: str, method: str) -> _Series:
        key = (driver, method)
        series = self.storage_series.get(key)
        if series is None:
            series = _Series(
                self.storage_calls.labels(driver, method),
                self.storage_seconds.labels(driver, method),
                STORAGE_BUCKETS,
            )
            self.storage_series[key] = series
            self.series.append(series)
        return series

    def flush(self) -> None:
        """Write what was recorded into the metric objects."""
        with self._flush_lock:
            with self.lock:
                taken = []
                for series in self.series:
                    observed = series.take()
                    if observed is not None:
                        taken.append((series, observed))
                pushed, pulled, hits, misses, uploads = (
                    self.pushed,
                    self.pulled,
                    self.hits,
                    self.misses,
                    self.uploads,
                )
                self.pushed = self.pulled = self.hits = self.misses = self.uploads = 0
            for series, observed in taken:
                series.apply(*observed)
            if pushed:
                self.bytes_pushed.inc(pushed)
            if pulled:
                self.bytes_pulled.inc(pulled)
            if hits:
                self.cache_hits.inc(hits)
            if misses:
                self.cache_misses.inc(misses)
            if uploads:
                self.uploads_in_flight.inc(uploads)

    def forget_pending(self) -> None:
        """In a forked child: what is pending is the parent's to flush."""
        self.lock = threading.Lock()
        self._flush_lock = threading.Lock()
        for series in self.series:
            series.take()
        self.pushed = self.pulled = self.hits = self.misses = self.uploads = 0

    def start_flusher(self) -> None:
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, name="entrepot-metrics", daemon=True
        )
        self._flusher.start()

    def stop_flusher(self) -> None:
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        self._flusher = None
        self.flush()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:  # keep going: the next flush may work
                log.exception("metrics: flush failed")


_metrics: _Metrics | None = None
# The multiprocess value class of this process, made once: a second one would
# map the same files a second time and the two would overwrite each other.
_multiprocess_value: type | None = None


def enable() -> None:
    """Start recording in this process (idempotent).

    With `PROMETHEUS_MULTIPROC_DIR` set, values go to this process's files
    in that directory, to be merged by `exposition()` in any process;
    otherwise they stay in memory and `exposition()` in this process serves
    them.
    """
    global _metrics, _multiprocess_value
    if _metrics is not None:
        return
    from prometheus_client import values
    from prometheus_client.registry import CollectorRegistry

    if os.environ.get(MULTIPROC_ENV):
        # `prometheus_client` picks its value class when first imported: make
        # sure it is the multiprocess one even if it was imported before the
        # variable was set.
        if getattr(values.ValueClass, "_multiprocess", False):
            _multiprocess_value = values.ValueClass
        elif _multiprocess_value is None:
            _multiprocess_value = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        values.ValueClass = _multiprocess_value
        created = _Metrics(None)
    else:
        values.ValueClass = values.MutexValue
        created = _Metrics(CollectorRegistry())
    created.start_flusher()
    _metrics = created


def disable() -> None:
    """Stop recording in this process (for tests), flushing what is pending."""
    global _metrics
    m, _metrics = _metrics, None
    if m is not None:
        m.stop_flusher()


def enabled() -> bool:
    return _metrics is not None


def flush() -> None:
    """Write what this process recorded into its metrics now (they are
    otherwise written every `FLUSH_INTERVAL`, and at exit)."""
    m = _metrics
    if m is not None:
        m.flush()


def _flush_at_exit() -> None:
    m = _metrics
    if m is not None:
        with contextlib.suppress(Exception):
            m.flush()


def _after_fork_in_child() -> None:
    m = _metrics
    if m is not None:
        m.forget_pending()
        m.start_flusher()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)


# -- recording (hot paths) ----------------------------------------------------


def observe_request(route: str, method: str, status: int, seconds: float, sent: int = 0) -> None:
    """One HTTP request served: `route` is the route's name ("blob",
    "manifest", "upload", ...), `sent` the body bytes of the response
    (counted as pulled for blob GETs)."""
    m = _metrics
    if m is None:
        return
    if method not in _METHODS:
        method = "OTHER"
    with m.lock:
        m.request(route, method, status).observe(seconds)
        if sent > 0 and route == BLOB_ROUTE and method == "GET":
            m.pulled += sent


def observe_storage_call(driver: str, method: str, seconds: float) -> None:
    """One storage driver call (`method` as "stat", "writer.write", ...)."""
    m = _metrics
    if m is None:
        return
    with m.lock:
        m.storage(driver, method).observe(seconds)


def count_bytes_pushed(n: int) -> None:
    m = _metrics
    if m is not None and n > 0:
        with m.lock:
            m.pushed += n


def count_bytes_pulled(n: int) -> None:
    m = _metrics
    if m is not None and n > 0:
        with m.lock:
            m.pulled += n


def upload_session_opened() -> None:
    m = _metrics
    if m is not None:
        with m.lock:
            m.uploads += 1


def upload_session_closed() -> None:
    m = _metrics
    if m is not None:
        with m.lock:
            m.uploads -= 1


def count_cache_hit() -> None:
    m = _metrics
    if m is not None:
        with m.lock:
            m.hits += 1


def count_cache_miss() -> None:
    m = _metrics
    if m is not None:
        with m.lock:
            m.misses += 1


# -- the multiprocess directory and collection --------------------------------


class MultiprocessDir:
    """The directory of the workers' metric files, owned by the process that
    made it: removed (and the variable unset) by `cleanup`, or at its exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._owner = os.getpid()
        self._cleaned = False

    def cleanup(self) -> None:
        # Forked workers inherit the atexit hook: only the owner removes.
        if self._cleaned or os.getpid() != self._owner:
            return
        self._cleaned = True
        if os.environ.get(MULTIPROC_ENV) == self.path:
            del os.environ[MULTIPROC_ENV]
        import shutil

        # A worker still flushing at its exit may add a file while the tree
        # is removed, which then fails: try again a few times, briefly.
        for _ in range(_CLEANUP_TRIES):
            shutil.rmtree(self.path, ignore_errors=True)
            if not os.path.exists(self.path):
                return
            time.sleep(_CLEANUP_PAUSE)


_DIR_PREFIX: Final = "entrepot-metrics-"
_CLEANUP_TRIES: Final = 40
_CLEANUP_PAUSE: Final = 0.05


def setup_multiprocess_dir() -> MultiprocessDir:
    """Make a fresh metrics directory and set `PROMETHEUS_MULTIPROC_DIR` to
    it, for the worker processes started after this call. A directory named
    in the variable beforehand is not reused: files of an earlier run would
    be counted in this one.

    The directory's name holds the pid of its owner, so that directories
    left by servers that died without cleaning up (killed, or ended by a
    signal their HTTP server re-raises) are removed by the next one.
    """
    import tempfile

    _remove_orphans(tempfile.gettempdir())
    path = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")
    handle = MultiprocessDir(path)
    os.environ[MULTIPROC_ENV] = handle.path
    atexit.register(handle.cleanup)
    return handle


def _remove_orphans(parent: str) -> None:
    import glob
    import shutil

    for path in glob.glob(os.path.join(parent, f"{_DIR_PREFIX}*-*")):
        raw = os.path.basename(path)[len(_DIR_PREFIX) :].partition("-")[0]
        if raw.isdigit() and not _process_alive(int(raw)) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_dead_processes(directory: str) -> None:
    """Drop the live-gauge files of processes that are gone (a worker that
    exited or was replaced): their uploads are no longer in flight."""
    import glob

    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        raw = os.path.basename(path)[: -len(".db")].rpartition("_")[2]
        if not raw.isdigit():
            continue
        pid = int(raw)
        if pid != os.getpid() and not _process_alive(pid):
            from prometheus_client.multiprocess import mark_process_dead

            try:
                mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
            except OSError:  # pruned concurrently
                log.debug("metrics: could not remove the files of process %d", pid)


def collector_registry(multiprocess_dir: str | None = None) -> CollectorRegistry:
    """A registry to collect from: the merged files of `multiprocess_dir`
    (default: `PROMETHEUS_MULTIPROC_DIR`), else this process's metrics."""
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import CollectorRegistry

    flush()  # this process's own, when it records too
    directory = multiprocess_dir or os.environ.get(MULTIPROC_ENV)
    if directory:
        prune_dead_processes(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return registry
    m = _metrics
    if m is not None and m.registry is not None:
        return m.registry
    return CollectorRegistry()


def exposition(accept: str = "", multiprocess_dir: str | None = None) -> tuple[bytes, str]:
    """The metrics in the format `accept` asks for (Prometheus text by
    default, OpenMetrics on request): the body and its content type."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept)
    return encoder(collector_registry(multiprocess_dir)), content_type
