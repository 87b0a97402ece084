"""``SecBufferDesc``: the one way this library builds, passes and reads buffer descriptors.

A ``Descriptor`` is one block of ctypes memory: the ``SecBufferDesc`` header, its
``SecBuffer`` array right behind it, then ``room`` bytes for the provider (block padding
for ``EncryptMessage``) and a ``ULONG`` out-parameter (``DecryptMessage``'s QOP). The
block is a ``SecBufferDesc`` (a subclass with those fields after it): a declared
prototype takes ``memory`` for its ``PSecBufferDesc`` argument as it is, and a bare
binding (which converts nothing) takes ``pointer``, its address made once.
``fill`` writes the header and every buffer in one ``struct`` call; ``read`` returns
each buffer's ``(length, type, address)`` as the provider left it, in one more.

Message calls reuse descriptors (``Descriptors``: taken and given back per call, so two
threads never share one); a handshake step makes its own. ``SecBufferDesc`` and
``SecBuffer`` are both ``{ULONG, ULONG, pointer}``: ``"IIP"`` in native layout, checked
against the ctypes structures (and so against the SDK headers) at import.
"""

from __future__ import annotations

import ctypes
import struct
from functools import partial
from typing import Any

from ._raw.constants import SECBUFFER_VERSION
from ._raw.structs import ULONG, SecBuffer, SecBufferDesc

__all__ = ["MAX_BUFFERS", "Descriptor", "Descriptors"]

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

_ULONG = struct.Struct("@I")
if _ULONG.size != ctypes.sizeof(ULONG):  # pragma: no cover - ULONG is 32-bit everywhere
    raise ImportError("ULONG is not 32 bits")


_LAYOUTS: dict[tuple[int, int], type[SecBufferDesc]] = {}


def _layout(capacity: int, room: int) -> type[SecBufferDesc]:
    """The ``SecBufferDesc`` subclass with ``capacity`` buffers, ``room`` bytes and a ULONG."""
    layout = _LAYOUTS.get((capacity, room))
    if layout is None:
        fields = [
            ("buffers", SecBuffer * capacity),
            ("room", ctypes.c_char * room),
            ("out", ULONG),
        ]
        layout = type(f"SecBufferDesc{capacity}", (SecBufferDesc,), {"_fields_": fields})
        _LAYOUTS[(capacity, room)] = layout
    return layout


class Descriptor:
    """A ``SecBufferDesc`` of up to ``capacity`` buffers, ``room`` spare bytes and a ULONG.

    Pass ``memory`` for a declared prototype's ``PSecBufferDesc``. Made ``bare=True``
    (for a bare binding, and reused), it also has ``pointer`` (its address, for the
    ``PSecBufferDesc``) and ``ulong`` (for the ``PULONG`` out-parameter), which ``out()``
    reads. ``room_at`` is the address of the spare bytes.
    """

    __slots__ = (
        "_fills",
        "_ulong_at",
        "address",
        "capacity",
        "memory",
        "pointer",
        "room_at",
        "ulong",
    )
    pointer: ctypes.c_void_p
    ulong: ctypes.c_void_p

    def __init__(self, capacity: int, room: int = 0, *, bare: bool = False) -> None:
        if not 0 <= capacity <= MAX_BUFFERS:
            raise ValueError(f"a descriptor holds at most {MAX_BUFFERS} buffers, not {capacity}")
        layout = _layout(capacity, room)
        self.capacity = capacity
        self.memory: Any = layout()
        self.address = ctypes.addressof(self.memory)
        self.room_at = self.address + HEADER + BUFFER * capacity
        self._ulong_at = layout.out.offset
        self._fills: tuple[Any, ...] = ()
        if bare:  # for a bare binding: the addresses as pointer objects, made once
            self.pointer = ctypes.c_void_p(self.address)
            self.ulong = ctypes.c_void_p(self.address + self._ulong_at)

    def prepare(self) -> None:
        """Bind the header's fields into a packer per count (up to 3), for a reused descriptor.

        A ``fill`` then passes only the buffers' fields: about 2,000 instructions less per
        call than packing them all through this method's arguments. Costs more than it
        saves for a descriptor used once.
        """
        start = self.address + HEADER
        self._fills = tuple(
            partial(_FILL[n].pack_into, self.memory, 0, SECBUFFER_VERSION, n, start)
            for n in range(min(self.capacity, len(_FILL) - 1) + 1)
        )

    def fill(self, count: int, *fields: int) -> None:
        """Write the header and ``count`` buffers, each ``length, type, address``."""
        if count < len(self._fills):
            self._fills[count](*fields)
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


class Descriptors:
    """Descriptors one owner reuses: ``take()`` one, ``give()`` it back after the call.

    A list's ``pop``/``append`` are single operations, so two threads calling at once
    never get the same one (the second makes a new one); one lost to an interrupt
    between the two is only garbage.
    """

    __slots__ = ("_make", "_spare")

    def __init__(self, capacity: int, room: int = 0) -> None:
        self._spare: list[Descriptor] = []
        self._make = (capacity, room)

    def take(self) -> Descriptor:
        """A descriptor no other call is using."""
        try:
            return self._spare.pop()
        except IndexError:
            capacity, room = self._make
            descriptor = Descriptor(capacity, room, bare=True)
            descriptor.prepare()
            return descriptor

    def give(self, descriptor: Descriptor) -> None:
        """Return ``descriptor`` for the next call (at most two are kept)."""
        spare = self._spare
        if len(spare) < 2:
            spare.append(descriptor)
