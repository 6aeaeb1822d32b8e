"""Component ids shared by more than one panel. Each panel keeps its own in its ``class ids``."""
from __future__ import annotations

#: The one refresh ``dcc.Interval`` (period: ``settings.refresh_interval``), in the shell.
REFRESH = "wf-refresh"
#: A ``dcc.Location(refresh="callback-nav")``: callbacks navigate by setting its ``href``.
URL = "wf-url"
#: The can't-miss "no data" banner under the top bar.
BANNER = "wf-banner"
#: The top bar's clock, and the 1 s interval that ticks it in the browser.
CLOCK = "wf-clock"
CLOCK_TICK = "wf-clock-tick"
#: ``dcc.Store`` holding the display time zone name, read by the clock.
DISPLAY_TZ = "wf-display-tz"
