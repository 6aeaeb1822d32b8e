"""``source.type: http``: fetch one URL the way a CERT can trust.

* one ``requests.Session`` per source, kept for the process (connection reuse, no shared state
  between feeds), ``trust_env`` off so no ``.netrc`` credential is ever sent by surprise;
* connect/read timeouts from the config, and a hard ``max_bytes`` counted on the wire while
  streaming into a spooled temp file: an oversized answer stops the download and fails the run;
* decompression (``Content-Encoding``, then gzip or single-member zip found by magic bytes) into a
  spooled temp file with a ``max_decompressed_bytes`` cap, so a gzip bomb is a failed run, never
  an out-of-memory collector;
* conditional GET (``If-None-Match``/``If-Modified-Since`` from the saved cursor): 304 is an
  ``unchanged`` run, and so is a 200 whose payload has the same sha256 as the last one;
* retries with exponential backoff honouring ``Retry-After`` on 408/429/502/503/504, connection
  errors, timeouts and cut-off bodies, within ``collectors.politeness`` limits (one request at a
  time per host, minimum spacing, a cap on the total wait);
* redirects followed by hand (at most ``MAX_REDIRECTS``): never from https down to http, and
  credentials are dropped when the host changes (requests keeps custom auth headers otherwise);
* content sanity: an HTML page served with status 200 to a non-HTML feed fails the run, so does a
  body shorter than its ``Content-Length``; every error is in plain words and passed through
  ``secrets.redact``.

The helpers (``HttpClient``, ``decompress``, ``fetch_document``, ``digest``) are shared with the MISP, CSAF
and TAXII transports.
"""
from __future__ import annotations

import hashlib
import http
import os
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util import Retry

from collectors import politeness
from collectors.transports import FetchContext, Fetched, FetchError, Payload
from collectors.transports import secrets
from settings.sources import BasicAuth, BearerAuth, HeaderAuth, SourceConfig

TYPE = "http"

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 8 * 1024**2            # payloads above this spill to a temp file on disk
SNIFF_BYTES = 2048                       # how much of a body the HTML check and error snippets look at
ERROR_SNIPPET_CHARS = 200
MAX_REDIRECTS = 5                        # MISP's limit too (Feed.php); a loop fails fast
MAX_TRANSFER_SECONDS = 30 * 60           # a server dripping bytes under the read timeout is cut off here
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate"        # only encodings decoded here, under the size cap

STATUS_WORDS = {
    400: "the server rejected the request; check the URL and its parameters",
    401: "the feed needs credentials, or the ones given were refused",
    403: "access refused: the credentials lack permission or the provider blocks this address",
    404: "the feed URL is wrong or the feed moved",
    405: "the server does not allow GET on this URL",
    407: "the proxy needs credentials, or refused the ones given",
    408: "the server timed out waiting for the request; usually temporary",
    410: "the provider has retired this feed; remove it or replace its URL",
    429: "the provider is rate-limiting us; fetch less often",
    451: "the provider withholds this content for legal reasons",
    500: "the provider's server failed while answering",
    502: "a gateway or proxy in front of the provider failed; usually temporary",
    503: "the provider is down or overloaded; usually temporary",
    504: "a gateway or proxy in front of the provider timed out; usually temporary",
}

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)
TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


# --- sessions ------------------------------------------------------------------------------------

_sessions: dict[str, tuple[tuple[Any, ...], requests.Session]] = {}
_sessions_lock = threading.Lock()


def session_for(source_id: str, user_agent: str, *, pool_key: tuple[Any, ...] = ()) -> requests.Session:
    """The process's session for one source; rebuilt when its connection settings change."""
    key = (user_agent, *pool_key)
    with _sessions_lock:
        cached = _sessions.get(source_id)
        if cached and cached[0] == key:
            return cached[1]
        if cached:
            cached[1].close()
        session = requests.Session()
        # Environment proxies and CA bundles are applied explicitly in HttpClient; netrc never is.
        session.trust_env = False
        session.max_redirects = MAX_REDIRECTS
        # Retries are ours (politeness.Backoff): urllib3 must not retry behind our back.
        # (requests' 0 means Retry(0, read=False): errors surface as themselves, e.g. ReadTimeout.)
        adapter = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=2)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING})
        _sessions[source_id] = (key, session)
        return session


