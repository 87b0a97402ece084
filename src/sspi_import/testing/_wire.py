"""What the simulated provider puts on the wire: keys, tokens, packed contexts.

Everything is built from the standard library: HMAC-SHA256 for the keys and the MACs,
an HMAC-SHA256 counter-mode keystream for the cipher. The "machine key" is derived from
a fixed constant and the machine name, so two processes simulating the same machine
agree on it, and a blob packed on another simulated machine fails authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from typing import Any

__all__ = [
    "BLOB_MAGIC",
    "BLOB_VERSION",
    "MAC_SIZE",
    "SIGNATURE_SIZE",
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
BLOB_VERSION = 1
_BLOB_HEAD = struct.Struct("<4sHH16sI")  # magic, version, reserved, nonce, payload length
_TOKEN_MAGIC = b"FKTK"
_TOKEN_HEAD = struct.Struct("<4sBBH")  # magic, version, message type, reserved
MAC_SIZE = 20
SIGNATURE_SIZE = 4 + 8 + MAC_SIZE  # header, sequence number, truncated HMAC-SHA256


class WireError(ValueError):
    """A token or packed context is malformed, truncated, foreign or tampered with."""


def machine_key(machine: str) -> bytes:
    """The per-machine secret: the same in every process that simulates ``machine``."""
    return hmac.new(_MACHINE_KEY_CONSTANT, machine.encode("utf-8"), hashlib.sha256).digest()


def derive(key: bytes, *labels: bytes) -> bytes:
    """A 32-byte subkey of ``key`` for the purpose named by ``labels``."""
    return hmac.new(key, b"\0".join(labels), hashlib.sha256).digest()


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over length-prefixed ``parts``, truncated to ``MAC_SIZE`` bytes."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        h.update(struct.pack("<I", len(part)))
        h.update(part)
    return h.digest()[:MAC_SIZE]


def keystream_xor(key: bytes, nonce: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the HMAC-SHA256 counter-mode keystream of ``(key, nonce)``."""
    out = bytearray(data)
    for block, start in enumerate(range(0, len(out), 32)):
        pad = hmac.new(key, nonce + struct.pack("<Q", block), hashlib.sha256).digest()
        for i, byte in enumerate(pad[: len(out) - start]):
            out[start + i] ^= byte
    return bytes(out)


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


def pack_blob(machine: str, state: dict[str, Any]) -> bytes:
    """A packed context: versioned header, encrypted JSON state, HMAC over all of it."""
    key = machine_key(machine)
    nonce = os.urandom(16)
    payload = keystream_xor(derive(key, b"blob-seal"), nonce, json.dumps(state).encode())
    head = _BLOB_HEAD.pack(BLOB_MAGIC, BLOB_VERSION, 0, nonce, len(payload))
    body = head + payload
    return body + hmac.new(derive(key, b"blob-mac"), body, hashlib.sha256).digest()


def unpack_blob(machine: str, blob: bytes) -> dict[str, Any]:
    """Authenticate and open a packed context; ``WireError`` if it is not one of ours."""
    if len(blob) < _BLOB_HEAD.size + 32:
        raise WireError("truncated packed context")
    magic, version, _, nonce, length = _BLOB_HEAD.unpack_from(blob)
    if magic != BLOB_MAGIC:
        raise WireError("not a packed context")
    if version != BLOB_VERSION:
        raise WireError(f"packed context version {version} is not supported")
    if len(blob) != _BLOB_HEAD.size + length + 32:
        raise WireError("truncated packed context")
    key = machine_key(machine)
    body, tag = blob[:-32], blob[-32:]
    expected = hmac.new(derive(key, b"blob-mac"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise WireError("the packed context was altered or packed on another machine")
    plain = keystream_xor(derive(key, b"blob-seal"), nonce, body[_BLOB_HEAD.size :])
    state = json.loads(plain)
    if not isinstance(state, dict):
        raise WireError("garbled packed context")
    return state
