"""Tests of `entrepot.digest`: the strict `algorithm:hex` grammar and hashing.

Only the registered algorithms `sha256` and `sha512` are accepted, as
lowercase hexadecimal of exactly 64 and 128 characters (image-spec,
descriptor.md, "Digests"). Everything else is `DigestInvalid` with a reason.
Property tests check that every hash value parses and that near misses of a
valid digest are refused unless they happen to be valid themselves.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from entrepot.digest import CANONICAL, EMPTY_SHA256, SHA256, SHA512, Digest, is_supported
from entrepot.errors import DigestInvalid, RegistryError

HEX_LENGTHS = {SHA256: 64, SHA512: 128}
# The independent oracle: exactly the two registered forms, nothing around them.
STRICT = re.compile(r"\A(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")

SHA256_HEX = hashlib.sha256(b"entrepot").hexdigest()
SHA512_HEX = hashlib.sha512(b"entrepot").hexdigest()
VALID = [f"sha256:{SHA256_HEX}", f"sha512:{SHA512_HEX}", f"sha256:{'0' * 64}"]


def refused(text: Any) -> DigestInvalid:
    with pytest.raises(DigestInvalid) as info:
        Digest.parse(text)
    exc = info.value
    assert exc.reason, "a refusal must say why"
    assert isinstance(exc, RegistryError)
    return exc


# -- valid digests --------------------------------------------------------------


@pytest.mark.parametrize("text", VALID)
def test_valid_digest_parses_and_round_trips(text: str) -> None:
    digest = Digest.parse(text)
    algorithm, _, encoded = text.partition(":")
    assert digest.algorithm == algorithm
    assert digest.hex == encoded
    assert str(digest) == text
    assert Digest.parse(str(digest)) == digest
    assert repr(digest) == f"Digest({text!r})"


def test_digest_is_a_hashable_value() -> None:
    a, b = Digest.parse(VALID[0]), Digest.parse(VALID[0])
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, Digest.parse(VALID[1])}) == 2
    with pytest.raises(AttributeError):
        a.hex = "0" * 64  # type: ignore[misc]


def test_constants() -> None:
    assert CANONICAL == SHA256
    assert str(EMPTY_SHA256) == f"sha256:{hashlib.sha256(b'').hexdigest()}"
    assert is_supported("sha256")
    assert is_supported("sha512")
    for algorithm in ("md5", "sha1", "sha384", "SHA256", "blake3", ""):
        assert not is_supported(algorithm)


# -- Digest.of ------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"a", b"\x00" * 1000, bytes(range(256))])
@pytest.mark.parametrize("algorithm", [SHA256, SHA512])
def test_of_matches_hashlib(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert digest.algorithm == algorithm
    assert digest.hex == hashlib.new(algorithm, data).hexdigest()
    assert Digest.parse(str(digest)) == digest


def test_of_defaults_to_sha256() -> None:
    assert Digest.of(b"x") == Digest(SHA256, hashlib.sha256(b"x").hexdigest())


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha384", "SHA256", "blake3", ""])
def test_of_refuses_unsupported_algorithms(algorithm: str) -> None:
    with pytest.raises(DigestInvalid) as info:
        Digest.of(b"x", algorithm)
    assert "unsupported" in info.value.reason


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=512), algorithm=st.sampled_from([SHA256, SHA512]))
def test_of_matches_hashlib_property(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert str(digest) == f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


# -- refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"sha256:{SHA256_HEX.upper()}", id="uppercase-hex"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}A", id="one-uppercase-hex"),
        pytest.param(f"SHA256:{SHA256_HEX}", id="uppercase-algorithm"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}", id="sha256-63"),
        pytest.param(f"sha256:{SHA256_HEX}0", id="sha256-65"),
        pytest.param(f"sha256:{SHA512_HEX}", id="sha256-with-128"),
        pytest.param(f"sha512:{SHA256_HEX}", id="sha512-with-64"),
        pytest.param(f"sha512:{SHA512_HEX[:-1]}", id="sha512-127"),
        pytest.param(f"sha512:{SHA512_HEX}0", id="sha512-129"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}g", id="non-hex-letter"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}=", id="base64-char"),
        pytest.param("sha256:", id="empty-encoded"),
        pytest.param(f":{SHA256_HEX}", id="empty-algorithm"),
        pytest.param("", id="empty"),
        pytest.param(":", id="colon-only"),
        pytest.param(SHA256_HEX, id="missing-colon"),
        pytest.param(f"sha256{SHA256_HEX}", id="missing-colon-glued"),
        pytest.param(f"sha256::{SHA256_HEX}", id="double-colon"),
        pytest.param(f"sha256:{SHA256_HEX}:", id="trailing-colon"),
        pytest.param(f"sha256:{SHA256_HEX[:32]}:{SHA256_HEX[32:]}", id="colon-inside-hex"),
        pytest.param(f" sha256:{SHA256_HEX}", id="leading-space"),
        pytest.param(f"sha256:{SHA256_HEX} ", id="trailing-space"),
        pytest.param(f"sha256 :{SHA256_HEX}", id="space-before-colon"),
        pytest.param(f"sha256: {SHA256_HEX}", id="space-after-colon"),
        pytest.param(f"sha256:{SHA256_HEX}\n", id="trailing-newline"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}\n", id="newline-for-last-hex"),
        pytest.param(f"sha512:{SHA512_HEX[:-1]}\n", id="newline-for-last-hex-512"),
        pytest.param(f"\nsha256:{SHA256_HEX}", id="leading-newline"),
        pytest.param(f"sha256:\t{SHA256_HEX[1:]}", id="tab"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}\u0660", id="arabic-indic-digit"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}\uff41", id="fullwidth-a"),
    ],
)
def test_malformed_digests_are_refused(text: str) -> None:
    refused(text)


@pytest.mark.parametrize(
    ("algorithm", "encoded"),
    [
        ("md5", hashlib.md5(b"x").hexdigest()),
        ("sha1", hashlib.sha1(b"x").hexdigest()),
        ("sha384", hashlib.sha384(b"x").hexdigest()),
        ("sha224", hashlib.sha224(b"x").hexdigest()),
        ("blake3", "0" * 64),
        ("sha256+b64u", "LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
        ("multihash+base58", "QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
    ],
)
def test_unknown_algorithms_are_unsupported(algorithm: str, encoded: str) -> None:
    # Grammatical (image-spec digest grammar) but not registered here.
    exc = refused(f"{algorithm}:{encoded}")
    assert "unsupported" in exc.reason
    assert algorithm in exc.reason


def test_reason_and_detail_name_the_digest() -> None:
    exc = refused("sha256:abc")
    assert exc.digest == "sha256:abc"
    assert exc.detail == {"digest": "sha256:abc"}
    assert "sha256:abc" in exc.message
    assert "64" in exc.reason


@pytest.mark.parametrize("value", [None, 42, b"sha256:" + b"0" * 64, ["sha256:"], 1.5])
def test_non_strings_are_refused(value: object) -> None:
    exc = refused(value)
    assert "string" in exc.reason


# -- properties -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(value=st.binary(min_size=32, max_size=32) | st.binary(min_size=64, max_size=64))
def test_any_hash_value_parses(value: bytes) -> None:
    algorithm = SHA256 if len(value) == 32 else SHA512
    text = f"{algorithm}:{value.hex()}"
    digest = Digest.parse(text)
    assert (digest.algorithm, digest.hex) == (algorithm, value.hex())
    assert str(digest) == text


NEAR_MISS_CHARS = "0123456789abcdefgABCDEF:=_-+. \t\n\r\x00/sh\u0660\uff41"


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A valid digest with one to three edits (insert, delete, replace)."""
    algorithm = draw(st.sampled_from([SHA256, SHA512]))
    length = HEX_LENGTHS[algorithm]
    text = f"{algorithm}:{draw(st.text('0123456789abcdef', min_size=length, max_size=length))}"
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        end = len(text) if kind == "insert" else len(text) - 1
        if end < 0:
            continue
        # The edges (start, around the colon, end) are where parsers slip.
        colon = max(text.find(":"), 0)
        edges = sorted({0, min(colon, end), min(colon + 1, end), max(end - 1, 0), end})
        i = draw(st.sampled_from(edges) | st.integers(0, end))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(NEAR_MISS_CHARS)) + text[i:]
        else:
            new = draw(st.sampled_from(NEAR_MISS_CHARS)) if kind == "replace" else ""
            text = text[:i] + new + text[i + 1 :]
    return text


def check_against_oracle(text: str) -> None:
    if STRICT.match(text):
        digest = Digest.parse(text)
        assert str(digest) == text
    else:
        refused(text)


@settings(max_examples=300, deadline=None)
@given(text=near_misses())
@example(f"sha256:{SHA256_HEX[:-1]}\n")
@example(f"sha256:{SHA256_HEX}\n")
def test_near_misses_are_refused_unless_strictly_valid(text: str) -> None:
    check_against_oracle(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=NEAR_MISS_CHARS, max_size=140) | st.text(max_size=40))
def test_arbitrary_text_agrees_with_the_strict_form(text: str) -> None:
    check_against_oracle(text)
