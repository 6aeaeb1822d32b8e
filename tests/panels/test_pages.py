"""The pages' registration contract with app.py, and the validation layout covering every callback."""
import dash

import panels
from panels import feeds, home, incident_detail, incidents, wall
from treeutil import text_of


def test_pages_registration_recipe():
    reg = {p.module: p.registration for p in panels.PAGES}
    assert reg[wall]["path"] == "/wall" and reg[home]["path"] == "/"
    assert home.layout is wall.layout
    assert reg[incident_detail] == {"path_template": "/incidents/<incident_id>", "name": "Incident", "order": 2,
                                    "title": "Incident · watchfloor"}
    assert reg[incidents]["path"] == "/incidents" and reg[feeds]["path"] == "/feeds"
    assert len({p.path for p in panels.PAGES}) == len(panels.PAGES)
    assert panels.DASH_OPTIONS == {"suppress_callback_exceptions": False}


def _ids(value):
    """Component ids named by a callback's inputs/state (dicts) or output string: "id.prop",
    "..a.prop...b.prop.." for several outputs, "@hash" suffixes for allow_duplicate, JSON dict ids."""
    import json

    if isinstance(value, str):
        specs = value.strip(".").split("...") if value.startswith("..") else [value]
        keys = [spec.split("@")[0].rsplit(".", 1)[0] for spec in specs]
    else:
        keys = [spec["id"] for spec in value]
    for key in keys:
        yield json.loads(key) if isinstance(key, str) and key.startswith("{") else key


def test_validation_layout_holds_every_id_our_callbacks_use():
    text = text_of(panels.validation_layout())
    ours = [cb for cb in dash._callback.GLOBAL_CALLBACK_LIST
            if any(str(i).startswith(("wall-", "incident", "feeds-", "wf-", "shell-")) for i in _ids(cb["output"]))]
    assert len(ours) >= 8
    for cb in ours:
        for key in [*_ids(cb["output"]), *_ids(cb["inputs"]), *_ids(cb["state"])]:
            probe = key["type"] if isinstance(key, dict) else key
            assert f'"{probe}"' in text, (probe, cb["output"])
