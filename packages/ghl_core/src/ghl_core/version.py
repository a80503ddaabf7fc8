"""The platform's version, kept in one place: the packages' metadata (each pyproject.toml, all four
released together under one number, which a test holds them to). `ghl --version`, the OpenAPI document
and /health/ready read it from there, so they always say what is installed."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed

DISTRIBUTION = "ghl-core"
UNKNOWN = "0+unknown"


def version() -> str:
    """The installed version, or 0+unknown for a source tree on sys.path that was never installed."""
    try:
        return _installed(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN
