"""The systemd notify protocol (Type=notify, WatchdogSec): a datagram to $NOTIFY_SOCKET.
Nothing happens when plogd does not run under systemd."""
from __future__ import annotations

import os
import socket
import time

_last_watchdog = 0.0


def notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):              # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)     # a receiver that does not read must not stop plogd
        try:
            sock.sendto(state.encode(), address)
        except OSError:             # full, or gone: a keep-alive comes again soon
            pass


def watchdog() -> None:
    """A keep-alive, at half the interval systemd expects (WATCHDOG_USEC)."""
    global _last_watchdog
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return
    now = time.monotonic()
    if now - _last_watchdog >= int(usec) / 2e6:
        _last_watchdog = now
        notify("WATCHDOG=1")
