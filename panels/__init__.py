"""The pages of watchfloor, for ``app.py`` to register (panel modules never call ``register_page``).

Recipe for ``app.py`` (the composition root)::

    import dash
    from panels import PAGES, shell, validation_layout

    app = dash.Dash(__name__, use_pages=True, pages_folder="", **DASH_OPTIONS)
    for page in PAGES:
        dash.register_page(page.module.__name__, layout=page.module.layout, **page.registration)
    app.layout = shell.layout                       # the function: fresh per page load
    app.validation_layout = validation_layout()
    server = app.server
    server.config["WATCHFLOOR"] = panels.context.AppContext(store, config, data_dir, clock)

``/`` shows the wall too (``panels.home``): the wall is the home page.
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dash import html

    from settings.loader import Config


class Page(NamedTuple):
    module: ModuleType
    path: str  # a path, or a path template when it holds "<name>"
    name: str
    order: int
    title: str
    redirect_from: tuple[str, ...] = ()

    @property
    def registration(self) -> dict[str, Any]:
        """Keyword arguments for ``dash.register_page`` (besides the module name and layout)."""
        where = {"path_template": self.path} if "<" in self.path else {"path": self.path}
        extra = {"redirect_from": list(self.redirect_from)} if self.redirect_from else {}
        return {**where, "name": self.name, "order": self.order, "title": self.title, **extra}


def _pages() -> list[Page]:
    from panels import exposure, feeds, home, incident_detail, incidents, wall

    return [
        Page(wall, "/wall", "Wall", 0, "Wall · watchfloor"),
        Page(home, "/", "Home", 9, "Wall · watchfloor"),
        Page(incidents, "/incidents", "Incidents", 1, "Incidents · watchfloor"),
        Page(incident_detail, "/incidents/<incident_id>", "Incident", 2, "Incident · watchfloor"),
        Page(feeds, "/feeds", "Feeds", 3, "Feeds · watchfloor"),
        Page(exposure, "/exposure", "Exposure", 4, "Exposure · watchfloor"),
    ]


def __getattr__(name: str) -> Any:
    # ``panels.PAGES`` imports the page modules (and with them Dash and plotly) on first use, so
    # ``import panels.theme`` stays light.
    if name == "PAGES":
        pages = _pages()
        globals()["PAGES"] = pages
        return pages
    raise AttributeError(f"module 'panels' has no attribute {name!r}")


#: Extra ``Dash(...)`` keyword arguments the pages rely on. Callbacks to page components are
#: validated against ``validation_layout()``, so callback exceptions stay unsuppressed.
DASH_OPTIONS: dict[str, Any] = {"suppress_callback_exceptions": False}


def validation_layout(config: Config | None = None) -> html.Div:
    """The shell and every page's component tree, without reading the store: set it as
    ``app.validation_layout`` so callbacks to page components validate without
    ``suppress_callback_exceptions``."""
    from dash import html

    from panels import exposure, feeds, incident_detail, incidents, shell, wall

    return html.Div([
        shell.skeleton(config), wall.skeleton(), incidents.skeleton(config), incident_detail.skeleton(),
        feeds.skeleton(), exposure.skeleton(config),
    ])
