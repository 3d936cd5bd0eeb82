"""Plugins: the outputs (and formats) installed, through entry points. The built-ins
register the same way, so there is no list of names to keep in step."""
from __future__ import annotations

import logging
from importlib.metadata import entry_points

_log = logging.getLogger("plogd.plugins")


def output_types() -> dict[str, type]:
    """type name -> Output subclass, of every installed `plogd.outputs` entry point."""
    from .outputs.base import Output
    found: dict[str, type] = {}
    for point in entry_points(group="plogd.outputs"):
        try:
            cls = point.load()
        except Exception as e:         # a broken plugin must not stop the others
            _log.error("the output plugin %r (%s) cannot be loaded: %s: %s", point.name,
                       point.value, type(e).__name__, e)
            continue
        if isinstance(cls, type) and issubclass(cls, Output):
            found[point.name] = cls
    return found
