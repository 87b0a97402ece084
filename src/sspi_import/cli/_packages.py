"""``sspi-import packages``: the installed security packages and whether they export.

Document: ``packages.schema.json`` (``"schema": "sspi-import/packages/2"``). Exit status:
0 listed; 1 the provider could not be used or the listing failed.

What is said about export keeps its two sources apart (issue 22): what is *known from
the name* (Windows documents export for NTLM, Kerberos, Negotiate and Schannel) and what
was *probed* (the provider's answer to ``ExportSecurityContext`` with an empty handle,
asked once). The probe proves a "no" (``SEC_E_UNSUPPORTED_FUNCTION``, or no such
function: sspi-rs) but never a "yes": secur32 on Windows and Wine's secur32, which
exports nothing, both answer ``SEC_E_INVALID_HANDLE`` to an empty handle. Version 1
said "yes" for every documented name, on Wine too.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
from ctypes import POINTER, byref, c_void_p
from typing import Any, Literal

from .. import library as _library
from .._buffers import read_utf16z
from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.structs import ULONG, SecBuffer, SecHandle, SecPkgInfoW
from ..errors import SspiError, SspiUnavailableError, UnsupportedFunctionError
from ..library import call
from ._output import SafeText, diagnose, dump_json, error_object, say, status_fields
from ._provider import Provider, ProviderError, choose_provider, installed

SCHEMA = "sspi-import/packages/2"

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
"""Packages whose contexts Windows documents as exportable (case-folded names).

