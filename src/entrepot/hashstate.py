"""Resumable SHA-256/SHA-512 whose state serializes in Go's format.

An upload may be continued by another process (principle 6 of the design),
so the running hash must be saved next to the data and restored later.
`hashlib` cannot export its state; OpenSSL's low-level `SHA256_CTX` and
`SHA512_CTX` hold exactly what Go's `crypto/sha256` and `crypto/sha512`
marshal (`encoding.BinaryMarshaler`), which is what CNCF Distribution stores
in `_uploads/<uuid>/hashstates/<alg>/<offset>`. `ResumableHash` drives those
contexts through ctypes, against the libcrypto that Python's own `_hashlib`
uses, and converts them to and from Go's bytes, so entrepot and Distribution
resume each other's uploads.

ctypes releases the GIL during each foreign call: hashing a large chunk in a
worker thread runs in parallel with other Python work (such as a disk write).
Buffers are passed by address, never copied, for `bytes`, `bytearray` and
contiguous `memoryview`s (read-only ones included).

Go writes the buffered bytes of the block followed by zeros (its
"already zero" trick; checked against Distribution 2.8.2, built with Go
1.19), and so does `marshal()`, so states compare byte for byte. Some old
Go snapshots copied the whole block buffer, stale bytes included; readers
ignore the bytes after the buffered ones, as Go's own `UnmarshalBinary` and
`unmarshal()` do, and `normalize_state` zeroes them for comparisons.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from entrepot.digest import SHA256, SHA512, Digest

__all__ = [
    "MARSHALED_SIZES",
    "HashStateInvalid",
    "ResumableHash",
    "normalize_state",
]


class HashStateInvalid(ValueError):
    """Bytes that are not a marshaled SHA-256/SHA-512 state."""


# --- OpenSSL's contexts, as declared in <openssl/sha.h> ----------------------


class _SHA256_CTX(ctypes.Structure):
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),  # raw input bytes (memcpy'd), not words
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


class _SHA512_U(ctypes.Union):
    _fields_ = [("d", ctypes.c_uint64 * 16), ("p", ctypes.c_ubyte * 128)]


class _SHA512_CTX(ctypes.Structure):
    _fields_ = [
        ("h", ctypes.c_uint64 * 8),
        ("Nl", ctypes.c_uint64),
        ("Nh", ctypes.c_uint64),
        ("u", _SHA512_U),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


@dataclass(frozen=True, slots=True)
class _Spec:
    """Everything that differs between SHA-256 and SHA-512."""

    name: str
    ctx_type: type[ctypes.Structure]
    init: Any  # the ctypes foreign functions
    update: Any
    final: Any
    magic: bytes
    word_format: str  # struct format of the eight state words, big-endian
    block: int  # block size in bytes
    counter_bits: int  # width of Nl and Nh
    digest_size: int
    data_offset: int  # offset of the block buffer in the ctx

    @property
    def state_size(self) -> int:
        return len(self.magic) + struct.calcsize(self.word_format) + self.block + 8


_MAGIC256: Final = b"sha\x03"
_MAGIC512: Final = b"sha\x07"
# What Go's MarshalBinary produces: magic, 8 words, block buffer, uint64 length.
MARSHALED_SIZES: Final = {SHA256: 4 + 8 * 4 + 64 + 8, SHA512: 4 + 8 * 8 + 128 + 8}
# SHA-256 counts at most 2**64 - 1 bits; Go's uint64 byte count allows more.
_SHA256_MAX_LENGTH: Final = (1 << 61) - 1


def _candidate_libraries() -> Iterator[str]:
    """Paths or names of libcrypto, best first: the one `_hashlib` uses.
    A generator: the system-wide search (`ctypes.util.find_library`, which
    runs `ldconfig` and imports `tempfile`) happens only if those fail."""
    seen: list[str] = []
    hashlib_file: str | None = None
    try:
        import _hashlib

        hashlib_file = getattr(_hashlib, "__file__", None)
    except ImportError:  # pragma: no cover - Python built without OpenSSL
        pass
    if hashlib_file is not None and sys.platform.startswith("linux"):
        # _hashlib is imported, so its libcrypto is mapped into this process.
        with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                if os.path.basename(path).startswith("libcrypto") and path not in seen:
                    seen.append(path)
    yield from seen
    if hashlib_file is not None:
        # dlsym on the extension also searches the libraries it links against.
        yield hashlib_file
    import ctypes.util

    found = ctypes.util.find_library("crypto")
    if found:
        yield found
    yield from ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", "libcrypto.dylib")


def _bind(lib: ctypes.CDLL, name: str, ctx_type: type[ctypes.Structure]) -> _Spec:
    is256 = name == SHA256
    prefix = "SHA256" if is256 else "SHA512"
    init = getattr(lib, f"{prefix}_Init")
    update = getattr(lib, f"{prefix}_Update")
    final = getattr(lib, f"{prefix}_Final")
    # Pointers as plain integers (c_void_p) keep the per-call conversion cheap.
    init.argtypes = [ctypes.c_void_p]
    init.restype = ctypes.c_int
    update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    update.restype = ctypes.c_int
    final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    final.restype = ctypes.c_int
    data_field = "data" if is256 else "u"
    return _Spec(
        name=name,
        ctx_type=ctx_type,
        init=init,
        update=update,
        final=final,
        magic=_MAGIC256 if is256 else _MAGIC512,
        word_format=">8I" if is256 else ">8Q",
        block=64 if is256 else 128,
        counter_bits=32 if is256 else 64,
        digest_size=32 if is256 else 64,
        data_offset=getattr(ctx_type, data_field).offset,
    )


def _self_test(spec: _Spec) -> None:
    """Check that the struct layout matches the library's: fail loudly if not."""
    import hashlib

    ctx = spec.ctx_type()
    if spec.init(ctypes.addressof(ctx)) != 1:
        raise OSError(f"{spec.name}: Init failed")
    message = b"entrepot" * 25  # 200 bytes: full blocks and a partial one
    spec.update(ctypes.addressof(ctx), message, len(message))
    expected_num = len(message) % spec.block
    buffered = ctypes.string_at(ctypes.addressof(ctx) + spec.data_offset, expected_num)
    bits = (ctx.Nh << spec.counter_bits) | ctx.Nl
    if (
        ctx.num != expected_num
        or bits != len(message) * 8
        or buffered != message[len(message) - expected_num :]
        or ctx.md_len != spec.digest_size
    ):
        raise OSError(f"{spec.name}: libcrypto's context does not have the expected layout")
    out = ctypes.create_string_buffer(spec.digest_size)
    spec.final(out, ctypes.addressof(ctx))
    if out.raw != hashlib.new(spec.name, message).digest():
        raise OSError(f"{spec.name}: libcrypto's digest differs from hashlib's")


