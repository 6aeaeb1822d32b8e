"""``source.type: directory``: a drop folder for feed files (air-gapped sites, files from a partner).

Every file matching ``pattern`` becomes a payload once: the cursor maps each file's path (relative
to the folder) to the sha256 it had when ingested, so a new file or a changed file is read and an
unchanged one is not. Files still being written are left for the next run: hidden files, names
ending ``.part``/``.tmp``/``.partial``/``.crdownload``/``~`` (copy under such a name, then rename),
and files modified less than ``SETTLE_SECONDS`` ago by the collector's clock. A gzip or single-file
zip is decompressed (capped, as over HTTP). The fetch is incremental (``complete_snapshot`` is
false): a file that disappears does not expire what it brought.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from collectors.transports import FetchContext, Fetched, FetchError, Payload, resolve_path
from collectors.transports.http import CHUNK, decompress
from settings.sources import SourceConfig

TYPE = "directory"

SETTLE_SECONDS = 2.0                              # a file younger than this may still be growing
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", "~")
MAX_DECOMPRESSED_BYTES = 512 * 1024**2            # the same default as an HTTP source's cap


def _candidates(folder: Path, pattern: str) -> list[Path]:
    found = []
    try:
        listed = list(folder.glob(pattern))
    except (ValueError, NotImplementedError) as exc:
        raise FetchError(f"invalid pattern {pattern!r}: {exc}") from None
    for path in listed:
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.name.endswith(PARTIAL_SUFFIXES):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    cfg = source.source
    folder = resolve_path(cfg.path, ctx.data_dir)
    if not folder.is_dir():
        raise FetchError(f"drop folder not found: {folder}")
    seen: dict[str, str] = dict(cursor.get("files") or {})
    now = ctx.now().timestamp()
    files: dict[str, str] = {}
    payloads: list[Payload] = []
    total = 0
    try:
        for path in _candidates(folder, cfg.pattern):
            key = path.relative_to(folder).as_posix()
            try:
                stat = path.stat()
                if now - stat.st_mtime < SETTLE_SECONDS:
                    if key in seen:
                        files[key] = seen[key]  # keep the old version's mark until the new one settles
                    continue
                sha256 = _sha256(path)
                files[key] = sha256
                if seen.get(key) == sha256:
                    continue
                stream = decompress(path.open("rb"), mode="auto", content_encoding="", cap=MAX_DECOMPRESSED_BYTES)
            except FileNotFoundError:
                continue  # moved away between listing and reading: it is no longer ours to ingest
            except OSError as exc:
                raise FetchError(f"cannot read {path}: {exc.strerror}") from None
            except FetchError as exc:
                raise FetchError(f"{key}: {exc}") from None
            total += stat.st_size
            payloads.append(Payload(stream, str(path)))
    except FetchError:
        for payload in payloads:
            payload.stream.close()
        raise
    digest = hashlib.sha256("\n".join(f"{k}:{v}" for k, v in sorted(files.items())).encode()).hexdigest()
    new_cursor = {"files": files}
    if not payloads:
        return Fetched(payloads=[], not_modified=True, cursor=new_cursor, sha256=digest, complete_snapshot=False)
    return Fetched(payloads=payloads, bytes=total, sha256=digest, cursor=new_cursor, complete_snapshot=False)
