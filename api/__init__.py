"""watchfloor's read API: JSON under ``/api/`` for scripts, other tools and monitoring.

``app.py`` registers it on the Dash server::

    import api
    app.server.register_blueprint(api.blueprint)

It reads the store only through ``store.queries`` and the app's ``AppContext``; see
``api.routes`` for the contract and ``docs/api.md`` for every endpoint with examples.
"""
from api.routes import blueprint

__all__ = ["blueprint"]
