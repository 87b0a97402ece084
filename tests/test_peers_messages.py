"""Messages between sspi_import and peers nobody here wrote, on sspi-rs.

sspilib (over the same sspi-rs) and pyspnego's pure-Python NTLM, each in both roles
(``tests/peers.py``). sspi-rs is a real provider but not an authority: what these prove
is byte compatibility with those libraries' layouts, not Windows behaviour.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import sspi_import
from peers import Peer, ntlm_user_file, pyspnego_pair, sspilib_pair

pytest.importorskip("spnego")
pytest.importorskip("sspilib")

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
PASSWORD = "p4ssw0rd"
SIZES = [0, 1, 15, 16, 17, 64, 1000, 65536, 1 << 20]
PEERS = [
    ("sspilib", "acceptor"),
    ("sspilib", "initiator"),
    ("pyspnego", "acceptor"),
    ("pyspnego", "initiator"),
]
Pair = tuple[Peer, sspi_import.SecurityContext]


def payload(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


@pytest.fixture(params=PEERS, ids=[f"{lib}-we-{side}" for lib, side in PEERS])
def pair(
    request: pytest.FixtureRequest,
    sspi_rs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pair]:
    library, ours = request.param
    if library == "sspilib":
        peer, context = sspilib_pair(ALICE, PASSWORD, ours=ours)
    else:
        users = ntlm_user_file(tmp_path, ALICE, PASSWORD)
        monkeypatch.setenv("NTLM_USER_FILE", str(users))
        peer, context = pyspnego_pair(ALICE, PASSWORD, users, ours=ours)
    with context:
        yield peer, context


@pytest.fixture
def pyspnego(sspi_rs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    users = ntlm_user_file(tmp_path, ALICE, PASSWORD)
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    peer, context = pyspnego_pair(ALICE, PASSWORD, users, ours="initiator")
    with context:
        yield peer, context


@pytest.mark.parametrize("size", SIZES)
def test_wrap_unwrap_both_ways(pair: Pair, size: int) -> None:
    peer, ours = pair
    data = payload(size)
    theirs = peer.wrap(data)
    assert ours.unwrap(theirs) == data
    mine = ours.wrap(data)
    assert len(mine) == len(theirs) == 16 + size  # same layout: NTLM token || data
    assert peer.unwrap(mine) == data
    # and again, so both directions keep their sealing state in step
    assert ours.unwrap(peer.wrap(data[::-1])) == data[::-1]
    assert peer.unwrap(ours.wrap(data[::-1])) == data[::-1]


def test_wrap_is_encrypted(pair: Pair) -> None:
    peer, ours = pair
    data = b"attack at dawn, and bring the good biscuits" * 4
    mine = ours.wrap(data)
    assert data not in mine
    assert mine[:4] == b"\x01\x00\x00\x00"  # the NTLM signature's version field first
    assert peer.unwrap(mine) == data


def test_many_messages_in_a_row(pair: Pair) -> None:
    peer, ours = pair
    for i in range(50):
        data = payload(i * 13)
        assert peer.unwrap(ours.wrap(data)) == data
        assert ours.unwrap(peer.wrap(data)) == data


@pytest.mark.parametrize("size", SIZES)
def test_winrm_layout_against_pyspnego(pyspnego: Pair, size: int) -> None:
    peer, ours = pyspnego
    data = payload(size)
    frame = peer.wrap_winrm(data)
    assert struct.unpack_from("<I", frame) == (16,)
    assert ours.decrypt(frame) == data
    if not size:  # encrypt refuses an empty message (a WinRM body never is)
        with pytest.raises(ValueError, match="empty"):
            ours.encrypt(data)
        return
    sealed = ours.encrypt(data)
    assert len(sealed) == len(frame)
    assert peer.unwrap_winrm(sealed) == data


def test_a_wrap_message_given_to_decrypt_is_refused_and_the_context_lives(pair: Pair) -> None:
    peer, ours = pair
    wrapped = peer.wrap(b"a GSS-API style message")
    assert wrapped[:4] == b"\x01\x00\x00\x00"  # read as "trailer: 1 byte" by the WinRM layout
    with pytest.raises(ValueError, match=r"declares a 1-byte trailer.*exactly 16.*unwrap\(\)"):
        ours.decrypt(wrapped)
    # Nothing reached SSPI: the same message still opens the right way, and later ones too.
    assert ours.unwrap(wrapped) == b"a GSS-API style message"
    assert ours.unwrap(peer.wrap(b"next")) == b"next"
    assert peer.unwrap(ours.wrap(b"reply")) == b"reply"


def test_a_bad_frame_is_refused_before_sspi_in_place_too(pyspnego: Pair) -> None:
    peer, ours = pyspnego
    frame = bytearray(peer.wrap_winrm(b"winrm body"))
    for declared in (0, 1, 15, 17, 1000):
        bad = bytearray(struct.pack("<I", declared)) + frame[4:]
        with pytest.raises(ValueError, match="trailer"):
            ours.decrypt_in_place(bad)
        with pytest.raises(ValueError, match="trailer"):
            ours.decrypt(bytes(bad))
    with ours.decrypt_in_place(frame) as plain:
        assert bytes(plain) == b"winrm body"
    assert peer.unwrap_winrm(ours.encrypt(b"still in step")) == b"still in step"


def test_a_tampered_wrap_message_is_altered(pair: Pair) -> None:
    peer, ours = pair
    wrapped = bytearray(peer.wrap(b"do not touch"))
    wrapped[-1] ^= 1
    with pytest.raises(sspi_import.MessageAlteredError):
        ours.unwrap(wrapped)


def test_iov_token_and_data_apart_interoperate(pair: Pair) -> None:
    peer, ours = pair
    body = bytearray(b"DCE/RPC stub data")
    result = ours.wrap_iov(
        [sspi_import.IovBuffer(sspi_import.BufferType.TOKEN),
         sspi_import.IovBuffer(sspi_import.BufferType.DATA, body)]
    )  # fmt: skip
    token, data = (bytes(b.data) for b in result.buffers)
    assert data == bytes(body)  # encrypted in the caller's own buffer
    assert peer.unwrap(token + data) == b"DCE/RPC stub data"
    wrapped = peer.wrap(b"the answer")
    opened = ours.unwrap_iov(
        [sspi_import.IovBuffer(sspi_import.BufferType.TOKEN, wrapped[:16]),
         sspi_import.IovBuffer(sspi_import.BufferType.DATA, bytearray(wrapped[16:]))]
    )  # fmt: skip
    assert opened.encrypted
    assert bytes(opened.buffers[1].data) == b"the answer"
