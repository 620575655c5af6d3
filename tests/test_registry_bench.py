"""The registry benchmark suite (benchmarks/registry_bench.py) runs end to end
in its short mode against entrepot and the reference registry, so it cannot
rot. No timing is checked: only that every figure is there, for both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "registry_bench.py"
REGISTRIES = ("entrepot", "reference")
LOADS = (
    "manifest_head_tag",
    "manifest_get_tag",
    "manifest_head_digest",
    "manifest_get_digest",
    "tags_list",
    "catalog",
    "catalog_1",
)
KEYS = (
    "push_mono_a",
    "push_mono_b",
    "push_chunked",
    "pull_1",
    "pull_8",
    "small_blobs",
    *(key for load in LOADS for key in (load, f"{load}_p99")),
    *(key for mem in ("push_b", "pull", "manifest") for key in (f"rss_{mem}", f"rss_{mem}_growth")),
)
PHASES = ("push_mono_a", "push_mono_b", "push_chunked", "pull_1", "pull_8", "small_blobs", *LOADS)


@pytest.mark.reference
@pytest.mark.timeout(240)
def test_short_mode_measures_both_registries(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "hey", "docker-registry") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"not installed: {', '.join(missing)} (benchmarks/run and the test command "
            "install them with apt-get)",
            pytrace=False,
        )
    raw = tmp_path / "results.json"
    workdir = tmp_path / "work"
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--short", "--json", str(raw), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "ratio >= 1.00 means entrepot is at least as good" in out

    report = json.loads(raw.read_text())
    figures = report["figures"]
    assert [f["key"] for f in figures] == list(KEYS)

    # One table row per figure, in order, each with two figures and a ratio;
    # a growth of memory with its bound instead.
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("figure ")) + 2
    rows = lines[start : start + len(figures)]
    for figure, row in zip(figures, rows, strict=True):
        assert row.startswith(figure["label"]), (figure["label"], row)
        if figure["key"].endswith("_growth"):
            assert figure["ratio"] is None
            assert figure["within_limit"] is True  # a short run's blobs are small
            assert row.split()[-2:] == ["<", "100"]
        else:
            assert row.split()[-1] == f"{figure['ratio']:.2f}"

    for figure in figures:
        for name in REGISTRIES:
            result = figure[name]
            assert len(result["rounds"]) == 1, (figure["key"], name)
            assert result["median"] >= 0
            if not figure["key"].endswith("_growth"):
                # rates, throughputs, latencies and peak memory are never zero
                assert result["median"] > 0, (figure["key"], name)
        assert figure["ratio"] is None or figure["ratio"] > 0

    # Every phase ran on both registries, and the client's CPU time is reported.
    ran = {(p["phase"], p["registry"]) for p in report["phases"]}
    assert ran == {(phase, name) for phase in PHASES for name in REGISTRIES}
    assert all(p["client_cpu_s"] > 0 and p["wall_s"] > 0 for p in report["phases"])
    assert "client E" in out

    # The scratch directory (data, storage roots, logs) is removed.
    assert list(workdir.iterdir()) == []


def test_refuses_nonsense() -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "must be positive" in completed.stderr


@pytest.mark.reference
@pytest.mark.timeout(150)
def test_short_mode_on_s3(tmp_path: Path) -> None:
    """Both registries on one local moto S3 server, a bucket each, with blob
    redirects on: the pull client follows the 307 to moto."""
    missing = [tool for tool in ("wrk", "hey", "docker-registry") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)}", pytrace=False)
    raw = tmp_path / "results.json"
    workdir = tmp_path / "work"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--short",
            "--storage",
            "s3",
            "--rounds",
            "1",
            "--json",
            str(raw),
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "S3 (moto)" in completed.stdout

    report = json.loads(raw.read_text())
    assert [f["key"] for f in report["figures"]] == list(KEYS)
    for figure in report["figures"]:
        for name in REGISTRIES:
            assert figure[name]["median"] >= 0, (figure["key"], name)
    # Every pull stream was redirected to moto, on both registries.
    pulls = [p for p in report["phases"] if p["phase"] in ("pull_1", "pull_8")]
    assert {(p["phase"], p["registry"]) for p in pulls} == {
        (phase, name) for phase in ("pull_1", "pull_8") for name in REGISTRIES
    }
    for p in pulls:
        streams = 1 if p["phase"] == "pull_1" else 8
        assert p["redirected_streams"] == streams, p
    assert list(workdir.iterdir()) == []
