"""Secret resolution and redaction; per-host politeness and the backoff budget."""
from __future__ import annotations

import threading
import time

import pytest

from collectors import politeness
from collectors.transports import FetchError, secrets


def test_references_resolve_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_T_USER", "alice")
    monkeypatch.setenv("WF_T_KEY", "k3y-with/slash+plus")
    assert secrets.resolve("https://x/?u=${ENV:WF_T_USER}&k=${ENV:WF_T_KEY}") == \
        "https://x/?u=alice&k=k3y-with/slash+plus"
    assert secrets.resolve("no reference") == "no reference"
    assert secrets.resolve(None) is None


def test_a_missing_variable_is_named_never_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WF_T_ABSENT", raising=False)
    with pytest.raises(FetchError, match=r"environment variable WF_T_ABSENT is not set .*source\.auth\.token"):
        secrets.resolve("${ENV:WF_T_ABSENT}", "source.auth.token")
    monkeypatch.setenv("WF_T_EMPTY", "")
    with pytest.raises(FetchError, match="WF_T_EMPTY is not set"):
        secrets.resolve("${ENV:WF_T_EMPTY}")


def test_redact_blanks_resolved_values_in_every_wire_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_T_SECRET", "p@ss word/+1")
    secrets.resolve("${ENV:WF_T_SECRET}")
    secrets.remember_basic("bob", "p@ss word/+1")
    text = ("plain p@ss word/+1, quoted p%40ss%20word%2F%2B1, plus p%40ss+word%2F%2B1, "
            "header Ym9iOnBAc3Mgd29yZC8rMQ==")
    redacted = secrets.redact(text)
    assert "p@ss" not in redacted and "p%40ss" not in redacted and "Ym9i" not in redacted
    assert redacted.count("***") == 4


def test_redact_blanks_credentials_it_never_resolved() -> None:
    text = ("GET https://user:hunter2@feeds.example/x?apikey=AAAA&page=2 failed; "
            "Authorization: Bearer eyJhbGciOi; auth-key=zzzz (see ?token=abc)")
    redacted = secrets.redact(text)
    for leaked in ("hunter2", "AAAA", "eyJhbGciOi", "zzzz", "abc)"):
        assert leaked not in redacted
    assert "page=2" in redacted and "https://***@feeds.example/x" in redacted
    assert redacted.endswith("(see ?token=***)")


def test_short_values_are_not_used_to_mangle_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_T_TINY", "ab")
    secrets.resolve("${ENV:WF_T_TINY}")
    assert secrets.redact("about a tab") == "about a tab"


# --- politeness ----------------------------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_requests_to_one_host_are_spaced() -> None:
    fake = FakeTime()
    politeness.configure(min_spacing=1.0, per_host={"slow.example": 30.0}, clock=fake.clock, sleep=fake.sleep)
    with politeness.host_slot("https://feeds.example/a"):
        fake.now += 0.25  # the request itself took a quarter second
    with politeness.host_slot("https://FEEDS.example/b"):
        pass
    with politeness.host_slot("https://other.example/c"):
        pass
    fake.now += 5
    with politeness.host_slot("https://feeds.example/d"):
        pass
    with politeness.host_slot("https://slow.example/1"):
        pass
    with politeness.host_slot("https://slow.example/2"):
        pass
    # feeds.example: 1 s after the end of /a; other.example: no wait; /d: long after; slow.example: its own 30 s.
    assert fake.slept == [1.0, 30.0]


def test_one_request_at_a_time_per_host() -> None:
    politeness.configure(min_spacing=0.0, sleep=time.sleep, clock=time.monotonic)
    inside: list[int] = []
    overlap: list[bool] = []
    lock = threading.Lock()

    def request(url: str) -> None:
        with politeness.host_slot(url):
            with lock:
                inside.append(1)
                overlap.append(len(inside) > 1)
            time.sleep(0.02)
            with lock:
                inside.pop()

    threads = [threading.Thread(target=request, args=(f"http://one.example:8080/{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [False] * 6


def test_different_hosts_do_not_wait_for_each_other() -> None:
    politeness.configure(min_spacing=0.0, sleep=time.sleep, clock=time.monotonic)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with politeness.host_slot("http://a.example/"):
            entered.set()
            release.wait(2)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(2)
    started = time.monotonic()
    with politeness.host_slot("http://b.example/"):
        pass
    assert time.monotonic() - started < 0.5
    release.set()
    holder.join()


def test_backoff_is_exponential_honours_retry_after_and_has_a_budget() -> None:
    budget = politeness.Backoff(5, politeness.Pacing(backoff_base=2, backoff_max=16, max_total_wait=40))
    assert [budget.next_wait(), budget.next_wait(), budget.next_wait(10), budget.next_wait()] == [2, 4, 10, 16]
    assert budget.next_wait() is None  # 2+4+10+16 = 32; another 16 would pass 40
    assert budget.refused_wait == 16
    assert politeness.Backoff(0).next_wait() is None


def test_host_key_ignores_credentials_and_case() -> None:
    assert politeness.host_key("https://u:p@Feeds.Example:8443/x") == "feeds.example:8443"
