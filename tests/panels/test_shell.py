"""The shell: DEMO badge iff a demo source is enabled, the no-data banner iff the floor is blind."""
import flask
import pytest

from storefill import NOW, add, event, events, make_config, sensor, source, source_state
from panels import context, ids, shell
from panels.context import AppContext
from treeutil import find, text_of


def test_demo_badge_only_when_a_demo_source_is_enabled(tmp_path):
    demo = make_config(tmp_path, [sensor("ids-1", demo=True)])
    real = make_config(tmp_path, [sensor("ids-1"), source("old-demo", demo=True, enabled=False)])
    assert find(shell.header(demo, NOW), shell.shell_ids.DEMO) is not None
    assert find(shell.header(real, NOW), shell.shell_ids.DEMO) is None


def test_header_has_nav_clock_in_display_zone_and_its_label(config):
    head = shell.header(config, NOW)
    text = text_of(head)
    for href in ("/wall", "/incidents", "/feeds"):
        assert href in text
    assert find(head, ids.CLOCK).children == "2027-01-15 15:00:00"  # 08:00 UTC in Bangkok
    assert find(head, shell.shell_ids.TZ_LABEL).children == "Asia/Bangkok (UTC+07:00)"


def test_layout_has_one_refresh_interval_at_the_configured_period(flask_app, config):
    tree = shell.layout()
    assert find(tree, ids.REFRESH).interval == int(config.settings.refresh_interval.total_seconds() * 1000)
    assert find(tree, ids.URL).refresh == "callback-nav"
    assert find(tree, "_pages_content") is not None  # dash.page_container


def test_banner_shown_when_nothing_arrived(flask_app):
    banner = find(shell.layout(), ids.BANNER)
    assert "No event has ever arrived" in text_of(banner) and "wf-banner-stale" in text_of(banner)


def test_banner_hidden_while_a_sensor_delivers_and_back_when_it_goes_silent(flask_app, store):
    add(store, events, [event(1, ts=NOW - 20_000)])
    add(store, source_state, [{"source_id": "ids-1", "last_success_at": NOW - 1000, "last_outcome": "ok",
                               "consecutive_failures": 0}])
    assert find(shell.layout(), ids.BANNER).children is None
    assert shell.update_banner(1) is None
    flask_app.config["WATCHFLOOR"].clock = lambda: NOW + 11 * 60_000  # 11 min later, no new event
    assert "No events for 11 min" in text_of(shell.update_banner(2))


def test_layout_outside_an_app_is_a_skeleton():
    # Dash calls app.layout once when it is assigned, before any request
    tree = shell.layout()
    assert find(tree, ids.REFRESH) is not None and find(tree, ids.BANNER).children is None


def test_context_accessors(tmp_path, store, config):
    with pytest.raises(RuntimeError):
        context.current()
    app = flask.Flask("x")
    with app.app_context():
        with pytest.raises(RuntimeError):
            context.current()
        assert context.maybe_current() is None
        app.config["WATCHFLOOR"] = "not a context"
        with pytest.raises(TypeError):
            context.current()
    from datetime import datetime, timezone

    ctx = AppContext(store, config, tmp_path, clock=lambda: datetime(2027, 1, 15, 8, tzinfo=timezone.utc))
    assert ctx.now_ms() == NOW and str(ctx.tz) == "Asia/Bangkok"
    with app.test_request_context("/", environ_base={"REMOTE_USER": "somchai"}):
        assert context.current_actor() == "somchai"
    with app.test_request_context("/"):
        assert context.current_actor() == "duty-officer"


def test_an_unreadable_store_is_a_banner_not_a_crash(tmp_path) -> None:
    """If the store cannot be read, the shell says so loudly instead of raising (which would leave
    Dash half set up) or showing an empty, calm screen."""
    from datetime import datetime, timezone
    from pathlib import Path

    from panels import shell
    from panels.context import AppContext
    from settings.loader import load_config
    from store.db import Store

    root = Path(__file__).resolve().parents[2]
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not sqlite" * 100)
    ctx = AppContext(store=Store(f"sqlite:///{broken}"), config=load_config(root / "config"), data_dir=tmp_path,
                     clock=lambda: datetime.now(timezone.utc))
    text = shell.alarm_text(ctx, 1_800_000_000_000)
    assert text.startswith("STORE UNREADABLE")


@pytest.mark.parametrize("pathname, lit", [
    ("/", "/wall"), ("/wall", "/wall"), ("/incidents", "/incidents"), ("/incidents/42", "/incidents"),
    ("/exposure", "/exposure"), ("/feeds", "/feeds"), ("/feedsx", None), (None, "/wall"),
])
def test_nav_lights_the_page_shown_including_the_wall_at_root(pathname, lit):
    lights = shell.light_nav(pathname)
    assert [href for (_label, href), on in zip(shell.NAV_LINKS, lights) if on] == ([lit] if lit else [])