@functools.cache
def _specs() -> dict[str, _Spec]:
    """Load libcrypto once and bind both algorithms; raise OSError if impossible."""
    errors: list[str] = []
    for candidate in _candidate_libraries():
        try:
            lib = ctypes.CDLL(candidate)
            specs = {
                SHA256: _bind(lib, SHA256, _SHA256_CTX),
                SHA512: _bind(lib, SHA512, _SHA512_CTX),
            }
            for spec in specs.values():
                _self_test(spec)
        except (OSError, AttributeError) as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        return specs
    raise OSError(
        "entrepot.hashstate needs OpenSSL's libcrypto with SHA256_Init/SHA512_Init; "
        "tried: " + "; ".join(errors)
    )


# --- zero-copy access to read-only buffers -----------------------------------


class _Py_buffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.POINTER(ctypes.c_ssize_t)),
        ("strides", ctypes.POINTER(ctypes.c_ssize_t)),
        ("suboffsets", ctypes.POINTER(ctypes.c_ssize_t)),
        ("internal", ctypes.c_void_p),
    ]


_PyBUF_SIMPLE: Final = 0
_get_buffer: Any = None
_release_buffer: Any = None
with contextlib.suppress(AttributeError):  # not CPython: buffers other than bytes are copied
    _get_buffer = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_int)(
        ("PyObject_GetBuffer", ctypes.pythonapi)
    )
    _release_buffer = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(
        ("PyBuffer_Release", ctypes.pythonapi)
    )


# --- the hasher ----------------------------------------------------------------


