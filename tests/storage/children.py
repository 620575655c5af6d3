"""Child Python processes for the storage tests: another server process on the
same storage root, or one to kill mid-operation.

A child runs a script with this interpreter, reports on stdout one line at a
time, and takes orders on stdin. Every wait is bounded: a child that stalls
fails the test with what it wrote to stderr, it never hangs the suite.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

# Children import entrepot from wherever this interpreter finds it (the venv's
# editable install), whatever the working directory.
_SRC = str(Path(__file__).resolve().parents[2] / "src")


class Child:
    """A Python child process speaking a line protocol on stdin and stdout."""

    def __init__(self, script: Path, *args: str, stderr: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr_path = stderr
        with stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        self._buffer = b""

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def line(self, timeout: float) -> str:
        """The next line the child writes, waiting `timeout` seconds at most."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"child said nothing for {timeout}s; stderr:\n{self.stderr}")
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    self.proc.wait(timeout=10)
                    raise EOFError(
                        f"child exited ({self.proc.returncode}) before a full line; "
                        f"stderr:\n{self.stderr}"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def expect(self, prefix: str, timeout: float) -> str:
        """The next line, which must start with `prefix`."""
        line = self.line(timeout)
        assert line.startswith(prefix), f"expected {prefix!r}, child said {line!r}"
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finally, no flush: a crash."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float) -> int:
        """Wait for the child to exit; its return code must be 0."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(
                f"child did not exit in {timeout}s; stderr:\n{self.stderr}"
            ) from None
        assert code == 0, f"child failed ({code}); stderr:\n{self.stderr}"
        return code

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