def close_sessions() -> None:
    with _sessions_lock:
        for _, session in _sessions.values():
            session.close()
        _sessions.clear()


# --- the client ----------------------------------------------------------------------------------

class _Transient(Exception):
    """A failure worth retrying (network, timeout, cut-off body); ``str`` is the plain-words reason."""


@dataclass
class Download:
    """A response whose body (for 2xx) sits in ``body``, exactly as it came off the wire."""

    status: int
    reason: str
    headers: CaseInsensitiveDict
    url: str
    body: IO[bytes] | None
    wire_bytes: int
    snippet: str = ""

    def close(self) -> None:
        if self.body is not None:
            self.body.close()


class HttpClient:
    """GETs for one source with its auth, proxy, TLS, timeouts, size cap, retries and politeness."""

    def __init__(self, source: SourceConfig, ctx: FetchContext, *, max_bytes: int,
                 connect_timeout: float, read_timeout: float, retries: int,
                 headers: dict[str, str] | None = None):
        cfg = source.source
        self.source = source
        self.max_bytes = max_bytes
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.verify: bool | str = bool(getattr(cfg, "verify_tls", True))
        if self.verify:
            # trust_env is off, so honour the usual CA-bundle variables by hand (TLS-inspecting OT proxies).
            self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.proxy = secrets.resolve(getattr(cfg, "proxy", None), "source.proxy")
        self.headers = secrets.resolve_mapping(headers or {}, "source.headers")
        self.auth: tuple[str, str] | None = None
        self.auth_headers: dict[str, str] = {}
        auth = getattr(cfg, "auth", None)
        if isinstance(auth, BasicAuth):
            username = secrets.resolve(auth.username, "source.auth.username") or ""
            password = secrets.resolve(auth.password, "source.auth.password") or ""
            secrets.remember_basic(username, password)
            self.auth = (username, password)
        elif isinstance(auth, BearerAuth):
            self.auth_headers["Authorization"] = f"Bearer {secrets.resolve(auth.token, 'source.auth.token')}"
        elif isinstance(auth, HeaderAuth):
            self.auth_headers[auth.header] = secrets.resolve(auth.value, "source.auth.value") or ""
        self.session = session_for(source.id, ctx.user_agent, pool_key=(self.proxy, self.verify))

    def proxies_for(self, url: str) -> dict[str, str]:
        if self.proxy:
            return {"http": self.proxy, "https": self.proxy}
        return requests.utils.get_environ_proxies(url)

    def get(self, url: str, extra_headers: dict[str, str] | None = None) -> Download:
        """GET with retries; returns 2xx (body read, size-capped), 304 and other statuses (snippet only)."""
        backoff = politeness.Backoff(self.retries)
        while True:
            try:
                result = self._follow(url, extra_headers or {})
            except _Transient as exc:
                wait = backoff.next_wait(None)
                if wait is None:
                    raise self._gave_up(str(exc), backoff) from None
                backoff.wait(wait)
                continue
            if result.status in RETRY_STATUSES:
                retry_after = parse_retry_after(result.headers.get("Retry-After"))
                wait = backoff.next_wait(retry_after)
                if wait is None:
                    message = status_message(result.status, result.reason, result.snippet)
                    if retry_after is not None:
                        message += f"; the server asked us to wait {retry_after:.0f} s (Retry-After)"
                        if backoff.refused_wait == retry_after:
                            message += (f", longer than one run may wait ({backoff.pacing.max_total_wait:.0f} s), "
                                        "so a later run will try again")
                    raise FetchError(secrets.redact(_tries(message, backoff)), http_status=result.status,
                                     retry_after=retry_after)
                backoff.wait(wait)
                continue
            return result

    def _gave_up(self, reason: str, backoff: politeness.Backoff) -> FetchError:
        return FetchError(secrets.redact(_tries(reason, backoff)))

    def _follow(self, url: str, extra_headers: dict[str, str]) -> Download:
        """One try: the request and its redirects, each hop in its host's politeness slot."""
        current = url
        carry_auth = True
        origin = urlsplit(url)
        for _hop in range(MAX_REDIRECTS + 1):
            headers = {**self.headers, **extra_headers}
            if carry_auth:
                headers.update(self.auth_headers)
            with politeness.host_slot(current):
                response = self._send(current, headers, self.auth if carry_auth else None)
                try:
                    if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                        target = urljoin(current, response.headers["Location"])
                    elif 200 <= response.status_code < 300:
                        body, count = self._read_body(response, current)
                        return Download(response.status_code, response.reason or "", response.headers, current,
                                        body, count)
                    else:
                        return Download(response.status_code, response.reason or "", response.headers, current,
                                        None, 0, snippet=_snippet(response))
                finally:
                    response.close()
            hop = urlsplit(target)
            if hop.scheme not in ("http", "https"):
                raise FetchError(secrets.redact(f"redirected to an unsupported URL scheme: {target}"))
            if urlsplit(current).scheme == "https" and hop.scheme == "http":
                raise FetchError(secrets.redact(
                    f"redirected from https to plain http ({target}); refusing to fetch a feed unencrypted"))
            # Credentials were given for the configured host only; a redirect elsewhere must not carry them.
            if (hop.hostname, hop.port) != (origin.hostname, origin.port):
                carry_auth = False
            current = target
        raise FetchError(secrets.redact(f"more than {MAX_REDIRECTS} redirects starting at {url}"))

    def _send(self, url: str, headers: dict[str, str], auth: tuple[str, str] | None) -> requests.Response:
        host = politeness.host_key(url)
        try:
            return self.session.get(url, headers=headers, auth=auth, timeout=self.timeout, stream=True,
                                    allow_redirects=False, verify=self.verify, proxies=self.proxies_for(url))
        except requests.exceptions.SSLError as exc:
            raise FetchError(secrets.redact(
                f"TLS certificate check failed for {host}: {_root_cause(exc)}; if the site uses a private CA, "
                "point REQUESTS_CA_BUNDLE at it (verify_tls: false is a last resort)")) from None
        except requests.exceptions.ProxyError as exc:
            raise _Transient(f"the proxy failed while connecting to {host}: {_root_cause(exc)}") from None
        except requests.exceptions.ConnectTimeout:
            raise _Transient(f"could not connect to {host} within {self.timeout[0]:g} s (connect timeout)") from None
        except requests.exceptions.ReadTimeout:
            raise _Transient(f"{host} sent nothing for {self.timeout[1]:g} s (read timeout)") from None
        except requests.exceptions.ConnectionError as exc:
            if _no_such_host(exc):
                # The resolver answered "no such name" (or has no route to any): asking again in a few
                # seconds gets the same answer, and on an air-gapped floor every internet feed would
                # spend its whole retry budget on it. "Temporary failure" (EAI_AGAIN) is still retried.
                raise FetchError(secrets.redact(
                    f"{_connection_words(host, exc)}: the name does not exist or this machine cannot "
                    "reach a DNS server that knows it; not retried, the next run tries again")) from None
            raise _Transient(_connection_words(host, exc)) from None
        except requests.exceptions.InvalidURL as exc:
            raise FetchError(secrets.redact(f"invalid URL: {exc}")) from None
        except requests.exceptions.RequestException as exc:
            raise _Transient(f"request to {host} failed: {_root_cause(exc)}") from None

    def _read_body(self, response: requests.Response, url: str) -> tuple[IO[bytes], int]:
        declared = _content_length(response)
        if declared is not None and declared > self.max_bytes:
            raise FetchError(f"response exceeded max_bytes {self.max_bytes} (Content-Length {declared}); "
                             "not downloaded", http_status=response.status_code)
        body: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        count = 0
        clock = politeness.pacing().clock
        started = clock()
        try:
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                count += len(chunk)
                if count > self.max_bytes:
                    raise FetchError(f"response exceeded max_bytes {self.max_bytes}; stopped reading",
                                     http_status=response.status_code, bytes_read=count)
                body.write(chunk)
                if clock() - started > MAX_TRANSFER_SECONDS:
                    raise FetchError(f"download took longer than {MAX_TRANSFER_SECONDS} s; stopped after {count} bytes",
                                     http_status=response.status_code, bytes_read=count)
        except urllib3.exceptions.ReadTimeoutError:
            body.close()
            raise _Transient(f"{politeness.host_key(url)} stopped sending mid-body for {self.timeout[1]:g} s "
                             f"(read timeout) after {count} bytes") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            body.close()
            expected = f" of {declared}" if declared is not None else ""
            cause = "" if "IncompleteRead" in repr(exc) else f" ({_root_cause(exc)})"
            raise _Transient(f"truncated response: the connection dropped after {count}{expected} bytes{cause}") from None
        except FetchError:
            body.close()
            raise
        if declared is not None and count < declared:
            body.close()
            raise _Transient(f"truncated response: got {count} of {declared} bytes (Content-Length)")
        body.seek(0)
        return body, count


