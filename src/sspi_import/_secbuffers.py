"""``SecBufferDesc``: the one way this library builds, passes and reads buffer descriptors.

A ``Descriptor`` is one block of ctypes memory: the ``SecBufferDesc`` header, its
``SecBuffer`` array right behind it, then a ``ULONG`` out-parameter
(``DecryptMessage``'s QOP). The
block is a ``SecBufferDesc`` (a subclass with those fields after it): a declared
prototype takes ``memory`` for its ``PSecBufferDesc`` argument as it is, and a bare
binding (which converts nothing) takes ``pointer``, its address made once.
``fill`` writes the header and every buffer in one ``struct`` call; ``read`` returns
each buffer's ``(length, type, address)`` as the provider left it, in one more.

A context's message calls share one prepared descriptor (``prepare``): filled, passed
and read back holding the context's lock (``_handle.OwnedHandle._call_bare``), so two
calls never use it at once. Nothing a call reads after the lock is released may live in
it (``EncryptMessage``'s padding gets a buffer of the call's own). A handshake step and
``wrap_iov`` make their own. ``SecBufferDesc`` and ``SecBuffer`` are both ``{ULONG,
ULONG, pointer}``: ``"IIP"`` in native layout, checked against the ctypes structures
(and so against the SDK headers) at import.
"""

from __future__ import annotations

import ctypes
import struct
from functools import partial
from typing import Any

from ._raw.constants import SECBUFFER_VERSION
from ._raw.structs import ULONG, SecBuffer, SecBufferDesc

__all__ = ["MAX_BUFFERS", "Descriptor", "pack_buffer"]

HEADER = ctypes.sizeof(SecBufferDesc)
BUFFER = ctypes.sizeof(SecBuffer)
MAX_BUFFERS = 64
"""The most buffers one descriptor holds (``wrap_iov``/``unwrap_iov``)."""

_ITEM = "IIP"
if struct.calcsize("@" + _ITEM) != BUFFER or struct.calcsize("@" + _ITEM) != HEADER:
    raise ImportError("SecBuffer and SecBufferDesc are not {ULONG, ULONG, pointer} here")

_FILL = [struct.Struct("@" + _ITEM * (1 + n)) for n in range(4)]  # up to 3: made now
_READ = [struct.Struct(f"@{HEADER}x" + _ITEM * n) for n in range(4)]
_PLACES = [struct.Struct(f"@{HEADER}x" + "I4xP" * n) for n in range(4)]  # the type skipped
_PREPARED = 4  # fill, places and read_out bound for 0 to 3 buffers

pack_buffer = struct.Struct("@" + _ITEM).pack
"""``pack_buffer(length, type, address)``: one ``SecBuffer`` as ``bytes``, for a bare
binding's ``PSecBuffer`` that C only reads (ctypes passes a ``bytes`` as the address of
its data): the import's packed context, a third of the cost of a ``SecBuffer()``."""

_ULONG = struct.Struct("@I")
if _ULONG.size != ctypes.sizeof(ULONG):  # pragma: no cover - ULONG is 32-bit everywhere
    raise ImportError("ULONG is not 32 bits")


_LAYOUTS: dict[int, type[SecBufferDesc]] = {}


def _layout(capacity: int) -> type[SecBufferDesc]:
    """The ``SecBufferDesc`` subclass with ``capacity`` buffers and a ULONG.

    Made once per capacity (read as ``_LAYOUTS.get(capacity) or _layout(capacity)``).
    """
    fields = [("buffers", SecBuffer * capacity), ("out", ULONG)]
    layout = type(f"SecBufferDesc{capacity}", (SecBufferDesc,), {"_fields_": fields})
    return _LAYOUTS.setdefault(capacity, layout)


class Descriptor:
    """A ``SecBufferDesc`` of up to ``capacity`` buffers, and a ULONG.

    Pass ``memory`` for a declared prototype's ``PSecBufferDesc``. Made ``bare=True``
    (for a bare binding), it also has ``pointer`` (its address, for the
    ``PSecBufferDesc``) and ``ulong`` (for the ``PULONG`` out-parameter), which ``out()``
    reads.
    """

    __slots__ = (
        "_ulong_at",
        "address",
        "capacity",
        "fills",
        "memory",
        "places_of",
        "pointer",
        "read_out",
        "ulong",
    )
    pointer: ctypes.c_void_p
    ulong: ctypes.c_void_p

    def __init__(self, capacity: int, *, bare: bool = False) -> None:
        if not 0 <= capacity <= MAX_BUFFERS:
            raise ValueError(f"a descriptor holds at most {MAX_BUFFERS} buffers, not {capacity}")
        layout = _LAYOUTS.get(capacity) or _layout(capacity)
        self.capacity = capacity
        self.memory: Any = layout()
        self.address = ctypes.addressof(self.memory)
        self._ulong_at = layout.out.offset
        self.fills: tuple[Any, ...] = ()
        if bare:  # for a bare binding: the addresses as pointer objects, made once
            self.pointer = ctypes.c_void_p(self.address)
            self.ulong = ctypes.c_void_p(self.address + self._ulong_at)

    def prepare(self) -> None:
        """Bind what a reused descriptor does per call into C callables, for ``n`` up to 3.

        ``fills[n](*fields)`` writes the header and ``n`` buffers from their fields alone
        (what ``fill(n, ...)`` does, about 2,000 instructions cheaper); ``places_of[n]()``
        is ``places(n)``; ``read_out[n]()`` is ``read(n)`` followed by ``out()``. Being C
        functions, they run under an owner's lock without a Python frame (or user code).
        Costs more than it saves for a descriptor used once.
        """
        start = self.address + HEADER
        counts = range(min(self.capacity + 1, _PREPARED))
        memory = self.memory
        self.fills = tuple(
            partial(_FILL[n].pack_into, memory, 0, SECBUFFER_VERSION, n, start) for n in counts
        )
        self.places_of = tuple(partial(_PLACES[n].unpack_from, memory) for n in counts)
        self.read_out = tuple(partial(_read_out(n, self._ulong_at), memory) for n in counts)

    def fill(self, count: int, *fields: int) -> None:
        """Write the header and ``count`` buffers, each ``length, type, address``."""
        if count < len(self.fills):
            self.fills[count](*fields)
            return
        packer = _FILL[count] if count < 4 else struct.Struct("@" + _ITEM * (1 + count))
        packer.pack_into(self.memory, 0, SECBUFFER_VERSION, count, self.address + HEADER, *fields)

    def read(self, count: int) -> tuple[int, ...]:
        """``length, type, address`` of each of the first ``count`` buffers, as left."""
        reader = _READ[count] if count < 4 else struct.Struct(f"@{HEADER}x" + _ITEM * count)
        return reader.unpack_from(self.memory)

    def places(self, count: int) -> tuple[int, ...]:
        """``length, address`` of each of the first ``count`` buffers (up to 3), as left."""
        return _PLACES[count].unpack_from(self.memory)

    def out(self) -> int:
        """The ``ULONG`` out-parameter, as the call left it."""
        value: int = _ULONG.unpack_from(self.memory, self._ulong_at)[0]
        return value


def _read_out(count: int, ulong_at: int) -> Any:
    """``unpack_from`` of ``count`` buffers' fields, then the ``ULONG`` at ``ulong_at``."""
    after = HEADER + BUFFER * count
    reader = struct.Struct(f"@{HEADER}x" + _ITEM * count + f"{ulong_at - after}xI")
    if reader.size != ulong_at + _ULONG.size:  # pragma: no cover - held by the layout test
        raise RuntimeError("the descriptor's ULONG is not where struct reads it")
    return reader.unpack_from
