"""Test helper: drive a FileFollower like the read loop does and collect the lines."""
import time

from plogd.stages.read import FileFollower, split_lines


def follower(path, start="beginning", max_line=1000, resume=None):
    return FileFollower("in", str(path), start, max_line, resume=resume, rotate_wait=0.05)


def drain(f: FileFollower, quiet: float = 0.2) -> list[bytes]:
    """Poll until nothing new has come for `quiet` seconds; the lines read, in order."""
    lines, last = [], time.monotonic()
    f.last_batch = getattr(f, "last_batch", None)
    while time.monotonic() - last < quiet:
        batches = f.poll()
        for b in batches:
            lines += split_lines(b.data)
            f.last_batch = b
        if batches:
            last = time.monotonic()
        else:
            time.sleep(0.01)
    return lines
