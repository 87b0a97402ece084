"""Credentials for a handshake: ``Identity`` (explicit user and password) and ``Credentials``.

``Credentials`` owns a ``CredHandle`` through the library's one ownership mechanism
(``OwnedHandle``): ``close()`` frees it with ``FreeCredentialsHandle`` exactly once, the
finalizer frees a forgotten one with a ``ResourceWarning``, ``detach()`` hands it over.
``set_kdc_proxy`` names the KDC (sspi-rs) or KDC proxy (Windows) Kerberos uses with them
(``SetCredentialsAttributesW``).

The password is a secret: ``Identity`` never shows it, and the UTF-16 copy handed to
SSPI lives in a private ctypes buffer that is zeroed as soon as the call returns. (The
Python ``str`` itself cannot be wiped; keep its lifetime short.)
"""

from __future__ import annotations

import ctypes
import datetime
from collections.abc import Sequence
from ctypes import byref, c_uint16
from typing import Any, ClassVar, Literal, NoReturn

from ._buffers import encode_name
from ._checks import boolean
from ._filetime import filetime_to_datetime
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import (
    SEC_WINNT_AUTH_IDENTITY_EXW,
    SEC_WINNT_AUTH_IDENTITY_W,
    SecHandle,
    SecPkgCredentials_KdcProxySettingsW,
    TimeStamp,
)
from .errors import SspiError
from .library import api

__all__ = ["Credentials", "Identity", "Usage"]

Usage = Literal["outbound", "inbound", "both"]
_NEEDS_IDENTITY = (
    "the likely cause here: credentials for an acceptor (inbound) with no identity, which this "
    "provider cannot acquire: it has no logged-on account to accept with (sspi-rs "
    "needs one). Pass the account whose password the acceptor checks: "
    "Credentials.acquire(package, 'inbound', Identity(user, domain, password))"
)
"""What to do about ``SEC_E_INVALID_PARAMETER`` for inbound credentials without identity."""

_USAGES: dict[str, int] = {
    "outbound": C.SECPKG_CRED_OUTBOUND,
    "inbound": C.SECPKG_CRED_INBOUND,
    "both": C.SECPKG_CRED_BOTH,
}