class ResumableHash:
    """A SHA-256 or SHA-512 hash whose running state can be saved and restored.

    `update` is safe to call from any thread (one at a time per object: a lock
    serialises callers) and does not hold the GIL while hashing.
    """

    __slots__ = ("_addr", "_ctx", "_lock", "_spec", "_view", "_view_addr")

    def __init__(self, algorithm: str = SHA256) -> None:
        if algorithm not in (SHA256, SHA512):
            raise ValueError(f"unsupported hash algorithm {algorithm!r}")
        self._spec = _specs()[algorithm]
        self._ctx = self._spec.ctx_type()
        self._addr: int = ctypes.addressof(self._ctx)
        self._lock = threading.Lock()
        self._view = _Py_buffer()  # reused by update(), under the lock
        self._view_addr: int = ctypes.addressof(self._view)
        if self._spec.init(self._addr) != 1:
            raise OSError(f"{algorithm}: Init failed")

    @property
    def algorithm(self) -> str:
        """`sha256` or `sha512`."""
        return self._spec.name

    @property
    def digest_size(self) -> int:
        """Size of the digest in bytes (32 or 64)."""
        return self._spec.digest_size

    @property
    def block_size(self) -> int:
        """Size of a block in bytes (64 or 128)."""
        return self._spec.block

    @property
    def length(self) -> int:
        """Number of bytes hashed so far."""
        ctx = self._ctx
        bits: int = (ctx.Nh << self._spec.counter_bits) | ctx.Nl
        return bits >> 3

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash `data`, passing its memory to OpenSSL without a copy."""
        if type(data) is bytes:
            if data:
                with self._lock:
                    self._spec.update(self._addr, data, len(data))
            return
        if _get_buffer is None:  # pragma: no cover - not CPython
            self.update(bytes(data))
            return
        with self._lock:
            try:
                _get_buffer(data, self._view_addr, _PyBUF_SIMPLE)
            except BufferError:  # not C-contiguous
                copied = memoryview(data).tobytes()
                self._spec.update(self._addr, copied, len(copied))
                return
            try:
                view = self._view
                self._spec.update(self._addr, view.buf, view.len)
            finally:
                _release_buffer(self._view_addr)

    def _final(self) -> bytes:
        spec = self._spec
        with self._lock:
            scratch = spec.ctx_type.from_buffer_copy(self._ctx)
        out = ctypes.create_string_buffer(spec.digest_size)
        spec.final(out, ctypes.addressof(scratch))
        return out.raw

    def digest(self) -> Digest:
        """The digest of everything hashed so far; the hash can go on."""
        return Digest(self._spec.name, self._final().hex())

    def hexdigest(self) -> str:
        """The digest as lowercase hexadecimal."""
        return self._final().hex()

    def copy(self) -> ResumableHash:
        """An independent hash with the same state."""
        clone = ResumableHash.__new__(ResumableHash)
        clone._spec = self._spec
        with self._lock:
            clone._ctx = self._spec.ctx_type.from_buffer_copy(self._ctx)
        clone._addr = ctypes.addressof(clone._ctx)
        clone._lock = threading.Lock()
        clone._view = _Py_buffer()
        clone._view_addr = ctypes.addressof(clone._view)
        return clone

    def marshal(self) -> bytes:
        """The state in the format of Go's `MarshalBinary` (buffer zero padded)."""
        spec = self._spec
        with self._lock:
            ctx: Any = self._ctx
            words = struct.pack(spec.word_format, *ctx.h)
            num = ctx.num
            buffered = ctypes.string_at(self._addr + spec.data_offset, num)
            length = ((ctx.Nh << spec.counter_bits) | ctx.Nl) >> 3
        padding = bytes(spec.block - num)
        return b"".join((spec.magic, words, buffered, padding, struct.pack(">Q", length)))

    @classmethod
    def unmarshal(cls, data: bytes, algorithm: str | None = None) -> ResumableHash:
        """Restore a state from `marshal()` or from Go; `algorithm` is checked if given.

        Raises `HashStateInvalid` for a wrong magic, size or length. Bytes of
        the block buffer after the buffered ones are ignored, as Go does.
        """
        data = bytes(data)
        magic = data[:4]
        if magic == _MAGIC256:
            name = SHA256
        elif magic == _MAGIC512:
            name = SHA512
        else:
            raise HashStateInvalid(f"unknown hash state identifier {magic!r}")
        if algorithm is not None and algorithm != name:
            raise HashStateInvalid(f"hash state is {name}, expected {algorithm}")
        if len(data) != MARSHALED_SIZES[name]:
            raise HashStateInvalid(
                f"{name} hash state must be {MARSHALED_SIZES[name]} bytes, not {len(data)}"
            )
        hasher = cls(name)
        spec = hasher._spec
        words_size = struct.calcsize(spec.word_format)
        words = struct.unpack_from(spec.word_format, data, 4)
        buffer_start = 4 + words_size
        (length,) = struct.unpack_from(">Q", data, buffer_start + spec.block)
        if name == SHA256 and length > _SHA256_MAX_LENGTH:
            raise HashStateInvalid(f"sha256 hash state length {length} exceeds 2**64 bits")
        num = length % spec.block
        ctx: Any = hasher._ctx
        ctx.h[:] = words
        bits = length << 3
        ctx.Nl = bits & ((1 << spec.counter_bits) - 1)
        ctx.Nh = bits >> spec.counter_bits
        ctx.num = num
        # Init zeroed the buffer; copy only the bytes that are really buffered.
        ctypes.memmove(hasher._addr + spec.data_offset, data[buffer_start:], num)
        return hasher

    def __repr__(self) -> str:
        return f"<ResumableHash {self.algorithm} length={self.length}>"


def normalize_state(data: bytes) -> bytes:
    """A marshaled state with the unused buffer bytes zeroed (as Go writes it).

    Two states are equivalent exactly when their normalisations are equal.
    Raises `HashStateInvalid` like `ResumableHash.unmarshal`.
    """
    return ResumableHash.unmarshal(data).marshal()