No capability bit says whether a package implements ``ExportSecurityContext``; this is
what Microsoft documents: NTLM, Kerberos, Negotiate (the export holds the negotiated
package's context) and Schannel under its three names. Known from the name only: a
provider may list these names and export nothing (Wine).
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
    export: Export
    """``"no"`` (probed: the provider exports nothing), ``"by-name"`` (known from the name
    only: ``EXPORTING_PACKAGES``, and the probe did not refuse) or ``"unknown"``."""
    export_documented: bool
    """Known from the name: Windows documents export for this package."""

    def as_json(self) -> dict[str, Any]:
        """One entry of the document's ``packages``, with the capability names decoded."""
        data = dataclasses.asdict(self)
        data["capability_names"] = capability_names(self.capabilities)
        return data


Export = Literal["no", "by-name", "unknown"]


@dataclasses.dataclass(frozen=True)
class ExportProbe:
    """The provider's answer to ``ExportSecurityContext`` with an empty handle."""

    result: Literal["absent", "unsupported", "answers"]
    """``"absent"``: the library has no such function; ``"unsupported"``: it answered
    ``SEC_E_UNSUPPORTED_FUNCTION`` (no package of it exports: sspi-rs); ``"answers"``: any
    other status, which shows that the call is there and nothing about a package."""
    status: int | None
    """The status it answered (unsigned), ``None`` when the function is absent."""

    @property
    def refused(self) -> bool:
        """Whether the probe proves that this provider exports no context at all."""
        return self.result != "answers"

    def describe(self) -> str:
        """The answer, in words, for the legend."""
        if self.result == "absent":
            return "this provider has no ExportSecurityContext"
        symbol = status_fields(self.status)["symbol"] or f"0x{self.status:08X}"
        return f"this provider's ExportSecurityContext answered {symbol} to an empty handle"

    def as_json(self) -> dict[str, Any]:
        """The document's ``export_probe``: result, status and symbol (or nulls)."""
        return {"result": self.result, **status_fields(self.status)}


def probe_export(lib: _library.Api) -> ExportProbe:
    """Ask the provider ``ExportSecurityContext`` with an empty handle, once.

    A provider that implements the call rejects the handle (``SEC_E_INVALID_HANDLE``),
    one that does not says ``SEC_E_UNSUPPORTED_FUNCTION`` (sspi-rs). Asked of every
    provider, secur32 included: Wine's secur32 has the function and exports nothing.
    """
    if not lib.has("ExportSecurityContext"):
        return ExportProbe("absent", None)
    packed = SecBuffer()
    token = c_void_p()
    try:
        status = call(lib, "ExportSecurityContext", byref(SecHandle()), 0, packed, token)
    except UnsupportedFunctionError as exc:
        return ExportProbe("unsupported", exc.status)
    except SspiError as exc:
        status = exc.status  # it implements the call, and refused the empty handle
    finally:
        if packed.pvBuffer:  # a provider that "exports" an empty handle: free what it gave
            call(lib, "FreeContextBuffer", packed.pvBuffer)
    return ExportProbe("answers", status & 0xFFFF_FFFF)


def export_of(name: str, probe: ExportProbe) -> Export:
    """What can be said of ``name``'s export: probed "no", "by-name" or "unknown"."""
    if probe.refused:
        return "no"
    return "by-name" if name.casefold() in EXPORTING_PACKAGES else "unknown"


def enumerate_packages(lib: _library.Api) -> tuple[list[PackageInfo], ExportProbe]:
    """List the packages of ``lib`` with ``EnumerateSecurityPackagesW``; frees the array.

    Returns them with the export probe's answer. The array is freed in ``finally``:
    whatever fails after the call (the export probe, reading an entry), nothing is
    left outstanding.
    """
    count = ULONG()
    array = POINTER(SecPkgInfoW)()
    packages: list[PackageInfo] = []
    try:
        call(lib, "EnumerateSecurityPackagesW", byref(count), byref(array))
        probe = probe_export(lib)
        for index in range(count.value):
            entry = array[index]
            name = read_utf16z(entry.Name) if entry.Name else ""
            packages.append(
                PackageInfo(
                    name=name,
                    comment=read_utf16z(entry.Comment) if entry.Comment else "",
                    capabilities=entry.fCapabilities,
                    version=entry.wVersion,
                    rpc_id=entry.wRPCID,
                    max_token=entry.cbMaxToken,
                    export=export_of(name, probe),
                    export_documented=name.casefold() in EXPORTING_PACKAGES,
                )
            )
    finally:
        if array:
            call(lib, "FreeContextBuffer", ctypes.cast(array, c_void_p))
    return packages, probe


def legend(probe: ExportProbe) -> str:
    """What the EXPORT column means, with what was probed and what is known from names."""
    if probe.refused:
        return (
            f"export: no = probed: {probe.describe()}, so none of its packages exports a context."
        )
    return (
        "export: by name = known from the name only: Windows documents export for NTLM, "
        f"Kerberos, Negotiate and Schannel; probed: {probe.describe()}, which shows the "
        "call is there, not that a package exports (Wine's secur32 answers the same and "
        "exports nothing). 'sspi-import selftest' exports a real context. unknown = "
        "neither name nor probe says: try it."
    )


def run(args: argparse.Namespace, out: SafeText, err: SafeText) -> int:
    """The ``packages`` command."""
    provider: Provider | None = None
    packages: list[PackageInfo] = []
    probe: ExportProbe | None = None
    error: BaseException | None = None
    try:
        provider = choose_provider(args)
        with installed(provider) as lib:
            packages, probe = enumerate_packages(lib)
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
                "export_probe": None if probe is None else probe.as_json(),
                "packages": [p.as_json() for p in packages],
                "error": None if error is None else error_object(error),
            },
        )
        return 0 if error is None else 1
    if error is not None or probe is None:
        return 1
    out.write(f"provider: {provider.description}\n")  # a path is never broken
    width = max([len("NAME"), *(len(p.name) for p in packages)])
    head = f"{'NAME':<{width}}  {'MAX TOKEN':>9}  EXPORT   "
    say(out, head + "CAPABILITIES")
    for p in packages:
        caps = " ".join(capability_names(p.capabilities)) or "-"
        label = p.export.replace("-", " ")
        row = f"{p.name:<{width}}  {p.max_token:>9}  {label:<7}  "
        say(out, caps, " " * len(row) if len(row) < 50 else "    ", row)
    say(out, legend(probe), "  ")
    return 0
