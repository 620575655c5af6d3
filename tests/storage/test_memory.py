"""Memory does not grow with blob size (design, principle 3): a 1 GiB upload
through an `UploadWriter` and a 1 GiB read through a `BlobReader`, in a child
process (`memory_child.py`) whose peak RSS is measured before and after."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.children import Child

SCRIPT = Path(__file__).with_name("memory_child.py")
MiB = 1 << 20
SIZE_MIB = 1024
BOUND = 64 * MiB


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A storage root, removed afterwards (it holds a 1 GiB blob)."""
    yield tmp_path / "registry"
    shutil.rmtree(tmp_path / "registry", ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_1_gib_upload_and_read_use_bounded_memory(root: Path, tmp_path: Path) -> None:
    with Child(SCRIPT, str(root), str(SIZE_MIB), stderr=tmp_path / "child.err") as child:
        phases = {}
        for phase in ("before", "upload", "read"):
            words = child.expect(phase + " ", timeout=240).split()
            phases[phase] = (int(words[1]), int(words[2]), float(words[3]))
        child.finish(timeout=30)

    peak_before, current_before, _ = phases["before"]
    peak_upload, current_upload, upload_seconds = phases["upload"]
    peak_read, current_read, read_seconds = phases["read"]
    summary = (
        f"peak RSS {peak_before / MiB:.1f} MiB before, {peak_upload / MiB:.1f} after "
        f"the upload ({upload_seconds:.1f}s), {peak_read / MiB:.1f} after the read "
        f"({read_seconds:.1f}s); current {current_before / MiB:.1f}, "
        f"{current_upload / MiB:.1f}, {current_read / MiB:.1f} MiB"
    )
    print(summary)
    # The peak is a high-water mark: each bound covers everything up to then.
    assert peak_upload - peak_before < BOUND, summary
    assert peak_read - peak_before < BOUND, summary
    assert current_read - current_before < BOUND, summary