# --- decompression -------------------------------------------------------------------------------

def decompress(stream: IO[bytes], *, mode: str, content_encoding: str, cap: int) -> IO[bytes]:
    """Undo ``Content-Encoding``, then (``auto``) gzip/zip found by magic bytes, each capped at ``cap``."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        stream = _replace(stream, _gunzip(stream, cap))
    elif encoding == "deflate":
        stream = _replace(stream, _inflate(stream, cap))
    elif encoding not in ("", "identity"):
        stream.close()
        raise FetchError(f"the server used Content-Encoding {encoding!r}, which watchfloor does not decode")
    if mode == "none":
        return stream
    magic = stream.read(4)
    stream.seek(0)
    if magic.startswith(GZIP_MAGIC):
        return _replace(stream, _gunzip(stream, cap))
    if magic.startswith(ZIP_MAGIC):
        return _replace(stream, _unzip(stream, cap))
    if mode in ("gzip", "zip"):
        stream.close()
        raise FetchError(f"decompression is set to {mode}, but the data is not {mode} "
                         f"(first bytes {magic!r}); use decompression: auto")
    return stream


def _replace(old: IO[bytes], new: IO[bytes]) -> IO[bytes]:
    old.close()
    return new


def _over_cap(cap: int) -> FetchError:
    return FetchError(f"decompressed data exceeded max_decompressed_bytes {cap} (a compression bomb or a "
                      "feed far larger than expected); stopped")


def _drain(decoder: Any, data: bytes, out: IO[bytes], total: int, cap: int) -> int:
    """Feed ``data`` through ``decoder`` in bounded steps: no step yields more than one chunk."""
    while True:
        piece = decoder.decompress(data, CHUNK)
        total += len(piece)
        if total > cap:
            raise _over_cap(cap)
        out.write(piece)
        data = decoder.unconsumed_tail
        # A full step may leave output pending inside zlib even with no input left: go round again.
        if decoder.eof or (not data and len(piece) < CHUNK):
            return total


def _gunzip(stream: IO[bytes], cap: int) -> IO[bytes]:
    out: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    member_open = False
    total = 0
    try:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            data = chunk
            while data:
                if not member_open:
                    # Concatenated gzip members make one valid gzip file; zero padding after the last is not a member.
                    data = data.lstrip(b"\x00")
                    if not data:
                        break
                    member_open = True
                total = _drain(decoder, data, out, total, cap)
                data = b""
                if decoder.eof:
                    data = decoder.unused_data
                    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    member_open = False
        if member_open:
            raise FetchError("the gzip data is cut off (it ends before the end of the compressed stream)")
    except zlib.error as exc:
        out.close()
        raise FetchError(f"corrupt gzip data: {exc}") from None
    except FetchError:
        out.close()
        raise
    out.seek(0)
    return out


def _inflate(stream: IO[bytes], cap: int) -> IO[bytes]:
    head = stream.read(2)
    stream.seek(0)
    # "deflate" is zlib-wrapped by the RFC, raw deflate by many servers: the header tells which.
    wbits = zlib.MAX_WBITS if len(head) == 2 and (head[0] * 256 + head[1]) % 31 == 0 else -zlib.MAX_WBITS
    out: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    decoder = zlib.decompressobj(wbits)
    total = 0
    try:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            total = _drain(decoder, chunk, out, total, cap)
    except zlib.error as exc:
        out.close()
        raise FetchError(f"corrupt deflate data: {exc}") from None
    except FetchError:
        out.close()
        raise
    out.seek(0)
    return out


def _unzip(stream: IO[bytes], cap: int) -> IO[bytes]:
    out: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        with zipfile.ZipFile(stream) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1:
                names = ", ".join(info.filename for info in members[:5])
                raise FetchError(f"the zip archive holds {len(members)} files ({names}); watchfloor expects exactly one")
            member = members[0]
            if member.file_size > cap:
                raise _over_cap(cap)
            total = 0
            # The declared size can lie; count what actually comes out.
            with archive.open(member) as inner:
                for chunk in iter(lambda: inner.read(CHUNK), b""):
                    total += len(chunk)
                    if total > cap:
                        raise _over_cap(cap)
                    out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError) as exc:
        out.close()
        raise FetchError(f"corrupt or unsupported zip archive: {exc}") from None
    except FetchError:
        out.close()
        raise
    out.seek(0)
    return out


# --- checks and words ----------------------------------------------------------------------------

def looks_like_html(head: bytes, content_type: str) -> bool:
    head = head.removeprefix(b"\xef\xbb\xbf")
    if HTML_START.match(head):
        return True
    # A server that labels its answer HTML and starts it with a tag is sending a page, not a feed;
    # a plain list mislabelled text/html (it happens) starts with data and passes.
    return "html" in content_type.lower() and head.lstrip().startswith(b"<")


def html_title(head: bytes) -> str:
    match = TITLE.search(head.decode("utf-8", "replace"))
    return " ".join(match.group(1).split())[:120] if match else ""


def status_message(status: int, reason: str, snippet: str = "") -> str:
    try:
        # The standard phrase, not the server's spelling of it ("NOT FOUND"): the same words on every feed.
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = reason or "unknown status"
    words = STATUS_WORDS.get(status)
    if words is None:
        words = ("the provider's server failed" if status >= 500 else
                 "the request was refused" if status >= 400 else "unexpected answer")
    message = f"HTTP {status} {phrase}: {words}"
    if snippet:
        message += f" (server said: {snippet})"
    return message


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header, given as seconds or as an HTTP date; ``None`` if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(Retry().parse_retry_after(value.strip())))
    except (urllib3.exceptions.InvalidHeader, ValueError, TypeError, OverflowError):
        return None


def _tries(message: str, backoff: politeness.Backoff) -> str:
    tries = backoff.attempts
    if tries > 1:
        message += f" (gave up after {tries} tries over {backoff.waited:.0f} s of backoff)"
    return message


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value and value.strip().isdigit():
        return int(value.strip())
    return None


def _snippet(response: requests.Response) -> str:
    """A short, tag-free excerpt of an error body: often the provider's own explanation."""
    try:
        head = response.raw.read(SNIFF_BYTES, decode_content=True) or b""
    except Exception:  # an error body we cannot read adds nothing; the status still speaks
        return ""
    text = head.decode("utf-8", "replace")
    title = TITLE.search(text)
    text = TAGS.sub(" ", text)
    text = " ".join(text.split())
    if title and " ".join(title.group(1).split()) not in text[:40]:
        text = f"{' '.join(title.group(1).split())}: {text}"
    if len(text) > ERROR_SNIPPET_CHARS:
        text = text[:ERROR_SNIPPET_CHARS] + "…"
    return text


