"""plogd: nginx, Apache and regex-described logs -> per-window metrics -> Zabbix.

As a library (plogd.api): parse, parse_file, replay, describe, load_format."""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import (ConfigError, Record, ReplayResult, Window, describe, load_format, parse,
                      parse_file, replay)

# a literal list, so that linters see the names imported above as exported
__all__ = ["__version__", "ConfigError", "Record", "ReplayResult", "Window", "describe",
           "load_format", "parse", "parse_file", "replay"]


def __getattr__(name: str):
    """The library API, imported when first asked for: the daemon's stages and commands
    import `plogd` without it. (Only names not set above reach here: not __version__.)"""
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
