"""Follow log files across rotation without losing or repeating a line.

A file is known by its *identity*, never by its name (the Filebeat ``filestream`` / Vector
``file`` lesson: names move on every rotation, content does not):

* ``(device, inode)`` — where the bytes live now; survives a rename, which is how most rotation
  works (``eve.json`` → ``eve.json.1``) and how a renamed file is found again outside the glob;
* ``head`` — a hash of the first ``fingerprint_bytes`` (1 KiB) of the content, decompressed for
  ``.gz``; grown as a short file grows to that size. It tells inode *reuse* and *copytruncate*
  (same inode, other content) apart from the file we knew, and it recognises the same content
  under a new inode: a copy (``copytruncate``'s ``eve.json.1``) or a compressed rotated file;
* ``anchor`` — a hash of the 256 bytes just before the saved offset. Two files with the same
  first KiB (Vector #25079) are only taken for one another if the bytes where we stopped agree
  too, so a collision can no longer make the tailer skip data.

State per file (``FileState``) is the identity plus the byte offset of the next unread line and
the count of lines before it; the caller saves it in the same transaction as the records those
lines became, so a crash at any moment re-reads at most the uncommitted batch. See
``docs/tailing.md`` for each rotation style and the exactly-once argument.

Lines are split on ``\\n`` (a trailing ``\\r`` is dropped) and decoded as UTF-8 with replacement
characters, so undecodable bytes reach the parser, which decides. A partial last line waits for
its newline unless the file is complete (a ``.gz``, or a file read once). A line longer than
``max_line_bytes`` becomes a ``Rejected`` and is skipped up to its newline without being held.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import os
import re
import secrets
import stat as stat_module
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from store.records import Rejected

FINGERPRINT_BYTES = 1024          # Filebeat's default fingerprint length
ANCHOR_BYTES = 256
READ_CHUNK = 1024 * 1024          # memory per open file is about READ_CHUNK + max_line_bytes
MAX_LINE_BYTES = 1024 * 1024
ORPHAN_TTL_MS = 24 * 3600 * 1000  # a vanished file's state waits this long for its copy or .gz to show up
ORPHAN_SEARCH_MS = 3600 * 1000    # ... and is looked for beside its old name for this long
MAX_STATES = 256                  # per source; the oldest vanished files are forgotten first
MAX_PASSES = 2                    # scans per call of batches(): the second picks up a rotation seen mid-run
PREAMBLE_MAX_LINES = 200
PREAMBLE_MAX_LINE_BYTES = 64 * 1024
TRUNCATED_GZ_GRACE_S = 60         # a .gz ending early is still being written for this long, then it is damaged
SAMPLE_CHARS = 200
CURSOR_PREFIX = "file:"
GZIP_MAGIC = b"\x1f\x8b"
GZ_HEAD_INPUT = 64 * 1024         # compressed bytes read to decompress the head
# What rotation appends to a name: eve.json.1, eve.json.1.gz, eve.json-20240101, eve.json-2024010112.gz
ROTATED_SUFFIX = r"(?:[.-]\d+)*(?:\.gz)?"


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class FileState:
    """What the tailer knows about one file; saved as one cursor row (``file:<key>``).

    offset  bytes consumed (decompressed bytes for gz): always at a line start, except while
            ``skip`` is set (inside an overlong line being skipped)
    line    lines consumed before ``offset`` (so a rejected line is reported as ``path:line``)
    done    read to its end for good (a .gz, or a file read once); not read again
    gone    when the file was first missed (ms); ``None`` while it is present
    """

    key: str
    path: str
    dev: int
    ino: int
    gz: bool = False
    head: str = ""
    head_len: int = 0
    offset: int = 0
    line: int = 0
    anchor: str = ""
    skip: bool = False
    done: bool = False
    gone: int | None = None

    def to_cursor(self) -> dict[str, Any]:
        value = asdict(self)
        del value["key"]
        return value

    @classmethod
    def from_cursor(cls, key: str, value: Any) -> FileState | None:
        """``None`` for a value this version cannot read (it is then treated as forgotten)."""
        if not isinstance(value, dict):
            return None
        known = {f.name for f in fields(cls)} - {"key"}
        try:
            return cls(key=key, **{k: v for k, v in value.items() if k in known})
        except TypeError:
            return None


@dataclass
class TailBatch:
    """Lines of one file, and every cursor change the caller must save with them in one transaction.

    ``cursors`` maps cursor keys to their new value (``None``: delete). Once handed out, the tailer
    assumes they are saved: if the caller's transaction fails it must discard the tailer.
    """

    key: str
    path: str
    lines: list[tuple[int, str]]
    rejected: list[Rejected]
    cursors: dict[str, Any]
    opened_at: int        # the offset this file was opened at in this run (> 0: a parser needs the preamble)
    bytes: int
    finished: bool        # the file will give no more lines (gz end, once-mode end): parsers may flush


@dataclass(frozen=True)
class TailOptions:
    batch_lines: int = 5000
    batch_bytes: int = 4 * 1024 * 1024
    max_line_bytes: int = MAX_LINE_BYTES
    fingerprint_bytes: int = FINGERPRINT_BYTES
    read_gz: bool = True
    once: bool = False
    """Files are complete when found (drop folder, single file): read to the end, last unterminated line
    included, then ``done``; vanished files are forgotten at once and never searched for."""
    first_run: bool = False
    """Nothing was ever read for this source: rotated siblings found now are history, not read."""
    start_at_end: bool = False
    """With ``first_run``: the files the glob lists start at their end too (``start_at: end``)."""
    follow_outside_glob: bool = True
    """Find a renamed, copied or compressed file beside its old name even when the glob misses it."""
    orphan_ttl_ms: int = ORPHAN_TTL_MS


class _Unreadable(Exception):
    """A file could not be read; ``vanished`` when it was simply gone (rotation races, not an error)."""

    def __init__(self, message: str, vanished: bool = False):
        super().__init__(message)
        self.vanished = vanished


def _unreadable(path: str, exc: OSError) -> _Unreadable:
    return _Unreadable(f"{path}: {exc.strerror or exc}", isinstance(exc, FileNotFoundError))


@dataclass(eq=False)
class _Observed:
    """A file seen on disk by this scan; its head bytes are read at most once."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    gz: bool
    sibling: bool = False             # not listed by the glob: a rotated sibling of a file it lists
    _prefix: bytes | None = field(default=None, repr=False)
    _prefix_asked: int = 0

    @classmethod
    def stat(cls, path: str, read_gz: bool) -> _Observed | None:
        try:
            info = os.stat(path)
        except OSError:
            return None  # vanished between listing and stat: the next scan sees what happened
        if not stat_module.S_ISREG(info.st_mode):
            return None
        gz = path.endswith(".gz")
        if gz and not read_gz:
            return None
        return cls(path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, gz)

    def prefix(self, length: int) -> bytes:
        """Up to ``length`` first bytes of the content (decompressed for gz); raises ``_Unreadable``."""
        if self._prefix is None or (self._prefix_asked < length and len(self._prefix) == self._prefix_asked):
            self._prefix = _read_head(self.path, self.gz, length)
            self._prefix_asked = length
        return self._prefix[:length]

    def head(self, length: int) -> str | None:
        """Hash of the first ``length`` bytes, ``None`` when the file has fewer."""
        data = self.prefix(length)
        return digest(data) if len(data) == length else None

    def anchor_at(self, offset: int) -> str | None:
        """Hash of the bytes before ``offset`` (plain files only; gz anchors are checked while reading)."""
        if offset == 0:
            return ""
        if offset > self.size:
            return None
        start = max(0, offset - ANCHOR_BYTES)
        try:
            with open(self.path, "rb") as handle:
                handle.seek(start)
                data = handle.read(offset - start)
        except OSError as exc:
            raise _unreadable(self.path, exc) from None
        return digest(data) if len(data) == offset - start else None


