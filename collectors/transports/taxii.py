"""``source.type: taxii``: a TAXII 2.1 collection, read incrementally with ``added_after`` and paging.

Each page of objects becomes one payload holding a STIX 2.1 bundle, which the ``stix21`` format
parses like any bundle file. The cursor is the newest ``date_added`` the server reported
(``X-TAXII-Date-Added-Last``), so the next run asks only for what was added since; the first run
looks back ``initial_lookback``, never "everything the server ever held" (MISP #5649 shows what a
fetch-all default does). Paging follows the server's ``next`` token; a server that says ``more``
without a token is paged by moving ``added_after`` forward, as the specification allows.

Built on ``taxii2client.v21.Collection``; each request runs inside ``collectors.politeness``
(one at a time per host, spacing, bounded backoff honouring ``Retry-After``) with the source's
timeout, proxy, TLS and auth, and every error is redacted before anyone reads it.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from tempfile import SpooledTemporaryFile
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import AccessError, InvalidJSONError, TAXIIServiceException
from taxii2client.v21 import Collection

from collectors import politeness
from collectors.transports import FetchContext, Fetched, FetchError, Payload
from collectors.transports import secrets
from collectors.transports.http import RETRY_STATUSES, SPOOL_IN_MEMORY, parse_retry_after, status_message
from settings.sources import BasicAuth, BearerAuth, HeaderAuth, SourceConfig

TYPE = "taxii"

CONNECT_TIMEOUT = 10.0                    # seconds; the config's ``timeout`` is the read timeout
MAX_PAGES = 10_000                        # a server that always answers "more" cannot keep a run going forever
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"
DATE_ADDED_FIRST = "X-TAXII-Date-Added-First"   # some servers send only this on a one-object page
STIX_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"

T = TypeVar("T")


class _TimeoutAdapter(HTTPAdapter):
    """taxii2client passes no timeout; this adapter supplies the source's."""

    def __init__(self, timeout: tuple[float, float]):
        super().__init__(max_retries=0, pool_connections=1, pool_maxsize=1)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class _TokenAuth(requests.auth.AuthBase):
    def __init__(self, headers: dict[str, str]):
        self.headers = headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


def _connection(source: SourceConfig, ctx: FetchContext, seen_headers: list[Any]) -> _HTTPConnection:
    cfg = source.source
    auth: Any = None
    if isinstance(cfg.auth, BasicAuth):
        username = secrets.resolve(cfg.auth.username, "source.auth.username") or ""
        password = secrets.resolve(cfg.auth.password, "source.auth.password") or ""
        secrets.remember_basic(username, password)
        auth = requests.auth.HTTPBasicAuth(username, password)
    elif isinstance(cfg.auth, BearerAuth):
        auth = _TokenAuth({"Authorization": f"Bearer {secrets.resolve(cfg.auth.token, 'source.auth.token')}"})
    elif isinstance(cfg.auth, HeaderAuth):
        auth = _TokenAuth({cfg.auth.header: secrets.resolve(cfg.auth.value, "source.auth.value") or ""})
    proxy = secrets.resolve(cfg.proxy, "source.proxy")
    verify: bool | str = cfg.verify_tls and (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True)
    conn = _HTTPConnection(verify=verify, proxies={"http": proxy, "https": proxy} if proxy else None,
                           user_agent=ctx.user_agent, version="2.1", auth=auth)
    session = conn.session
    session.trust_env = False  # no netrc credentials by surprise; environment proxies are applied below
    if not proxy:
        session.proxies.update(requests.utils.get_environ_proxies(cfg.url))
    adapter = _TimeoutAdapter((CONNECT_TIMEOUT, cfg.timeout.total_seconds()))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # taxii2client returns parsed JSON only; the paging headers are caught on the way past.
    session.hooks["response"].append(lambda response, *args, **kwargs: seen_headers.append(response.headers))
    return conn


