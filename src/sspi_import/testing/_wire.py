"""What the simulated provider puts on the wire: keys, tokens, packed contexts.

Everything is built from the standard library's C code (hashlib, hmac), so a packed
context costs two hash calls, not one per 32 bytes:

- keys: HMAC-SHA256 of a fixed constant and the machine name (the "machine key"), so
  two processes simulating the same machine agree on it, and subkeys derived from it
  once per machine;
- a packed context: a versioned header with a unique 16-byte nonce (a random prefix per
  process and a counter: a stream cipher needs uniqueness), the state encrypted
  with a SHAKE-256 keystream of ``(seal key, nonce)``, and one HMAC-SHA256 over header
  and ciphertext. Any altered byte, or a blob packed on another simulated machine,
  fails the MAC (``WireError``) before anything is decrypted or parsed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import os
import struct
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "BLOB_MAGIC",
    "BLOB_VERSION",
    "MAC_SIZE",
    "SIGNATURE_SIZE",
    "State",
    "WireError",
    "derive",
    "keystream_xor",
    "mac",
    "machine_key",
    "pack_blob",
    "pack_token",
    "unpack_blob",
    "unpack_token",
]

_MACHINE_KEY_CONSTANT = b"sspi_import.testing.FakeSspi machine key, version 1"

BLOB_MAGIC = b"FKSC"
BLOB_VERSION = 2  # 1: JSON state, a keystream of one HMAC per 32 bytes
_BLOB_HEAD = struct.Struct("<4sHH16sI")  # magic, version, reserved, nonce, payload length
_BLOB_MAC = 32
_STATE_HEAD = struct.Struct("<BBIqqQQ32s4H")  # role, token?, flags, times, seqs, key, lengths
_NO_TARGET = 0xFFFF
_ROLES = ("initiator", "acceptor")
_TOKEN_MAGIC = b"FKTK"
_TOKEN_HEAD = struct.Struct("<4sBBH")  # magic, version, message type, reserved
MAC_SIZE = 20
SIGNATURE_SIZE = 4 + 8 + MAC_SIZE  # header, sequence number, truncated HMAC-SHA256


class WireError(ValueError):
    """A token or packed context is malformed, truncated, foreign or tampered with."""


class State(NamedTuple):
    """What a packed context carries."""

    role: str
    package: str
    mech: str
    user: str
    flags: int
    start: int
    expiry: int
    session_key: bytes
    send_seq: int
    recv_seq: int
    has_token: bool
    target: str | None


@functools.lru_cache(maxsize=16)
def machine_key(machine: str) -> bytes:
    """The per-machine secret: the same in every process that simulates ``machine``."""
    return hmac.digest(_MACHINE_KEY_CONSTANT, machine.encode("utf-8"), "sha256")


def derive(key: bytes, *labels: bytes) -> bytes:
    """A 32-byte subkey of ``key`` for the purpose named by ``labels``."""
    return hmac.digest(key, b"\0".join(labels), "sha256")


@functools.lru_cache(maxsize=16)
def _blob_keys(machine: str) -> tuple[bytes, bytes]:
    key = machine_key(machine)
    return derive(key, b"blob-seal", b"v2"), derive(key, b"blob-mac", b"v2")


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over length-prefixed ``parts``, truncated to ``MAC_SIZE`` bytes."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        h.update(struct.pack("<I", len(part)))
        h.update(part)
    return h.digest()[:MAC_SIZE]


def keystream_xor(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the SHAKE-256 keystream of ``(key, nonce)``."""
    if not data:
        return b""
    pad = hashlib.shake_256(key + nonce).digest(len(data))
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")
    return mixed.to_bytes(len(data), "little")


def pack_token(kind: int, fields: dict[str, Any]) -> bytes:
    """One handshake message: a small header, then JSON fields."""
    return _TOKEN_HEAD.pack(_TOKEN_MAGIC, 1, kind, 0) + json.dumps(fields).encode()


def token_extent(data: bytes) -> int | None:
    """How many leading bytes of ``data`` are one whole handshake message.

    ``None`` when ``data`` starts a message but stops inside it (a JSON body with no
    closing brace yet: the fake's bodies are flat objects); ``len(data)`` when it is not
    a message at all (``unpack_token`` then refuses it). Bytes after a whole message
    belong to the next one (what SSPI reports as ``SECBUFFER_EXTRA``).
    """
    if len(data) < _TOKEN_HEAD.size or data[:4] != _TOKEN_MAGIC:
        return len(data)
    body = data[_TOKEN_HEAD.size :]
    try:
        _, end = json.JSONDecoder().raw_decode(body.decode("utf-8", "surrogateescape"))
    except ValueError:
        return None if b"}" not in body else len(data)
    # raw_decode counts characters; the fake's JSON bodies are ASCII (json.dumps).
    return _TOKEN_HEAD.size + end


