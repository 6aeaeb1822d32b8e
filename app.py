"""watchfloor's composition root: the command line, the Dash app, its pages, and ``server`` for gunicorn.

    python app.py                 # dashboard + collectors (embedded SQLite, demo data)
    python app.py collect         # collectors only
    gunicorn app:server           # dashboard only, several workers, same store
"""
from __future__ import annotations

import sys
from typing import Any

import dash
from dash import Dash

from runtime.context import Runtime


def create_app(runtime: Runtime) -> Dash:
    import panels
    from panels import shell, theme
    from panels.context import AppContext

    theme.register_template()
    app = Dash(__name__, use_pages=True, pages_folder="", title=runtime.config.settings.title,
               update_title=None, serve_locally=True, **panels.DASH_OPTIONS)
    for page in panels.PAGES:
        dash.register_page(page.module.__name__, layout=page.module.layout, **page.registration)
    app.layout = shell.layout
    app.validation_layout = panels.validation_layout()
    app.server.config["WATCHFLOOR"] = AppContext(store=runtime.store, config=runtime.config,
                                                 data_dir=runtime.data_dir, clock=runtime.clock)
    import api

    app.server.register_blueprint(api.blueprint)
    return app


def __getattr__(name: str) -> Any:
    # gunicorn asks for ``app:server``; building it lazily keeps `python app.py collect` free of Dash.
    if name == "server":
        from runtime.cli import freeze_startup_heap

        server = create_app(Runtime.load()).server
        freeze_startup_heap()
        globals()["server"] = server
        return server
    raise AttributeError(name)


if __name__ == "__main__":
    from runtime.cli import main

    sys.exit(main(sys.argv[1:], create_app))
