"""``sspi-import packages``: the installed security packages and whether they export.

Document: ``packages.schema.json`` (``"schema": "sspi-import/packages/1"``). Exit status:
0 listed; 1 the provider could not be used or the listing failed.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
from ctypes import POINTER, byref, c_void_p
from typing import Any

from .. import library as _library
from .._buffers import read_utf16z
from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.structs import ULONG, SecBuffer, SecHandle, SecPkgInfoW
from ..errors import SspiError, SspiUnavailableError, UnsupportedFunctionError
from ..library import call
from ._output import SafeText, diagnose, dump_json, error_object, say
from ._provider import Provider, ProviderError, choose_provider, installed

SCHEMA = "sspi-import/packages/1"

EXPORTING_PACKAGES = frozenset(
    name.casefold()
    for name in (
        "NTLM",
        "Kerberos",
        "Negotiate",
        "Schannel",
        "Microsoft Unified Security Protocol Provider",
        "Default TLS SSP",
    )
)
"""Packages whose contexts Windows can export and import (case-folded names).

No capability bit says whether a package implements ``ExportSecurityContext``; this is
what Microsoft documents and what the library's users rely on: NTLM, Kerberos,
Negotiate (the export holds the negotiated package's context) and Schannel under its
three names. ``packages`` answers "yes" for these, "no" when the provider itself does
not implement the call, and "unknown" for every other package.
"""

_CAPABILITIES: tuple[tuple[str, int], ...] = tuple(
    (name.removeprefix("SECPKG_FLAG_"), value)
    for name, value in vars(C).items()
    if name.startswith("SECPKG_FLAG_") and isinstance(value, int)
)


def capability_names(flags: int) -> list[str]:
    """Names of the ``SECPKG_FLAG_*`` bits set in ``flags``, without the prefix.

    Bits no constant names are given as hex, so nothing is silently dropped.
    """
    names = [name for name, value in _CAPABILITIES if flags & value]
    rest = flags & ~sum(value for _, value in _CAPABILITIES)
    if rest:
        names.append(f"0x{rest:08X}")
    return names


@dataclasses.dataclass(frozen=True)
class PackageInfo:
    """One installed security package, as ``EnumerateSecurityPackagesW`` lists it."""

    name: str
    comment: str
    capabilities: int
    version: int
    rpc_id: int
    max_token: int
    export: str
    """``"yes"``, ``"no"`` or ``"unknown"``: see ``EXPORTING_PACKAGES``."""

    def as_json(self) -> dict[str, Any]:
        """One entry of the document's ``packages``, with the capability names decoded."""
        data = dataclasses.asdict(self)
        data["capability_names"] = capability_names(self.capabilities)
        return data


def provider_exports(lib: _library.Api, provider: Provider) -> bool:
    """Whether the provider implements ``ExportSecurityContext`` at all.

    secur32 does. Any other library is asked with an empty handle: a provider that
    implements the call rejects the handle (``SEC_E_INVALID_HANDLE``), one that does not
    says ``SEC_E_UNSUPPORTED_FUNCTION`` (sspi-rs, Wine).
    """
    if provider.kind == "secur32":
        return True
    if not lib.has("ExportSecurityContext"):
        return False
    packed = SecBuffer()
    token = c_void_p()
    try:
        call(lib, "ExportSecurityContext", byref(SecHandle()), 0, byref(packed), byref(token))
    except UnsupportedFunctionError:
        return False
    except SspiError:
        return True  # it implements the call, and refused the empty handle
    finally:
        if packed.pvBuffer:  # a provider that "exports" an empty handle: free what it gave
            call(lib, "FreeContextBuffer", packed.pvBuffer)
    return True


def enumerate_packages(lib: _library.Api, provider: Provider) -> list[PackageInfo]:
    """List the packages of ``lib`` with ``EnumerateSecurityPackagesW``; frees the array.

    The array is freed in ``finally``: whatever fails after the call (the export probe,
    reading an entry), nothing is left outstanding.
    """
    count = ULONG()
    array = POINTER(SecPkgInfoW)()
    packages: list[PackageInfo] = []
    try:
        call(lib, "EnumerateSecurityPackagesW", byref(count), byref(array))
        exports = provider_exports(lib, provider)
        for index in range(count.value):
            entry = array[index]
            name = read_utf16z(entry.Name) if entry.Name else ""
            if not exports:
                export = "no"
            elif name.casefold() in EXPORTING_PACKAGES:
                export = "yes"
            else:
                export = "unknown"
            packages.append(
                PackageInfo(
                    name=name,
                    comment=read_utf16z(entry.Comment) if entry.Comment else "",
                    capabilities=entry.fCapabilities,
                    version=entry.wVersion,
                    rpc_id=entry.wRPCID,
                    max_token=entry.cbMaxToken,
                    export=export,
                )
            )
    finally:
        if array:
            call(lib, "FreeContextBuffer", ctypes.cast(array, c_void_p))
    return packages


_LEGEND = (
    "export: yes = NTLM, Kerberos, Negotiate or Schannel (Windows exports these); "
    "no = this provider does not implement ExportSecurityContext; "
    "unknown = no capability bit says, try it"
)


def run(args: argparse.Namespace, out: SafeText, err: SafeText) -> int:
    """The ``packages`` command."""
    provider: Provider | None = None
    packages: list[PackageInfo] = []
    error: BaseException | None = None
    try:
        provider = choose_provider(args)
        with installed(provider) as lib:
            packages = enumerate_packages(lib, provider)
    except ProviderError as exc:
        provider, error = exc.provider, exc
    except (SspiError, SspiUnavailableError) as exc:  # the listing itself failed
        error = exc
    assert provider is not None  # choose_provider returned or raised ProviderError
    if error is not None:
        diagnose(err, "packages", str(error))
    elif provider.note:
        diagnose(err, "packages", provider.note)
    if args.json:
        dump_json(
            out,
            {
                "schema": SCHEMA,
                "ok": error is None,
                "provider": provider.as_json(),
                "packages": [p.as_json() for p in packages],
                "error": None if error is None else error_object(error),
            },
        )
        return 0 if error is None else 1
    if error is not None:
        return 1
    out.write(f"provider: {provider.description}\n")  # a path is never broken
    width = max([len("NAME"), *(len(p.name) for p in packages)])
    head = f"{'NAME':<{width}}  {'MAX TOKEN':>9}  EXPORT   "
    say(out, head + "CAPABILITIES")
    for p in packages:
        caps = " ".join(capability_names(p.capabilities)) or "-"
        row = f"{p.name:<{width}}  {p.max_token:>9}  {p.export:<7}  "
        say(out, caps, " " * len(row) if len(row) < 50 else "    ", row)
    say(out, _LEGEND, "  ")
    return 0
