"""The benchmark scripts run, end to end, in a short mode (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
LABELS = (
    "sha256, hashlib (1 core)",
    "sha256, entrepot ResumableHash",
    "upload, UploadWriter (write + commit)",
    "read, BlobReader",
    "read, local_path + sendfile (zero-copy)",
)


def test_storage_throughput_runs_and_prints_its_table(tmp_path: Path) -> None:
    raw = tmp_path / "results.json"
    scratch = tmp_path / "scratch"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "storage_throughput.py"),
            "--size-mib",
            "8",
            "--rounds",
            "2",
            "--root",
            str(scratch),
            "--json",
            str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "best MB/s" in out
    assert "median MB/s" in out
    assert str(scratch) in out
    rows = {
        line[: len(label)]: line.split()[-2:]
        for line in out.splitlines()
        for label in LABELS
        if line.startswith(label)
    }
    assert sorted(rows) == sorted(LABELS)
    for best, median in rows.values():
        assert float(best) > 0
        assert float(median) > 0

    report = json.loads(raw.read_text())
    assert report["size_bytes"] == 8 << 20
    assert report["rounds"] == 2
    assert [r["label"] for r in report["results"]] == list(LABELS)
    assert all(len(r["seconds"]) == 2 for r in report["results"])
    # The scratch storage root is removed; its parent is left as it was.
    assert list(scratch.iterdir()) == []


def test_storage_throughput_refuses_nonsense() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "storage_throughput.py"), "--rounds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "must be positive" in completed.stderr
