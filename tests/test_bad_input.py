"""Bad input gets a clear Python error before any DLL call (issue 19, items 11 to 14).

Every refusal is checked against FakeSspi's call counts: no simulated function was
called while the argument was being refused. Over-4-GiB input is a read-only view of an
anonymous ``mmap`` (address space only: the pages are never touched), and each refusal
is held to copying nothing: ``tracemalloc`` sees no allocation near its size (a copy
made and then truncated, or a ``MemoryError`` for a copy that did not fit, was what the
issue found).
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, cast

import pytest

import sspi_import
from sspi_import import (
    BufferType,
    ChannelBindings,
    ExportedContext,
    IovBuffer,
    RequestFlags,
    SecurityContext,
)
from sspi_import.testing import FakeSspi
from sspi_import.testing._names import SIMULATED, SspiFunction

HUGE = 2**32 + 1  # one byte more than a SecBuffer (a ULONG length) can hold
COPY_LIMIT = 64 * 2**20  # what a refusal may allocate: far below one copy of the input
ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")


def _calls(fake: FakeSspi) -> int:
    return sum(fake.calls(cast("SspiFunction", name)) for name in SIMULATED)


def refused(fake: FakeSspi, kind: type[Exception], match: str, call: Callable[[], object]) -> None:
    """``call()`` raises ``kind`` matching ``match`` without any DLL call or large copy."""
    before = _calls(fake)
    tracemalloc.start()
    try:
        with pytest.raises(kind, match=match):
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _calls(fake) == before, "a DLL function was called before the refusal"
    assert peak < COPY_LIMIT, f"{peak} bytes allocated while refusing: the input was copied"


@pytest.fixture
def pair(sspi_fake: FakeSspi) -> Iterator[tuple[SecurityContext, SecurityContext]]:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        yield client, server


# Over 4 GiB ------------------------------------------------------------------------------

needs_64_bits = pytest.mark.skipif(
    sys.maxsize < 2**32, reason="a 32-bit process cannot address a buffer over 4 GiB"
)


@pytest.fixture
def huge() -> Iterator[memoryview]:
    """A read-only view of ``HUGE`` bytes of zeros, none of them in memory."""
    with mmap.mmap(-1, HUGE) as mapped:
        view = memoryview(mapped).toreadonly()
        try:
            yield view
        finally:
            view.release()


@needs_64_bits
def test_iov_refuses_a_read_only_buffer_over_4_gib(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext], huge: memoryview
) -> None:
    client, server = pair
    for kind in (BufferType.READONLY_WITH_CHECKSUM, BufferType.READONLY, BufferType.DATA):
        buffers = [IovBuffer(kind, huge), IovBuffer(BufferType.TOKEN)]
        refused(
            sspi_fake, ValueError, "at most 4294967295 bytes", partial(client.wrap_iov, buffers)
        )
    stream = [IovBuffer(BufferType.STREAM, huge), IovBuffer(BufferType.DATA)]
    refused(sspi_fake, ValueError, "at most 4294967295 bytes", lambda: server.unwrap_iov(stream))


@needs_64_bits
@pytest.mark.parametrize(
    "make",
    [
        lambda data: ChannelBindings(application_data=data),
        lambda data: ChannelBindings(initiator_address=data),
        lambda data: ChannelBindings(acceptor_address=data),
        ChannelBindings.tls_server_end_point,
        ChannelBindings.from_bytes,
    ],
    ids=["application_data", "initiator_address", "acceptor_address", "tls", "from_bytes"],
)
def test_channel_bindings_refuse_input_over_4_gib(
    sspi_fake: FakeSspi, huge: memoryview, make: Callable[[memoryview], object]
) -> None:
    refused(sspi_fake, ValueError, "32-bit", lambda: make(huge))


@needs_64_bits
def test_from_bytes_refuses_a_payload_over_4_gib_without_copying_it(
    sspi_fake: FakeSspi, huge: memoryview
) -> None:
    refused(sspi_fake, ValueError, "bad magic", lambda: ExportedContext.from_bytes(huge))
    with mmap.mmap(-1, HUGE) as mapped:
        # A header that says what a real payload says (its blob is 10 bytes): the rest is
        # trailing bytes. Only the first page is touched.
        struct.pack_into("<4sBBHIQII", mapped, 0, b"SSPX", 1, 0, 0, 0, 0, 0, 10)
        with memoryview(mapped) as writable, writable.toreadonly() as view:
            refused(
                sspi_fake, ValueError, "trailing bytes", lambda: ExportedContext.from_bytes(view)
            )
            refused(
                sspi_fake,
                ValueError,
                "trailing bytes",
                lambda: ExportedContext.from_bytes(writable),
            )


def test_from_bytes_reads_views_and_bytearrays_as_bytes(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext]
) -> None:
    """What from_bytes reads in place reads back the same as bytes do."""
    _client, server = pair
    exported = server.export()
    exported.close()  # a payload without a token: read as often as wanted
    payload = exported.to_bytes()
    for data in (payload, bytearray(payload), memoryview(payload), memoryview(b"x" + payload)[1:]):
        copy = ExportedContext.from_bytes(data)
        assert (copy.package, copy.blob, copy.buffer_type) == ("NTLM", exported.blob, 0)
        assert type(copy.blob) is bytes
    strided = memoryview(bytes(b for byte in payload for b in (byte, 0)))[::2]
    assert ExportedContext.from_bytes(strided).blob == exported.blob


# Checked before any credentials are acquired ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "kind", "match"),
    [
        ({"flags": -1}, ValueError, "unknown request flags"),
        ({"flags": 1 << 40}, ValueError, "unknown request flags"),
        ({"flags": "MUTUAL_AUTH"}, TypeError, "flags"),
        ({"flags": True}, TypeError, "flags"),
        ({"flags": RequestFlags.PROMPT_FOR_CREDS}, ValueError, "acceptor too"),
        ({"target": ""}, ValueError, "target name is empty"),
        ({"target": "host/\0x"}, ValueError, "NUL"),
        ({"target": 5}, TypeError, "target name"),
        ({"package": ""}, ValueError, "package name is empty"),
        ({"package": b"NTLM"}, TypeError, "package name"),
        ({"identity": "alice"}, TypeError, "Identity"),
    ],
)
def test_loopback_refuses_bad_arguments_before_acquiring_credentials(
    sspi_fake: FakeSspi, kwargs: dict[str, Any], kind: type[Exception], match: str
) -> None:
    refused(sspi_fake, kind, match, lambda: sspi_import.loopback(**kwargs))
    assert sspi_fake.calls("AcquireCredentialsHandleW") == 0


# Smaller ones ----------------------------------------------------------------------------


def test_exported_context_cannot_be_initialised_again(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext]
) -> None:
    _client, server = pair
    with server.export() as exported:
        token, blob = exported.token, exported.blob
        assert token is not None
        refused(
            sspi_fake,
            TypeError,
            "already set up",
            lambda: exported.__init__("NTLM", b"another blob"),  # type: ignore[misc]
        )
        assert (exported.token, exported.blob, exported.closed) == (token, blob, False)
    assert exported.closed  # the token it kept was closed, once


@pytest.mark.parametrize(
    ("length", "kind"),
    [(1.5, TypeError), ("a", TypeError), (True, TypeError), (None, TypeError), (-1, ValueError)],
)
def test_encrypted_size_takes_an_int_length_only(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext], length: Any, kind: type
) -> None:
    client, _server = pair
    client.encrypted_size(1)  # sizes cached: a refusal below is not a missing query
    refused(sspi_fake, kind, "the message length", lambda: client.encrypted_size(length))
    refused(sspi_fake, ValueError, "at most", lambda: client.encrypted_size(2**32))


@pytest.mark.parametrize("kind", [1.0, True, "DATA", None])
def test_iov_buffer_type_must_be_an_int(sspi_fake: FakeSspi, kind: Any) -> None:
    refused(sspi_fake, TypeError, "buffer type must be an int", lambda: IovBuffer(kind))


@pytest.mark.parametrize("encrypt", ["yes", 1, None])
def test_wrap_encrypt_must_be_a_bool(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext], encrypt: Any
) -> None:
    client, server = pair
    refused(
        sspi_fake,
        TypeError,
        "encrypt must be True or False",
        lambda: client.wrap(b"d", encrypt=encrypt),
    )
    data = [IovBuffer(BufferType.DATA, bytearray(b"d")), IovBuffer(BufferType.TOKEN)]
    refused(
        sspi_fake,
        TypeError,
        "encrypt must be True or False",
        lambda: client.wrap_iov(data, encrypt=encrypt),
    )
    message = client.wrap(b"d")
    refused(
        sspi_fake,
        TypeError,
        "allow_unencrypted must be True or False",
        lambda: server.unwrap(message, allow_unencrypted=encrypt),
    )


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (-1, "unknown export flags -0x1"),
        (-4, "unknown export flags"),
        (1 << 40, "unknown export flags"),
        (4, "SECPKG_CONTEXT_EXPORT_TO_KERNEL is for kernel-mode callers only"),
    ],
)
def test_export_flags_say_what_is_wrong(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext], flags: int, match: str
) -> None:
    _client, server = pair
    refused(sspi_fake, ValueError, match, lambda: server.export(flags))


@pytest.mark.parametrize("pid", [2**31, 2**31 + 7, 2**32 - 1])
def test_a_pid_past_pid_t_fails_cleanly_in_fakesspi(
    sspi_fake: FakeSspi, pair: tuple[SecurityContext, SecurityContext], pid: int
) -> None:
    """FakeSspi's OpenProcess refuses it as kernel32 refuses a process that does not
    exist (no internal OverflowError from os.kill), and the library says so."""
    _client, server = pair
    with server.export() as exported:
        with pytest.raises(ProcessLookupError, match=f"process {pid}: there is no such process"):
            exported.for_process(pid)
        assert sspi_fake.calls("OpenProcess") == 1
        assert sspi_fake.calls("DuplicateHandle") == 0
        refused(sspi_fake, ValueError, "not a process id", lambda: exported.for_process(2**32))
    assert sspi_fake.internal_errors == []
    assert os.getpid() < 2**31  # the pids above are no process here
