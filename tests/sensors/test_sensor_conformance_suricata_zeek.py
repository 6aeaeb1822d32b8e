"""Conformance: every real Suricata and Zeek sample in ../shared/fixtures, read in place, line by line.

Per-file counts of (events, rejected, skipped) are pinned, so a regression in any file fails. The
samples are third-party files with their own licences: they are read where they lie, never copied.
"""
from __future__ import annotations

import collections
from pathlib import Path

import pytest

from collectors.sensors import suricata_eve, zeek
from store.records import Event, Rejected, Severity

# (events, rejected, skipped) per file, relative to its format folder.
SURICATA_EXPECTED = {
    "fever_alertify_input.json": (3, 0, 0),
    "fever_jsonparse_eve.json": (3, 0, 0),
    "fever_jsonparse_eve_broken1.json": (2, 1, 0),  # line 2 is cut mid-object on purpose
    "fever_jsonparse_eve_nulls.json": (1, 0, 0),
    "suricata_docs_eve_examples.json": (14, 0, 0),
    "telegraf_test1.json": (0, 0, 1),  # one 27 KB stats line
    "telegraf_test3.json": (1, 0, 0),  # duplicate "severity" key
    "telegraf_v2_alert.json": (1, 0, 34),  # pretty-printed: the object's last line carries the event
    "telegraf_v2_dns.json": (1, 0, 17),
    "telegraf_v2_drop.json": (1, 0, 28),
    "telegraf_v2_flow.json": (1, 0, 20),
    "telegraf_v2_http.json": (1, 0, 21),
    "telegraf_v2_status.json": (0, 0, 30),  # a pretty-printed stats object
    "vast_eve_mixed_types.json": (6, 0, 1),
    "vast_eve_pcap_alerts_flows.json": (35, 0, 0),
}

ZEEK_EXPECTED = {
    # ICSNPP btest baselines: every timestamp is masked as XXXXXXXXXX.XXXXXX, and the enip/cip
    # baselines were stored without any header; the field sets are checked further down.
    "icsnpp/cip.log": (0, 40, 1),
    "icsnpp/cip_identity.log": (0, 1, 1),
    "icsnpp/dnp3_control.log": (0, 40, 10),
    "icsnpp/dnp3_objects.log": (0, 40, 10),
    "icsnpp/enip.log": (0, 40, 1),
    "icsnpp/modbus_detailed.log": (0, 26, 10),
    "icsnpp/modbus_read_write_multiple_registers.log": (0, 4, 10),
    "icsnpp/s7comm.log": (0, 60, 10),
    "icsnpp/s7comm_known_devices.log": (0, 1, 10),
    "icsnpp/s7comm_plus.log": (0, 40, 10),
    "vast-2021/ctu_2011_conn.json": (16, 0, 0),  # no _path: read with the path option "conn"
    "vast-2021/m57_2009_conn.log": (66, 0, 9),
    "vast-2021/m57_2009_dns.log": (31, 0, 9),
    "vast-2021/m57_2009_http.log": (25, 0, 9),
    "vast-2021/sensor_mixed_paths_2020.json": (25, 2, 7),  # 6 metrics + reporter skipped; __name and no-ts rejected
    "wrccdc2018_dns.json": (74, 0, 0),
    "wrccdc2018_dns.log": (74, 0, 9),
    "wrccdc2018_known_services.json": (21, 0, 0),
    "wrccdc2018_known_services.log": (21, 0, 9),
    "wrccdc2018_modbus.json": (40, 0, 0),
    "wrccdc2018_modbus.log": (40, 0, 9),
    "wrccdc2018_notice.json": (12, 0, 0),
    "wrccdc2018_notice.log": (12, 0, 9),
    "wrccdc2018_rdp.json": (14, 0, 0),
    "wrccdc2018_rdp.log": (14, 0, 9),
    "wrccdc2018_snmp.json": (6, 0, 0),
    "wrccdc2018_snmp.log": (6, 0, 9),
    "wrccdc2018_software.json": (50, 0, 0),
    "wrccdc2018_software.log": (50, 0, 9),
    "wrccdc2018_ssl.json": (50, 0, 0),
    "wrccdc2018_ssl.log": (50, 0, 9),
    "wrccdc2018_syslog.json": (9, 0, 0),
    "wrccdc2018_syslog.log": (9, 0, 9),
    "wrccdc2018_weird.json": (56, 0, 0),
    "wrccdc2018_weird.log": (56, 0, 9),
    "wrccdc2018_x509.json": (9, 0, 0),
    "wrccdc2018_x509.log": (9, 0, 9),
    "zeek-btest-2020/conn_modbus.log": (9, 0, 9),
    "zeek-btest-2020/conn_teredo_ipv6.log": (21, 0, 9),
    "zeek-btest-2020/dnp3.log": (66, 0, 9),
    "zeek-btest-2020/dns_ipv6.log": (3, 0, 9),
    "zeek-btest-2020/http_methods.log": (49, 0, 9),
    "zeek-btest-2020/intel.log": (20, 0, 9),
    "zeek-btest-2020/known_modbus.log": (8, 0, 9),
    "zeek-btest-2020/modbus_policy.log": (70, 0, 9),
    "zeek-btest-2020/modbus_register_change.log": (40, 0, 9),
    "zeek-btest-2020/notice_software_vulnerable.log": (2, 0, 9),
    "zeek-btest-2020/notice_ssh_bruteforce.log": (1, 0, 9),
    "zeek-btest-2020/notice_ssl_expiring.log": (2, 0, 9),
}
ZEEK_OPTIONS = {"vast-2021/ctu_2011_conn.json": zeek.Options(path="conn")}


