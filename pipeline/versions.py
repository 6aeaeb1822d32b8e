"""Tolerant version comparison for exposure matching: is this asset's version in an advisory's range?

ICS versions are messy (``V2.9.2``, ``2018 SP3``, ``13.1-49.15``, ``33.011``, ``2020 R2``) and so are
the affected-version texts of advisories (``<=2.9.1``, ``vers:all/<V4.9.0``, ``V2.9 and prior``,
``All versions``, a git commit, a list of CPU models). ``packaging.version`` rejects most of them,
so versions are compared here by their parts:

* **A version** is read after dropping a leading ``v``/``version``/``firmware``/``fw``. It must then
  start with a digit. It splits into numbers and letter runs; punctuation and spaces only separate
  (``13.1-49.15`` is 13, 1, 49, 15; ``2018 SP3`` is 2018, sp, 3). Numbers compare as numbers
  (``33.011`` = 33.11 < 33.12), trailing zeros do not count (``2.9`` = ``2.9.0``). Letter runs are
  markers: ``dev``/``a``/``alpha``/``b``/``beta``/``pre``/``rc`` sort *before* the release they
  precede (``3.0rc1`` < ``3.0``); any other run (``sp``, ``r``, ``u``, ``update``, ``patch``,
  ``build``, ``hf`` ...) sorts *after* it (``2018`` < ``2018 SP3``), runs compared by their text.
  A text with more than two letter runs, or a long unknown word, is not a version (a commit hash
  such as ``7e3f1a2``, ``Intel Core i5``): it is never compared.
* **An advisory's version text** is one of: all versions (``All versions``, ``*``, ``vers:all/*``);
  a vers range (``vers:generic/>=1.0|<2.1``, evaluated as the vers specification says: ``=``
  and ``!=`` first, then the sorted constraints read as intervals); comparators (``<=2.9.1``,
  ``>=1.0, <2.1``: all must hold); phrases (``V2.9 and prior``, ``prior to 3.0``, ``3.0 and later``,
  ``1.0 to 2.1``, ``between 1.0 and 2.1``); one exact version (``4.8.2``, ``2.x``); or a
  comma-separated list of those. Anything else is *unreadable*.
* **Exact and "and prior" are read generously**: ``2.9`` names the 2.9 line, so ``2.9.2`` is in
  it, and ``<=2.9`` / ``2.9 and prior`` include ``2.9.2``. ``2.9.0`` still means exactly 2.9.0.
  A strict ``<`` stays strict. The generous reading reports an exposure that a strict one would
  miss; missing one is the worse error on a watch floor.

What is never compared: build metadata meaning (``+build``), vendor-specific trains (Cisco IOS
``15.2(7)E4`` compares part by part, which is right within one train only), version schemes that
changed between releases, and product *editions* written into the version text.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

AFFECTED = "affected"
NOT_AFFECTED = "not_affected"
UNKNOWN = "unknown"

#: Pre-release markers, in order; they sort before the release they precede.
PRE_RELEASE = {"dev": 0, "alpha": 1, "a": 1, "beta": 2, "b": 2, "pre": 3, "preview": 3, "rc": 4, "c": 4}
#: Words that may appear in a version beyond one- to three-letter markers (sp, r, u, hf, fp ...).
VERSION_WORDS = frozenset({
    "update", "patch", "build", "hotfix", "release", "service", "pack", "fixpack", "revision", "rev", "sr",
    "lts", "final", "alpha", "beta", "preview", "dev",
})
_PREFIX = re.compile(r"^(?:version|ver|firmware|fw|software|sw|release|rel)\b[\s.:]*|^v(?=\d)", re.I)
_TOKENS = re.compile(r"\d+|[^\W\d_]+")

# Token classes: pre-release < end of version < post-release marker < number.
_PRE, _END, _POST, _NUM = 0, 1, 2, 3
_ZERO = (_NUM, 0, "")
_STOP = (_END, 0, "")


@dataclass(frozen=True, slots=True)
class Version:
    """A version as read: its text and its parts (class, number, letters) for comparing."""

    text: str
    parts: tuple[tuple[int, int, str], ...]

    def compare(self, other: "Version") -> int:
        """-1, 0 or 1. A missing part counts as 0 against a number (``2.9`` = ``2.9.0``) and as
        the end of the version against a marker (``3.0rc1`` < ``3.0`` < ``3.0 SP1``)."""
        a, b = self.parts, other.parts
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x is None:
                x = _ZERO if y is not None and y[0] == _NUM else _STOP
            if y is None:
                y = _ZERO if x[0] == _NUM else _STOP
            if x != y:
                return -1 if x < y else 1
        return 0

    def starts_with(self, other: "Version") -> bool:
        """``other``'s parts, as written, begin this version: ``2.9.2`` starts with ``2.9``."""
        return len(other.parts) <= len(self.parts) and self.parts[:len(other.parts)] == other.parts

    def __str__(self) -> str:
        return self.text


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).strip(" .,;")


