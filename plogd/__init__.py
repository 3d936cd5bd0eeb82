"""plogd: nginx, Apache and regex-described logs -> per-window metrics -> Zabbix.

As a library (plogd.api): parse, parse_file, replay, describe, load_format."""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import (ConfigError, Record, ReplayResult, Window, describe, load_format, parse,
                      parse_file, replay)

_API = ("ConfigError", "Record", "ReplayResult", "Window", "describe", "load_format", "parse",
        "parse_file", "replay")


def __getattr__(name: str):
    """The library API, imported when first asked for: the daemon's stages and commands
    import `plogd` without it."""
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *_API]