def _check_text(value: object, what: str, *, empty: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(f"the {what} must be a str, not {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"the {what} is empty")
    if "\0" in value:
        raise ValueError(f"the {what} contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        # Checked by scanning, not by encoding: an encoded copy would be one more
        # unwipeable copy of the password.
        raise ValueError(f"the {what} contains a lone surrogate; it cannot be UTF-16")
    return value


_KDC_PACKAGES = frozenset({"kerberos", "negotiate"})
_KDC_PROXY_HEADER = ctypes.sizeof(SecPkgCredentials_KdcProxySettingsW)
_KDC_PROXY_MAX = 0xFFFE  # ProxyServerLength is a USHORT count of bytes (UTF-16: even)

_PACKAGE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.!")


def _package_list(package: str, packages: object) -> str | None:
    """The ``PackageList`` text (``"kerberos,!ntlm"``) for Negotiate, or ``None``."""
    if packages is None:
        return None
    if package.lower() != "negotiate":
        raise ValueError(f"a package list only applies to Negotiate credentials, not {package!r}")
    if isinstance(packages, str):
        items = packages.split(",")
    elif isinstance(packages, Sequence) and not isinstance(packages, bytes | bytearray):
        items = list(packages)
    else:
        raise TypeError(
            "packages must be a list of package names (a str is taken as the "
            f"comma-separated list), not {type(packages).__name__}"
        )
    if not items:
        raise ValueError("the package list is empty; pass None for Negotiate's default")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"each package must be a str, not {type(item).__name__}")
        name = item.removeprefix("!")
        if not name or not set(name) <= _PACKAGE_CHARS or "!" in name:
            raise ValueError(
                f"{item!r} is not a package name: use names such as 'kerberos', 'ntlm', "
                "or '!ntlm' to exclude one"
            )
    return ",".join(items)


def _wide_buffer(text: str) -> Any:
    """A NUL-terminated UTF-16 copy of ``text`` in ctypes memory that can be wiped.

    Filled unit by unit (code points, never an encoded ``bytes`` of a password that could
    not be wiped); text of the Basic Multilingual Plane, the usual case, in one step.
    """
    if not text or max(text) < "\ud800":  # no surrogates to make: one unit per character
        return (c_uint16 * (len(text) + 1))(*map(ord, text))
    units: list[int] = []
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            units.append(0xD800 | (code >> 10))
            units.append(0xDC00 | (code & 0x3FF))
        else:
            units.append(code)
    buffer = (c_uint16 * (len(units) + 1))(*units)
    units.clear()
    return buffer


class Identity:
    """An explicit user, domain and password for ``Credentials.acquire``.

    Immutable. ``repr``/``str`` show the user and domain, never the password. ``domain``
    may be empty (NTLM then uses the user's own). Bad input raises ``TypeError`` or
    ``ValueError`` at construction, with messages that never contain the password.
    """

    __slots__ = ("_domain", "_password", "_user")
    _user: str
    _domain: str
    _password: str

    def __init__(self, user: str, domain: str, password: str) -> None:
        object.__setattr__(self, "_user", _check_text(user, "user name", empty=False))
        object.__setattr__(self, "_domain", _check_text(domain, "domain", empty=True))
        object.__setattr__(self, "_password", _check_text(password, "password", empty=True))

    @property
    def user(self) -> str:
        """The user name."""
        return self._user

    @property
    def domain(self) -> str:
        """The domain (or ``""``)."""
        return self._domain

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Identity is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Identity is immutable")

    def __reduce__(self) -> NoReturn:
        # Pickling would write the password out in clear; refuse it.
        raise TypeError("an Identity holds a password and cannot be pickled")

    def __repr__(self) -> str:
        return f"Identity(user={self._user!r}, domain={self._domain!r}, password=<hidden>)"

    __str__ = __repr__

    def _acquire(
        self,
        credentials: Credentials,
        lib: Any,
        name: bytes,
        use: int,
        handle: SecHandle,
        expiry: Any,
        package_list: str | None = None,
    ) -> None:
        """Acquire ``credentials`` with this identity; the UTF-16 copies wiped after."""
        user = _wide_buffer(self._user)
        domain = _wide_buffer(self._domain)
        password = _wide_buffer(self._password)
        try:
            auth: Any
            if package_list is None:
                auth = SEC_WINNT_AUTH_IDENTITY_W(
                    ctypes.addressof(user),
                    len(user) - 1,  # characters, without the NUL
                    ctypes.addressof(domain),
                    len(domain) - 1,
                    ctypes.addressof(password),
                    len(password) - 1,
                    C.SEC_WINNT_AUTH_IDENTITY_UNICODE,
                )
            else:
                auth = _identity_ex(package_list, user, domain, password)
            credentials._acquire_handle(lib, name, use, byref(auth), handle, expiry)
        finally:
            for buffer in (user, domain, password):
                ctypes.memset(buffer, 0, ctypes.sizeof(buffer))


def _identity_ex(package_list: str, user: Any, domain: Any, password: Any) -> Any:
    """A ``SEC_WINNT_AUTH_IDENTITY_EXW`` naming ``package_list``; ``None`` parts stay NULL.

    The returned structure keeps the package list buffer referenced (``_keep``).
    """
    packages = _wide_buffer(package_list)
    auth = SEC_WINNT_AUTH_IDENTITY_EXW()
    auth.Version = C.SEC_WINNT_AUTH_IDENTITY_VERSION
    auth.Length = ctypes.sizeof(SEC_WINNT_AUTH_IDENTITY_EXW)
    for field, buffer in (("User", user), ("Domain", domain), ("Password", password)):
        if buffer is not None:
            setattr(auth, field, ctypes.addressof(buffer))
            setattr(auth, f"{field}Length", len(buffer) - 1)  # characters, without the NUL
    auth.Flags = C.SEC_WINNT_AUTH_IDENTITY_UNICODE
    auth.PackageList = ctypes.addressof(packages)
    auth.PackageListLength = len(packages) - 1
    auth._keep = packages  # alive as long as the structure
    return auth


class Credentials(OwnedHandle[SecHandle]):
    """An owned SSPI credentials handle (``AcquireCredentialsHandleW``).

    Made by ``Credentials.acquire``. ``close()`` (or ``with`` exit) frees it with
    ``FreeCredentialsHandle`` once; a context made from it keeps a reference, so the
    credentials stay alive for as long as the context does. Many contexts may step
    their handshakes with one ``Credentials`` at once; closing it while a step is
    using it frees it once that step is done. It cannot be copied or pickled.
    """

    _FREE: ClassVar[str] = "FreeCredentialsHandle"
    _kind: ClassVar[str] = "credentials handle"
    _how_to_move: ClassVar[str] = (
        "Acquire new credentials where they are needed; detach() gives up the raw pair"
    )
    _expiry: int
    _package: str
    _packages: str | None  # the Negotiate package list, as passed
    _usage: Usage

    def __init__(self) -> None:
        raise TypeError("use Credentials.acquire(package, usage, identity)")

    @classmethod
    def acquire(
        cls,
        package: str,
        usage: Usage = "outbound",
        identity: Identity | None = None,
        *,
        packages: Sequence[str] | str | None = None,
    ) -> Credentials:
        """Acquire credentials for ``package`` (``"NTLM"``, ``"Negotiate"``, ``"Kerberos"``).

        ``usage``: ``"outbound"`` for an initiator (client), ``"inbound"`` for an
        acceptor (server), ``"both"``. ``identity``: explicit credentials, or ``None``
        for the logged-on user's. Bad input raises ``TypeError``/``ValueError`` before
        any call; a refused acquisition raises the ``SspiError`` for its status.

        ``packages`` (Negotiate only) limits what Negotiate may pick: a list such as
        ``["kerberos", "!ntlm"]`` (``"!"`` excludes a package), or the same as one
        comma-separated string. It is passed as the ``PackageList`` of a
        ``SEC_WINNT_AUTH_IDENTITY_EXW`` (with ``identity``'s user, domain and password,
        or with none of them for the logged-on user). Windows and sspi-rs honour it
        (``"!ntlm"`` without a KDC then fails at the first step with
        ``NoAuthenticatingAuthorityError``). A provider that does not know the
        structure refuses the acquisition: that ``SspiError`` is raised with a detail
        saying the package list was passed as ``SEC_WINNT_AUTH_IDENTITY_EXW``, so
        retrying without ``packages`` is the test.
        """
        name = encode_name(package)
        if not isinstance(usage, str):
            raise TypeError(f"usage must be a str, not {type(usage).__name__}")
        use = _USAGES.get(usage)
        if use is None:
            raise ValueError(f"usage must be 'outbound', 'inbound' or 'both', not {usage!r}")
        if identity is not None and not isinstance(identity, Identity):
            raise TypeError(f"identity must be an Identity or None, not {type(identity).__name__}")
        package_list = _package_list(package, packages)
        lib = api()
        credentials = cls.__new__(cls)
        credentials._package = package
        credentials._packages = package_list
        credentials._usage = usage
        credentials._expiry = 0
        handle = SecHandle()
        expiry = TimeStamp()
        try:
            if identity is None:
                auth = (
                    None if package_list is None else _identity_ex(package_list, None, None, None)
                )
                credentials._acquire_handle(
                    lib, name, use, None if auth is None else byref(auth), handle, expiry
                )
            else:
                identity._acquire(credentials, lib, name, use, handle, expiry, package_list)
        except SspiError as exc:
            inbound = use & C.SECPKG_CRED_INBOUND and package_list is None
            if identity is None and inbound and exc.symbol == "SEC_E_INVALID_PARAMETER":
                raise type(exc)(exc.status, exc.function, _NEEDS_IDENTITY) from exc  # sspi-rs
            if package_list is None:
                raise
            detail = (
                f"the package list {package_list!r} was passed as a "
                "SEC_WINNT_AUTH_IDENTITY_EXW, which this provider may not support; "
                "retry without packages= to tell"
            )
            raise type(exc)(exc.status, exc.function, detail) from exc
        credentials._expiry = expiry.value
        return credentials

    def _acquire_handle(
        self, lib: Any, name: bytes, use: int, auth: Any, handle: SecHandle, expiry: Any
    ) -> None:
        self._own(
            lib,
            handle,
            "AcquireCredentialsHandleW",
            None,
            name,
            use,
            None,
            auth,
            None,
            None,
            byref(handle),
            byref(expiry),
        )

    def _written(self, handle: SecHandle) -> bool:
        return bool(handle.dwLower or handle.dwUpper)

    @property
    def package(self) -> str:
        """The package the credentials were acquired for."""
        return self._package

    @property
    def packages(self) -> tuple[str, ...] | None:
        """The Negotiate package list they were acquired with, or ``None``.

        As passed to ``acquire(..., packages=...)``: ``("kerberos", "!ntlm")``.
        """
        listed = self._packages
        return None if listed is None else tuple(listed.split(","))

    @property
    def usage(self) -> Usage:
        """``"outbound"``, ``"inbound"`` or ``"both"``."""
        return self._usage

    def set_kdc_proxy(self, server: str, *, force_proxy: bool = False) -> None:
        """Name the KDC Kerberos reaches with these credentials (``SetCredentialsAttributesW``).

        Sets ``SECPKG_CRED_ATTR_KDC_PROXY_SETTINGS``: a ``SecPkgCredentials_KdcProxySettingsW``
        (version 1) followed by ``server`` in UTF-16, its length in bytes, laid out as
        sspilib lays it out. Call it before the first ``step`` of a context made with these
        credentials: the KDC is asked at that step. What ``server`` names depends on the
        provider:

        - **Windows**: a KDC proxy (MS-KKDCP: Kerberos over HTTPS), for clients that cannot
          reach a domain controller. sspilib documents the form ``host[:port[:path]]``
          (port and path default to ``443:KdcProxy``), e.g.
          ``"kdcproxy.example.com:443:KdcProxy"``. ``force_proxy=True``
          (``KDC_PROXY_SETTINGS_FLAGS_FORCEPROXY``) uses the proxy even where a KDC could
          be reached directly.
        - **sspi-rs**: the KDC itself, written as for its ``SSPI_KDC_URL``:
          ``"tcp://kdc.example.test:88"`` or ``"udp://..."`` (a bare ``host:port`` is
          TCP). It comes before ``SSPI_KDC_URL*`` and the krb5.conf of ``KRB5_CONFIG``.
          It is not a proxy: ``https://...`` and the Windows form do not reach a KDC, and
          ``force_proxy`` changes nothing (measured).

        For Kerberos and Negotiate credentials only (``ValueError`` for another package).
        ``server`` must be a non-empty ``str`` without NUL characters, at most 32,767
        UTF-16 units; ``force_proxy`` a ``bool``. Bad input raises ``TypeError`` or
        ``ValueError`` before any call; a closed handle ``ValueError``; a refusal the
        ``SspiError`` of its status (``UnsupportedFunctionError`` from a provider that has
        no such attribute).
        """
        encoded = encode_name(server, "KDC proxy server")[:-2]  # counted: no NUL
        force = boolean(force_proxy, "force_proxy")
        if len(encoded) > _KDC_PROXY_MAX:
            raise ValueError(
                f"the KDC proxy server is {len(encoded) // 2} UTF-16 units long; the "
                f"structure holds at most {_KDC_PROXY_MAX // 2}"
            )
        if self._package.lower() not in _KDC_PACKAGES:
            raise ValueError(
                "a KDC proxy applies to Kerberos and Negotiate credentials, "
                f"not {self._package!r} ones"
            )
        block = ctypes.create_string_buffer(_KDC_PROXY_HEADER + len(encoded))
        header = SecPkgCredentials_KdcProxySettingsW.from_buffer(block)
        header.Version = C.KDC_PROXY_SETTINGS_V1
        header.Flags = C.KDC_PROXY_SETTINGS_FLAGS_FORCEPROXY if force else 0
        header.ProxyServerOffset = _KDC_PROXY_HEADER
        header.ProxyServerLength = len(encoded)
        ctypes.memmove(ctypes.addressof(block) + _KDC_PROXY_HEADER, encoded, len(encoded))
        self._call(
            "SetCredentialsAttributesW",
            C.SECPKG_CRED_ATTR_KDC_PROXY_SETTINGS,
            block,
            ctypes.sizeof(block),
        )

    @property
    def expiry(self) -> datetime.datetime | None:
        """When the credentials expire (aware UTC); ``None`` if the provider did not say."""
        return filetime_to_datetime(self._expiry)

    def _public(self, handle: SecHandle) -> tuple[int, int]:
        return (handle.dwLower, handle.dwUpper)

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<Credentials package={self._package!r} usage={self._usage!r} {state}>"