@functools.lru_cache(maxsize=8192)
def parse_version(text: str | None) -> Version | None:
    """The version in ``text``, or ``None`` when it cannot be read as one (see the module notes)."""
    if text is None:
        return None
    cleaned = _clean(str(text))
    body = cleaned
    for _ in range(3):  # "Firmware version V2.1"
        stripped = _PREFIX.sub("", body, count=1).strip()
        if stripped == body:
            break
        body = stripped
    if not body or not body[0].isdigit() or any(c in body for c in ",;|"):  # a list, not a version
        return None
    tokens = _TOKENS.findall(body.casefold())
    letters = [t for t in tokens if not t.isdigit()]
    if len(letters) > 2 or any(len(t) > 3 and t not in VERSION_WORDS for t in letters):
        return None
    parts: list[tuple[int, int, str]] = []
    for token in tokens:
        if token.isdigit():
            parts.append((_NUM, int(token), ""))
        elif token in PRE_RELEASE:
            parts.append((_PRE, PRE_RELEASE[token], ""))
        else:
            parts.append((_POST, 0, token))
    return Version(cleaned, tuple(parts))


# --- advisory version texts -------------------------------------------------------------------------

_OP = re.compile(r"^\s*(<=|>=|!=|==|=<|=>|≤|≥|<|>|=)\s*(.+?)\s*$")
_ALL = re.compile(r"^(?:all|any|every|\*|all (?:\w+ )*versions?|all versions? \(all\))$")
_LEADING = re.compile(r"^(?:all versions? of |all |affected versions?:? |versions? |firmware versions? |"
                      r"software versions? |firmware |software )", re.I)
_PHRASES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"^between (?P<a>.+?) and (?P<b>.+)$"), (">=", "<=")),
    (re.compile(r"^(?:from )?(?P<a>.+?) (?:-|–|to|through|thru|until) (?P<b>.+)$"), (">=", "<=")),
    (re.compile(r"^(?P<a>.+?),? (?:and|or|&) (?:prior|earlier|older|before|below|lower)(?: versions?| releases?)?$"), ("<=",)),
    (re.compile(r"^(?P<a>.+?) or less$"), ("<=",)),
    (re.compile(r"^(?:up to|through|thru|until|to) (?:and including )?(?P<a>.+)$"), ("<=",)),
    (re.compile(r"^(?:prior to|before|earlier than|older than|lower than|less than|below|under) (?P<a>.+)$"), ("<",)),
    (re.compile(r"^(?P<a>.+?),? (?:and|or|&) (?:later|newer|above|higher|after)(?: versions?| releases?)?$"), (">=",)),
    (re.compile(r"^(?:later than|newer than|after|above) (?P<a>.+)$"), (">",)),
    (re.compile(r"^(?:since|from) (?P<a>.+)$"), (">=",)),
)


@dataclass(frozen=True, slots=True)
class Spec:
    """One affected-version text of an advisory, read.

    ``kind``: ``all`` (every version), ``exact`` (one version or line: ``constraints`` holds one
    ``("=", v)``), ``and`` (every comparator holds), ``vers`` (a vers range), ``any`` (a list:
    ``parts``), ``unreadable``.
    """

    text: str
    kind: str
    constraints: tuple[tuple[str, Version], ...] = ()
    parts: tuple["Spec", ...] = ()

    def contains(self, version: Version) -> bool | None:
        """Whether ``version`` is in this range; ``None`` when the range could not be read."""
        if self.kind == "all":
            return True
        if self.kind == "unreadable":
            return None
        if self.kind in ("exact", "and"):
            return all(_holds(version, op, bound) for op, bound in self.constraints)
        if self.kind == "vers":
            return _in_vers(version, self.constraints)
        answers = [p.contains(version) for p in self.parts]
        if any(a is True for a in answers):
            return True
        return None if any(a is None for a in answers) else False


