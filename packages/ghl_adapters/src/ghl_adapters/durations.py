"""Durations as operators write them in settings ('30s', '5m', '2h', '3d').

Its own module, below both the settings and the job kinds: the settings check the webhook retry schedule
with it, and the job kinds use it to build that schedule. It once lived in jobs/kinds.py, which made
settings.py -> jobs/kinds.py -> container.py -> settings.py an import circle (hidden by a TYPE_CHECKING
guard and a function-local import)."""

from __future__ import annotations

from datetime import timedelta


def parse_duration(text: str) -> timedelta:
    """'30s', '5m', '2h', '3d' or a number of seconds."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        unit = units.get(value[-1:], 0)
        seconds = float(value[:-1]) * unit if unit else float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 2h or 1d") from None
    if seconds < 0:
        raise ValueError(f"{text!r} is negative")
    return timedelta(seconds=seconds)
