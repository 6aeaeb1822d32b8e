"""Indicator values: tell what a value is (``classify``) and write it one canonical way (``canonical``).

The store keys indicators on ``(type, value)``, so two feeds that name the same thing in two
spellings must end up with one key (MISP #11117 lost data over ``Example.com`` / ``example.com``).
``canonical(type, value)`` returns the final ``(type, value)`` pair or raises ``ValueError`` with a
reason an admin can act on; ``normalise`` is the same without the type.

Rules, per type:

``ipv4``    dotted quad; **a leading zero (``010.1.1.1``) is rejected**: some tools read it as
            octal (8.1.1.1), others as decimal, and we cannot know which one the feed meant.
``ipv6``    compressed lower case (``2001:db8::1``); zone ids (``%eth0``) are rejected; an
            IPv4-mapped address (``::ffff:192.0.2.1``) becomes the ``ipv4`` it stands for.
``cidr``    host bits cleared (``1.2.3.4/24`` -> ``1.2.3.0/24``); a /32 or /128 becomes ``ipv4`` or
            ``ipv6``; prefixes broader than /8 (IPv4) or /16 (IPv6) are rejected, since one such
            line would flag a large slice of the Internet.
``domain``  lower case, trailing dot removed, IDN -> punycode (IDNA 2008 with UTS #46 mapping);
            labels of 1-63 letters, digits, ``-`` or ``_`` (malware domains use ``_``), two labels
            at least, 253 characters at most, and a top-level label that is not all digits.
``url``     ``scheme://`` required; scheme and host lower case, host by the domain/IP rules
            (one-label hosts allowed), default port dropped (http 80, https 443, ftp 21), empty
            path -> ``/`` for http(s), fragment dropped (it never reaches a server, so no sensor
            sees it), path and query kept byte for byte, whitespace and control characters rejected.
``md5`` ``sha1`` ``sha256`` ``ja3``   lower-case hex of exactly 32, 40, 64, 32 digits.
``email``   lower case; the part after ``@`` follows the domain rules.
``asn``     the number alone: ``AS260`` -> ``260``; asdot ``AS1.10`` -> ``65546``.

Besides the record types, ``canonical`` accepts ``auto`` (detect with ``classify``), ``ip``
(ipv4, ipv6 or cidr by shape) and ``hash`` (md5, sha1 or sha256 by length).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable

import idna

# Broadest prefix accepted per IP version; anything wider is almost surely a feed error.
MIN_PREFIX = {4: 8, 6: 16}
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "ja3": 32}
MAX_ASN = 2**32 - 1

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_IPV4_SHAPE = re.compile(r"[0-9]+(?:\.[0-9]+){3}", re.ASCII)
_IPV6_SHAPE = re.compile(r"(?=[^:]*:[^:]*:)[0-9A-Fa-f:.]+(?:%\S+)?", re.ASCII)
_CIDR_SHAPE = re.compile(r"[0-9A-Fa-f:.]+/[0-9]+", re.ASCII)
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_ASN = re.compile(r"(?:AS)?([0-9]+)(?:\.([0-9]+))?", re.ASCII | re.IGNORECASE)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)
_LABEL = re.compile(r"[a-z0-9_-]{1,63}", re.ASCII)
# Characters that never occur in a host name, a domain or an e-mail domain.
_NOT_IN_HOST = re.compile(r"[\s/\\:@?#\[\]]")


def classify(value: str) -> str | None:
    """The indicator type a bare value looks like, or ``None``.

    Shape only: ``canonical`` does the validation, so ``999.1.1.1`` classifies as ``ipv4`` and is
    then rejected with a reason. A filename such as ``invoice.exe`` looks like a domain: plain
    lists cannot tell them apart, which is why typed feeds should name the type.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    if _URL_SCHEME.match(text):
        return "url"
    if _CIDR_SHAPE.fullmatch(text):
        return "cidr"
    if _IPV4_SHAPE.fullmatch(text):
        return "ipv4"
    if _IPV6_SHAPE.fullmatch(text):
        return "ipv6"
    if _HEX.fullmatch(text.lower()) and len(text) in (32, 40, 64):
        return {32: "md5", 40: "sha1", 64: "sha256"}[len(text)]
    if text[:2].upper() == "AS" and _ASN.fullmatch(text):
        return "asn"
    if text.count("@") == 1 and not re.search(r"\s", text):
        return "email" if _looks_like_domain(text.split("@")[1]) else None
    return "domain" if _looks_like_domain(text) else None


