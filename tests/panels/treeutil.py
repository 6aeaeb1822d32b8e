"""Test helpers (not tests): find components in a Dash tree, read a tree as the JSON Dash sends."""
import json

from plotly.io.json import to_json_plotly


def find(component, id_):
    """The component with ``id_`` in a Dash tree (depth first), or None."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found = find(child, id_)
            if found is not None:
                return found
    return None


def text_of(component) -> str:
    """The component tree as Dash sends it, as readable JSON text (no \\u escapes)."""
    return json.dumps(json.loads(to_json_plotly(component)), ensure_ascii=False)
