"""``/``: the home page is the wall itself (registered twice, as ``/`` and ``/wall``).

A server-side redirect cannot be used: Dash serves its own index at ``/``, and a Flask rule
there would clash with it. The wall's ids and callbacks are shared; only one of the two pages is
ever on screen.
"""
from __future__ import annotations

from panels.wall import layout

__all__ = ["layout"]
