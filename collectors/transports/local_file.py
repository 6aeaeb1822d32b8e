"""``source.type: file``: a feed delivered by hand to an air-gapped site, read whole on every run.

The file's sha256 doubles as the change marker: an unchanged file is an ``unchanged`` run.
"""
from __future__ import annotations

import hashlib
from typing import Any

from collectors.transports import FetchContext, Fetched, FetchError, Payload, resolve_path
from settings.sources import SourceConfig

TYPE = "file"
READ_CHUNK = 1024 * 1024


def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    path = resolve_path(source.source.path, ctx.data_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FetchError(f"file not found: {path}") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror}") from None
    if size > source.source.max_bytes:
        raise FetchError(f"{path} is {size} bytes, over max_bytes {source.source.max_bytes}", bytes_read=size)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    if cursor.get("sha256") == sha256:
        return Fetched(payloads=[], not_modified=True, bytes=size, sha256=sha256, cursor=cursor)
    return Fetched(payloads=[Payload(path.open("rb"), str(path))], bytes=size, sha256=sha256,
                   cursor={"sha256": sha256})
