"""The HTTP transport on its own: decompression, redirects, auth, proxy, sanity checks, sessions."""
from __future__ import annotations

import gzip
import io
import socket
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from collectors.transports import FetchContext, FetchError
from collectors.transports import http as transport
from conftest import RawServer, make_source

BODY = b"# test list\n8.8.8.8\n9.9.9.9\n"


def ctx(tmp_path: Path) -> FetchContext:
    return FetchContext(data_dir=tmp_path, now=lambda: datetime(2026, 3, 1, tzinfo=timezone.utc))


def source(url: str, **http: Any) -> Any:
    return make_source(format="lines", source={"type": "http", "url": url, **http})


def fetch_body(url: str, tmp_path: Path, cursor: dict | None = None, **http: Any) -> tuple[bytes, Any]:
    fetched = transport.fetch(source(url, **http), cursor or {}, ctx(tmp_path))
    try:
        data = fetched.payloads[0].stream.read() if fetched.payloads else b""
    finally:
        fetched.close()
    return data, fetched


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- decompression -------------------------------------------------------------------------------

def test_content_encoding_gzip_is_undone_and_wire_bytes_are_counted(httpserver: HTTPServer, tmp_path: Path) -> None:
    wire = gzip.compress(BODY)
    httpserver.expect_request("/list.txt").respond_with_data(wire, headers={"Content-Encoding": "gzip"})
    data, fetched = fetch_body(httpserver.url_for("/list.txt"), tmp_path)
    assert data == BODY
    assert fetched.bytes == len(wire)
    import hashlib
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()  # of the payload, not of the wire


def test_a_gz_file_is_found_by_its_magic_bytes(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/list.txt.gz").respond_with_data(gzip.compress(BODY),
                                                                content_type="application/octet-stream")
    assert fetch_body(httpserver.url_for("/list.txt.gz"), tmp_path)[0] == BODY


def test_concatenated_gzip_members_are_one_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/multi.gz").respond_with_data(gzip.compress(b"1.1.1.1\n") + gzip.compress(b"2.2.2.2\n"))
    assert fetch_body(httpserver.url_for("/multi.gz"), tmp_path)[0] == b"1.1.1.1\n2.2.2.2\n"


def test_a_cut_gzip_stream_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/cut.gz").respond_with_data(gzip.compress(BODY * 50)[:-20])
    with pytest.raises(FetchError, match="gzip data is cut off"):
        fetch_body(httpserver.url_for("/cut.gz"), tmp_path)


def test_deflate_content_encoding_zlib_and_raw(httpserver: HTTPServer, tmp_path: Path) -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    httpserver.expect_request("/z").respond_with_data(zlib.compress(BODY), headers={"Content-Encoding": "deflate"})
    httpserver.expect_request("/raw").respond_with_data(raw.compress(BODY) + raw.flush(),
                                                        headers={"Content-Encoding": "deflate"})
    assert fetch_body(httpserver.url_for("/z"), tmp_path)[0] == BODY
    assert fetch_body(httpserver.url_for("/raw"), tmp_path)[0] == BODY


