"""A storage driver decorator that measures and traces every call.

`InstrumentedDriver(inner)` forwards each call to `inner`, records it in
the metrics (count and latency, by driver name and method) and logs it at
debug level only (the seed's "Context": storage traces at debug). Readers
and writers it hands out are wrapped too: their calls are recorded as
`reader.read`, `writer.write`, `writer.commit`, ... Failed calls are
recorded like the others, and traced with the error.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from entrepot import metrics
from entrepot.storage.driver.base import FileInfo, FileReader, FileWriter, StorageDriver

log = logging.getLogger(__name__)


class _Recorder:
    """Records calls to one driver: the metrics, and a trace at debug level."""

    __slots__ = ("driver",)

    def __init__(self, driver: str) -> None:
        self.driver = driver

    def call(self, method: str, path: str) -> _Call:
        return _Call(self.driver, method, path)


class _Call:
    """Times the call in its `with` block, and records it however it ends."""

    __slots__ = ("driver", "method", "path", "started")

    def __init__(self, driver: str, method: str, path: str) -> None:
        self.driver = driver
        self.method = method
        self.path = path
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self.started
        metrics.observe_storage_call(self.driver, self.method, elapsed)
        if log.isEnabledFor(logging.DEBUG):
            duration = {"duration_ms": round(elapsed * 1000, 3)}
            if error is None or isinstance(error, GeneratorExit):  # a walk left early
                log.debug("storage %s %s", self.method, self.path, extra=duration)
            else:
                log.debug(
                    "storage %s %s failed: %s",
                    self.method,
                    self.path,
                    type(error).__name__,
                    extra=duration,
                )


class InstrumentedReader:
    """A `FileReader` whose calls are recorded."""

    __slots__ = ("_inner", "_path", "_recorder")

    def __init__(self, inner: FileReader, path: str, recorder: _Recorder) -> None:
        self._inner = inner
        self._path = path
        self._recorder = recorder

    async def read(self, size: int = -1) -> bytes:
        with self._recorder.call("reader.read", self._path):
            return await self._inner.read(size)

    async def close(self) -> None:
        with self._recorder.call("reader.close", self._path):
            await self._inner.close()


class InstrumentedWriter:
    """A `FileWriter` whose calls are recorded."""

    __slots__ = ("_inner", "_path", "_recorder")

    def __init__(self, inner: FileWriter, path: str, recorder: _Recorder) -> None:
        self._inner = inner
        self._path = path
        self._recorder = recorder

    @property
    def size(self) -> int:
        return self._inner.size

    async def write(self, data: bytes | memoryview) -> int:
        with self._recorder.call("writer.write", self._path):
            return await self._inner.write(data)

    async def commit(self) -> None:
        with self._recorder.call("writer.commit", self._path):
            await self._inner.commit()

    async def cancel(self) -> None:
        with self._recorder.call("writer.cancel", self._path):
            await self._inner.cancel()

    async def close(self) -> None:
        with self._recorder.call("writer.close", self._path):
            await self._inner.close()


class InstrumentedDriver:
    """A `StorageDriver` that forwards to `inner`, recording every call."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self._recorder = _Recorder(inner.name)

    @property
    def name(self) -> str:
        return self.inner.name

    async def aclose(self) -> None:
        """Close the inner driver's network client, if it has one."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    async def get_content(self, path: str) -> bytes:
        with self._recorder.call("get_content", path):
            return await self.inner.get_content(path)

    async def put_content(self, path: str, content: bytes) -> None:
        with self._recorder.call("put_content", path):
            await self.inner.put_content(path, content)

    async def reader(self, path: str, offset: int = 0) -> FileReader:
        with self._recorder.call("reader", path):
            return InstrumentedReader(await self.inner.reader(path, offset), path, self._recorder)

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        with self._recorder.call("writer", path):
            return InstrumentedWriter(await self.inner.writer(path, append), path, self._recorder)

    async def stat(self, path: str) -> FileInfo:
        with self._recorder.call("stat", path):
            return await self.inner.stat(path)

    async def list(self, path: str) -> list[str]:
        with self._recorder.call("list", path):
            return await self.inner.list(path)

    async def list_many(self, paths: Sequence[str]) -> builtins.list[builtins.list[str] | None]:
        with self._recorder.call("list_many", paths[0] if paths else "/"):
            return await self.inner.list_many(paths)

    def walk(self, path: str) -> AsyncIterator[FileInfo]:
        # Called now, so that an error the inner driver raises at call time
        # is raised at call time here too; timed until the walk ends.
        return self._walk(path, self.inner.walk(path))

    async def _walk(self, path: str, entries: AsyncIterator[FileInfo]) -> AsyncIterator[FileInfo]:
        with self._recorder.call("walk", path):
            try:
                async for entry in entries:
                    yield entry
            finally:
                aclose = getattr(entries, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def move(self, source: str, dest: str) -> None:
        with self._recorder.call("move", source):
            await self.inner.move(source, dest)

    async def delete(self, path: str) -> None:
        with self._recorder.call("delete", path):
            await self.inner.delete(path)

    async def local_path(self, path: str) -> str | None:
        with self._recorder.call("local_path", path):
            return await self.inner.local_path(path)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        with self._recorder.call("redirect_url", path):
            return await self.inner.redirect_url(path, method)