def _root_cause(exc: BaseException) -> str:
    seen = exc
    for _ in range(6):
        nxt = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen or not isinstance(nxt, BaseException):
            break
        seen = nxt
    text = str(seen) or type(seen).__name__
    return text[:200]


def _no_such_host(exc: BaseException) -> bool:
    text = repr(exc)
    return any(s in text for s in ("Name or service not known", "nodename nor servname", "No address associated"))


def _connection_words(host: str, exc: BaseException) -> str:
    text = repr(exc)
    if "ReadTimeoutError" in text or "Read timed out" in text:
        return f"{host} sent nothing within the read timeout"
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return f"could not connect to {host}: connection refused (nothing listens there, or a firewall rejects us)"
    if any(s in text for s in ("Name or service not known", "nodename nor servname", "Temporary failure in name resolution",
                               "getaddrinfo failed", "NameResolutionError")):
        return f"could not resolve the host name {host.rsplit(':', 1)[0]} (DNS)"
    if "Connection reset" in text or "ConnectionResetError" in text:
        return f"{host} reset the connection"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return f"{host} closed the connection without answering"
    return f"network error talking to {host}: {_root_cause(exc)}"


def digest(stream: IO[bytes], algorithm: str = "sha256") -> str:
    """Hex digest of a seekable stream, read in chunks and rewound (sha256 for runs, sha512 for CSAF)."""
    hasher = hashlib.new(algorithm)
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        hasher.update(chunk)
    stream.seek(0)
    return hasher.hexdigest()


