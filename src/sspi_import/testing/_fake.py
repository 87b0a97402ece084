"""``FakeSspi``: a simulated SSPI provider behind the real ctypes ABI.

Every function is a ctypes callback built from ``PROTOTYPES[name].functype``, so the
library calls it exactly as it calls ``secur32.dll``: same argument types, same
``SECURITY_STATUS`` results, same ownership rules (SSPI-allocated buffers come back
through ``FreeContextBuffer``, tokens through ``CloseHandle``). The state lives in
Python objects keyed by handle value; one ``RLock`` serializes the calls.

The implementation is split by job, one mixin per module: ``_state`` (tables, ledger,
misuse), ``_guard`` (counting, injected failures), ``_handshake`` (credentials and the
handshake), ``_attributes`` (queries, impersonation, packages), ``_messages``,
``_transfer`` (export and import, with ``_wire``) and ``_kernel32``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from ctypes import c_void_p
from typing import Any

from .. import library as _library
from .._raw.functions import PROTOTYPES
from ._attributes import Attributes
from ._guard import Guard
from ._handshake import Handshake
from ._kernel32 import Kernel32
from ._messages import Messages
from ._names import SIMULATED
from ._state import Misuse, Outstanding
from ._transfer import Transfer

__all__ = ["FakeSspi", "Misuse", "Outstanding", "install_fake"]


class FakeSspi(Guard, Handshake, Attributes, Messages, Transfer, Kernel32):
    r"""A simulated SSPI library: real ABI, real keyed crypto, leak and misuse tracking.

    ::

        with FakeSspi(user="EXAMPLE\\alice") as fake:   # installed as the library
            ...                                           # any sspi_import code
            fake.assert_no_leaks()

    ``user`` is who ``AcquireCredentialsHandleW`` with no auth data logs on as
    (``None``: there are no default credentials, ``SEC_E_NO_CREDENTIALS``).
    ``password``, when set, is the only password an acceptor accepts
    (``SEC_E_LOGON_DENIED`` otherwise); ``None`` accepts any. ``packages`` are the
    packages offered; Negotiate negotiates NTLM (or Kerberos when there is no NTLM).
    ``machine`` names the simulated computer: packed contexts are authenticated with a
    key derived from it, so another process with the same name can import them and one
    with another name refuses them (``SEC_E_INVALID_TOKEN``). ``lifetime`` (seconds) is
    how long a context lives. ``complete_needed`` makes the acceptor's last leg return
    ``SEC_I_COMPLETE_NEEDED`` (as sspi-rs NTLM does), to exercise ``CompleteAuthToken``.

    The handshake is three tokens: initiator (``SEC_I_CONTINUE_NEEDED``), acceptor
    (``SEC_I_CONTINUE_NEEDED``), initiator (``SEC_E_OK``), then the acceptor takes the
    last token (``SEC_E_OK``, no output). Acceptor contexts carry a logon token, so
    ``ExportSecurityContext`` hands one out for them (``None`` for initiators) and
    ``ImpersonateSecurityContext`` works on them, including on an imported acceptor
    context when the token was passed to ``ImportSecurityContextW``.

    The tokens are the simulated provider's own (a ``FKTK`` header and JSON), **not**
    NTLM, Kerberos or SPNEGO messages: a ``FakeSspi`` plays both sides of a handshake
    this library runs, but no real client or server (requests-ntlm, ``curl --ntlm``, a
    browser, pyspnego, Windows) can talk to it; given a real NTLM message, its acceptor
    answers ``SEC_E_INVALID_TOKEN``. Test against real peers with sspi-rs or on Windows.
    Channel bindings are taken and not compared: bindings that differ, or that only one
    side gave, authenticate here, where Windows and sspi-rs refuse them
    (``BadBindingsError``); test Extended Protection with sspi-rs or on Windows.

    Memory stays bounded however many handles a suite opens and closes: handle values
    are never reused, so a stale one is recognised by its number, and only the last
    1,024 freed buffer addresses are remembered to name a double free as such.
    """

    def __init__(
        self,
        user: str | None = "EXAMPLE\\alice",
        packages: Iterable[str] = ("NTLM", "Kerberos", "Negotiate"),
        machine: str = "FAKEHOST",
        *,
        password: str | None = None,
        lifetime: float = 10 * 3600.0,
        complete_needed: bool = False,
    ) -> None:
        if user is not None and (not isinstance(user, str) or not user):
            raise ValueError("user must be a non-empty str such as 'EXAMPLE\\alice', or None")
        if password is not None and not isinstance(password, str):
            raise TypeError(f"password must be a str or None, not {type(password).__name__}")
        if isinstance(packages, str):
            raise TypeError(
                f"packages must be a sequence of names, not one str: packages=({packages!r},)"
            )
        self.user = user
        self.packages: tuple[str, ...] = tuple(packages)
        if not self.packages or not all(isinstance(p, str) and p for p in self.packages):
            raise ValueError("packages must be a non-empty sequence of package names")
        if "Negotiate" in self.packages and not {"NTLM", "Kerberos"} & set(self.packages):
            raise ValueError("Negotiate needs NTLM or Kerberos among the packages to negotiate")
        if not isinstance(machine, str) or not machine:
            raise ValueError("machine must be a non-empty str")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            raise TypeError(f"lifetime must be a number of seconds, not {type(lifetime).__name__}")
        if not 0 <= lifetime < float("inf"):  # 0: contexts expire at once (nan: refused)
            raise ValueError(f"lifetime must be a finite number of seconds, not {lifetime}")
        self.machine = machine
        self.password = password
        self.lifetime: float = lifetime
        self.complete_needed = complete_needed
        self._init_state()
        self._init_guard()
        self._previous: list[_library.Api | None] = []
        self._callbacks: dict[str, Any] = {}
        self._addresses: dict[str, int] = {}
        for name in SIMULATED:
            proto = PROTOTYPES[name]  # the declared one: bare bindings share its symbol
            impl = getattr(self, f"_{name}")
            callback = proto.functype(self._guard(name, impl))
            self._callbacks[name] = callback
            self._addresses[name] = ctypes.cast(callback, c_void_p).value or 0

    def sspi_function_address(self, name: str) -> int | None:
        """The address of the callback implementing ``name`` (``None`` if not simulated)."""
        return self._addresses.get(name)

    def __repr__(self) -> str:
        """The settings, never a password."""
        return f"FakeSspi(user={self.user!r}, packages={self.packages!r}, machine={self.machine!r})"

    def __enter__(self) -> FakeSspi:
        """Install this fake as the library; the previous one comes back on exit."""
        self._previous.append(_library.swap(_library.load(self, repr(self))))
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Put the previous library back."""
        _library.swap(self._previous.pop())