def _holds(version: Version, op: str, bound: Version) -> bool:
    c = version.compare(bound)
    if op == "=":
        return c == 0 or version.starts_with(bound)
    if op == "!=":
        return not (c == 0 or version.starts_with(bound))
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0 or version.starts_with(bound)
    if op == ">":
        return c > 0
    return c >= 0  # ">="


def _in_vers(version: Version, constraints: tuple[tuple[str, Version], ...]) -> bool:
    """The vers specification's containment algorithm (github.com/package-url/purl-spec, VERSION-RANGE-SPEC)."""
    for op, bound in constraints:
        if op == "=" and _holds(version, "=", bound):
            return True
        if op == "!=" and _holds(version, "=", bound):
            return False
    ranges = sorted(((op, b) for op, b in constraints if op not in ("=", "!=")),
                    key=functools.cmp_to_key(lambda p, q: p[1].compare(q[1])))
    if not ranges:
        return False
    first_op, first = ranges[0]
    if first_op in ("<", "<=") and _holds(version, first_op, first):
        return True
    last_op, last = ranges[-1]
    if last_op in (">", ">=") and _holds(version, last_op, last):
        return True
    for (op, bound), (next_op, next_bound) in zip(ranges, ranges[1:]):
        if op in (">", ">=") and next_op in ("<", "<="):
            if _holds(version, op, bound) and _holds(version, next_op, next_bound):
                return True
    return False


def _comparator(text: str) -> tuple[str, Version] | None:
    match = _OP.match(text)
    if match:
        op = {"==": "=", "=<": "<=", "=>": ">=", "≤": "<=", "≥": ">="}.get(match.group(1), match.group(1))
        bound = _bound(match.group(2))
        return (op, bound) if bound is not None else None
    bound = _bound(text)
    return ("=", bound) if bound is not None else None


def _bound(text: str) -> Version | None:
    text = text.strip()
    if re.search(r"\.[x*]$", text, re.I):  # "2.x", "2.9.*": the line
        text = text[:-2]
    return parse_version(text)


@functools.lru_cache(maxsize=8192)
def parse_spec(text: str) -> Spec:
    """Read one affected-version text of an advisory (see the module notes)."""
    original = str(text)
    low = _clean(original).casefold()
    if not low:
        return Spec(original, "unreadable")
    if low.startswith("vers:"):
        return _vers(original, low[5:].partition("/")[2])
    if _ALL.match(low):
        return Spec(original, "all")
    body = low
    for _ in range(3):
        stripped = _LEADING.sub("", body, count=1).strip()
        if stripped == body:
            break
        body = stripped
    if _ALL.match(body):
        return Spec(original, "all")
    if "|" in body:  # ">=1.0|<2.1" without the "vers:" scheme: read as vers
        return _vers(original, body)
    comparators = re.findall(r"(?:<=|>=|!=|==|=<|=>|≤|≥|<|>|=)\s*[^\s,;<>=!≤≥]+", body)
    if comparators and re.fullmatch(r"(?:\s*(?:,|;|&&|and)?\s*(?:<=|>=|!=|==|=<|=>|≤|≥|<|>|=)\s*[^\s,;<>=!≤≥]+)+\s*",
                                    body):
        constraints = [_comparator(c) for c in comparators]
        if all(c is not None for c in constraints):
            return Spec(original, "and", tuple(constraints))  # type: ignore[arg-type]
        return Spec(original, "unreadable")
    for pattern, ops in _PHRASES:
        match = pattern.match(body)
        if not match:
            continue
        bounds = [_bound(match.group(name)) for name in ("a", "b")[:len(ops)]]
        if all(b is not None for b in bounds):
            return Spec(original, "and", tuple(zip(ops, bounds)))  # type: ignore[arg-type]
    exact = _bound(body)
    if exact is not None:
        return Spec(original, "exact", (("=", exact),))
    pieces = [p.strip() for p in re.split(r"[,;]| and ", body) if p.strip()]
    if len(pieces) > 1:
        parts = tuple(parse_spec(p) for p in pieces)
        if all(p.kind != "unreadable" for p in parts):
            return Spec(original, "any", parts=parts)
    return Spec(original, "unreadable")