def fetch_document(client: HttpClient, url: str, *, name: str, expected: str,
                   extra_headers: dict[str, str] | None = None) -> Download:
    """GET one file of a multi-file feed (a MISP event, a CSAF advisory or listing).

    304 comes back with ``body`` None; any other non-2xx raises ``FetchError`` naming ``name`` with
    the status; a ``Content-Encoding`` is undone under the client's ``max_bytes``; an HTML page
    served instead of ``expected`` raises.
    """
    result = client.get(url, extra_headers)
    if result.status == 304:
        return result
    if not 200 <= result.status < 300:
        raise FetchError(secrets.redact(f"{name}: {status_message(result.status, result.reason, result.snippet)}"),
                         http_status=result.status)
    assert result.body is not None
    result.body = decompress(result.body, mode="none", content_encoding=result.headers.get("Content-Encoding", ""),
                             cap=client.max_bytes)
    head = result.body.read(SNIFF_BYTES)
    result.body.seek(0)
    if looks_like_html(head, result.headers.get("Content-Type", "")):
        result.close()
        raise FetchError(f"{name}: expected {expected}, got an HTML page (status {result.status})",
                         http_status=result.status)
    return result


# --- the transport -------------------------------------------------------------------------------

def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    cfg = source.source
    url = secrets.resolve(cfg.url, "source.url") or ""
    client = HttpClient(source, ctx, max_bytes=cfg.max_bytes, connect_timeout=cfg.connect_timeout.total_seconds(),
                        read_timeout=cfg.timeout.total_seconds(), retries=cfg.retries, headers=cfg.headers)
    # A saved validator belongs to the URL it came from; after the URL changes it means nothing.
    same_url = cursor.get("url") == cfg.url
    conditional: dict[str, str] = {}
    if same_url and cursor.get("etag"):
        conditional["If-None-Match"] = cursor["etag"]
    if same_url and cursor.get("last_modified"):
        conditional["If-Modified-Since"] = cursor["last_modified"]
    result = client.get(url, conditional)
    if result.status == 304:
        return Fetched(payloads=[], not_modified=True, http_status=304, cursor=dict(cursor))
    if not 200 <= result.status < 300:
        raise FetchError(secrets.redact(status_message(result.status, result.reason, result.snippet)),
                         http_status=result.status)
    assert result.body is not None
    try:
        payload = decompress(result.body, mode=cfg.decompression,
                             content_encoding=result.headers.get("Content-Encoding", ""),
                             cap=cfg.max_decompressed_bytes)
    except FetchError as exc:
        raise FetchError(secrets.redact(str(exc)), http_status=result.status, bytes_read=result.wire_bytes) from None
    head = payload.read(SNIFF_BYTES)
    payload.seek(0)
    if looks_like_html(head, result.headers.get("Content-Type", "")):
        payload.close()
        title = html_title(head)
        raise FetchError(secrets.redact(
            f"expected {source.format} data, got an HTML page (status {result.status})"
            + (f": {title!r}" if title else "") + "; the provider may be down, blocking us, or the URL moved"),
            http_status=result.status, bytes_read=result.wire_bytes)
    sha256 = digest(payload)
    new_cursor = {"url": cfg.url, "sha256": sha256}
    for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
        if result.headers.get(header):
            new_cursor[key] = result.headers[header]
    if same_url and cursor.get("sha256") == sha256:
        # The server ignored our validators but sent the same bytes: nothing to parse again.
        payload.close()
        return Fetched(payloads=[], not_modified=True, http_status=result.status, bytes=result.wire_bytes,
                       sha256=sha256, cursor=new_cursor)
    return Fetched(payloads=[Payload(payload, secrets.redact(url))], http_status=result.status,
                   bytes=result.wire_bytes, sha256=sha256, cursor=new_cursor)
