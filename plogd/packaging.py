"""The files shipped inside the plogd package: the example configurations (conf/) and the
systemd unit and sysusers file (systemd/), found wherever plogd is installed — a wheel, an
editable checkout. `plogd shipped [NAME]` prints their paths; other commands (`plogd init`)
install them from here.

    shipped_file("systemd/plogd.service") -> ".../site-packages/plogd/shipped/systemd/plogd.service"
"""
from __future__ import annotations

from importlib import resources


def _root():
    return resources.files("plogd") / "shipped"


def shipped_names() -> list[str]:
    """Every shipped file, as "conf/nginx.yaml", "systemd/plogd.service", …"""
    return sorted(f"{folder.name}/{entry.name}" for folder in _root().iterdir()
                  if folder.is_dir() for entry in folder.iterdir() if entry.is_file())


def shipped_file(name: str) -> str:
    """The path of a shipped file; FileNotFoundError, naming the shipped ones, for another
    name. (A wheel installs plogd as files, so the path is a real one.)"""
    if name not in shipped_names():
        raise FileNotFoundError(f"{name}: not shipped with plogd; shipped: "
                                f"{', '.join(shipped_names())}")
    return str(_root() / name)