def lines_of(path: Path) -> list[str]:
    """Lines as a tailer hands them over: split on newline only, no final empty piece."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_through(parser, lines: list[str]) -> list:
    results = [parser(line) for line in lines]
    finish = getattr(parser, "finish", None)
    return results + (finish() if finish else [])


def tally(results: list) -> tuple[int, int, int]:
    events = sum(isinstance(r, Event) for r in results)
    rejected = sum(isinstance(r, Rejected) for r in results)
    skipped = sum(r is None for r in results)
    assert events + rejected + skipped == len(results), "a parser returned something that is not a record"
    return events, rejected, skipped


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_every_suricata_sample_is_pinned(shared_fixtures):
    assert files_under(shared_fixtures / "suricata") == sorted(SURICATA_EXPECTED)


def test_every_zeek_sample_is_pinned(shared_fixtures):
    assert files_under(shared_fixtures / "zeek") == sorted(ZEEK_EXPECTED)


@pytest.mark.parametrize("name", sorted(SURICATA_EXPECTED))
def test_suricata_sample_counts(shared_fixtures, name):
    lines = lines_of(shared_fixtures / "suricata" / name)
    results = read_through(suricata_eve.make_parser("conformance", suricata_eve.Options()), lines)
    assert tally(results) == SURICATA_EXPECTED[name]
    for result in results:
        if isinstance(result, Event):
            assert result.ts.tzinfo is not None and result.ts.utcoffset().total_seconds() == 0
            assert result.sensor == "conformance" and result.kind


@pytest.mark.parametrize("name", sorted(ZEEK_EXPECTED))
def test_zeek_sample_counts(shared_fixtures, name):
    lines = lines_of(shared_fixtures / "zeek" / name)
    parser = zeek.make_parser("conformance", ZEEK_OPTIONS.get(name, zeek.Options()))
    results = read_through(parser, lines)
    assert tally(results) == ZEEK_EXPECTED[name]
    for line, result in zip(lines, results):
        if isinstance(result, Event):
            assert result.raw == line
            assert result.sensor_severity is not None


# -- Suricata content --------------------------------------------------------------------------


def suricata_events(shared_fixtures: Path, name: str) -> list[Event]:
    parser = suricata_eve.make_parser("conformance", suricata_eve.Options())
    return [r for r in read_through(parser, lines_of(shared_fixtures / "suricata" / name)) if isinstance(r, Event)]


def test_suricata_full_ipv6_is_compressed(shared_fixtures):
    tls = [e for e in suricata_events(shared_fixtures, "fever_alertify_input.json") if e.kind == "tls"]
    assert [(e.src_ip, e.dst_ip) for e in tls] == [("2a03:b0c0:2:d0::bd3:4001", "2606:2800:220:1:248:1893:25c8:1946")]


def test_suricata_broken_line_is_rejected_where_it_is(shared_fixtures):
    parser = suricata_eve.make_parser("conformance", suricata_eve.Options())
    results = read_through(parser, lines_of(shared_fixtures / "suricata" / "fever_jsonparse_eve_broken1.json"))
    assert isinstance(results[1], Rejected) and results[1].location == "line 2"
    assert results[2].url == "foobar/scripts/wpnbr.dll"  # escaped slashes, and the line after the bad one kept


def test_suricata_pretty_printed_samples_keep_every_field(shared_fixtures):
    [alert] = suricata_events(shared_fixtures, "telegraf_v2_alert.json")
    assert (alert.signature_id, alert.sensor_severity, alert.src_ip, alert.dst_port) == ("6", Severity.LOW, "10.0.0.5", 80)
    assert alert.raw == (shared_fixtures / "suricata" / "telegraf_v2_alert.json").read_text(encoding="utf-8").rstrip("\n")
    [drop] = suricata_events(shared_fixtures, "telegraf_v2_drop.json")
    assert drop.sensor_severity is Severity.MEDIUM and drop.action == "blocked"
    [http] = suricata_events(shared_fixtures, "telegraf_v2_http.json")
    assert http.url == "hkminorshort.weixin.qq.com/mmtls/2d6d45f1" and http.user_agent == "MicroMessenger Client"


def test_suricata_docs_examples_by_kind(shared_fixtures):
    events = suricata_events(shared_fixtures, "suricata_docs_eve_examples.json")
    kinds = collections.Counter(e.kind for e in events)
    assert kinds == {"anomaly": 4, "pgsql": 4, "alert": 2, "fileinfo": 1, "http": 1, "flow": 1, "mqtt": 1}
    assert {e.sensor_severity for e in events if e.kind == "anomaly"} == {Severity.LOW}
    assert [e.sensor_severity for e in events if e.kind == "alert"] == [Severity.MEDIUM, Severity.HIGH]
    epoch = [e for e in events if e.signature == "decoder.udp.pkt_too_small"]
    assert epoch[0].ts.isoformat() == "1970-01-01T00:04:21+00:00"


def test_suricata_file_hashes(shared_fixtures):
    hashes = {e.file_hash for e in suricata_events(shared_fixtures, "vast_eve_mixed_types.json") if e.file_hash}
    assert hashes == {"2e4c462b3424afcc04f43429d5f001e4ef9a28143bfeefb9af2254b4df3a7c1a"}


# -- Zeek content ------------------------------------------------------------------------------


def zeek_events(shared_fixtures: Path, name: str, options: zeek.Options | None = None) -> list[Event]:
    parser = zeek.make_parser("conformance", options or ZEEK_OPTIONS.get(name, zeek.Options()))
    return [r for r in read_through(parser, lines_of(shared_fixtures / "zeek" / name)) if isinstance(r, Event)]


def comparable(event: Event) -> tuple:
    return tuple(repr(getattr(event, name)) if name != "extra" else repr(sorted(event.extra.items()))
                 for name in Event.__slots__ if name != "raw")


# The WRCCDC .json files were trimmed separately from their .log twins: a few rows differ in data.
# Count of TSV events with no identical JSON event, per pair; every other pair must agree entirely.
TSV_ROWS_WITHOUT_JSON_TWIN = {"wrccdc2018_weird": 4, "wrccdc2018_known_services": 1, "wrccdc2018_software": 2}


@pytest.mark.parametrize("stem", sorted({Path(n).stem for n in ZEEK_EXPECTED if n.startswith("wrccdc2018_")}))
def test_zeek_tsv_and_json_twins_agree(shared_fixtures, stem):
    from_tsv = collections.Counter(comparable(e) for e in zeek_events(shared_fixtures, f"{stem}.log"))
    from_json = collections.Counter(comparable(e) for e in zeek_events(shared_fixtures, f"{stem}.json"))
    assert sum((from_tsv - from_json).values()) == TSV_ROWS_WITHOUT_JSON_TWIN.get(stem, 0)
    assert sum(from_tsv.values()) == sum(from_json.values())


def test_zeek_ctu_conn_without_path_is_rejected_by_default(shared_fixtures):
    parser = zeek.make_parser("conformance", zeek.Options())
    results = read_through(parser, lines_of(shared_fixtures / "zeek" / "vast-2021" / "ctu_2011_conn.json"))
    assert {r.reason for r in results} == {"no _path in the record and no path option"}


def test_zeek_mixed_sensor_paths(shared_fixtures):
    parser = zeek.make_parser("conformance", zeek.Options())
    results = read_through(parser, lines_of(shared_fixtures / "zeek" / "vast-2021" / "sensor_mixed_paths_2020.json"))
    by_kind = {r.kind: r for r in results if isinstance(r, Event)}
    assert by_kind["dnp3"].ics_function == "unsolicited_response"
    assert by_kind["modbus"].ics_function == "unknown-0"
    assert by_kind["notice"].signature_id == "Bitcoin::Mining_Pool_Server" and by_kind["notice"].sensor_severity is Severity.MEDIUM
    assert by_kind["ssl"].ja3 == "248a2544f4221c0f02f877e42fe67853"
    assert by_kind["weird"].signature == "SYN_seq_jump"
    assert not any(kind.startswith("corelight_metrics") for kind in by_kind)
    assert sorted(r.reason for r in results if isinstance(r, Rejected)) == [
        "missing ts", "no _path in the record and no path option"]


def test_zeek_btest_mappings(shared_fixtures):
    intel = zeek_events(shared_fixtures, "zeek-btest-2020/intel.log")
    assert {(e.domain, e.sensor_severity) for e in intel if e.signature_id == "Intel::DOMAIN"} == {("upload.wikimedia.org", Severity.HIGH)}
    [brute] = zeek_events(shared_fixtures, "zeek-btest-2020/notice_ssh_bruteforce.log")
    assert brute.src_ip == "192.168.56.1" and brute.signature_id == "SSH::Password_Guessing"
    dnp3 = collections.Counter(e.ics_function for e in zeek_events(shared_fixtures, "zeek-btest-2020/dnp3.log"))
    assert dnp3["write"] > 0 and dnp3["unsolicited_response"] > 0
    teredo = zeek_events(shared_fixtures, "zeek-btest-2020/conn_teredo_ipv6.log")
    assert any(e.src_ip and ":" in e.src_ip for e in teredo)


# ICSNPP baselines mask timestamps; with one put back (in memory) their real field sets must map.
ICSNPP_MISSING_HEADERS = {
    "cip.log": "ts uid id.orig_h id.orig_p id.resp_h id.resp_p is_orig source_h source_p destination_h destination_p "
               "cip_sequence_count direction cip_service_code cip_service cip_status_code cip_status "
               "cip_extended_status_code cip_extended_status class_id class_name instance_id attribute_id",
    "enip.log": "ts uid id.orig_h id.orig_p id.resp_h id.resp_p is_orig source_h source_p destination_h destination_p "
                "enip_command_code enip_command length session_handle enip_status sender_context options",
}
ICSNPP_FUNCTIONS = {
    "cip.log": {("get_attribute_list", "info"): 36, ("multiple_service_packet", "info"): 4},
    "enip.log": {("send_unit_data", "info"): 40},
    "dnp3_control.log": {("select", "medium"): 11, ("operate", "medium"): 9, ("response", "info"): 20},
    "dnp3_objects.log": {("read", "info"): 10, ("response", "info"): 30},
    "modbus_read_write_multiple_registers.log": {("read_write_multiple_registers", "medium"): 4},
    "s7comm_plus.log": {(None, "info"): 27, ("set_variable", "medium"): 9, ("get_multi_variables", "info"): 4},
}


@pytest.mark.parametrize("name", sorted(ICSNPP_FUNCTIONS))
def test_icsnpp_field_sets_map_functions(shared_fixtures, name):
    lines = lines_of(shared_fixtures / "zeek" / "icsnpp" / name)
    lines = [line.replace("XXXXXXXXXX.XXXXXX", "1700000000.000000") for line in lines]
    if name in ICSNPP_MISSING_HEADERS:
        lines = ["#separator \\x09", "#path\t" + name[:-4], "#fields\t" + ICSNPP_MISSING_HEADERS[name].replace(" ", "\t")] + lines
    results = read_through(zeek.make_parser("conformance", zeek.Options()), lines)
    events = [r for r in results if isinstance(r, Event)]
    assert not [r for r in results if isinstance(r, Rejected)]
    assert collections.Counter((e.ics_function, e.sensor_severity.label) for e in events) == ICSNPP_FUNCTIONS[name]


def test_icsnpp_s7comm_and_modbus_control_functions(shared_fixtures):
    def mapped(name: str) -> collections.Counter:
        lines = [line.replace("XXXXXXXXXX.XXXXXX", "1700000000.000000")
                 for line in lines_of(shared_fixtures / "zeek" / "icsnpp" / name)]
        events = [r for r in read_through(zeek.make_parser("c", zeek.Options()), lines) if isinstance(r, Event)]
        return collections.Counter((e.ics_function, e.sensor_severity.label) for e in events)

    s7 = mapped("s7comm.log")
    assert s7[("plc_stop", "medium")] == 1 and s7[("plc_stop", "info")] == 1  # the request, then its acknowledgement
    assert s7[("write_variable", "medium")] == 2 and s7[("set_clock", "medium")] == 1
    assert s7[("plc_control", "medium")] == 3
    assert not [f for (f, level) in s7 if f in ("read_szl", "start_upload", "read_variable") and level != "info"]
    modbus = mapped("modbus_detailed.log")
    writes = {f for (f, level) in modbus if level == "medium"}
    assert writes == {"write_single_coil", "write_single_register", "write_multiple_coils", "write_multiple_registers",
                      "write_file_record", "mask_write_register", "read_write_multiple_registers", "diagnostics"}
    assert sum(modbus.values()) == 26