def _vers(original: str, constraints_text: str) -> Spec:
    rest = constraints_text.strip()
    if rest in ("*", ""):
        return Spec(original, "all")
    constraints = [_comparator(c) for c in rest.split("|") if c.strip()]
    if not constraints or any(c is None for c in constraints):
        return Spec(original, "unreadable")
    return Spec(original, "vers", tuple(constraints))  # type: ignore[arg-type]


# --- the verdict -------------------------------------------------------------------------------------

#: Why a check came out as it did (stored with the finding, shown on the page).
BASIS_ALL = "all_versions"            # the advisory says every version: affected whatever the asset runs
BASIS_IN_RANGE = "in_range"           # the asset's version is in an advisory range
BASIS_OUTSIDE = "outside"             # the asset's version is outside every advisory range
BASIS_NO_ADVISORY_VERSIONS = "no_advisory_versions"   # e.g. every CISA KEV entry
BASIS_NO_ASSET_VERSION = "no_asset_version"           # the inventory gives none
BASIS_ASSET_UNREADABLE = "asset_version_unreadable"
BASIS_ADVISORY_UNREADABLE = "advisory_versions_unreadable"


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """``match``: affected, not_affected or unknown; ``basis``: why (``BASIS_*``); ``note``: in words."""

    match: str
    basis: str
    note: str


def check_version(asset_version: str | None, advisory_versions: Iterable[str]) -> VersionCheck:
    """Is an asset at ``asset_version`` affected by an advisory naming ``advisory_versions``?

    * the advisory names no version (CISA KEV) → unknown, "version not confirmed";
    * the advisory says all versions → affected, whatever the asset runs;
    * the asset has no version, or one that cannot be read → unknown;
    * the version is in a range → affected; outside every range → not_affected; outside the ranges
      that could be read while another could not → unknown.
    """
    return _check_version(asset_version, tuple(str(t) for t in advisory_versions))


@functools.lru_cache(maxsize=65536)
def _check_version(asset_version: str | None, advisory_versions: tuple[str, ...]) -> VersionCheck:
    """``check_version`` on hashable arguments, memoised (recomputes repeat the same pairs)."""
    texts = [str(t) for t in advisory_versions if str(t).strip()]
    if not texts:
        return VersionCheck(UNKNOWN, BASIS_NO_ADVISORY_VERSIONS, "advisory names no version: version not confirmed")
    specs = [parse_spec(t) for t in texts]
    every = next((s for s in specs if s.kind == "all"), None)
    if every is not None:
        return VersionCheck(AFFECTED, BASIS_ALL, f"advisory: {every.text}")
    if not (asset_version or "").strip():
        return VersionCheck(UNKNOWN, BASIS_NO_ASSET_VERSION, "asset version not recorded: version not confirmed")
    version = parse_version(asset_version)
    if version is None:
        return VersionCheck(UNKNOWN, BASIS_ASSET_UNREADABLE,
                            f"asset version {asset_version!r} cannot be compared: version not confirmed")
    unreadable: list[str] = []
    for spec in specs:
        answer = spec.contains(version)
        if answer is True:
            return VersionCheck(AFFECTED, BASIS_IN_RANGE, f"{asset_version} is in {spec.text}")
        if answer is None:
            unreadable.append(spec.text)
    if unreadable:
        return VersionCheck(UNKNOWN, BASIS_ADVISORY_UNREADABLE,
                            f"advisory versions {', '.join(unreadable)!s} cannot be compared: version not confirmed")
    return VersionCheck(NOT_AFFECTED, BASIS_OUTSIDE, f"{asset_version} is outside {', '.join(texts)}")
