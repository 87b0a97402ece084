"""A minimal DER walk: just enough of X.509 to reach ``Certificate.signatureAlgorithm``.

RFC 5929's ``tls-server-end-point`` binds a certificate with the hash of its signature
algorithm (``bindings.ChannelBindings.tls_server_end_point``), so the algorithm must be
read from the DER certificate, without a dependency: a TLV walk over the outer
``SEQUENCE``, ``tbsCertificate`` and the ``AlgorithmIdentifier`` after it, and the
RSASSA-PSS parameters that name their hash. Anything else is refused with
``ValueError``; nothing is decoded that the hash choice does not need.
"""

from __future__ import annotations

__all__ = ["pss_hash_algorithm", "signature_algorithm"]

_SEQUENCE, _OID_TAG, _CONTEXT_0 = 0x30, 0x06, 0xA0


def _element(der: bytes, pos: int, what: str) -> tuple[int, int, int]:
    """``(tag, content_start, content_end)`` of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError(f"not a DER certificate: {what} is cut short")
    tag = der[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError(f"not a DER certificate: {what} has a multi-byte tag")
    first = der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError(f"not a DER certificate: {what} has a bad length (indefinite or huge)")
        if pos + count > len(der):
            raise ValueError(f"not a DER certificate: {what} is cut short")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(der):
        raise ValueError(f"not a DER certificate: {what} runs past the end of the data")
    return tag, pos, end


def _oid(der: bytes, start: int, end: int) -> str:
    content = der[start:end]
    if not content:
        raise ValueError("not a DER certificate: an empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise ValueError("not a DER certificate: an OBJECT IDENTIFIER is cut short")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _algorithm(der: bytes, pos: int, what: str) -> tuple[str, int, int]:
    """``(oid, parameters_start, end)`` of the AlgorithmIdentifier at ``pos``."""
    tag, start, end = _element(der, pos, what)
    if tag != _SEQUENCE:
        raise ValueError(f"not a DER certificate: {what} is not a SEQUENCE")
    tag, oid_start, oid_end = _element(der, start, f"the OID of {what}")
    if tag != _OID_TAG:
        raise ValueError(f"not a DER certificate: {what} does not start with an OID")
    return _oid(der, oid_start, oid_end), oid_end, end


def signature_algorithm(der: bytes) -> tuple[str, bytes]:
    """``(OID, parameters)`` of a DER certificate's ``signatureAlgorithm``.

    ``parameters`` are the DER bytes after the OID inside the AlgorithmIdentifier
    (empty when there are none).
    """
    tag, start, end = _element(der, 0, "the certificate")
    if tag != _SEQUENCE or end != len(der):
        raise ValueError("not a DER certificate: expected one SEQUENCE spanning the data")
    tag, _, tbs_end = _element(der, start, "tbsCertificate")
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate: tbsCertificate is not a SEQUENCE")
    oid, parameters, algorithm_end = _algorithm(der, tbs_end, "signatureAlgorithm")
    return oid, der[parameters:algorithm_end]


def pss_hash_algorithm(parameters: bytes) -> str | None:
    """The ``hashAlgorithm [0]`` OID of RSASSA-PSS-params; ``None`` when absent (SHA-1)."""
    if not parameters:
        return None
    tag, seq_start, seq_end = _element(parameters, 0, "RSASSA-PSS parameters")
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate: RSASSA-PSS parameters are not a SEQUENCE")
    if seq_start >= seq_end or parameters[seq_start] != _CONTEXT_0:
        return None  # hashAlgorithm DEFAULT sha1
    _, inner, _ = _element(parameters, seq_start, "the RSASSA-PSS hash algorithm")
    oid, _, _ = _algorithm(parameters, inner, "the RSASSA-PSS hash algorithm")
    return oid