_for_the_process: list[FakeSspi] = []  # what install_fake installed: kept alive with its callbacks


def install_fake(
    user: str | None = "EXAMPLE\\alice",
    packages: Iterable[str] = ("NTLM", "Kerberos", "Negotiate"),
    machine: str = "FAKEHOST",
    *,
    password: str | None = None,
    lifetime: float = 10 * 3600.0,
    complete_needed: bool = False,
) -> FakeSspi:
    r"""Install a new ``FakeSspi`` as this process's SSPI library, for the rest of its life.

    The arguments are ``FakeSspi``'s. Made for a process that has no ``with`` block
    around its life, a worker pool's worker above all: pass it as the pool's
    ``initializer``, so every worker has the simulated provider before its first task
    (a worker without one cannot import, nor pull a token)::

        pool = ProcessPoolExecutor(initializer=install_fake, initargs=("EXAMPLE\bob",))
        pool = ProcessPoolExecutor(initializer=functools.partial(install_fake, machine="M"))

    A function, not a ``FakeSspi`` method, because a pool sends its initializer to each
    worker by pickling it (``spawn`` and ``forkserver``): a module function and its plain
    arguments pickle, a ``FakeSspi`` (ctypes callbacks, a lock) does not; and the fake
    is made in the worker, as its own. Workers import the exporter's blobs only if
    their ``machine`` is the exporter's (the default ``"FAKEHOST"`` is the default of
    ``FakeSspi`` too).

    With every start method: under ``fork`` the worker starts with a copy of the
    parent's library (its ``FakeSspi`` and that fake's state at the fork, a lock
    another thread held included); this replaces it. Handles made before a fork stay
    the parent's: in the child, every call on a context, credentials handle or export
    token made before the fork raises ``InheritedHandleError`` (``close()`` only
    forgets it). Hand a context to a forked worker as to any other: export it.

    Returns the fake (its ``assert_no_leaks``, ``calls``... work as usual). Calling it
    again installs another; ``sspi_import.use_library(None)`` goes back to the default
    library. Inside a ``with FakeSspi()`` block, that block's end puts back the library
    it replaced, not this one: use it at a process's start.
    """
    fake = FakeSspi(
        user,
        packages,
        machine,
        password=password,
        lifetime=lifetime,
        complete_needed=complete_needed,
    )
    _library.swap(_library.load(fake, repr(fake)))
    _for_the_process[:] = [fake]  # the previous one stays alive with the handles it made
    return fake
