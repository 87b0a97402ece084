"""Message protection: ``encrypt``/``decrypt`` and the in-place forms, on real and simulated SSPI.

Every test runs on sspi-rs (the real library in the sspilib wheel; skipped where absent)
and on ``FakeSspi`` (the simulated provider), whose trailer and block sizes differ
(sspi-rs NTLM: 16-byte trailer, no block; FakeSspi: 28-byte trailer, block size 1).
"""

from __future__ import annotations

import ctypes
import mmap
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sspi_import
from sspi_import import _cpython
from sspi_import.handshake import SecurityContext
from sspi_import.testing import FakeSspi

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
Pair = tuple[SecurityContext, SecurityContext]


@pytest.fixture(params=["sspi_rs", "sspi_fake"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    request.getfixturevalue(request.param)
    if request.param == "sspi_rs":
        client, server = sspi_import.loopback("NTLM", ALICE)
    else:
        client, server = sspi_import.loopback("NTLM")
    with client, server:
        yield client, server


def header(context: SecurityContext) -> int:
    """Where the ciphertext starts in a message from ``context``: trailer length + trailer."""
    return 4 + context.sizes().security_trailer


def singletons_intact() -> bool:
    """CPython shares 0- and 1-byte bytes objects; none of them may have been written."""
    return bytes(0) == b"" and all(bytes([i])[0] == i for i in range(256))


# encrypt / decrypt -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 64, 4096, 65536])
def test_round_trip_sizes(pair: Pair, size: int) -> None:
    client, server = pair
    message = bytes(i % 251 for i in range(size))
    sealed = client.encrypt(message)
    assert len(sealed) == header(client) + size  # no padding from either provider
    assert server.decrypt(sealed) == message
    assert client.decrypt(server.encrypt(message)) == message
    assert singletons_intact()


def test_inputs_are_not_changed(pair: Pair) -> None:
    client, server = pair
    message = bytes(range(100))
    sealed = client.encrypt(message)
    assert message == bytes(range(100))
    kept = bytes(bytearray(sealed))  # an independent copy
    plain = server.decrypt(sealed)
    assert sealed == kept
    assert plain == message
    assert plain is not message


def test_results_are_new_objects_each_time(pair: Pair) -> None:
    client, server = pair
    first, second = client.encrypt(b"same text"), client.encrypt(b"same text")
    assert first is not second
    assert first != second  # sequence numbers differ
    assert server.decrypt(first) == b"same text"
    assert server.decrypt(second) == b"same text"
    assert hash(first) == hash(bytes(bytearray(first)))  # no stale cached hash


@pytest.mark.parametrize(
    "wrap",
    [
        bytearray,
        memoryview,
        lambda b: memoryview(bytearray(b)),
        lambda b: memoryview(bytes(x for c in b for x in (c, 0)))[::2],
    ],
    ids=["bytearray", "memoryview", "writable-view", "strided"],
)
def test_buffer_kinds(pair: Pair, wrap: object) -> None:
    client, server = pair
    message = b"any buffer will do"
    sealed = client.encrypt(wrap(message))  # type: ignore[operator]
    assert server.decrypt(wrap(sealed)) == message  # type: ignore[operator]


def test_without_cpython_bytes_layout(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Elsewhere than CPython, encrypt/decrypt work in bytearrays and copy out once."""
    client, server = pair
    monkeypatch.setattr(_cpython, "BYTES_OFFSET", None)
    sealed = client.encrypt(b"portable")
    assert type(sealed) is bytes
    assert server.decrypt(sealed) == b"portable"
    assert server.decrypt(bytearray(client.encrypt(b"again"))) == b"again"


def test_decrypt_failure_raises_and_context_goes_on(pair: Pair) -> None:
    client, server = pair
    sealed = bytearray(client.encrypt(b"tamper with me"))
    sealed[-1] ^= 1
    with pytest.raises(sspi_import.MessageAlteredError):
        server.decrypt(bytes(sealed))
    assert singletons_intact()


def test_closed_context_refuses(pair: Pair) -> None:
    client, server = pair
    sealed = client.encrypt(b"late")
    out = bytearray(client.encrypted_size(4))
    client.close()
    server.close()
    for call in (
        lambda: client.encrypt(b"late"),
        lambda: client.encrypt_into(b"late", out),
        lambda: server.decrypt(sealed),
        lambda: server.decrypt_in_place(bytearray(sealed)),
    ):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert b"late" not in out  # refused before the plaintext was copied anywhere


def test_closed_context_refuses_before_copying_the_plaintext(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _server = pair
    client.sizes()  # cached: the refusal must not come from a sizes() query
    client.close()
    wiped: list[int] = []
    monkeypatch.setattr(ctypes, "memset", lambda address, value, count: wiped.append(count))
    with pytest.raises(ValueError, match="closed"):
        client.encrypt(b"never copied")
    assert wiped == []  # no copy was made, so there was none to wipe


# encrypted_size / encrypt_into --------------------------------------------------------------


def test_encrypted_size(pair: Pair) -> None:
    client, _server = pair
    sizes = client.sizes()
    assert client.encrypted_size(10) == 4 + sizes.security_trailer + 10 + sizes.block_size
    assert client.encrypted_size(0) == 4 + sizes.security_trailer + sizes.block_size
    with pytest.raises(ValueError, match="negative"):
        client.encrypted_size(-1)


def test_encrypt_into_writes_the_wire_message(pair: Pair) -> None:
    client, server = pair
    out = bytearray(client.encrypted_size(5) + 7)
    out[-7:] = b"ZZZZZZZ"
    length = client.encrypt_into(b"hello", out)
    assert length == header(client) + 5
    assert out[:4] == client.sizes().security_trailer.to_bytes(4, "little")
    assert b"hello" not in out
    assert out[-7:] == b"ZZZZZZZ"  # past encrypted_size: untouched
    assert server.decrypt(bytes(out[:length])) == b"hello"  # the layout decrypt reads


def test_encrypt_into_buffer_reused(pair: Pair) -> None:
    client, server = pair
    out = bytearray(client.encrypted_size(100))
    for text in (b"first message", b"second", b"a third, longer message"):
        length = client.encrypt_into(text, out)
        assert server.decrypt(memoryview(out)[:length]) == text


def test_encrypt_into_writable_kinds(pair: Pair) -> None:
    client, server = pair
    room = client.encrypted_size(6)
    backing = bytearray(room + 10)
    length = client.encrypt_into(bytearray(b"offset"), memoryview(backing)[10:])
    assert server.decrypt(bytes(backing[10 : 10 + length])) == b"offset"
    words = (ctypes.c_uint32 * ((room + 3) // 4))()
    length = client.encrypt_into(memoryview(b"ctypes"), memoryview(words))
    assert server.decrypt(bytes(words)[:length]) == b"ctypes"
    with mmap.mmap(-1, room) as mapped:
        length = client.encrypt_into(b"mapped", mapped)
        assert server.decrypt(mapped[:length]) == b"mapped"


def test_encrypt_into_in_place(pair: Pair) -> None:
    """The plaintext already where the ciphertext goes: no copy at all."""
    client, server = pair
    start = header(client)
    out = bytearray(client.encrypted_size(9))
    out[start : start + 9] = b"in situ!!"
    with memoryview(out) as view:
        length = client.encrypt_into(view[start : start + 9], out)
    assert b"in situ!!" not in out
    assert server.decrypt(bytes(out[:length])) == b"in situ!!"


@pytest.mark.parametrize("offset", [0, 1, 7])
def test_encrypt_into_from_an_overlapping_view(pair: Pair, offset: int) -> None:
    """The plaintext sits in out where its copy overlaps it: moved, not smeared."""
    client, server = pair
    message = bytes(range(97, 97 + 26)) * 3  # longer than the header: the copy overlaps
    out = bytearray(client.encrypted_size(len(message)) + offset)
    out[offset : offset + len(message)] = message
    with memoryview(out) as view:
        length = client.encrypt_into(view[offset : offset + len(message)], out)
    assert server.decrypt(bytes(out[:length])) == message


def test_decrypt_in_place_accepts_a_multidimensional_writable_view(pair: Pair) -> None:
    client, server = pair
    message = client.encrypt(b"x" * 60)
    padded = bytearray(message + bytes(-len(message) % 4))
    with (
        memoryview(padded) as whole,
        whole[: len(message)] as exact,
        server.decrypt_in_place(exact) as plain,
    ):
        assert plain == b"x" * 60
    words = bytearray(client.encrypt(b"y" * 60))
    assert len(words) % 4 == 0  # 4 + trailer (16 or 28) + 60: whole 4-byte items
    with memoryview(words).cast("I") as typed, server.decrypt_in_place(typed) as plain:
        assert plain == b"y" * 60


def test_encrypt_into_refuses(pair: Pair) -> None:
    client, _server = pair
    room = client.encrypted_size(4)
    with pytest.raises(TypeError, match="writable"):
        client.encrypt_into(b"data", bytes(room))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="writable"):
        client.encrypt_into(b"data", memoryview(bytes(room)))
    with pytest.raises(TypeError, match="str"):
        client.encrypt_into(b"data", "x" * room)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="message"):
        client.encrypt_into("data", bytearray(room))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"needs \d+ \(encrypted_size\(4\)\)"):
        client.encrypt_into(b"data", bytearray(room - 1))
    with pytest.raises(ValueError, match="contiguous"):
        client.encrypt_into(b"data", memoryview(bytearray(2 * room))[::2])
    with pytest.raises(ValueError, match="empty"):
        client.encrypt_into(b"", bytearray(room))
    with pytest.raises(ValueError, match="empty"):
        client.encrypt_into(b"data", bytearray())


# decrypt_in_place -----------------------------------------------------------------------------


def test_decrypt_in_place_uses_the_buffer(pair: Pair) -> None:
    client, server = pair
    buffer = bytearray(client.encrypt(b"decrypt me where I am"))
    start = header(client)
    plain = server.decrypt_in_place(buffer)
    assert bytes(plain) == b"decrypt me where I am"
    assert plain.obj is buffer  # a view of the caller's buffer, not a copy
    assert plain.format == "B"
    assert plain.readonly is False
    assert buffer[start:] == b"decrypt me where I am"  # decrypted where it was
    buffer[start] = ord("D")
    assert plain[0] == ord("D")
    with pytest.raises(BufferError):
        buffer.append(0)  # the view pins the bytearray
    plain.release()
    buffer.append(0)


def test_decrypt_in_place_reads_encrypt_into_and_views(pair: Pair) -> None:
    client, server = pair
    out = bytearray(client.encrypted_size(64) + 100)
    for text in (b"x", b"two messages", bytes(range(64))):
        length = client.encrypt_into(text, out)
        with memoryview(out) as whole, whole[:length] as sealed:
            plain = server.decrypt_in_place(sealed)
            assert bytes(plain) == text
            plain.release()
    assert singletons_intact()


def test_decrypt_in_place_other_writables(pair: Pair) -> None:
    client, server = pair
    sealed = client.encrypt(b"mapped message")
    with mmap.mmap(-1, len(sealed)) as mapped:
        mapped[:] = sealed
        plain = server.decrypt_in_place(mapped)
        assert bytes(plain) == b"mapped message"
        plain.release()
    sealed = client.encrypt(b"abcd")
    words = (ctypes.c_uint16 * (len(sealed) // 2))()
    ctypes.memmove(words, sealed, len(sealed))
    assert bytes(server.decrypt_in_place(memoryview(words))) == b"abcd"


def test_decrypt_in_place_refuses(pair: Pair) -> None:
    client, server = pair
    sealed = client.encrypt(b"message")
    with pytest.raises(TypeError, match="read-only bytes"):
        server.decrypt_in_place(sealed)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="writable"):
        server.decrypt_in_place(memoryview(sealed))
    with pytest.raises(TypeError, match="str"):
        server.decrypt_in_place("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        server.decrypt_in_place(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contiguous"):
        server.decrypt_in_place(memoryview(bytearray(sealed) * 2)[::2])
    with pytest.raises(ValueError, match="empty"):
        server.decrypt_in_place(bytearray())
    with pytest.raises(ValueError, match="shorter"):
        server.decrypt_in_place(bytearray(b"\x01"))
    with pytest.raises(ValueError, match="trailer is 16 bytes"):
        server.decrypt_in_place(bytearray(b"\x10\0\0\0abc"))
    assert server.decrypt(sealed) == b"message"  # nothing was consumed


def test_decrypt_in_place_detects_tampering_and_wipes(pair: Pair) -> None:
    client, server = pair
    buffer = bytearray(client.encrypt(b"tamper with me"))
    buffer[-1] ^= 1
    start = header(client)
    head = bytes(buffer[:start])
    with pytest.raises(sspi_import.MessageAlteredError) as info:
        server.decrypt_in_place(buffer)
    assert info.value.function == "DecryptMessage"
    assert buffer[start:] == bytes(len(buffer) - start)  # maybe partly decrypted: zeroed
    assert buffer[:start] == head


# plaintext wiping -------------------------------------------------------------------------------


def test_encrypt_into_wipes_the_plaintext_when_sspi_fails() -> None:
    from sspi_import.testing import FakeSspi

    with FakeSspi(lifetime=0):
        client, server = sspi_import.loopback("NTLM")
        with client, server:
            out = bytearray(b"\xff" * client.encrypted_size(6))
            with pytest.raises(sspi_import.ContextExpiredError):
                client.encrypt_into(b"secret", out)
            start = header(client)
            assert out[start : start + 6] == bytes(6)
            assert b"secret" not in out


def test_decrypt_wipes_its_private_copy(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ciphertext copy SSPI decrypted in place is zeroed unless it is the result."""
    client, server = pair
    given: list[tuple[int, int]] = []
    wiped: list[tuple[int, int, int]] = []
    real_decrypt, real_memset = server._lib.DecryptMessage_bare, ctypes.memset

    def spy(handle: object, desc: Any, seq: int, qop: object) -> int:
        data = _buffers_at(desc)[1]  # the bare call gets the descriptor's address
        given.append((data.pvBuffer, data.cbBuffer))
        return real_decrypt(handle, desc, seq, qop)  # type: ignore[no-any-return]

    def memset(address: int, value: int, count: int) -> int:
        wiped.append((address, value, count))
        return real_memset(address, value, count)

    monkeypatch.setattr(server._lib, "DecryptMessage_bare", spy)
    monkeypatch.setattr(ctypes, "memset", memset)
    assert (
        server.decrypt(client.encrypt(b"the result is the buffer")) == b"the result is the buffer"
    )
    assert wiped == []  # decrypted in place and returned: nothing left behind
    sealed = bytearray(client.encrypt(b"partly decrypted?"))
    sealed[-1] ^= 1
    with pytest.raises(sspi_import.MessageAlteredError):
        server.decrypt(bytes(sealed))
    address, length = given[-1]
    assert wiped == [(address, 0, length)]


def _buffers_at(pointer: Any) -> Any:
    """The ``SecBuffer`` array of the descriptor a bare binding was given (its address)."""
    from sspi_import._raw.structs import SecBufferDesc

    return SecBufferDesc.from_address(pointer.value or 0).pBuffers


@pytest.mark.parametrize("prepared", [False, True])
def test_layouts_match_ctypes(prepared: bool) -> None:
    from sspi_import._raw.structs import SecBuffer, SecBufferDesc
    from sspi_import._secbuffers import Descriptor

    desc = Descriptor(3, bare=True)
    if prepared:  # as a context's message descriptor is
        desc.prepare()
    assert isinstance(desc.memory, SecBufferDesc)
    assert desc.pointer.value == desc.address == ctypes.addressof(desc.memory)
    assert desc.ulong.value == desc.address + ctypes.sizeof(SecBufferDesc) + 3 * ctypes.sizeof(
        SecBuffer
    )
    desc.fill(3, 16, 2, 0x1000, 64, 1, 0x2000, 8, 9, 0x3000)
    memory = desc.memory
    assert (memory.ulVersion, memory.cBuffers) == (0, 3)
    assert ctypes.addressof(memory.pBuffers.contents) == ctypes.addressof(memory.buffers)
    buffers = [(b.cbBuffer, b.BufferType, b.pvBuffer) for b in memory.buffers]
    assert buffers == [(16, 2, 0x1000), (64, 1, 0x2000), (8, 9, 0x3000)]
    assert desc.read(3) == (16, 2, 0x1000, 64, 1, 0x2000, 8, 9, 0x3000)
    assert desc.places(3) == (16, 0x1000, 64, 0x2000, 8, 0x3000)
    ctypes.c_uint32.from_address(desc.ulong.value or 0).value = 0x80000001
    assert desc.out() == 0x80000001 == memory.out
    if prepared:  # the bound readers read what the methods read
        for n in range(4):
            assert desc.places_of[n]() == desc.places(n)
            assert desc.read_out[n]() == (*desc.read(n), 0x80000001)


def test_a_packed_buffer_is_a_secbuffer() -> None:
    from sspi_import._raw.structs import SecBuffer
    from sspi_import._secbuffers import pack_buffer

    address = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 16  # every byte of it counts
    packed = pack_buffer(1024, 3, address)
    assert len(packed) == ctypes.sizeof(SecBuffer)
    buffer = SecBuffer.from_buffer_copy(packed)
    assert (buffer.cbBuffer, buffer.BufferType, buffer.pvBuffer) == (1024, 3, address)


@pytest.mark.parametrize("capacity", [1, 2, 3, 5])
def test_a_prepared_descriptor_writes_what_an_unprepared_one_does(capacity: int) -> None:
    """Each count the descriptor can hold, the header included; past 3, the general path."""
    from sspi_import._secbuffers import BUFFER, HEADER, Descriptor

    for count in range(capacity + 1):
        fields = [n for i in range(count) for n in (16 + i, 1 + i, 0x1000 * (i + 1))]
        plain, prepared = Descriptor(capacity, bare=True), Descriptor(capacity, bare=True)
        prepared.prepare()
        for desc in (plain, prepared):
            ctypes.memset(desc.address, 0xA5, ctypes.sizeof(desc.memory))
            desc.fill(count, *fields)
        assert prepared.read(count) == plain.read(count) == tuple(fields)
        assert (prepared.memory.ulVersion, prepared.memory.cBuffers) == (0, count)
        assert ctypes.cast(prepared.memory.pBuffers, ctypes.c_void_p).value == (
            prepared.address + HEADER
        )
        written = HEADER + BUFFER * count
        size = ctypes.sizeof(plain.memory)
        assert ctypes.string_at(prepared.address + HEADER, written - HEADER) == (
            ctypes.string_at(plain.address + HEADER, written - HEADER)
        )
        # Nothing past the buffers filled is written.
        assert ctypes.string_at(prepared.address + written, size - written) == (
            b"\xa5" * (size - written)
        )


# providers that answer elsewhere -----------------------------------------------------------------


def _moving(
    monkeypatch: pytest.MonkeyPatch, lib: object, name: str, index: int, keep: list[object]
) -> None:
    """Wrap ``lib.<name>``: after each call, copy buffer ``index`` elsewhere, point there."""
    real = getattr(lib, name)

    def call(*args: object) -> int:
        status: int = real(*args)
        reference = args[2] if isinstance(args[1], int) else args[1]  # the descriptor
        buffer = _buffers_at(reference)[index]
        moved = ctypes.create_string_buffer(ctypes.string_at(buffer.pvBuffer, buffer.cbBuffer))
        keep.append(moved)
        ctypes.memset(buffer.pvBuffer, 0xEE, buffer.cbBuffer)
        buffer.pvBuffer = ctypes.addressof(moved)
        return status

    monkeypatch.setattr(lib, name, call)


def test_encrypt_when_the_provider_moves_the_trailer(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = pair
    keep: list[object] = []
    _moving(monkeypatch, client._lib, "EncryptMessage_bare", 0, keep)
    sealed = client.encrypt(b"trailer elsewhere")
    assert server.decrypt(sealed) == b"trailer elsewhere"
    out = bytearray(client.encrypted_size(5))
    length = client.encrypt_into(b"again", out)
    assert server.decrypt(bytes(out[:length])) == b"again"


def test_decrypt_when_the_provider_moves_the_data(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = pair
    keep: list[object] = []
    _moving(monkeypatch, server._lib, "DecryptMessage_bare", 1, keep)
    assert server.decrypt(client.encrypt(b"data elsewhere")) == b"data elsewhere"
    buffer = bytearray(client.encrypt(b"brought back"))
    plain = server.decrypt_in_place(buffer)
    assert bytes(plain) == b"brought back"
    assert plain.obj is buffer
    plain.release()


def _padding_given(
    client: SecurityContext, block: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int, int]]:
    """Make ``client`` say its block size is ``block``; record each ``EncryptMessage``'s
    padding buffer as ``(address, length)`` (a NULL address as 0)."""
    trailer, _block, head = client._seal or client._sealing()
    client._seal = (trailer, block, head)
    given: list[tuple[int, int]] = []
    real = client._lib.EncryptMessage_bare

    def spy(handle: object, qop: int, desc: Any, seq: int) -> int:
        padding = _buffers_at(desc)[2]
        given.append((padding.pvBuffer or 0, padding.cbBuffer))
        return real(handle, qop, desc, seq)  # type: ignore[no-any-return]

    monkeypatch.setattr(client._lib, "EncryptMessage_bare", spy)
    return given


@pytest.mark.parametrize("method", ["encrypt", "wrap"])
def test_the_padding_gets_a_buffer_of_the_call_not_of_the_shared_descriptor(
    sspi_fake: FakeSspi, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """Padding is read back after the lock is released, when another thread's call may
    already be filling the context's one descriptor: so it is never placed there."""
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        given = _padding_given(client, 8, monkeypatch)  # as a block cipher's context says
        message = getattr(client, method)(b"own padding buffer")
        opened = server.decrypt(message) if method == "encrypt" else server.unwrap(message)
        assert opened == b"own padding buffer"
        desc = client._desc
        assert desc is not None
        ((address, length),) = given
        assert length == 8
        assert address != 0
        assert not desc.address <= address < desc.address + ctypes.sizeof(desc.memory)


def test_the_shared_descriptor_is_filled_only_under_the_lock(
    sspi_fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A context's message calls share one descriptor: a call another thread starts
    meanwhile waits for the lock before it writes there, so the running call's buffers
    are the ones it wrote until the provider has read them."""
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        server.decrypt(client.encrypt(b"warm"))  # the client's descriptor exists
        real = client._lib.EncryptMessage_bare
        seen: list[tuple[bytes, bytes, bool]] = []
        others: list[bytes] = []

        def spy(handle: object, qop: int, desc: Any, seq: int) -> int:
            if not seen:  # the first call: another thread starts one, which must wait
                size = ctypes.sizeof(client._desc.memory)  # type: ignore[union-attr]
                before = ctypes.string_at(desc.value, size)
                other = threading.Thread(
                    target=lambda: others.append(client.encrypt(b"the other call"))
                )
                other.start()
                other.join(0.2)
                seen.append((before, ctypes.string_at(desc.value, size), other.is_alive()))
                status: int = real(handle, qop, desc, seq)
                threads.append(other)
                return status
            return real(handle, qop, desc, seq)  # type: ignore[no-any-return]

        threads: list[threading.Thread] = []
        monkeypatch.setattr(client._lib, "EncryptMessage_bare", spy)
        first = client.encrypt(b"the first call")
        threads[0].join()
        ((before, after, waited),) = seen
        assert waited  # it was held at the lock, not at the descriptor
        assert after == before  # and wrote nothing there meanwhile
        assert server.decrypt(first) == b"the first call"
        assert server.decrypt(others[0]) == b"the other call"


@pytest.mark.parametrize("method", ["encrypt", "wrap"])
def test_without_a_block_the_padding_buffer_is_empty_at_a_valid_address(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A zero-length buffer still points at valid memory: no provider is handed NULL."""
    client, server = pair
    given = _padding_given(client, 0, monkeypatch)  # a stream cipher's (sspi-rs NTLM says so)
    message = getattr(client, method)(b"no padding")
    monkeypatch.undo()
    opened = server.decrypt(message) if method == "encrypt" else server.unwrap(message)
    assert opened == b"no padding"
    ((address, length),) = given
    assert length == 0
    assert address != 0


def _nested_at_read(context: SecurityContext, inner: Any) -> list[Any]:
    """Make ``inner()`` run at the context's next message read, as a finalizer or a
    signal handler can: on the same thread, after the provider call, before the read
    (the owner's lock is an RLock, so the nested call gets in). Returns its results."""
    desc = context._desc
    assert desc is not None
    done: list[Any] = []
    started: list[bool] = []

    def reader(real: Any) -> Any:
        def read() -> Any:
            if not started:  # the outer call's read; the nested call reads as usual
                started.append(True)
                done.append(inner())
            return real()

        return read

    desc.places_of = tuple(reader(real) for real in desc.places_of)
    desc.read_out = tuple(reader(real) for real in desc.read_out)
    return done


@pytest.mark.parametrize("method", ["encrypt", "decrypt", "wrap", "unwrap", "encrypt_into"])
def test_a_call_nested_between_the_provider_call_and_the_read_leaves_the_outer_one_whole(
    pair: Pair, method: str
) -> None:
    """The context's one descriptor holds the outer call's buffers until it reads them:
    a call on the same context nested there (same thread) puts them back when done."""
    client, server = pair
    server.decrypt(client.encrypt(b"warm"))  # both descriptors exist
    outer_data, inner_data = b"the outer message", b"the inner message, a longer one"
    if method in ("encrypt", "wrap", "encrypt_into"):
        seal = getattr(client, "wrap" if method == "wrap" else "encrypt")
        open_ = server.unwrap if method == "wrap" else server.decrypt
        inner = _nested_at_read(client, lambda: seal(inner_data))
        if method == "encrypt_into":
            out = bytearray(client.encrypted_size(len(outer_data)))
            outer = bytes(out[: client.encrypt_into(outer_data, out)])
        else:
            outer = seal(outer_data)
        # the outer call reached the provider first: it is opened first
        assert open_(outer) == outer_data
        assert open_(inner[0]) == inner_data
    else:
        seal = client.wrap if method == "unwrap" else client.encrypt
        opened = getattr(server, method)
        first, second = seal(outer_data), seal(inner_data)
        inner = _nested_at_read(server, lambda: opened(second))
        assert opened(first) == outer_data
        assert inner == [inner_data]
    assert not client._busy
    assert not server._busy


def test_a_released_memoryview_cannot_let_its_buffer_be_resized_during_the_call(
    sspi_fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library calls SSPI through a view of its own: another thread releasing the
    caller's memoryview meanwhile cannot free or move the memory SSPI writes."""
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        buffer = bytearray(client.encrypt(b"in place, under a released view"))
        caller_view = memoryview(buffer)
        real = server._lib.DecryptMessage_bare
        resized: list[BaseException | None] = []

        def spy(*args: Any) -> int:
            caller_view.release()  # what another thread can do while the DLL runs
            try:
                buffer.clear()
            except BufferError as exc:
                resized.append(exc)
            else:
                resized.append(None)
            return real(*args)  # type: ignore[no-any-return]

        monkeypatch.setattr(server._lib, "DecryptMessage_bare", spy)
        with server.decrypt_in_place(caller_view) as plain:
            assert bytes(plain) == b"in place, under a released view"
        assert len(resized) == 1
        assert isinstance(resized[0], BufferError)


def test_export_context_refuses_an_owner_that_is_not_a_context(sspi_fake: FakeSspi) -> None:
    """Credentials own an SSPI handle too, but not one ExportSecurityContext takes."""
    credentials = sspi_import.Credentials.acquire("NTLM", "outbound")
    with credentials, pytest.raises(TypeError, match="not Credentials"):
        sspi_import.export_context(credentials)  # type: ignore[arg-type]
    assert not sspi_fake.misuses


@pytest.mark.parametrize("provider", ["sspi_rs", "sspi_fake"])
def test_protecting_a_message_before_the_handshake_is_done_is_refused_plainly(
    request: pytest.FixtureRequest, provider: str
) -> None:
    """Not the provider's answer (sspi-rs: an out-of-sequence error; the fake: an invalid
    handle), which points away from the cause."""
    request.getfixturevalue(provider)
    identity = ALICE if provider == "sspi_rs" else None
    with (
        sspi_import.Credentials.acquire("NTLM", "outbound", identity) as out,
        sspi_import.Credentials.acquire("NTLM", "inbound", identity) as into,
        SecurityContext.initiator(out, "host/example") as client,
        SecurityContext.acceptor(into) as server,
    ):
        challenge = server.step(client.step(None))
        assert challenge is not None
        assert not client.complete
        assert not server.complete
        calls: list[Callable[[], bytes]] = [
            lambda: client.encrypt(b"early"),
            lambda: client.wrap(b"early"),
            lambda: server.decrypt(b"\x10\0\0\0" + bytes(40)),
            lambda: server.unwrap(bytes(40)),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="the handshake is not complete"):
                call()
        last = client.step(challenge)
        assert last is not None
        server.step(last)
        assert server.decrypt(client.encrypt(b"after")) == b"after"


def _sign_only_frame(client: SecurityContext, data: bytes) -> bytes:
    """A WinRM frame whose data was signed, not encrypted (a peer dropping encryption)."""
    from sspi_import import BufferType, IovBuffer

    result = client.wrap_iov(
        [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, data)], encrypt=False
    )
    token, body = (bytes(buffer.data) for buffer in result.buffers)
    return len(token).to_bytes(4, "little") + token + body


@pytest.mark.parametrize("method", ["decrypt", "decrypt_in_place"])
def test_a_sign_only_winrm_frame_is_refused_as_unwrap_refuses_it(
    sspi_fake: FakeSspi, method: str
) -> None:
    """The WinRM layout relies on encryption as much as wrap does: a peer cannot drop it
    silently on a context that negotiated confidentiality."""
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        frame = _sign_only_frame(client, b"clear on the wire")
        assert b"clear on the wire" in frame
        buffer = bytearray(frame)
        opening: Callable[[], object] = (
            (lambda: server.decrypt(frame))
            if method == "decrypt"
            else (lambda: server.decrypt_in_place(buffer))
        )
        with pytest.raises(sspi_import.UnencryptedMessageError):
            opening()
        if method == "decrypt_in_place":
            assert b"clear on the wire" not in buffer  # wiped, as for any refused message
        allowed = _sign_only_frame(client, b"allowed")
        if method == "decrypt":
            assert server.decrypt(allowed, allow_unencrypted=True) == b"allowed"
        else:
            with server.decrypt_in_place(bytearray(allowed), allow_unencrypted=True) as plain:
                assert bytes(plain) == b"allowed"
        with pytest.raises(TypeError, match="allow_unencrypted"):
            server.decrypt(allowed, allow_unencrypted="yes")  # type: ignore[arg-type]