def _call(url: str, action: Callable[[], T], retries: int = 3) -> T:
    """One TAXII request in the host's politeness slot, retried within the backoff budget."""
    backoff = politeness.Backoff(retries)
    host = politeness.host_key(url)
    while True:
        retry_after: float | None = None
        try:
            with politeness.host_slot(url):
                return action()
        except requests.exceptions.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status not in RETRY_STATUSES:
                raise FetchError(secrets.redact(_taxii_words(status, response)), http_status=status) from None
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            reason = status_message(status, response.reason if response is not None else "")
        except requests.exceptions.SSLError as exc:
            raise FetchError(secrets.redact(f"TLS certificate check failed for {host}: {exc}")) from None
        except requests.exceptions.ConnectTimeout:
            reason = f"could not connect to {host} within {CONNECT_TIMEOUT:g} s (connect timeout)"
        except requests.exceptions.ReadTimeout:
            reason = f"{host} sent nothing within the read timeout"
        except requests.exceptions.ConnectionError as exc:
            reason = (f"could not connect to {host}: connection refused" if "refused" in repr(exc)
                      else f"network error talking to {host}: {type(exc).__name__}")
        except (TAXIIServiceException, InvalidJSONError, KeyError, TypeError, ValueError) as exc:
            # taxii2client trusts the server's headers and JSON; a non-TAXII answer surfaces as any of these.
            detail = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise FetchError(secrets.redact(f"{host} did not answer as a TAXII 2.1 server: {detail}")) from None
        except AccessError:
            raise FetchError(secrets.redact(f"the collection at {url} does not allow reading with these credentials")) from None
        wait = backoff.next_wait(retry_after)
        if wait is None:
            suffix = f" (gave up after {backoff.attempts} tries)" if backoff.attempts > 1 else ""
            raise FetchError(secrets.redact(reason + suffix), retry_after=retry_after)
        backoff.wait(wait)


def _taxii_words(status: int, response: requests.Response | None) -> str:
    if status == 406:
        return "HTTP 406 Not Acceptable: the server does not speak TAXII 2.1 (is it a TAXII 2.0 or 1.x server?)"
    if status == 404:
        return "HTTP 404 Not Found: no such collection; check the API root and collection id in the URL"
    return status_message(status, response.reason if response is not None else "")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _stix_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(STIX_TIME)[:-4] + "Z"


def _newest(current: str, candidate: str | None) -> str:
    ours, theirs = _parse_time(current), _parse_time(candidate)
    if theirs is None:
        return current
    if ours is None or theirs > ours:
        return candidate or current
    return current


def _spool_bundle(objects: list[dict[str, Any]], digest: Any) -> tuple[Any, int]:
    data = json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects},
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    digest.update(data)
    spool = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    spool.write(data)
    spool.seek(0)
    return spool, len(data)


def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    cfg = source.source
    url = secrets.resolve(cfg.url, "source.url") or ""
    saved = cursor.get("added_after") if cursor.get("url") == cfg.url else None
    added_after = saved or _stix_time(ctx.now() - cfg.initial_lookback)
    seen_headers: list[Any] = []
    conn = _connection(source, ctx, seen_headers)
    payloads: list[Payload] = []
    digest = hashlib.sha256()
    total_bytes = 0
    newest = added_after
    try:
        collection = Collection(url, conn=conn)
        _call(url, collection.refresh)
        if not collection.can_read:
            raise FetchError(f"the collection {collection.title!r} does not allow reading with these credentials")
        query_after, token = added_after, None
        for page in range(1, MAX_PAGES + 1):
            seen_headers.clear()
            envelope = _call(url, lambda: collection.get_objects(limit=cfg.page_size, added_after=query_after,
                                                                  next=token))
            objects = [o for o in (envelope.get("objects") or []) if isinstance(o, dict)]
            headers = seen_headers[-1] if seen_headers else {}
            header_last = headers.get(DATE_ADDED_LAST) or headers.get(DATE_ADDED_FIRST)
            if objects:
                if header_last:
                    newest = _newest(newest, header_last)
                else:
                    # No date_added from the server: the newest modified time is never later than
                    # when the object was added, so the next run re-reads a little and misses nothing.
                    for obj in objects:
                        newest = _newest(newest, obj.get("modified") or obj.get("created"))
                spool, size = _spool_bundle(objects, digest)
                total_bytes += size
                payloads.append(Payload(spool, f"{secrets.redact(url)} page {page}"))
            if not envelope.get("more"):
                break
            token = envelope.get("next")
            if not token:
                if not header_last or not objects:
                    break
                query_after = header_last  # page by date, as TAXII 2.1 allows
        else:
            raise FetchError(f"the server still said 'more' after {MAX_PAGES} pages; stopped")
    except FetchError:
        for payload in payloads:
            payload.stream.close()
        raise
    finally:
        conn.close()
    new_cursor = {"url": cfg.url, "added_after": newest}
    if not payloads:
        return Fetched(payloads=[], not_modified=True, http_status=200, cursor=new_cursor, complete_snapshot=False)
    return Fetched(payloads=payloads, http_status=200, bytes=total_bytes, sha256=digest.hexdigest(),
                   cursor=new_cursor, complete_snapshot=False)
