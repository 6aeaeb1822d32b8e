"""The default catalogue in ``config/feeds/``: it loads cleanly, documents itself, and every shipped
config (format + mapping + transport options) is proven by collecting a real sample of its feed
through the runner, served over loopback in place of the provider.

Feeds with a real sample in ``shared/fixtures`` use it. For the few with none there, a short
sample in the provider's documented layout is written here (``SAMPLES``), so a new catalogue
entry cannot ship without proof that its mapping reads its feed. A provider folder (``type:
csaf``) is served from its fixture folder with the provider's real listing (``FOLDERS``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import re
from datetime import datetime, timezone

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import Floor
from settings.loader import load_config
from store.writes import get_cursor

CONFIG = Path(__file__).resolve().parents[2] / "config"
REQUIRED_FEEDS = {
    "abusech-feodo-ipblocklist", "abusech-urlhaus-recent", "abusech-threatfox-recent", "abusech-sslbl-certificates",
    "spamhaus-drop-v4", "emergingthreats-compromised-ips", "blocklist-de-all", "dshield-block", "cins-army",
    "tor-exit-nodes", "cisa-kev", "mitre-attack-ics", "cisa-ics-csaf",
}

# feed id -> (fixture, parsed records, filtered); outcome "flagged" is allowed only for min_records,
# because the samples are trimmed (Spamhaus 60 of 1 406 entries, KEV 47 of 1 404 ...).
FIXTURES: dict[str, tuple[str, int, int]] = {
    "abusech-feodo-ipblocklist": ("feeds/abusech_feodotracker_ipblocklist.csv", 28, 0),
    "abusech-sslbl-ipblacklist": ("feeds/abusech_sslbl_ipblacklist_2015.csv", 83, 0),
    "spamhaus-drop-v4": ("feeds/spamhaus_drop_v4.json", 60, 0),
    "emergingthreats-compromised-ips": ("feeds/emergingthreats_compromised-ips.txt", 100, 0),
    "blocklist-de-all": ("feeds/blocklistde_imap.txt", 0, 6),       # sanitised to documentation addresses
    "dshield-block": ("feeds/dshield_block_2015.txt", 2, 0),
    "openphish-community": ("feeds/openphish_feed.txt", 0, 0),      # both sanitised URLs are invalid
    "cisa-kev": ("kev/known_exploited_vulnerabilities.json", 47, 0),
    "mitre-attack-ics": ("stix/mitre-ics-attack-subset.json", 12, 0),
}

# feed id -> (fixture folder, its listing, the clock for the run, parsed records, advisories the listing names
# that the folder lacks): the listings are trimmed copies, and only some advisories were kept beside them.
FOLDERS: dict[str, tuple[str, str, datetime, int, int]] = {
    "cisa-ics-csaf": ("csaf", "changes_OT_white.csv", datetime(2024, 10, 25, 12, tzinfo=timezone.utc), 4, 39),
}

# No real sample in shared/fixtures: the provider's documented layout, written here.
SAMPLES: dict[str, tuple[str, int, int]] = {
    "abusech-urlhaus-recent": (
        "################################################################\n"
        "# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #\n"
        "################################################################\n"
        "#\n"
        "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"
        '"3028310","2024-08-22 09:03:06","http://45.95.147.236/bins/x86","online","2024-08-22 09:03:06",'
        '"malware_download","elf,mozi","https://urlhaus.abuse.ch/url/3028310/","geenensp"\n'
        '"3028309","2024-08-22 09:01:05","https://Bad-Host.example.com/a.exe","offline","",'
        '"malware_download","exe","https://urlhaus.abuse.ch/url/3028309/","anonymous"\n', 2, 0),
    "abusech-threatfox-recent": (
        "################################################################\n"
        "# ThreatFox IOCs: Recent IOCs (CSV)                            #\n"
        "################################################################\n"
        "#\n"
        '# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias",'
        '"malware_printable","last_seen_utc","confidence_level","reference","tags","anonymous","reporter"\n'
        '"2024-08-22 09:05:13", "1311580", "evil-update.example.net", "domain", "botnet_cc", "win.agent_tesla", '
        '"", "Agent Tesla", "", "100", "", "AgentTesla", "0", "abuse_ch"\n'
        '"2024-08-22 09:04:02", "1311579", "3f786850e387550fdab836ed7e6dc881de23001b", "sha1_hash", '
        '"payload", "win.formbook", "", "Formbook", "", "75", "", "exe", "0", "abuse_ch"\n', 2, 0),
    "abusech-sslbl-certificates": (
        "################################################################\n"
        "# abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #\n"
        "################################################################\n"
        "#\n"
        "# Listingdate,SHA1,Listingreason\n"
        "2024-08-20 10:33:10,3f786850e387550fdab836ed7e6dc881de23001b,AsyncRAT C&C\n"
        "2024-08-19 08:11:41,89E6C98D92887913CADF06B2ADB97F26CDE4849B,QuasarRAT C&C\n", 2, 0),
    "cins-army": ("45.95.147.236\n185.220.101.1\n", 2, 0),
    "tor-exit-nodes": (
        "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\n"
        "Published 2024-08-22 03:27:21\n"
        "LastStatus 2024-08-22 09:00:00\n"
        "ExitAddress 185.220.101.1 2024-08-22 09:10:34\n"
        "ExitNode 0098C475875ABC4AA864738B1D1079F711C38287\n"
        "Published 2024-08-22 05:46:36\n"
        "LastStatus 2024-08-22 07:00:00\n"
        "ExitAddress 2a0b:f4c2::1 2024-08-22 07:26:56\n", 2, 0),
    "dataplane-telnetlogin": (
        "#  ASN   |  ASname  |  ipaddr  |  lastseen  |  category\n"
        "4134 | CHINANET-BACKBONE | 61.177.172.140 | 2024-08-22 08:52:31 | telnetlogin\n"
        "14061 | DIGITALOCEAN-ASN | 159.65.10.20 | 2024-08-22 08:40:02 | telnetlogin\n", 2, 0),
    "dataplane-vncrfb": (
        "#  ASN   |  ASname  |  ipaddr  |  lastseen  |  category\n"
        "16276 | OVH | 51.178.161.32 | 2024-08-22 08:12:00 | vncrfb\n", 1, 0),
}


@pytest.fixture(scope="module")
def catalogue() -> Any:
    return load_config(CONFIG)


def shipped(catalogue: Any) -> list[Any]:
    return [s for s in catalogue.sources if not s.id.startswith("demo-")]


def test_catalogue_loads_without_problems(catalogue: Any) -> None:
    assert catalogue.problems == []
    feeds = shipped(catalogue)
    assert len([s for s in feeds if s.enabled]) >= 12
    assert REQUIRED_FEEDS <= {s.id for s in feeds if s.enabled}


def test_every_feed_documents_itself(catalogue: Any) -> None:
    for source in shipped(catalogue):
        assert source.documentation and source.documentation.startswith("https://"), source.id
        assert source.terms and source.terms != "unknown" and len(source.terms) > 30, source.id
        assert source.provider != "local", source.id
        assert source.schedule.every is not None and source.schedule.min_interval.total_seconds() >= 300, source.id
        assert source.source.type in ("http", "csaf") and source.source.url.startswith("https://"), source.id
        assert source.source.verify_tls, source.id
        assert source.secret_names() == set(), source.id  # the default catalogue needs no account
        path = CONFIG / "feeds" / f"{source.id}.yaml"
        assert path.is_file(), f"{source.id} should live in feeds/{source.id}.yaml"


def test_provider_limits_are_respected(catalogue: Any) -> None:
    feeds = {s.id: s for s in shipped(catalogue)}
    for source in feeds.values():
        if source.provider == "abuse.ch":
            assert source.schedule.min_interval.total_seconds() >= 300
    assert feeds["spamhaus-drop-v4"].schedule.min_interval.total_seconds() >= 3600
    assert feeds["tor-exit-nodes"].detect is False
    assert feeds["mitre-attack-ics"].detect is False
    # A deprecated list stays disabled (the Spamhaus EDROP lesson).
    assert feeds["abusech-sslbl-ipblacklist"].enabled is False


def test_every_feed_has_proof(catalogue: Any, shared_fixtures: Path) -> None:
    ids = {s.id for s in shipped(catalogue)}
    assert ids == set(FIXTURES) | set(SAMPLES) | set(FOLDERS)
    for fixture, _, _ in FIXTURES.values():
        assert (shared_fixtures / fixture).is_file(), fixture
    for folder, listing, *_ in FOLDERS.values():
        assert (shared_fixtures / folder / listing).is_file(), listing


@pytest.mark.parametrize("feed_id", sorted(set(FIXTURES) | set(SAMPLES)))
def test_shipped_config_reads_its_feed(feed_id: str, catalogue: Any, floor: Floor, httpserver: HTTPServer,
                                       shared_fixtures: Path) -> None:
    source = next(s for s in catalogue.sources if s.id == feed_id)
    if feed_id in FIXTURES:
        fixture, parsed, filtered = FIXTURES[feed_id]
        body = (shared_fixtures / fixture).read_bytes()
    else:
        text, parsed, filtered = SAMPLES[feed_id]
        body = text.encode()
    path = "/" + source.source.url.split("://", 1)[1].split("/", 1)[1]
    httpserver.expect_request(path.split("?")[0]).respond_with_data(body)
    # The shipped config with only the host swapped for the loopback server.
    local = source.model_copy(update={"source": source.source.model_copy(update={"url": httpserver.url_for(path)})})

    summary = floor.run(local)

    assert summary.outcome in ("ok", "flagged"), summary.error
    for flag in summary.flags or []:
        assert "fewer than min_records" in flag, flag  # trimmed samples only
    assert (summary.parsed, summary.filtered) == (parsed, filtered)
    samples = floor.last_run(feed_id).rejected_samples or ""
    bad = samples.count('"reason":"') - samples.count('"reason":"skipped:')
    assert bad == (2 if feed_id == "openphish-community" else 0), samples


@pytest.mark.parametrize("feed_id", sorted(FOLDERS))
def test_shipped_provider_folder_config_reads_its_folder(feed_id: str, catalogue: Any, floor: Floor,
                                                         httpserver: HTTPServer, shared_fixtures: Path) -> None:
    source = next(s for s in catalogue.sources if s.id == feed_id)
    folder, listing, now, parsed, missing = FOLDERS[feed_id]
    files = shared_fixtures / folder
    path = "/" + source.source.url.split("://", 1)[1].split("/", 1)[1]

    def serve(request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        file = files / (listing if name == "changes.csv" else name)
        if not file.is_file():
            return Response("not found", status=404)
        return Response(file.read_bytes())

    httpserver.expect_request(re.compile("^" + re.escape(path))).respond_with_handler(serve)
    local = source.model_copy(update={"source": source.source.model_copy(update={"url": httpserver.url_for(path)})})
    floor.now = now

    summary = floor.run(local)

    assert summary.outcome in ("ok", "flagged"), summary.error
    assert (summary.parsed, summary.rejected) == (parsed, 0)
    # Every advisory asked for sits under the folder, at the path the listing gives it.
    assert all(request.path.startswith(path) for request, _ in httpserver.log)
    with floor.store.reader.connect() as conn:
        problems = get_cursor(conn, feed_id, "fetch")["problems"]
    assert len(problems) == missing and all("(HTTP 404)" in p for p in problems), problems
