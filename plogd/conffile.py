"""Reading a configuration file (plogd's YAML, the Zabbix agent's): a regular file only (a
FIFO would block start-up for ever, a device would never end), bounded in size, and decoded
as UTF-8 with the line of the first bad byte named."""
from __future__ import annotations

import os
import stat

MAX_BYTES = 64 << 20    # far above any real configuration; a 10 MB one is checked in seconds


class ConfFileError(Exception):
    """A file that cannot be a configuration; the message names it (and the line)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_text(path: str, what: str) -> str:
    """The text of `path`; `what` names the file in errors ("the configuration")."""
    try:   # O_NONBLOCK: opening a FIFO with no writer does not wait for one
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ConfFileError(f"{path}: cannot read {what}: {e.strerror}") from None
    mode = os.fstat(fd).st_mode     # before fdopen, which refuses a directory itself
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ConfFileError(f"{path}: {what} is {_kind(mode)}; expected a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise ConfFileError(f"{path}: cannot read {what}: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfFileError(f"{path}: {what} is larger than {MAX_BYTES >> 20} MiB; "
                            "is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfFileError(f"{path}:{line}: {what} is not UTF-8 text: byte 0x{data[e.start]:02x} "
                            f"at column {column}; save it as UTF-8") from None
