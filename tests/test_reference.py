"""Tests of `entrepot.reference`: repository names and tags.

The grammar is the distribution spec's ("Pulling manifests"):

    name  [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
    tag   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}

plus Distribution's limit of 255 characters for a name. The verdicts are
checked against two oracles written here: the spec's regular expressions
verbatim, and a hand-written scanner that does not use regular expressions.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from entrepot.errors import NameInvalid, RegistryError, TagInvalid
from entrepot.reference import (
    NAME_MAX_LENGTH,
    is_valid_name,
    is_valid_tag,
    validate_name,
    validate_tag,
)

# Copied verbatim from distribution-spec/spec-v1.1.1.md.
SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

ALNUM_LOWER = frozenset(string.ascii_lowercase + string.digits)
TAG_FIRST = frozenset(string.ascii_letters + string.digits + "_")
TAG_REST = TAG_FIRST | frozenset(".-")


def _component_ok(component: str) -> bool:
    """A path component: alphanumeric runs joined by `.`, `_`, `__` or `-+`."""
    runs: list[tuple[bool, str]] = []  # (is_alnum, text)
    for char in component:
        alnum = char in ALNUM_LOWER
        if not alnum and char not in "._-":
            return False
        if runs and runs[-1][0] == alnum:
            runs[-1] = (alnum, runs[-1][1] + char)
        else:
            runs.append((alnum, char))
    if not runs or not runs[0][0] or not runs[-1][0]:
        return False
    separators = [text for alnum, text in runs if not alnum]
    return all(sep in (".", "_", "__") or set(sep) == {"-"} for sep in separators)


def oracle_name(name: str) -> bool:
    spec = SPEC_NAME.fullmatch(name) is not None
    scanned = all(_component_ok(component) for component in name.split("/"))
    assert spec == scanned, f"the two oracles disagree on {name!r}"
    return spec and len(name) <= NAME_MAX_LENGTH


def oracle_tag(tag: str) -> bool:
    spec = SPEC_TAG.fullmatch(tag) is not None
    scanned = 1 <= len(tag) <= 128 and tag[0] in TAG_FIRST and all(c in TAG_REST for c in tag)
    assert spec == scanned, f"the two oracles disagree on {tag!r}"
    return spec


def check_name(name: str) -> None:
    expected = oracle_name(name)
    assert is_valid_name(name) is expected
    if expected:
        assert validate_name(name) == name
    else:
        with pytest.raises(NameInvalid) as info:
            validate_name(name)
        assert info.value.name == name
        assert info.value.reason
        assert isinstance(info.value, RegistryError)


def check_tag(tag: str) -> None:
    expected = oracle_tag(tag)
    assert is_valid_tag(tag) is expected
    if expected:
        assert validate_tag(tag) == tag
    else:
        with pytest.raises(TagInvalid) as info:
            validate_tag(tag)
        assert info.value.tag == tag
        assert isinstance(info.value, RegistryError)


# -- names: examples ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "a/b",
        "a/b/c/d/e",
        "a__b",
        "a_b",
        "a-b",
        "a---b",
        "a.b",
        "a.b-c_d__e",
        "library/ubuntu",
        "my-org/my.repo/sub_dir",
        "a/b__c/d---e",
        "0123/456",
        "a" * NAME_MAX_LENGTH,
        "/".join(["a"] * 128),  # 255 characters
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name
    assert is_valid_name(name)
    check_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "a/B",
        "Library/ubuntu",
        "a/",
        "/a",
        "/",
        "a//b",
        "-a",
        "a-",
        ".a",
        "a.",
        "_a",
        "a_",
        "a___b",
        "a____b",
        "a..b",
        "a._b",
        "a_.b",
        "a-.b",
        "a.-b",
        "a_-b",
        "a/-b",
        "a/.b",
        "a b",
        " a",
        "a ",
        "a\n",
        "\na",
        "a:b",
        "a@b",
        "a\\b",
        "é",
        "a" * (NAME_MAX_LENGTH + 1),
        "/".join(["a"] * 129),  # 257 characters
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid) as info:
        validate_name(name)
    assert info.value.name == name
    assert info.value.detail == {"name": name}
    assert not is_valid_name(name)
    check_name(name)


def test_name_length_limit_is_checked_even_for_grammatical_names() -> None:
    name = "a" * (NAME_MAX_LENGTH + 1)
    assert SPEC_NAME.fullmatch(name)
    with pytest.raises(NameInvalid) as info:
        validate_name(name)
    assert str(NAME_MAX_LENGTH) in info.value.reason


# -- names: properties ----------------------------------------------------------

alnum_runs = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=6)
separators = st.sampled_from([".", "_", "__"]) | st.integers(1, 4).map(lambda n: "-" * n)


@st.composite
def components(draw: st.DrawFn) -> str:
    parts = [draw(alnum_runs)]
    for _ in range(draw(st.integers(0, 4))):
        parts += [draw(separators), draw(alnum_runs)]
    return "".join(parts)


grammatical_names = st.lists(components(), min_size=1, max_size=6).map("/".join)


@settings(max_examples=200, deadline=None)
@given(name=grammatical_names)
def test_names_built_from_the_grammar_are_accepted(name: str) -> None:
    assert oracle_name(name) is (len(name) <= NAME_MAX_LENGTH)
    check_name(name)


@settings(max_examples=400, deadline=None)
@given(name=st.text(alphabet="ab09._-/A", max_size=24))
@example("a___b")
@example("a__-b")
@example("a-_b")
@example("a/b/")
def test_names_agree_with_the_spec_on_edge_alphabet(name: str) -> None:
    check_name(name)


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=20))
def test_names_agree_with_the_spec_on_arbitrary_text(name: str) -> None:
    check_name(name)


@settings(max_examples=50, deadline=None)
@given(
    name=st.text(alphabet="a_-./", min_size=200, max_size=300),
)
def test_long_names_agree_with_the_spec(name: str) -> None:
    check_name(name)


# -- tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        "v1.2.3",
        "_",
        "0",
        "A",
        "_private",
        "1.0-rc.1_build",
        "a--..__",
        "UPPER_case.Mixed-1",
        "a" * 128,
        "_" + "." * 127,
    ],
)
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag
    assert is_valid_tag(tag)
    check_tag(tag)


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "a" * 129,
        "_" + "." * 128,
        ".a",
        "-a",
        ".",
        "-",
        "a/b",
        "a:b",
        "a@b",
        "a b",
        " a",
        "a ",
        "a\n",
        "a+b",
        "é",
        "sha256:" + "0" * 64,
    ],
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid) as info:
        validate_tag(tag)
    assert info.value.tag == tag
    assert info.value.detail == {"tag": tag}
    assert not is_valid_tag(tag)
    check_tag(tag)


def test_tag_length_boundary() -> None:
    assert is_valid_tag("t" * 128)
    assert not is_valid_tag("t" * 129)


@settings(max_examples=200, deadline=None)
@given(
    tag=st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(sorted(TAG_FIRST)),
        st.text(alphabet="".join(sorted(TAG_REST)), max_size=127),
    )
)
def test_tags_built_from_the_grammar_are_accepted(tag: str) -> None:
    assert validate_tag(tag) == tag


@settings(max_examples=300, deadline=None)
@given(tag=st.text(alphabet="aZ9_.-/:@ \n", max_size=20) | st.text(max_size=20))
@example("a" * 128)
@example("a" * 129)
@example("a\n")
def test_tags_agree_with_the_spec(tag: str) -> None:
    check_tag(tag)


@settings(max_examples=50, deadline=None)
@given(tag=st.text(alphabet="aZ9_.-", min_size=120, max_size=135))
def test_tags_near_the_length_limit_agree_with_the_spec(tag: str) -> None:
    check_tag(tag)
