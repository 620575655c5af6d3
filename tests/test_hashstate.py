"""Tests of `entrepot.hashstate`: resumable hashing in Go's state format.

Round trips at every interesting length, malformed states, a property test
over random splits, threads, and the real thing: the states that CNCF
Distribution 2.8 writes for an upload, compared byte for byte.
"""

from __future__ import annotations

import array
import hashlib
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.digest import Digest
from entrepot.hashstate import MARSHALED_SIZES, HashStateInvalid, ResumableHash, normalize_state
from tests.reference_registry import ReferenceRegistry
from tests.reference_registry import reference_registry as reference_registry  # fixture

ALGORITHMS = ["sha256", "sha512"]
MAGIC = {"sha256": b"sha\x03", "sha512": b"sha\x07"}
BLOCK = {"sha256": 64, "sha512": 128}
WORD = {"sha256": ">8I", "sha512": ">8Q"}
INITIAL = {
    "sha256": (
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ),
    "sha512": (
        0x6A09E667F3BCC908,
        0xBB67AE8584CAA73B,
        0x3C6EF372FE94F82B,
        0xA54FF53A5F1D36F1,
        0x510E527FADE682D1,
        0x9B05688C2B3E6C1F,
        0x1F83D9ABFB41BD6B,
        0x5BE0CD19137E2179,
    ),
}
LENGTHS = [0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 255, 256, 257, 1000, 65536]


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def go_state(algorithm: str, words: tuple[int, ...], buffered: bytes, length: int) -> bytes:
    """A state laid out as Go's MarshalBinary does, built independently of the module."""
    block = BLOCK[algorithm]
    padding = bytes(block - len(buffered))
    return (
        MAGIC[algorithm]
        + struct.pack(WORD[algorithm], *words)
        + buffered
        + padding
        + struct.pack(">Q", length)
    )


# --- basics --------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digest_matches_hashlib(algorithm: str) -> None:
    data = random_bytes(300_000)
    hasher = ResumableHash(algorithm)
    hasher.update(data)
    assert hasher.algorithm == algorithm
    assert hasher.length == len(data)
    assert hasher.hexdigest() == hashlib.new(algorithm, data).hexdigest()
    assert hasher.digest() == Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
    assert hasher.digest_size == hashlib.new(algorithm).digest_size
    assert hasher.block_size == hashlib.new(algorithm).block_size


def test_default_is_sha256_and_empty() -> None:
    hasher = ResumableHash()
    assert hasher.algorithm == "sha256"
    assert hasher.length == 0
    assert str(hasher.digest()) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA256", "sha384", ""])