def _looks_like_domain(text: str) -> bool:
    # Lenient on purpose (empty labels pass): ``canonical`` then rejects with a precise reason.
    labels = text.rstrip(".").split(".")
    return len(labels) >= 2 and labels[-1] != "" and not _NOT_IN_HOST.search(text) and not labels[-1].isdigit()


def canonical(kind: str, value: object) -> tuple[str, str]:
    """The ``(type, value)`` the store should key on; ``ValueError`` says why a value is unusable."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError("empty value")
    if kind == "auto":
        detected = classify(text)
        if detected is None:
            raise ValueError("cannot tell what kind of indicator this is")
        kind = detected
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        raise ValueError(f"unknown indicator type {kind!r}")
    return normaliser(text)


def normalise(kind: str, value: object) -> str:
    """The canonical value alone (see ``canonical``, which also gives the final type)."""
    return canonical(kind, value)[1]


def _ipv4(text: str) -> tuple[str, str]:
    octets = text.split(".")
    if len(octets) != 4 or not all(_DIGITS.fullmatch(o) for o in octets):
        raise ValueError("not a dotted-quad IPv4 address")
    for octet in octets:
        if len(octet) > 1 and octet[0] == "0":
            raise ValueError("leading zero in an IPv4 octet is ambiguous (octal to some tools, decimal to others)")
        if int(octet) > 255:
            raise ValueError(f"IPv4 octet {octet} is above 255")
    return "ipv4", text  # four checked decimal octets without leading zeros are already canonical


def _ipv6(text: str, unmap: bool = True) -> tuple[str, str]:
    if "%" in text:
        raise ValueError("IPv6 zone ids (%...) are local to one host")
    if "." in text:
        # The embedded IPv4 tail must follow the IPv4 rules too (ipaddress accepts some oddities).
        _ipv4(text.rsplit(":", 1)[-1])
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise ValueError(f"not an IPv6 address: {exc}") from None
    if unmap and address.ipv4_mapped is not None:
        return "ipv4", str(address.ipv4_mapped)
    return "ipv6", address.compressed


def _ip(text: str) -> tuple[str, str]:
    if "/" in text:
        return _cidr(text)
    return _ipv6(text) if ":" in text else _ipv4(text)


def _cidr(text: str) -> tuple[str, str]:
    address, slash, prefix = text.partition("/")
    if not slash:
        return _ip(address)
    if not _DIGITS.fullmatch(prefix) or len(prefix) > 3:
        raise ValueError("CIDR prefix length must be a number")
    _, address = _ipv6(address, unmap=False) if ":" in address else _ipv4(address)
    try:
        network = ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)
    except ValueError as exc:
        raise ValueError(f"not a network: {exc}") from None
    if network.prefixlen == network.max_prefixlen:
        return _ip(str(network.network_address))
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise ValueError(f"/{network.prefixlen} is broader than /{MIN_PREFIX[network.version]}: refusing to flag that much address space")
    return "cidr", network.compressed


def _domain(text: str, min_labels: int = 2) -> tuple[str, str]:
    name = text[:-1] if text.endswith(".") else text
    if not name.isascii():
        try:
            # UTS #46 maps case, full-width dots and compatibility forms the way browsers do.
            name = idna.uts46_remap(name, std3_rules=False, transitional=False)
            name = ".".join(label if label.isascii() else idna.alabel(label).decode("ascii") for label in name.split("."))
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"not a valid internationalised domain name: {exc}") from None
    name = name.lower()
    labels = name.split(".")
    if len(labels) < min_labels:
        raise ValueError("a domain needs at least two labels")
    for label in labels:
        if not label:
            raise ValueError("empty label (two dots in a row, or a leading dot)")
        if not _LABEL.fullmatch(label):
            raise ValueError(f"label {label[:70]!r} is not 1-63 letters, digits, '-' or '_'")
    if len(name) > 253:
        raise ValueError("longer than 253 characters")
    if labels[-1].isdigit():
        raise ValueError("the top-level label is all digits")
    return "domain", name


def _url(text: str) -> tuple[str, str]:
    match = _URL_SCHEME.match(text)
    if not match:
        raise ValueError("a URL needs a scheme, e.g. http://")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError("a URL cannot contain whitespace or control characters")
    scheme = match.group(1).lower()
    rest = text[match.end():]
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    tail = tail.split("#", 1)[0]
    path, question, query = tail.partition("?")
    userinfo, at, hostport = netloc.rpartition("@")
    host, port = _split_host_port(hostport)
    if not host:
        raise ValueError("URL has no host")
    if host.startswith("["):
        host = f"[{_ipv6(host[1:-1], unmap=False)[1]}]"
    elif _IPV4_SHAPE.fullmatch(host):
        host = _ipv4(host)[1]
    else:
        if _NOT_IN_HOST.search(host):
            raise ValueError(f"URL host {host[:70]!r} contains characters a host name cannot have")
        host = _domain(host, min_labels=1)[1]
    if port:
        if not _DIGITS.fullmatch(port) or int(port) > 65535:
            raise ValueError(f"URL port {port[:10]!r} is not a number from 0 to 65535")
        port = "" if int(port) == DEFAULT_PORTS.get(scheme) else str(int(port))
    if not path and scheme in ("http", "https"):
        path = "/"
    return "url", (f"{scheme}://{userinfo + '@' if userinfo else ''}{host}{':' + port if port else ''}"
                   f"{path}{'?' + query if query else ''}")


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("unclosed '[' in URL host")
        after = hostport[end + 1:]
        if after and not after.startswith(":"):
            raise ValueError("unexpected text after ']' in URL host")
        return hostport[:end + 1], after[1:]
    host, colon, port = hostport.partition(":")
    return host, port


def _hash(kind: str) -> Callable[[str], tuple[str, str]]:
    length = HASH_LENGTHS[kind]

    def normalise_hash(text: str) -> tuple[str, str]:
        digest = text.lower()
        if not _HEX.fullmatch(digest):
            raise ValueError(f"{kind} must be hexadecimal")
        if len(digest) != length:
            raise ValueError(f"{kind} must be {length} hex digits, got {len(digest)}")
        return kind, digest

    return normalise_hash


def _any_hash(text: str) -> tuple[str, str]:
    kind = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(text))
    if kind is None:
        raise ValueError(f"a hash of {len(text)} characters is none of md5, sha1, sha256")
    return _hash(kind)(text)


def _email(text: str) -> tuple[str, str]:
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local:
        raise ValueError("an e-mail address needs exactly one '@' with text before it")
    if len(local) > 64 or re.search(r"[\s<>()\[\],;:\\\"]", local):
        raise ValueError("the part before '@' is not a plain mailbox name")
    return "email", f"{local.lower()}@{_domain(domain)[1]}"


def _asn(text: str) -> tuple[str, str]:
    match = _ASN.fullmatch(text.replace(" ", ""))
    if not match:
        raise ValueError("an AS number looks like AS64500 or 64500")
    high, low = match.groups()
    if low is None:
        number = int(high)
    elif int(high) > 65535 or int(low) > 65535:
        raise ValueError("asdot parts must be at most 65535")
    else:
        number = int(high) * 65536 + int(low)
    if number > MAX_ASN:
        raise ValueError("AS numbers stop at 4294967295")
    return "asn", str(number)


_NORMALISERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "cidr": _cidr,
    "ip": _ip,
    "domain": _domain,
    "url": _url,
    "email": _email,
    "asn": _asn,
    "hash": _any_hash,
    **{kind: _hash(kind) for kind in HASH_LENGTHS},
}