def test_a_single_member_zip_is_unpacked(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/list.zip").respond_with_data(zipped({"list.txt": BODY}), content_type="application/zip")
    assert fetch_body(httpserver.url_for("/list.zip"), tmp_path)[0] == BODY


def test_a_zip_with_several_files_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/two.zip").respond_with_data(zipped({"a.txt": BODY, "b.txt": BODY}))
    with pytest.raises(FetchError, match="holds 2 files"):
        fetch_body(httpserver.url_for("/two.zip"), tmp_path)


def test_a_zip_bomb_is_stopped_at_the_cap(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/bomb.zip").respond_with_data(zipped({"big.txt": b"\0" * (8 * 1024**2)}))
    with pytest.raises(FetchError, match="exceeded max_decompressed_bytes 1000000"):
        fetch_body(httpserver.url_for("/bomb.zip"), tmp_path, max_decompressed_bytes="1MB")


def test_decompression_none_hands_over_the_bytes_as_they_came(httpserver: HTTPServer, tmp_path: Path) -> None:
    wire = gzip.compress(BODY)
    httpserver.expect_request("/keep.gz").respond_with_data(wire)
    assert fetch_body(httpserver.url_for("/keep.gz"), tmp_path, decompression="none")[0] == wire


def test_decompression_gzip_on_plain_data_says_so(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/plain").respond_with_data(BODY)
    with pytest.raises(FetchError, match="decompression is set to gzip, but the data is not gzip"):
        fetch_body(httpserver.url_for("/plain"), tmp_path, decompression="gzip")


# --- content sanity ------------------------------------------------------------------------------

@pytest.mark.parametrize("page, content_type", [
    (b"<html><body>Please log in</body></html>", "text/plain"),
    (b"\xef\xbb\xbf  <!-- cdn --> <!doctype html><title>Error</title>", "application/octet-stream"),
    (b"<div>blocked</div>", "text/html; charset=utf-8"),
])
def test_html_pages_are_refused(httpserver: HTTPServer, tmp_path: Path, page: bytes, content_type: str) -> None:
    httpserver.expect_request("/feed").respond_with_data(page, content_type=content_type)
    with pytest.raises(FetchError, match=r"expected lines data, got an HTML page \(status 200\)") as caught:
        fetch_body(httpserver.url_for("/feed"), tmp_path)
    assert caught.value.http_status == 200


def test_a_plain_list_mislabelled_as_html_still_loads(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/feed").respond_with_data(BODY, content_type="text/html")
    assert fetch_body(httpserver.url_for("/feed"), tmp_path)[0] == BODY


def test_an_unknown_content_encoding_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/br").respond_with_data(b"\x00\x01", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="Content-Encoding 'br'"):
        fetch_body(httpserver.url_for("/br"), tmp_path)


# --- conditional GET -----------------------------------------------------------------------------

def test_validators_are_dropped_when_the_url_changes(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/new.txt").respond_with_data(BODY)
    cursor = {"url": "https://example.invalid/old.txt", "etag": '"x"', "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    data, fetched = fetch_body(httpserver.url_for("/new.txt"), tmp_path, cursor)
    assert data == BODY
    request = httpserver.log[0][0]
    assert "If-None-Match" not in request.headers and "If-Modified-Since" not in request.headers
    assert fetched.cursor["url"] == httpserver.url_for("/new.txt")


def test_a_304_keeps_the_cursor(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/list.txt")
    httpserver.expect_request("/list.txt", headers={"If-None-Match": '"v7"'}).respond_with_data("", status=304)
    cursor = {"url": url, "etag": '"v7"', "sha256": "ab" * 32}
    fetched = transport.fetch(source(url), cursor, ctx(tmp_path))
    assert fetched.not_modified and fetched.cursor == cursor and fetched.payloads == []


# --- retries -------------------------------------------------------------------------------------

def test_retry_after_as_an_http_date(httpserver: HTTPServer, tmp_path: Path, pacing: list[float]) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    httpserver.expect_request("/busy").respond_with_data("", status=503, headers={"Retry-After": when})
    with pytest.raises(FetchError) as caught:
        fetch_body(httpserver.url_for("/busy"), tmp_path)
    assert caught.value.http_status == 503
    assert 3500 < caught.value.retry_after <= 3600
    assert pacing == []  # too long to wait within a run: give up at once, never hammer early


def test_total_backoff_is_capped(httpserver: HTTPServer, tmp_path: Path, pacing: list[float]) -> None:
    from collectors import politeness
    politeness.configure(max_total_wait=10.0)
    httpserver.expect_request("/busy").respond_with_data("", status=502)
    with pytest.raises(FetchError, match=r"HTTP 502 Bad Gateway.*gave up after 3 tries"):
        fetch_body(httpserver.url_for("/busy"), tmp_path, retries=10)
    assert pacing == [2.0, 4.0]  # the next step (8 s) would pass the 10 s budget


def test_a_host_name_that_does_not_exist_is_not_retried(tmp_path: Path, pacing: list[float]) -> None:
    # .invalid never resolves (RFC 6761): the resolver's "no such name" is final, so no backoff.
    with pytest.raises(FetchError, match=r"could not resolve the host name feeds\.example\.invalid \(DNS\).*not retried"):
        fetch_body("http://feeds.example.invalid/list.txt", tmp_path, retries=5)
    assert pacing == []


def test_connection_refused_is_still_retried(tmp_path: Path, pacing: list[float]) -> None:
    with socket.socket() as sock:           # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection refused.*gave up after 3 tries"):
        fetch_body(f"http://127.0.0.1:{port}/list.txt", tmp_path, retries=2)
    assert pacing == [2.0, 4.0]


def test_a_4xx_is_not_retried(httpserver: HTTPServer, tmp_path: Path, pacing: list[float]) -> None:
    httpserver.expect_request("/denied").respond_with_data("", status=401)
    with pytest.raises(FetchError, match="HTTP 401 Unauthorized: the feed needs credentials"):
        fetch_body(httpserver.url_for("/denied"), tmp_path)
    assert pacing == [] and len(httpserver.log) == 1


# --- redirects, auth, proxy ----------------------------------------------------------------------

def test_redirects_are_followed_and_credentials_stay_with_their_host(httpserver: HTTPServer, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_KEY", "key-abcdef123456")
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/final.txt").respond_with_data(BODY)
        httpserver.expect_request("/start").respond_with_data("", status=302, headers={"Location": "/middle"})
        httpserver.expect_request("/middle").respond_with_data("", status=301,
                                                               headers={"Location": other.url_for("/final.txt")})
        data, _ = fetch_body(httpserver.url_for("/start"), tmp_path,
                             auth={"type": "header", "header": "Auth-Key", "value": "${ENV:WF_TEST_KEY}"})
        assert data == BODY
        assert [r.headers.get("Auth-Key") for r, _ in httpserver.log] == ["key-abcdef123456"] * 2
        assert "Auth-Key" not in other.log[0][0].headers
    finally:
        other.clear()
        other.stop()


def test_a_redirect_loop_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch_body(httpserver.url_for("/loop"), tmp_path)


def test_bearer_and_basic_auth_are_sent(httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_TOKEN", "bearer-token-value")
    monkeypatch.setenv("WF_TEST_PASS", "pa55-word")
    httpserver.expect_request("/b", headers={"Authorization": "Bearer bearer-token-value"}).respond_with_data(BODY)
    httpserver.expect_request("/basic", headers={"Authorization": "Basic Y2VydDpwYTU1LXdvcmQ="}).respond_with_data(BODY)
    assert fetch_body(httpserver.url_for("/b"), tmp_path,
                      auth={"type": "bearer", "token": "${ENV:WF_TEST_TOKEN}"})[0] == BODY
    assert fetch_body(httpserver.url_for("/basic"), tmp_path,
                      auth={"type": "basic", "username": "cert", "password": "${ENV:WF_TEST_PASS}"})[0] == BODY


def test_custom_headers_may_reference_secrets(httpserver: HTTPServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_HDR", "hdr-secret-1")
    httpserver.expect_request("/h", headers={"X-Feed-Key": "hdr-secret-1", "Accept": "text/csv"}).respond_with_data(BODY)
    assert fetch_body(httpserver.url_for("/h"), tmp_path,
                      headers={"X-Feed-Key": "${ENV:WF_TEST_HDR}", "Accept": "text/csv"})[0] == BODY


def test_requests_go_through_the_configured_proxy(raw_server: Callable[..., RawServer], tmp_path: Path) -> None:
    def proxy(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BODY), BODY))

    server = raw_server(proxy)
    data, _ = fetch_body("http://feeds.example.invalid/list.txt", tmp_path, proxy=server.url(""))
    assert data == BODY
    # A forward proxy gets the absolute URL in the request line.
    assert server.requests[0].startswith(b"GET http://feeds.example.invalid/list.txt HTTP/1.1")


def test_https_to_http_redirects_are_refused(tmp_path: Path, httpserver: HTTPServer) -> None:
    client = transport.HttpClient(source("https://feeds.example.invalid/x"), ctx(tmp_path), max_bytes=1000,
                                  connect_timeout=1, read_timeout=1, retries=0)

    class Hop:
        status_code, reason, headers = 302, "Found", {"Location": httpserver.url_for("/plain")}

        def close(self) -> None:
            pass

    client._send = lambda url, headers, auth: Hop()  # type: ignore[method-assign]
    with pytest.raises(FetchError, match="redirected from https to plain http"):
        client.get("https://feeds.example.invalid/x")
    assert len(httpserver.log) == 0


# --- sessions ------------------------------------------------------------------------------------

def test_one_session_per_source_reused_across_runs(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/list.txt").respond_with_data(BODY)
    url = httpserver.url_for("/list.txt")
    first = transport.HttpClient(source(url), ctx(tmp_path), max_bytes=1000, connect_timeout=1, read_timeout=1,
                                 retries=0).session
    fetch_body(url, tmp_path)
    second = transport.HttpClient(source(url), ctx(tmp_path), max_bytes=1000, connect_timeout=1, read_timeout=1,
                                  retries=0).session
    other = transport.HttpClient(make_source(id="another", format="lines", source={"type": "http", "url": url}),
                                 ctx(tmp_path), max_bytes=1000, connect_timeout=1, read_timeout=1, retries=0).session
    assert first is second and first is not other
    assert first.trust_env is False  # no ~/.netrc credentials sent by surprise


def test_status_words_cover_the_common_failures() -> None:
    assert transport.status_message(404, "NOT FOUND") == "HTTP 404 Not Found: the feed URL is wrong or the feed moved"
    assert transport.status_message(599, "Odd").startswith("HTTP 599 Odd: the provider's server failed")
    assert transport.parse_retry_after("120") == 120.0
    assert transport.parse_retry_after("soon") is None
    assert transport.parse_retry_after(None) is None


def test_server_reason_is_kept_short_and_tag_free(httpserver: HTTPServer, tmp_path: Path) -> None:
    page = "<html><head><title>Denied</title><style>p{color:red}</style></head><body><p>" + "x" * 500 + "</p></body></html>"

    def handler(request: Request) -> Response:
        return Response(page, status=403, content_type="text/html")

    httpserver.expect_request("/deny").respond_with_handler(handler)
    with pytest.raises(FetchError) as caught:
        fetch_body(httpserver.url_for("/deny"), tmp_path)
    message = str(caught.value)
    assert "server said: Denied" in message and "<" not in message and "color" not in message
    assert len(message) < 400


# --- TLS -----------------------------------------------------------------------------------------

@pytest.fixture
def tls_server(tmp_path: Path) -> Any:
    """An HTTPS loopback server with a self-signed certificate made by the openssl command line."""
    import shutil
    import ssl
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS tests need the openssl command line tool (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    server.expect_request("/list.txt").respond_with_data(BODY)
    yield server, cert
    server.clear()
    server.stop()


def test_tls_is_verified_by_default(tls_server: Any, tmp_path: Path) -> None:
    server, _cert = tls_server
    with pytest.raises(FetchError, match=r"TLS certificate check failed for 127\.0\.0\.1:\d+: .*REQUESTS_CA_BUNDLE"):
        fetch_body(server.url_for("/list.txt"), tmp_path)


def test_a_private_ca_is_trusted_through_requests_ca_bundle(tls_server: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert fetch_body(server.url_for("/list.txt"), tmp_path)[0] == BODY


def test_verify_tls_false_is_possible_but_explicit(tls_server: Any, tmp_path: Path) -> None:
    import urllib3

    server, _cert = tls_server
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):  # loud in the logs, as it should be
        assert fetch_body(server.url_for("/list.txt"), tmp_path, verify_tls=False)[0] == BODY
