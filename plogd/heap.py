"""Batch buffers stay in the process's heap instead of going back to the kernel each time.

A batch is 1 MiB of bytes, copied a few times on its way (read, the line cut, the shared
memory slot). glibc's malloc gives a block that large a mapping of its own, unmapped when
it is freed, and returns the top of its heap to the kernel past 128 KiB: every batch's
buffers were page-faulted in afresh (62,000 faults and 0.1 s of kernel time for a replay
of 230 MB, a tenth of the whole). With both thresholds above a batch, the next batch
reuses the memory the last one freed; at most TRIM_ABOVE bytes stay unused in the heap.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1       # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_ABOVE = 4 << 20        # a batch (1 MiB and the line it finishes) is well below
TRIM_ABOVE = 16 << 20       # a few batches' worth kept for reuse

_done = False


def keep_batch_buffers() -> None:
    """Once per process (forked stages inherit it); nothing where malloc is not glibc's."""
    global _done
    if _done:
        return
    _done = True
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_ABOVE)
        mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE)
