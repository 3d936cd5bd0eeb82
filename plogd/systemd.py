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


STATUS_EVERY = 5.0      # seconds between STATUS= updates


class Status:
    """STATUS= for `systemctl status`: inputs, lines/s, lag and the output's state, read
    from the state directory (plogd.livestate) as `plogd top` reads it — the same in both
    modes, whichever process does the work."""

    def __init__(self, config):
        self.config = config
        self._previous = None
        self._next = 0.0

    def update(self, prefix: str = "") -> None:
        if not os.environ.get("NOTIFY_SOCKET") or time.monotonic() < self._next:
            return
        from .livestate import status_line, take
        self._next = time.monotonic() + STATUS_EVERY
        current = take(self.config)
        notify("STATUS=" + prefix + status_line(self._previous, current))
        self._previous = current