def unpack_token(data: bytes, kind: int) -> dict[str, Any]:
    """Parse a handshake message of type ``kind``; ``WireError`` for anything else."""
    if len(data) < _TOKEN_HEAD.size:
        raise WireError("truncated token")
    magic, version, got, _ = _TOKEN_HEAD.unpack_from(data)
    if magic != _TOKEN_MAGIC or version != 1 or got != kind:
        raise WireError("not the expected token")
    try:
        fields = json.loads(data[_TOKEN_HEAD.size :])
    except (UnicodeDecodeError, ValueError):
        raise WireError("garbled token") from None
    if not isinstance(fields, dict):
        raise WireError("garbled token")
    return fields


def _encode_state(state: State) -> bytes:
    texts = [t.encode("utf-8") for t in (state.package, state.mech, state.user)]
    target = b"" if state.target is None else state.target.encode("utf-8")
    if any(len(t) >= _NO_TARGET for t in (*texts, target)):
        raise WireError("a name in the context is too long to pack")
    head = _STATE_HEAD.pack(
        _ROLES.index(state.role),
        1 if state.has_token else 0,
        state.flags,
        state.start,
        state.expiry,
        state.send_seq,
        state.recv_seq,
        state.session_key,
        *(len(t) for t in texts),
        _NO_TARGET if state.target is None else len(target),
    )
    return b"".join((head, *texts, target))


def _decode_state(plain: bytes) -> State:
    try:
        fields = _STATE_HEAD.unpack_from(plain)
    except struct.error:
        raise WireError("garbled packed context") from None
    role, has_token, flags, start, expiry, send, recv, key, *lengths = fields
    target_length = lengths[3]
    sizes = [*lengths[:3], 0 if target_length == _NO_TARGET else target_length]
    if _STATE_HEAD.size + sum(sizes) != len(plain) or role >= len(_ROLES) or has_token > 1:
        raise WireError("garbled packed context")
    texts: list[str] = []
    offset = _STATE_HEAD.size
    try:
        for size in sizes:
            texts.append(plain[offset : offset + size].decode("utf-8"))
            offset += size
    except UnicodeDecodeError:
        raise WireError("garbled packed context") from None
    return State(
        _ROLES[role], texts[0], texts[1], texts[2], flags, start, expiry, key, send, recv,
        bool(has_token), None if target_length == _NO_TARGET else texts[3],
    )  # fmt: skip


def _nonces() -> Iterator[bytes]:
    """Unique 16-byte nonces: a random prefix per process, then a counter."""
    prefix = os.urandom(8)
    for number in itertools.count():
        yield prefix + number.to_bytes(8, "little")


_NONCES = _nonces()
_NONCE_LOCK = threading.Lock()


def _mac(mac_key: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 of ``body``, from the key's precomputed inner and outer states."""
    inner, outer = _mac_states(mac_key)
    inner = inner.copy()
    inner.update(body)
    outer = outer.copy()
    outer.update(inner.digest())
    tag: bytes = outer.digest()
    return tag


@functools.lru_cache(maxsize=16)
def _mac_states(mac_key: bytes) -> tuple[Any, Any]:
    padded = mac_key.ljust(64, b"\0")  # RFC 2104: a 32-byte key, padded to the block
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    return inner, outer


def pack_blob(machine: str, state: State) -> bytes:
    """A packed context: versioned header, encrypted state, one HMAC over all of it."""
    seal_key, mac_key = _blob_keys(machine)
    with _NONCE_LOCK:
        nonce = next(_NONCES)
    payload = keystream_xor(seal_key, nonce, _encode_state(state))
    body = _BLOB_HEAD.pack(BLOB_MAGIC, BLOB_VERSION, 0, nonce, len(payload)) + payload
    return body + _mac(mac_key, body)


def unpack_blob(machine: str, blob: bytes) -> State:
    """Authenticate and open a packed context; ``WireError`` if it is not one of ours."""
    if len(blob) < _BLOB_HEAD.size + _BLOB_MAC:
        raise WireError("truncated packed context")
    magic, version, _, nonce, length = _BLOB_HEAD.unpack_from(blob)
    if magic != BLOB_MAGIC:
        raise WireError("not a packed context")
    if version != BLOB_VERSION:
        raise WireError(f"packed context version {version} is not supported")
    if len(blob) != _BLOB_HEAD.size + length + _BLOB_MAC:
        raise WireError("truncated packed context")
    seal_key, mac_key = _blob_keys(machine)
    body, tag = blob[:-_BLOB_MAC], blob[-_BLOB_MAC:]
    if not hmac.compare_digest(tag, _mac(mac_key, body)):
        raise WireError("the packed context was altered or packed on another machine")
    return _decode_state(keystream_xor(seal_key, nonce, body[_BLOB_HEAD.size :]))