def test_unsupported_algorithm(algorithm: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        ResumableHash(algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digest_does_not_disturb_state(algorithm: str) -> None:
    data = random_bytes(1000)
    hasher = ResumableHash(algorithm)
    hasher.update(data[:500])
    first = hasher.hexdigest()
    assert hasher.hexdigest() == first
    assert hasher.length == 500
    hasher.update(data[500:])
    assert hasher.hexdigest() == hashlib.new(algorithm, data).hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_copy_is_independent(algorithm: str) -> None:
    data = random_bytes(777)
    hasher = ResumableHash(algorithm)
    hasher.update(data[:300])
    clone = hasher.copy()
    clone.update(b"something else")
    hasher.update(data[300:])
    assert hasher.hexdigest() == hashlib.new(algorithm, data).hexdigest()
    assert clone.hexdigest() == hashlib.new(algorithm, data[:300] + b"something else").hexdigest()
    assert clone.length == 300 + len(b"something else")


def buffer_kinds(data: bytes) -> Iterator[tuple[str, bytes | bytearray | memoryview]]:
    yield "bytes", data
    yield "bytearray", bytearray(data)
    yield "memoryview of bytes", memoryview(data)
    yield "memoryview slice of bytes", memoryview(b"xx" + data + b"yy")[2:-2]
    yield "memoryview of bytearray", memoryview(bytearray(data))
    yield "memoryview slice of bytearray", memoryview(bytearray(b"x" + data))[1:]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_update_accepts_buffers(algorithm: str) -> None:
    data = random_bytes(5000)
    expected = hashlib.new(algorithm, data).hexdigest()
    for kind, buffer in buffer_kinds(data):
        hasher = ResumableHash(algorithm)
        hasher.update(buffer)
        assert hasher.hexdigest() == expected, kind
        assert hasher.length == len(data), kind


def test_update_with_other_buffers() -> None:
    words = array.array("I", range(1000))
    hasher = ResumableHash()
    hasher.update(memoryview(words))
    assert hasher.hexdigest() == hashlib.sha256(words.tobytes()).hexdigest()

    strided = memoryview(bytes(range(256)))[::3]  # not contiguous: copied
    hasher = ResumableHash()
    hasher.update(strided)
    assert hasher.hexdigest() == hashlib.sha256(strided.tobytes()).hexdigest()

    hasher = ResumableHash()
    for empty in (b"", bytearray(), memoryview(b""), memoryview(bytearray())):
        hasher.update(empty)
    assert hasher.length == 0


def test_update_rejects_non_buffers() -> None:
    hasher = ResumableHash()
    with pytest.raises(TypeError):
        hasher.update("text")  # type: ignore[arg-type]
    assert hasher.length == 0


def test_buffer_export_is_released_after_update() -> None:
    data = bytearray(random_bytes(100))
    hasher = ResumableHash()
    hasher.update(data)
    data.extend(b"more")  # the buffer export was released
    assert hasher.length == 100


# --- marshal / unmarshal -------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_marshal_layout(algorithm: str) -> None:
    hasher = ResumableHash(algorithm)
    state = hasher.marshal()
    assert len(state) == MARSHALED_SIZES[algorithm] == {"sha256": 108, "sha512": 204}[algorithm]
    assert state == go_state(algorithm, INITIAL[algorithm], b"", 0)

    hasher.update(b"abc")
    assert hasher.marshal() == go_state(algorithm, INITIAL[algorithm], b"abc", 3)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unmarshal_hand_made_state(algorithm: str) -> None:
    """A state built by hand (initial words, buffered "abc") finishes as hashlib does."""
    block = BLOCK[algorithm]
    partial = random_bytes(block - 1)
    state = go_state(algorithm, INITIAL[algorithm], partial, len(partial))
    hasher = ResumableHash.unmarshal(state)
    assert hasher.algorithm == algorithm
    assert hasher.length == len(partial)
    assert hasher.hexdigest() == hashlib.new(algorithm, partial).hexdigest()
    hasher.update(b"xyz")
    assert hasher.hexdigest() == hashlib.new(algorithm, partial + b"xyz").hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("prefix", LENGTHS)
def test_round_trip_at_length(algorithm: str, prefix: int) -> None:
    data = random_bytes(prefix + 3000, seed=prefix)
    first = ResumableHash(algorithm)
    first.update(data[:prefix])
    state = first.marshal()
    assert len(state) == MARSHALED_SIZES[algorithm]
    assert state.startswith(MAGIC[algorithm])
    assert struct.unpack(">Q", state[-8:]) == (prefix,)

    resumed = ResumableHash.unmarshal(state)
    assert resumed.length == prefix
    assert resumed.marshal() == state
    resumed.update(data[prefix:])
    assert resumed.hexdigest() == hashlib.new(algorithm, data).hexdigest()
    # The original is untouched by marshalling and goes on too.
    first.update(data[prefix:])
    assert first.hexdigest() == resumed.hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("seed", range(4))
def test_round_trip_random_megabytes(algorithm: str, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(1, 3 << 20))
    cut = rng.randrange(len(data) + 1)
    first = ResumableHash(algorithm)
    first.update(data[:cut])
    resumed = ResumableHash.unmarshal(first.marshal(), algorithm)
    resumed.update(memoryview(data)[cut:])
    assert resumed.hexdigest() == hashlib.new(algorithm, data).hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_buffer_is_zero_padded(algorithm: str) -> None:
    """Stale bytes from earlier blocks never leak into the state."""
    block = BLOCK[algorithm]
    hasher = ResumableHash(algorithm)
    hasher.update(b"\xff" * (block - 1))
    hasher.update(b"\xee" * (block + 2))  # completes a block, buffers 1 byte
    state = hasher.marshal()
    start = len(MAGIC[algorithm]) + struct.calcsize(WORD[algorithm])
    assert state[start : start + block] == b"\xee" + bytes(block - 1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_stale_buffer_bytes_are_ignored(algorithm: str) -> None:
    """As Go's UnmarshalBinary: bytes after the buffered ones do not matter."""
    block = BLOCK[algorithm]
    data = random_bytes(3 * block + 10)
    hasher = ResumableHash(algorithm)
    hasher.update(data)
    state = bytearray(hasher.marshal())
    start = len(MAGIC[algorithm]) + struct.calcsize(WORD[algorithm])
    state[start + 10 : start + block] = b"\xaa" * (block - 10)
    resumed = ResumableHash.unmarshal(bytes(state))
    assert resumed.marshal() == hasher.marshal()
    assert normalize_state(bytes(state)) == hasher.marshal()
    resumed.update(b"tail")
    assert resumed.hexdigest() == hashlib.new(algorithm, data + b"tail").hexdigest()


def valid_state(algorithm: str) -> bytes:
    hasher = ResumableHash(algorithm)
    hasher.update(random_bytes(200))
    return hasher.marshal()


MALFORMED: list[tuple[str, Callable[[], bytes]]] = [
    ("empty", lambda: b""),
    ("magic only", lambda: b"sha\x03"),
    ("short", lambda: valid_state("sha256")[:-1]),
    ("long", lambda: valid_state("sha256") + b"\x00"),
    ("sha512 short", lambda: valid_state("sha512")[:-1]),
    ("sha512 magic, sha256 size", lambda: b"sha\x07" + valid_state("sha256")[4:]),
    ("sha256 magic, sha512 size", lambda: b"sha\x03" + valid_state("sha512")[4:]),
    ("sha224 magic", lambda: b"sha\x02" + valid_state("sha256")[4:]),
    ("sha384 magic", lambda: b"sha\x04" + valid_state("sha512")[4:]),
    ("md5 magic", lambda: b"md5\x01" + valid_state("sha256")[4:]),
    ("garbage", lambda: bytes(108)),
    ("sha256 bit length overflow", lambda: valid_state("sha256")[:-8] + b"\xff" * 8),
]


@pytest.mark.parametrize(("name", "make"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_malformed_states_rejected(name: str, make: Callable[[], bytes]) -> None:
    with pytest.raises(HashStateInvalid):
        ResumableHash.unmarshal(make())
    with pytest.raises(ValueError, match=r"."):  # HashStateInvalid is a ValueError
        normalize_state(make())


def test_unmarshal_checks_expected_algorithm() -> None:
    state = valid_state("sha512")
    assert ResumableHash.unmarshal(state, "sha512").algorithm == "sha512"
    with pytest.raises(HashStateInvalid, match="sha256"):
        ResumableHash.unmarshal(state, "sha256")


def test_unmarshal_accepts_buffers() -> None:
    state = valid_state("sha256")
    for buffer in (bytearray(state), memoryview(state)):
        assert ResumableHash.unmarshal(buffer).marshal() == state  # type: ignore[arg-type]


def test_huge_sha512_length_round_trips() -> None:
    """Lengths beyond 2**61 bytes need OpenSSL's high counter word."""
    state = go_state("sha512", INITIAL["sha512"], b"", (1 << 64) - 128)
    hasher = ResumableHash.unmarshal(state)
    assert hasher.length == (1 << 64) - 128
    assert hasher.marshal() == state
    hasher.update(b"x" * 5)
    assert hasher.length == (1 << 64) - 123
    sha256_state = go_state("sha256", INITIAL["sha256"], b"", (1 << 61) - 64)
    assert ResumableHash.unmarshal(sha256_state).marshal() == sha256_state


# --- properties ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    algorithm=st.sampled_from(ALGORITHMS),
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_property_random_splits(algorithm: str, data: bytes, cuts: list[int]) -> None:
    """Marshal and unmarshal at any cut points: the digest is unchanged."""
    points = sorted({min(cut, len(data)) for cut in cuts})
    hasher = ResumableHash(algorithm)
    previous = 0
    for point in points:
        hasher.update(data[previous:point])
        state = hasher.marshal()
        assert normalize_state(state) == state
        hasher = ResumableHash.unmarshal(state, algorithm)
        assert hasher.length == point
        previous = point
    hasher.update(data[previous:])
    assert hasher.hexdigest() == hashlib.new(algorithm, data).hexdigest()


@settings(max_examples=200, deadline=None)
@given(algorithm=st.sampled_from(ALGORITHMS), noise=st.binary(min_size=300, max_size=300))
def test_property_any_well_formed_state_is_accepted(algorithm: str, noise: bytes) -> None:
    """Any bytes with the right magic and size unmarshal; normalising is idempotent."""
    size = MARSHALED_SIZES[algorithm]
    state = MAGIC[algorithm] + noise[: size - 12] + b"\x00\x00" + noise[size - 10 : size - 4]
    hasher = ResumableHash.unmarshal(state)
    normal = hasher.marshal()
    assert normalize_state(normal) == normal
    assert normal[: -8 - BLOCK[algorithm]] == state[: -8 - BLOCK[algorithm]]
    assert normal[-8:] == state[-8:]
    hasher.update(b"more")  # and hashing goes on
    assert hasher.length == struct.unpack(">Q", state[-8:])[0] + 4


# --- threads and speed -----------------------------------------------------------


def test_threads_hash_concurrently() -> None:
    chunks = [random_bytes(1 << 20, seed=seed) for seed in range(4)]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            hasher = ResumableHash("sha256" if index % 2 else "sha512")
            for round_ in range(8):
                hasher.update(chunks[(index + round_) % len(chunks)])
                hasher = ResumableHash.unmarshal(hasher.marshal())
            results[index] = hasher.hexdigest()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for index in range(8):
        expected = hashlib.new("sha256" if index % 2 else "sha512")
        for round_ in range(8):
            expected.update(chunks[(index + round_) % len(chunks)])
        assert results[index] == expected.hexdigest()


def test_shared_hasher_is_serialised() -> None:
    """Updates from many threads on one object are never lost or torn."""
    hasher = ResumableHash("sha512")
    piece = b"\x5a" * 1000  # identical pieces: the order does not matter

    def work() -> None:
        for _ in range(200):
            hasher.update(piece)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.length == 6 * 200 * 1000
    assert hasher.hexdigest() == hashlib.sha512(piece * 1200).hexdigest()


def test_speed_close_to_hashlib() -> None:
    """1 MiB updates run at hashlib's speed (generous bound against noisy machines)."""
    chunk = random_bytes(1 << 20)

    def rate(make: Callable[[], ResumableHash | hashlib._Hash]) -> float:
        best = float("inf")
        for _ in range(3):
            hasher = make()
            start = time.perf_counter()
            for _ in range(32):
                hasher.update(chunk)
            best = min(best, time.perf_counter() - start)
        return 32 / best

    ours = rate(ResumableHash)
    theirs = rate(hashlib.sha256)
    assert ours > 0.5 * theirs, f"ResumableHash {ours:.0f} MiB/s, hashlib {theirs:.0f} MiB/s"


# --- interoperability with CNCF Distribution 2.8 ---------------------------------


def upload_states(root: Path, name: str, upload_id: str) -> dict[int, bytes]:
    directory = (
        root / "docker/registry/v2/repositories" / name / "_uploads" / upload_id / "hashstates"
    )
    assert sorted(path.name for path in directory.iterdir()) == ["sha256"]
    return {int(path.name): path.read_bytes() for path in (directory / "sha256").iterdir()}


def patch(client: httpx.Client, location: str, content: bytes | Iterator[bytes]) -> str:
    response = client.patch(
        location, content=content, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 202, response.text
    return response.headers["Location"]


@pytest.mark.reference
def test_distribution_hash_states_are_ours(reference_registry: ReferenceRegistry) -> None:
    """Distribution's states equal `marshal()` byte for byte, and resume correctly.

    Distribution 2.8 stores the state when the upload writer is closed at the
    end of every POST, PATCH and (no-op) status GET, under the number of bytes
    hashed: POST leaves `0`, each PATCH adds the new offset; earlier ones stay
    until the upload is committed or cancelled.
    """
    url, root = reference_registry
    first = random_bytes(100_000, seed=1)
    second = random_bytes(70_001, seed=2)
    third = random_bytes(12_345, seed=3)
    whole = first + second + third

    with httpx.Client(base_url=url, timeout=30.0) as client:
        started = client.post("/v2/test/repo/blobs/uploads/")
        assert started.status_code == 202, started.text
        upload_id = started.headers["Docker-Upload-UUID"]
        assert set(upload_states(root, "test/repo", upload_id)) == {0}

        location = patch(client, started.headers["Location"], first)
        states = upload_states(root, "test/repo", upload_id)
        assert set(states) == {0, 100_000}

        hasher = ResumableHash()
        assert states[0] == hasher.marshal()
        hasher.update(first)
        assert states[100_000] == hasher.marshal()

        resumed = ResumableHash.unmarshal(states[100_000], "sha256")
        resumed.update(second + third)
        assert resumed.digest() == Digest.of(whole)

        # Streamed in odd pieces: Distribution hashes them in several writes.
        def pieces() -> Iterator[bytes]:
            for start in range(0, len(second), 7_001):
                yield second[start : start + 7_001]
                time.sleep(0.01)

        location = patch(client, location, pieces())
        states = upload_states(root, "test/repo", upload_id)
        assert set(states) == {0, 100_000, 170_001}
        hasher.update(second)
        assert states[170_001] == hasher.marshal()

        # Distribution commits with the digest our resumed state predicts.
        expected = ResumableHash.unmarshal(states[170_001])
        expected.update(third)
        # (httpx's `params=` would replace the `_state` query of the location)
        target = httpx.URL(location).copy_add_param("digest", str(expected.digest()))
        committed = client.put(target, content=third)
        assert committed.status_code == 201, committed.text
        assert committed.headers["Docker-Content-Digest"] == str(Digest.of(whole))
        assert not (
            root / "docker/registry/v2/repositories/test/repo/_uploads" / upload_id
        ).exists()