def _read_head(path: str, gz: bool, length: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            if not gz:
                return handle.read(length)
            # A raw decompressor, not GzipFile: a .gz still being written has a valid head already.
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = b""
            while len(out) < length and not decompressor.eof:
                data = decompressor.unconsumed_tail or handle.read(GZ_HEAD_INPUT)
                if not data:
                    break
                out += decompressor.decompress(data, length - len(out))
            return out
    except zlib.error:
        return b""  # damaged: a fresh state is made and the reader reports it as rejected
    except OSError as exc:
        raise _unreadable(path, exc) from None


class _Reader:
    """Complete lines of one file from its state's offset, in bounded batches; never holds the whole file.

    ``complete`` files (gz, once mode) end at EOF: the last unterminated line is a line and the
    state becomes ``done``. Otherwise the partial last line stays unread until its newline comes.
    """

    def __init__(self, state: FileState, options: TailOptions, complete: bool):
        self.state = state
        self.options = options
        self.complete = complete
        self.handle: IO[bytes] | None = None
        self._buf = b""
        self._start = 0
        self._recent = b""           # the last consumed bytes before _buf, for the anchor
        self._eof = False
        self.invalidated = False     # the file stopped being the one we know (truncated, replaced)
        self.opened_at = state.offset

    def open(self) -> bool:
        """Position at the state's offset; ``False`` when the content there is not what we read."""
        state = self.state
        self.handle = gzip.open(state.path, "rb") if state.gz else open(state.path, "rb", buffering=0)
        if not state.gz:
            start = max(0, state.offset - ANCHOR_BYTES)
            self.handle.seek(start)
            before = self._read_exactly(state.offset - start)
            if before is None or (state.offset and digest(before) != state.anchor):
                return False
            self._recent = before
            return True
        remaining = state.offset  # gzip cannot seek: decompress up to the offset, keeping the anchor bytes
        recent = b""
        while remaining:
            chunk = self._gz_read(min(READ_CHUNK, remaining))
            if not chunk:
                return False
            remaining -= len(chunk)
            recent = (recent + chunk[-ANCHOR_BYTES:])[-ANCHOR_BYTES:]
        if state.offset and digest(recent) != state.anchor:
            return False
        self._recent = recent
        return True

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def _read_exactly(self, size: int) -> bytes | None:
        data = self.handle.read(size) if size else b""
        return data if len(data) == size else None

    def _gz_read(self, size: int) -> bytes:
        try:
            return self.handle.read(size)
        except EOFError:
            raise _TruncatedGz() from None
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise _DamagedGz(str(exc)) from None

    # -- reading -------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Append the next chunk to the buffer; ``False`` at the current end of the file."""
        if self._eof:
            return False
        chunk = self._gz_read(READ_CHUNK) if self.state.gz else self.handle.read(READ_CHUNK)
        if chunk and not self.state.gz and not self._still_ours(len(chunk)):
            # Truncated (copytruncate) or rewritten around this read: the chunk may be the new content
            # at our old position. Drop it; the next scan re-identifies the file, and what we had not
            # read yet is in the copy, which resumes at our offset.
            chunk = b""
            self.invalidated = True
        if not chunk:
            self._eof = True
            return False
        consumed = self._buf[max(0, self._start - ANCHOR_BYTES):self._start]
        self._recent = (self._recent + consumed)[-ANCHOR_BYTES:]
        self._buf = self._buf[self._start:] + chunk
        self._start = 0
        return True

    def _still_ours(self, just_read: int) -> bool:
        """After a read: the file still reaches past what we read, and still starts with our head."""
        fd = self.handle.fileno()
        position = self.state.offset + len(self._buf) - self._start + just_read
        if os.fstat(fd).st_size < position:
            return False
        state = self.state
        return not state.head_len or digest(os.pread(fd, state.head_len, 0)) == state.head

    def _consume(self, size: int) -> None:
        self._start += size
        self.state.offset += size

    def anchor(self) -> str:
        if not self.state.offset:
            return ""
        before = self._buf[max(0, self._start - ANCHOR_BYTES):self._start]
        return digest((self._recent + before)[-ANCHOR_BYTES:])

    def read_batch(self) -> tuple[list[tuple[int, str]], list[Rejected], int, bool]:
        """(lines, rejects, bytes consumed, at end) — bounded by batch_lines and batch_bytes."""
        state, options = self.state, self.options
        limit = options.max_line_bytes
        lines: list[tuple[int, str]] = []
        rejects: list[Rejected] = []
        used = 0
        while len(lines) < options.batch_lines and used < options.batch_bytes:
            buf, start = self._buf, self._start
            if state.skip:
                newline = buf.find(b"\n", start)
                if newline < 0:
                    used += len(buf) - start
                    self._consume(len(buf) - start)
                    if not self._fill():
                        if self.complete and self._eof and not self.invalidated:
                            state.skip = False
                            state.line += 1
                            self._finish()
                        return lines, rejects, used, True
                    continue
                used += newline + 1 - start
                self._consume(newline + 1 - start)
                state.skip = False
                state.line += 1
                continue
            newline = buf.find(b"\n", start, start + limit + 1)
            if newline < 0:
                if len(buf) - start > limit:
                    rejects.append(Rejected(
                        f"line longer than {limit} bytes: skipped to its end",
                        f"{state.path}:{state.line + 1}",
                        buf[start:start + SAMPLE_CHARS].decode("utf-8", "replace"),
                    ))
                    state.skip = True
                    continue
                if not self._fill():
                    if self.complete and self._eof and not self.invalidated:
                        if len(buf) > start:  # a complete file's last line needs no newline
                            used += len(buf) - start
                            state.line += 1
                            lines.append((state.line, _decode(buf[start:])))
                            self._consume(len(buf) - start)
                        self._finish()
                    return lines, rejects, used, True
                continue
            used += newline + 1 - start
            state.line += 1
            lines.append((state.line, _decode(buf[start:newline])))
            self._consume(newline + 1 - start)
        return lines, rejects, used, False

    def _finish(self) -> None:
        self.state.done = True


class _TruncatedGz(Exception):
    pass


class _DamagedGz(Exception):
    pass


def _decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


class Tailer:
    """Discovers the files of a source, matches them to saved states and reads them in batches.

    One instance serves one run: build it from the saved cursors, ``scan()``, take ``batches()``
    and save each batch's ``cursors`` with its records, then save ``pending_cursors()`` at the end.
    """

    def __init__(self, patterns: Sequence[str], cursors: Mapping[str, Any], options: TailOptions, *,
                 now_ms: int, accept_new: Callable[[str], bool] | None = None):
        self.patterns = [str(p) for p in patterns]
        self.options = options
        self.now_ms = now_ms
        self.accept_new = accept_new
        self.states: dict[str, FileState] = {}
        self._persisted: dict[str, Any] = {}
        for key, value in cursors.items():
            if not key.startswith(CURSOR_PREFIX):
                continue
            self._persisted[key] = value
            state = FileState.from_cursor(key[len(CURSOR_PREFIX):], value)
            if state is not None:
                self.states[state.key] = state
        self.live: dict[str, _Observed] = {}
        self.errors: list[str] = []
        self.matched_any = False
        self._scans = 0
        self._invalidated: set[str] = set()
        self._beside_cache: dict[str, dict[tuple[int, int], _Observed]] = {}
        self._gz_backup: dict[str, FileState] = {}   # an orphan as it was before a .gz claimed it by its head

    # -- discovery -----------------------------------------------------------------------------

    def scan(self) -> None:
        """Match the files on disk to known states; new files get a state, vanished ones become orphans."""
        self.live, self._invalidated, self._beside_cache = {}, set(), {}
        observed: list[_Observed] = []
        listed: set[str] = set()
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                if path not in listed:
                    listed.add(path)
                    obs = _Observed.stat(path, self.options.read_gz)
                    if obs is not None:
                        observed.append(obs)
        self.matched_any = self.matched_any or bool(observed)
        if self.options.follow_outside_glob and not self.options.once:
            observed += self._siblings(observed, listed)
        taken: set[tuple[int, int]] = set()
        unclaimed = dict(self.states)
        by_inode: dict[tuple[int, int], list[FileState]] = {}
        for state in self.states.values():
            by_inode.setdefault((state.dev, state.ino), []).append(state)
        once = self.options.once
        follow = self.options.follow_outside_glob and not once

        # 1. Same inode, same content: the file we know, whatever it is called now.
        unmatched: list[_Observed] = []
        for obs in observed:
            candidates = sorted(by_inode.get((obs.dev, obs.ino), []), key=lambda s: s.gone is not None)
            match = next((s for s in candidates if s.key in unclaimed and self._same(obs, s)), None)
            if match is not None:
                self._claim(match, obs, unclaimed, taken)
            else:
                unmatched.append(obs)

        # 2. Renamed out of the glob (eve.json -> eve.json.1 with path: eve.json): found by inode beside it.
        if follow:
            for state in self._searchable(unclaimed):
                obs = self._beside(os.path.dirname(state.path), listed).get((state.dev, state.ino))
                if obs is not None and (obs.dev, obs.ino) not in taken and self._same(obs, state):
                    self._claim(state, obs, unclaimed, taken)

        # 3. Same content under a new inode: a copy (copytruncate) or a compressed rotated file.
        new: list[_Observed] = []
        for obs in unmatched:
            verdict, state = ("new", None) if once else self._match_content(obs, unclaimed)
            if verdict == "claim":
                self._claim(state, obs, unclaimed, taken)
            elif verdict == "new":
                new.append(obs)

        # 4. ... or beside the old name, outside the glob.
        if follow:
            for state in self._searchable(unclaimed):
                for obs in self._beside(os.path.dirname(state.path), listed).values():
                    if ((obs.dev, obs.ino) not in taken and _same_stem(obs.path, state.path)
                            and self._content_fits(obs, state) == "claim"):
                        self._claim(state, obs, unclaimed, taken)
                        break

        # 5. New files: read from their start (from their end on the first scan of a start_at: end source).
        for obs in new:
            if (obs.dev, obs.ino) in taken or (self.accept_new is not None and not self.accept_new(obs.path)):
                continue
            first = self.options.first_run and self._scans == 0
            try:
                # Rotated siblings present before we ever read anything are history nobody asked for.
                state = self._new_state(obs, at_end=first and (obs.sibling or self.options.start_at_end))
            except _Unreadable as exc:
                self._note(exc)
                continue
            self.states[state.key] = state
            self.live[state.key] = obs
            taken.add((obs.dev, obs.ino))

        # 6. What was not found waits a while for its copy or .gz (tail), then is forgotten.
        for state in unclaimed.values():
            if state.gone is None:
                state.gone = self.now_ms
            if once or self.now_ms - state.gone > self.options.orphan_ttl_ms:
                del self.states[state.key]
        orphans = sorted((s for s in self.states.values() if s.gone is not None), key=lambda s: s.gone)
        for state in orphans[:max(0, len(self.states) - MAX_STATES)]:
            del self.states[state.key]
        self._scans += 1

    def _note(self, exc: _Unreadable) -> None:
        if not exc.vanished and str(exc) not in self.errors:
            self.errors.append(str(exc))

    def _same(self, obs: _Observed, state: FileState) -> bool:
        """The file at this inode still holds what we read: its head and the bytes before the offset agree."""
        try:
            if state.head_len and obs.head(state.head_len) != state.head:
                return False
            if obs.gz:
                return True  # the anchor is checked while decompressing up to the offset
            return obs.size >= state.offset and obs.anchor_at(state.offset) == state.anchor
        except _Unreadable as exc:
            self._note(exc)
            return False

    def _match_content(self, obs: _Observed, unclaimed: dict[str, FileState]) -> tuple[str, FileState | None]:
        """claim (it continues an orphan), defer (a copy of a file still being read) or new."""
        for state in sorted(unclaimed.values(), key=lambda s: (s.gone is None, -(s.gone or 0))):
            verdict = self._content_fits(obs, state)
            if verdict != "new":
                return verdict, state
        for key in self.live:
            state = self.states[key]
            try:
                if state.head_len and obs.head(state.head_len) == state.head:
                    return "defer", None  # the original is still here and read; its copy adds nothing yet
            except _Unreadable as exc:
                self._note(exc)
                return "defer", None
        return "new", None

    def _content_fits(self, obs: _Observed, state: FileState) -> str:
        if state.done or not state.head_len or not state.offset:
            return "new"  # nothing left to read from it, or nothing to recognise it by
        try:
            if obs.head(state.head_len) != state.head:
                return "new"
            if obs.gz:
                return "claim"
            if obs.size < state.offset:
                return "defer"  # a copy still being written, most likely
            return "claim" if obs.anchor_at(state.offset) == state.anchor else "new"
        except _Unreadable as exc:
            self._note(exc)
            return "defer"

    def _claim(self, state: FileState, obs: _Observed, unclaimed: dict[str, FileState],
               taken: set[tuple[int, int]]) -> None:
        if obs.gz and not state.gz:
            self._gz_backup[state.key] = replace(state)
        state.path, state.dev, state.ino, state.gz, state.gone = obs.path, obs.dev, obs.ino, obs.gz, None
        if state.done and self.options.once and not obs.gz and obs.size > state.offset:
            state.done = False  # a single file that grew after it was read
        want = self.options.fingerprint_bytes if obs.gz else min(self.options.fingerprint_bytes, obs.size)
        if state.head_len < want:
            try:
                data = obs.prefix(want)  # the head grows with a short file, up to fingerprint_bytes
                if len(data) > state.head_len:
                    state.head, state.head_len = digest(data), len(data)
            except _Unreadable as exc:
                self._note(exc)
        unclaimed.pop(state.key, None)
        taken.add((obs.dev, obs.ino))
        self.live[state.key] = obs

    def _new_state(self, obs: _Observed, *, at_end: bool) -> FileState:
        data = obs.prefix(self.options.fingerprint_bytes)
        state = FileState(key=secrets.token_hex(8), path=obs.path, dev=obs.dev, ino=obs.ino, gz=obs.gz,
                          head=digest(data) if data else "", head_len=len(data))
        if at_end:
            if obs.gz:
                state.done = True  # rotated history, not read
            else:
                state.offset, state.line, state.anchor = _line_aligned_end(obs.path, obs.size)
        return state

    def _searchable(self, unclaimed: dict[str, FileState]) -> list[FileState]:
        """Unclaimed states worth looking for beside their old name: unfinished, and recently missed."""
        return sorted((s for s in unclaimed.values()
                       if not s.done and (s.gone is None or self.now_ms - s.gone < ORPHAN_SEARCH_MS)),
                      key=lambda s: s.key)

    def _siblings(self, observed: list[_Observed], listed: set[str]) -> list[_Observed]:
        """Rotated forms of the names the path gives (``eve.json`` → ``eve.json.1``, ``eve.json.2.gz``).

        A file rotated twice between two scans was never seen under its live name; it is found here.
        """
        names: dict[str, set[str]] = {}
        for pattern in self.patterns:
            if not glob.has_magic(os.path.basename(pattern)) and not glob.has_magic(os.path.dirname(pattern)):
                names.setdefault(os.path.dirname(pattern) or ".", set()).add(os.path.basename(pattern))
        for obs in observed:
            names.setdefault(os.path.dirname(obs.path) or ".", set()).add(os.path.basename(obs.path))
        found: list[_Observed] = []
        for folder, bases in names.items():
            rotated = re.compile("(?:" + "|".join(re.escape(base) for base in sorted(bases)) + ")" + ROTATED_SUFFIX)
            for obs in self._beside(folder, listed).values():
                name = os.path.basename(obs.path)
                if name not in bases and rotated.fullmatch(name):
                    obs.sibling = True
                    found.append(obs)
        for obs in found:
            listed.add(obs.path)
        return sorted(found, key=lambda o: o.path)

    def _beside(self, folder: str, listed: set[str]) -> dict[tuple[int, int], _Observed]:
        """Files in ``folder`` that the glob did not list, by (device, inode); cached per scan."""
        folder = folder or "."
        if folder not in self._beside_cache:
            found: dict[tuple[int, int], _Observed] = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.path not in listed:
                            obs = _Observed.stat(entry.path, self.options.read_gz)
                            if obs is not None:
                                found[(obs.dev, obs.ino)] = obs
            except OSError:
                pass  # the folder itself went away: nothing to find there
            self._beside_cache[folder] = found
        return self._beside_cache[folder]

    # -- reading -------------------------------------------------------------------------------

    def batches(self) -> Iterator[TailBatch]:
        """Batches from every live file, oldest first, each to its current end; then one rescan and again."""
        if not self._scans:
            self.scan()
        for pass_number in range(MAX_PASSES):
            if pass_number:
                self.scan()
            produced = False
            for key in sorted(self.live, key=lambda k: (self.live[k].mtime_ns, self.live[k].path)):
                state = self.states.get(key)
                if state is None or state.done or key in self._invalidated:
                    continue
                for batch in self._read_file(state, self.live[key]):
                    produced = produced or bool(batch.lines or batch.rejected)
                    yield batch
            if not produced:
                return

    def _read_file(self, state: FileState, obs: _Observed) -> Iterator[TailBatch]:
        complete = state.gz or self.options.once
        reader = _Reader(state, self.options, complete)
        try:
            try:
                fits = reader.open()
            except FileNotFoundError:
                return  # gone since the scan; the next scan finds where it went
            except _TruncatedGz:
                if time.time() - obs.mtime_ns / 1e9 > TRUNCATED_GZ_GRACE_S:
                    yield self._give_up(state, "gzip file ends before the point already read")
                return  # still being written (logrotate compressing): next run
            except _DamagedGz as exc:
                yield self._give_up(state, f"damaged gzip file: {exc}")
                return
            if not fits:
                if not state.gz:
                    self._invalidated.add(state.key)  # changed since the scan: the next scan sorts it out
                    return
                reader.close()
                state = self._restart(state, obs)
                reader = _Reader(state, self.options, complete)
                reader.open()
            while True:
                try:
                    lines, rejects, used, at_end = reader.read_batch()
                except _TruncatedGz:
                    if time.time() - obs.mtime_ns / 1e9 > TRUNCATED_GZ_GRACE_S:
                        yield self._give_up(state, "gzip file ends before its end marker: read up to there")
                    return
                except _DamagedGz as exc:
                    yield self._give_up(state, f"damaged gzip file: {exc}")
                    return
                state.anchor = reader.anchor()
                if reader.invalidated:
                    self._invalidated.add(state.key)
                cursors = self.pending_cursors() if (lines or rejects or at_end) else {}
                if lines or rejects or cursors:
                    yield TailBatch(key=state.key, path=state.path, lines=lines, rejected=rejects, cursors=cursors,
                                    opened_at=reader.opened_at, bytes=used, finished=state.done)
                if at_end:
                    return
        except OSError as exc:
            self._note(_unreadable(state.path, exc))
        except _Unreadable as exc:
            self._note(exc)
        finally:
            reader.close()

    def _give_up(self, state: FileState, reason: str) -> TailBatch:
        state.done = True
        rejected = Rejected(reason, f"{state.path}:{state.line + 1}")
        return TailBatch(key=state.key, path=state.path, lines=[], rejected=[rejected],
                         cursors=self.pending_cursors(), opened_at=state.offset, bytes=0, finished=True)

    def _restart(self, state: FileState, obs: _Observed) -> FileState:
        """A .gz whose content at the saved offset is not what we read: it is another file, read from 0."""
        backup = self._gz_backup.pop(state.key, None)
        if backup is not None:
            backup.gone = backup.gone or self.now_ms
            self.states[backup.key] = backup  # the orphan keeps waiting for its real continuation
            fresh = FileState(key=secrets.token_hex(8), path=obs.path, dev=obs.dev, ino=obs.ino, gz=True)
        else:
            fresh = state
            fresh.offset, fresh.line, fresh.anchor, fresh.skip, fresh.done = 0, 0, "", False, False
        data = obs.prefix(self.options.fingerprint_bytes)
        fresh.head, fresh.head_len = (digest(data) if data else ""), len(data)
        self.states[fresh.key] = fresh
        self.live.pop(state.key, None)
        self.live[fresh.key] = obs
        return fresh

    # -- state ---------------------------------------------------------------------------------

    def pending_cursors(self) -> dict[str, Any]:
        """Cursor rows changed since they were last handed out (``None``: delete); assumed saved from now."""
        current = {CURSOR_PREFIX + key: state.to_cursor() for key, state in self.states.items()}
        changes: dict[str, Any] = {key: value for key, value in current.items() if self._persisted.get(key) != value}
        changes.update({key: None for key in self._persisted if key not in current})
        self._persisted = current
        return changes

    def forget(self, key: str) -> None:
        """Drop a file's state (a drop-folder file moved to done/); the delete goes out with the next cursors."""
        self.states.pop(key, None)
        self.live.pop(key, None)

    def preamble(self, key: str, is_preamble: Callable[[str], bool], until: int) -> list[str]:
        """The file's leading header lines before ``until`` (e.g. Zeek ``#fields``), for a resumed parser."""
        state = self.states[key]
        found: list[str] = []
        consumed = 0
        try:
            with (gzip.open(state.path, "rb") if state.gz else open(state.path, "rb")) as handle:
                while len(found) < PREAMBLE_MAX_LINES and consumed < until:
                    raw = handle.readline(PREAMBLE_MAX_LINE_BYTES)
                    if not raw.endswith(b"\n"):
                        break
                    consumed += len(raw)
                    text = _decode(raw[:-1])
                    if not is_preamble(text):
                        break
                    found.append(text)
        except (OSError, EOFError, zlib.error):
            pass  # the parser rejects what it cannot place, which says more than failing here
        return found


def _same_stem(candidate: str, original: str) -> bool:
    """Rotated names keep the base name's stem: eve.json.1, eve.json-20240101.gz, eve-20240101.json."""
    stem = os.path.basename(original).split(".")[0]
    return bool(stem) and os.path.basename(candidate).startswith(stem)


def _line_aligned_end(path: str, size: int) -> tuple[int, int, str]:
    """(offset just after the last newline, lines before it, anchor) — where ``start_at: end`` begins."""
    with open(path, "rb") as handle:
        end = size
        offset = 0
        while end > 0:
            start = max(0, end - 64 * 1024)
            handle.seek(start)
            block = handle.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                offset = start + newline + 1
                break
            end = start
        handle.seek(0)
        lines = 0
        remaining = offset
        while remaining:
            chunk = handle.read(min(READ_CHUNK, remaining))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            remaining -= len(chunk)
        handle.seek(max(0, offset - ANCHOR_BYTES))
        anchor = digest(handle.read(offset - max(0, offset - ANCHOR_BYTES))) if offset else ""
    return offset, lines, anchor


def iter_file_lines(path: str | Path, options: TailOptions) -> Iterator[TailBatch]:
    """Read one file once, start to end (plain or gzip, by its magic bytes), in bounded batches.

    For imports: no identity, no cursors; the last unterminated line is a line.
    """
    path = str(path)
    with open(path, "rb") as handle:
        gz = handle.read(2) == GZIP_MAGIC
    info = os.stat(path)
    state = FileState(key="import", path=path, dev=info.st_dev, ino=info.st_ino, gz=gz)
    reader = _Reader(state, replace(options, once=True), complete=True)
    try:
        reader.open()
        while True:
            try:
                lines, rejects, used, at_end = reader.read_batch()
            except _TruncatedGz:
                lines, rejects, used, at_end = [], [Rejected("gzip file ends before its end marker: read up to there",
                                                             f"{path}:{state.line + 1}")], 0, True
            except _DamagedGz as exc:
                lines, rejects, used, at_end = [], [Rejected(f"damaged gzip file: {exc}",
                                                             f"{path}:{state.line + 1}")], 0, True
            yield TailBatch(key=state.key, path=path, lines=lines, rejected=rejects, cursors={}, opened_at=0,
                            bytes=used, finished=at_end)
            if at_end:
                return
    finally:
        reader.close()

