"""Properties of `check_path`, the one definition of a valid driver path."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from entrepot.storage.driver.base import InvalidPath, check_path

# Printable segments other than '.' and '..': what registries store.
SEGMENTS = st.text(
    st.characters(codec="utf-8", exclude_characters="/", exclude_categories=["Cc"]),
    min_size=1,
    max_size=16,
).filter(lambda s: s not in (".", ".."))
SEGMENT_LISTS = st.lists(SEGMENTS, min_size=1, max_size=8)
CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.just("\x7f")


def join(segments: list[str]) -> str:
    return "/" + "/".join(segments)


@given(SEGMENT_LISTS)
def test_paths_of_safe_segments_pass(segments: list[str]) -> None:
    path = join(segments)
    assert check_path("test", path) == path


def test_root_passes() -> None:
    assert check_path("test", "/") == "/"


@given(SEGMENT_LISTS)
def test_relative_paths_fail(segments: list[str]) -> None:
    with pytest.raises(InvalidPath, match="absolute"):
        check_path("test", "/".join(segments))


@given(st.lists(SEGMENTS, max_size=8), st.sampled_from(["", ".", ".."]), st.data())
def test_empty_dot_and_dotdot_segments_fail(
    segments: list[str], bad: str, data: st.DataObject
) -> None:
    segments.insert(data.draw(st.integers(0, len(segments))), bad)
    path = join(segments)
    assume(path != "/")  # the root alone is one empty segment, and valid
    with pytest.raises(InvalidPath) as raised:
        check_path("test", path)
    assert raised.value.path == path
    assert raised.value.driver == "test"


@given(SEGMENT_LISTS, CONTROL, st.data())
def test_control_characters_fail(segments: list[str], control: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(segments) - 1))
    at = data.draw(st.integers(0, len(segments[index])))
    segments[index] = segments[index][:at] + control + segments[index][at:]
    with pytest.raises(InvalidPath, match="control character"):
        check_path("test", join(segments))
