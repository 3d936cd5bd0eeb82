"""--daemon: a classic double-fork daemon (python-daemon) with a pid file, for hosts without
systemd. Under systemd the unit runs plogd in the foreground instead."""
from __future__ import annotations

import logging
import os

import daemon
import daemon.pidfile

from .config import ConfigError
from .log import setup_file
from .statedir import DIR_MODE


def running_pid(pidfile: str) -> int | None:
    """The pid in `pidfile` if that process is alive, else None (a stale file is removed)."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pid = 0
    if pid > 0:
        try:
            os.kill(pid, 0)
            return pid
        except ProcessLookupError:
            pass
        except PermissionError:
            return pid
    os.unlink(pidfile)
    return None


def daemonize(pidfile: str, log_file: str, level: str):
    """Detach; returns the open DaemonContext (close it on exit: that removes the pid file).
    Refuses (ConfigError) when the pid file names a live process."""
    pid = running_pid(pidfile)
    if pid is not None:
        raise ConfigError(f"{pidfile}: plogd already runs as pid {pid}; stop it first "
                          f"(kill -TERM {pid})")
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), mode=DIR_MODE, exist_ok=True)
    context = daemon.DaemonContext(
        pidfile=daemon.pidfile.TimeoutPIDLockFile(os.path.abspath(pidfile), acquire_timeout=0),
        working_directory="/", umask=0o027, signal_map={})   # as the unit's UMask=
    context.open()
    setup_file(log_file, level)
    logging.getLogger("plogd").info("daemon started, pid %d, pid file %s", os.getpid(), pidfile)
    return context
